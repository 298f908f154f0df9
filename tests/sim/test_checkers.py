"""Every simulator invariant checker is seen to fail: a checker that cannot fail proves
nothing. Each test feeds a violating history (or runs a planted bug) and expects the
checker to name the violation; the passing cases are the seed matrices elsewhere."""
from __future__ import annotations

import pytest

from consensus.types import GENESIS_HASH, Certificate, make_block
from ledger.receipts import AppliedBlock
from qenex_node.core.mempool import Mempool
from qenex_node.core.sync import CommittedBlock
from simulations.invariants import Checker
from simulations.runner import LEADER, run_scenario
from simulations.scenario import Crash, NetworkConfig, Scenario, Workload

CHAIN = "qenex-sim"


def committed(height: int, parent: bytes, txs: tuple[bytes, ...], proposer: int = 0,
              stamp: int = 0) -> CommittedBlock:
    block = make_block(CHAIN, height, parent, txs, proposer, 1_000 + stamp)
    return CommittedBlock(block, Certificate("test", height, block.block_hash, ()), b"r")


def applied(item: CommittedBlock, root: bytes = b"root") -> AppliedBlock:
    return AppliedBlock(item.block.height, item.block.block_hash, root, ())


def results(checker: Checker) -> dict[str, bool]:
    from simulations.invariants import InvariantResult

    return {r.name: r.ok for r in checker.results(InvariantResult("liveness", True))}


def test_agreement_fails_on_two_blocks_at_one_height():
    checker = Checker(honest=frozenset({0, 1}))
    one, other = committed(1, GENESIS_HASH, (b"a",)), committed(1, GENESIS_HASH, (b"b",))
    checker.on_commit(0, one, applied(one))
    checker.on_commit(1, other, applied(other))
    assert results(checker)["agreement"] is False


def test_state_roots_fail_when_one_block_gives_two_roots():
    checker = Checker(honest=frozenset({0, 1}))
    block = committed(1, GENESIS_HASH, (b"a",))
    checker.on_commit(0, block, applied(block, b"root-a"))
    checker.on_commit(1, block, applied(block, b"root-b"))
    assert results(checker)["state_roots"] is False


def test_chain_integrity_fails_on_a_wrong_parent():
    checker = Checker(honest=frozenset({0}))
    first = committed(1, GENESIS_HASH, (b"a",))
    orphan = committed(2, b"\x09" * 32, (b"b",))
    checker.on_commit(0, first, applied(first))
    checker.on_commit(0, orphan, applied(orphan))
    assert results(checker)["chain_integrity"] is False


def test_no_double_commit_fails_on_a_transaction_in_two_blocks_whatever_the_receipt():
    checker = Checker(honest=frozenset({0}))
    first = committed(1, GENESIS_HASH, (b"tx",))
    second = committed(2, first.block.block_hash, (b"tx",))
    checker.on_commit(0, first, applied(first))
    checker.on_commit(0, second, applied(second))  # receipts say nothing succeeded
    assert results(checker)["no_double_commit"] is False


def test_a_byzantine_proposer_reordering_a_transaction_is_not_an_honest_double_commit():
    checker = Checker(honest=frozenset({0, 1}))
    first = committed(1, GENESIS_HASH, (b"tx",), proposer=0)
    second = committed(2, first.block.block_hash, (b"tx",), proposer=3)
    checker.on_commit(0, first, applied(first))
    checker.on_commit(0, second, applied(second))
    assert results(checker)["no_double_commit"] is True


def test_no_equivocation_fails_on_two_signatures_at_one_position():
    checker = Checker(honest=frozenset({0}))
    checker.on_sign(0, ("pbft.prepare", 0, 1), b"\x01" * 32)
    checker.on_sign(0, ("pbft.prepare", 0, 1), b"\x02" * 32)
    assert results(checker)["no_equivocation"] is False


@pytest.mark.parametrize("algorithm", ["pbft", "raft"])
def test_disabled_mempool_cleanup_is_caught_as_double_commit(monkeypatch, algorithm):
    """The planted bug of the issue: committed transactions never leave the mempool. A
    backup keeps re-forwarding them (the leader refuses what it committed), but once a
    leader crash makes that backup the leader, it proposes them again: ordered twice."""
    monkeypatch.setattr(Mempool, "remove_committed", lambda self, tx_ids: None)
    scenario = Scenario(algorithm=algorithm, nodes=4, seed=3, duration_ms=12_000,
                        network=NetworkConfig(delay_min_ms=1, delay_mean_ms=3),
                        workload=Workload(tx_per_s=100), engine={"view_timeout_ticks": 50},
                        faults=(Crash(node=LEADER, at_ms=5_000),))
    result = run_scenario(scenario)
    broken = {r.name for r in result.invariants if not r.ok}
    assert "no_double_commit" in broken, result.summary()["invariants"]


@pytest.mark.parametrize("algorithm", ["pbft", "raft"])
def test_the_same_run_without_the_bug_orders_every_transaction_once(algorithm):
    scenario = Scenario(algorithm=algorithm, nodes=4, seed=3, duration_ms=12_000,
                        network=NetworkConfig(delay_min_ms=1, delay_mean_ms=3),
                        workload=Workload(tx_per_s=100), engine={"view_timeout_ticks": 50},
                        faults=(Crash(node=LEADER, at_ms=5_000),))
    result = run_scenario(scenario)
    assert result.ok, result.failure_message()
