"""Every simulator invariant checker is seen to fail: a checker that cannot fail proves
nothing. Each test feeds a violating history (or runs a planted bug) and expects the
checker to name the violation; the passing cases are the seed matrices elsewhere."""
from __future__ import annotations

import pytest

from consensus.api import ReadReady
from consensus.types import GENESIS_HASH, Certificate, make_block
from ledger.receipts import AppliedBlock
from qenex_node.core.mempool import Mempool
from qenex_node.core.plan import Plan
from qenex_node.core.replica import Replica
from qenex_node.core.sync import CommittedBlock
from simulations.invariants import Checker
from simulations.runner import LEADER, run_scenario
from simulations.scenario import Crash, NetworkConfig, Partition, Scenario, Workload

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


def test_linearizable_reads_fail_on_a_read_below_a_height_committed_before_it():
    checker = Checker(honest=frozenset({0, 1}))
    chain = [committed(1, GENESIS_HASH, (b"a",))]
    chain.append(committed(2, chain[0].block.block_hash, (b"b",)))
    for item in chain:
        checker.on_commit(0, item, applied(item))
    checker.on_read(1, read_id=1, floor=checker.highest_committed, served_height=2)
    assert results(checker)["linearizable_reads"] is True
    checker.on_read(1, read_id=2, floor=checker.highest_committed, served_height=1)
    assert results(checker)["linearizable_reads"] is False
    assert "read 2 on node 1 served at height 1; height 2" in checker.violations[
        "linearizable_reads"]


def lagging_reader(algorithm: str) -> Scenario:
    """Node 3 is cut off for 3 s while the others commit; reads go to every node."""
    return Scenario(algorithm=algorithm, nodes=4, seed=5, duration_ms=8_000,
                    network=NetworkConfig(delay_min_ms=1, delay_mean_ms=3),
                    workload=Workload(tx_per_s=100, reads_per_s=100),
                    engine={"view_timeout_ticks": 50},
                    faults=(Partition(((0, 1, 2), (3,)), at_ms=2_000, heal_at_ms=5_000),))


@pytest.mark.parametrize("algorithm", ["pbft", "raft", "hotstuff", "tendermint"])
def test_reads_served_from_local_state_are_caught_as_stale(monkeypatch, algorithm):
    """The planted bug: every read point is 0, so a node serves whatever it has applied,
    which on the cut-off node is blocks behind what the others committed."""
    def local_read(self, request_id):  # type: ignore[no-untyped-def]
        self._begin()
        return self._plan(Plan(reads=(ReadReady(request_id, 0),)))

    monkeypatch.setattr(Replica, "read", local_read)
    result = run_scenario(lagging_reader(algorithm))
    broken = {r.name for r in result.invariants if not r.ok}
    assert "linearizable_reads" in broken, result.summary()["invariants"]


@pytest.mark.parametrize("algorithm", ["pbft", "raft", "hotstuff", "tendermint"])
def test_the_same_run_with_read_barriers_has_no_stale_read(algorithm):
    result = run_scenario(lagging_reader(algorithm))
    assert result.ok, result.failure_message()
    assert result.counters["reads_served"] >= 300, result.counters
