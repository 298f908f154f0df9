"""Tier (b): seeded whole-cluster Tendermint runs in the simulator (issue 13).

n = 4, 7, 10 with crashed validators (among them the proposer of the moment), partitions
that heal, loss, an equivocating proposer, f byzantine voters, twins (Bano et al. 2020)
and crashes with restarts at random points. Every safety checker must hold in every run;
liveness: after the last fault heals (GST) honest validators commit at least 90 % of the
transactions offered. With an equivocating validator, evidence against it - and only
against it - is committed on every honest node.
"""
from __future__ import annotations

import dataclasses
import random

import pytest

from consensus.api import Send
from consensus.tendermint.evidence import evidence_in_block
from consensus.tendermint.messages import Proposal, Vote
from consensus.types import make_block
from simulations.runner import LEADER, Simulation, SimulationResult
from simulations.scenario import (
    ByzantineContext,
    ByzantineNode,
    Crash,
    LinkCut,
    NetworkConfig,
    Partition,
    Scenario,
    Workload,
)

SIZES = (4, 7, 10)
LOSSY = NetworkConfig(delay_min_ms=1, delay_mean_ms=4, drop_probability=0.05,
                      duplicate_probability=0.03, reorder_probability=0.05)
LIVENESS_FRACTION_MIN = 0.9
FAST = {"timeout_propose_ticks": 30, "timeout_propose_delta_ticks": 10,
        "timeout_prevote_ticks": 20, "timeout_prevote_delta_ticks": 10,
        "timeout_precommit_ticks": 20, "timeout_precommit_delta_ticks": 10,
        "timeout_commit_ticks": 10}


def faults_of(nodes: int) -> int:
    return (nodes - 1) // 3


def scenario(nodes: int, seed: int, **kwargs: object) -> Scenario:
    base = Scenario(algorithm="tendermint", nodes=nodes, seed=seed, duration_ms=12_000,
                    network=NetworkConfig(delay_min_ms=1, delay_mean_ms=4),
                    workload=Workload(tx_per_s=200), liveness_window_ms=4_000, engine=FAST)
    return dataclasses.replace(base, **kwargs)


class CountingSimulation(Simulation):
    """Counts transactions offered to honest validators (a byzantine one owes its
    clients nothing)."""

    def _submit(self, node: int, tx: bytes) -> None:
        if self.nodes[node].up and node in self.checker.honest:
            self.count("submitted_honest_txs")
        super()._submit(node, tx)


def run_sim(sc: Scenario) -> tuple[CountingSimulation, SimulationResult]:
    sim = CountingSimulation(sc)
    return sim, sim.run()


def run(sc: Scenario) -> SimulationResult:
    return run_sim(sc)[1]


def committed_fraction(result: SimulationResult) -> float:
    offered = result.counters.get("submitted_honest_txs", result.counters.get("submitted_txs", 0))
    return min(1.0, result.committed_txs / offered) if offered else 1.0


def assert_ok(result: SimulationResult, fraction: float = LIVENESS_FRACTION_MIN) -> None:
    assert result.ok, result.failure_message()
    assert committed_fraction(result) >= fraction, (
        f"only {result.committed_txs} of {result.counters.get('submitted_txs')} committed "
        f"(seed {result.scenario.seed})")


def evidence_against(sim: Simulation, node: int) -> set[int]:
    """Validators that evidence committed on `node`'s chain accuses."""
    return {e.validator for item in sim.nodes[node].storage.chain
            for e in evidence_in_block(item.block)}


def targets(ctx: ByzantineContext, send: Send) -> list[int]:
    return [send.to] if send.to is not None else list(range(ctx.nodes))


# ------------------------------------------------------------------ byzantine behaviours
def equivocating_proposer(ctx: ByzantineContext, send: Send) -> list[tuple[object, ...]]:
    """Proposes one block to half the validators and another (same round) to the rest."""
    message = send.message
    if not isinstance(message, Proposal):
        return [(dst, message) for dst in targets(ctx, send)]
    header = message.block.header
    other = make_block(header.chain_id, header.height, header.parent_hash, (b"evil",),
                       header.proposer, header.timestamp_ms + 1, header.state_height,
                       header.state_root)
    twin = dataclasses.replace(message, block=other)
    half = ctx.nodes // 2
    return [(dst, message if dst < half or dst == ctx.node_id else twin)
            for dst in targets(ctx, send)]


def conflicting_voter(ctx: ByzantineContext, send: Send) -> list[tuple[object, ...]]:
    """Votes for random blocks, forges signatures and names other validators."""
    message = send.message
    out: list[tuple[object, ...]] = []
    for dst in targets(ctx, send):
        choice = ctx.rng.randrange(4)
        if isinstance(message, Vote) and choice == 0:
            out.append((dst, dataclasses.replace(message, block_hash=ctx.rng.randbytes(32))))
        elif isinstance(message, Vote) and choice == 1:
            out.append((dst, message, b"\x00" * 32))
        elif isinstance(message, Vote) and choice == 2:
            out.append((dst, dataclasses.replace(message,
                                                 validator=(ctx.node_id + 1) % ctx.nodes)))
        else:
            out.append((dst, message))
    return out


# ------------------------------------------------------------------ the matrix
@pytest.mark.parametrize("nodes", SIZES)
def test_happy_path_commits_everything_and_stays_consistent(nodes: int) -> None:
    result = run(scenario(nodes, seed=1, duration_ms=5_000, liveness_window_ms=3_000))
    assert_ok(result, fraction=1.0)
    assert result.committed_blocks >= 30
    assert len(set(result.heights.values())) == 1, result.heights


@pytest.mark.parametrize("nodes", SIZES)
def test_crashed_validators(nodes: int) -> None:
    """f validators crash for good, the first of them the proposer of the moment."""
    crashed = (Crash(node=LEADER, at_ms=1_500),) + tuple(
        Crash(node=nodes - 1 - i, at_ms=2_000 + 300 * i) for i in range(faults_of(nodes) - 1))
    assert_ok(run(scenario(nodes, seed=2, faults=crashed)))


@pytest.mark.parametrize("nodes", SIZES)
def test_partition_that_heals(nodes: int) -> None:
    """No side holds 2f + 1 for 2.5 s, and a one-way link cut; then progress resumes."""
    half = nodes // 2
    groups = (tuple(range(half)), tuple(range(half, nodes)))
    assert_ok(run(scenario(nodes, seed=6, faults=(
        Partition(groups=groups, at_ms=1_000, heal_at_ms=3_500),
        LinkCut(src=1, dst=2, at_ms=0, heal_at_ms=4_000)))))


@pytest.mark.parametrize("nodes", SIZES)
def test_lossy_network(nodes: int) -> None:
    """5 % loss, duplicates and reordering all run long: timeouts and retransmissions."""
    assert_ok(run(scenario(nodes, seed=10, network=LOSSY)))


@pytest.mark.parametrize("nodes", SIZES)
def test_equivocating_proposer(nodes: int) -> None:
    assert_ok(run(scenario(nodes, seed=3, byzantine=(
        ByzantineNode(node=1, behaviour=equivocating_proposer),))))


@pytest.mark.parametrize("nodes", SIZES)
def test_f_byzantine_voters(nodes: int) -> None:
    byzantine = tuple(ByzantineNode(node=nodes - 1 - i, behaviour=conflicting_voter)
                      for i in range(faults_of(nodes)))
    assert_ok(run(scenario(nodes, seed=4, byzantine=byzantine)))


@pytest.mark.parametrize("nodes", SIZES)
def test_f_silent_validators_and_an_equivocating_proposer(nodes: int) -> None:
    byzantine = (ByzantineNode(node=1, behaviour=equivocating_proposer),) + tuple(
        ByzantineNode(node=nodes - 1 - i, behaviour="silent")
        for i in range(faults_of(nodes) - 1))
    assert_ok(run(scenario(nodes, seed=5, byzantine=byzantine)))


@pytest.mark.parametrize("nodes", SIZES)
def test_twins(nodes: int) -> None:
    assert_ok(run(scenario(nodes, seed=11, byzantine=(ByzantineNode(node=0,
                                                                     behaviour="twins"),))))


@pytest.mark.parametrize("nodes", SIZES)
def test_equivocating_validator_is_accused_on_every_honest_node_and_nobody_else(
        nodes: int) -> None:
    """The generic `equivocate` behaviour signs a second vote for another block to half
    the cluster; the next proposers' last_commit shows both halves both precommits."""
    culprit = 2
    sim, result = run_sim(scenario(nodes, seed=12, byzantine=(
        ByzantineNode(node=culprit, behaviour="equivocate"),)))
    assert_ok(result)
    for node in sorted(sim.checker.honest):
        assert evidence_against(sim, node) == {culprit}, node
        assert result.engines[node].committed_evidence() >= 1


@pytest.mark.parametrize("nodes", SIZES)
@pytest.mark.parametrize("seed", (7, 8))
def test_crash_and_restart_at_random_points(nodes: int, seed: int) -> None:
    """Validators crash between steps, after persisting, or half-way through sending, and
    restart from their durable state without ever signing twice at one position."""
    rng = random.Random(seed)
    points = ("between_steps", "after_persist", "mid_send")
    crashes = []
    for i in range(faults_of(nodes) + 1):  # more than f over time, never f at once
        node = rng.randrange(nodes)
        at_ms = 800 + i * 2_000 + rng.randrange(500)
        crashes.append(Crash(node=node, at_ms=at_ms, restart_at_ms=at_ms + 900,
                             point=points[rng.randrange(3)]))
    assert_ok(run(scenario(nodes, seed=seed, faults=tuple(crashes), network=NetworkConfig(
        delay_min_ms=1, delay_mean_ms=4, drop_probability=0.01))))


def test_same_seed_same_trace() -> None:
    first = run(scenario(4, seed=9, duration_ms=3_000))
    second = run(scenario(4, seed=9, duration_ms=3_000))
    assert first.trace_digest == second.trace_digest


def test_messages_per_block_grow_quadratically_with_n() -> None:
    """All-to-all votes: a proposal and two broadcast votes per validator, about 2 n^2
    messages a block (measured 33, 103, 549 at n = 4, 7, 16), plus forwarded batches."""
    per_block = {}
    for n in (4, 7, 16):
        result = run(Scenario(algorithm="tendermint", nodes=n, seed=1, duration_ms=3_000))
        assert result.ok, result.failure_message()
        per_block[n] = result.messages_sent / max(result.committed_blocks, 1)
    assert all(2 * n * (n - 1) <= per_block[n] <= 2.5 * n * n for n in per_block), per_block
