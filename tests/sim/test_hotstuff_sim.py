"""Tier (b): seeded whole-cluster HotStuff (Jolteon / DiemBFT v4) runs in the simulator.

Issue 12: n = 4, 7, 10 with a crashed leader, partitions that heal, loss, an equivocating
leader, f byzantine voters, twins (Bano et al., "Twins: BFT systems made robust", 2020:
a byzantine node played by two honest copies with one key) and crashes with restarts at
random points. Every safety checker (agreement, chain integrity, no double commit, state
roots, no equivocation, commit order) must hold in every run; liveness: after the last
fault heals (GST) the cluster commits at least 90 % of the transactions offered.
"""
from __future__ import annotations

import dataclasses
import random

import pytest

from consensus.api import Send
from consensus.hotstuff.messages import NewView, Proposal, Timeout, Vote
from consensus.types import SignedMessage, make_block
from simulations.runner import Simulation, SimulationResult, run_scenario
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


def faults_of(nodes: int) -> int:
    return (nodes - 1) // 3


def scenario(nodes: int, seed: int, **kwargs: object) -> Scenario:
    base = Scenario(algorithm="hotstuff", nodes=nodes, seed=seed, duration_ms=12_000,
                    network=NetworkConfig(delay_min_ms=1, delay_mean_ms=4),
                    workload=Workload(tx_per_s=200), liveness_window_ms=4_000,
                    engine={"view_timeout_ticks": 50})
    return dataclasses.replace(base, **kwargs)


def run(sc: Scenario) -> SimulationResult:
    return Simulation(sc).run()


def committed_fraction(result: SimulationResult) -> float:
    """Committed over offered: the simulator offers transactions only to honest replicas
    that are up (a byzantine replica owes its clients nothing). The workload stops at
    80 % of the run, so transactions offered before or during faults have until the end
    to commit: this measures that after GST the cluster drains what it was offered."""
    offered = result.offered_txs
    return min(1.0, result.committed_txs / offered) if offered else 1.0


def assert_ok(result: SimulationResult, fraction: float = LIVENESS_FRACTION_MIN) -> None:
    """`result.ok` covers every safety checker and liveness after GST (>= 90 % of what
    was offered after GST); `fraction` also bounds the whole run's committed share."""
    assert result.ok, result.failure_message()
    assert committed_fraction(result) >= fraction, (
        f"only {result.committed_txs} of {result.offered_txs} committed "
        f"(seed {result.scenario.seed})")


def targets(ctx: ByzantineContext, send: Send) -> list[int]:
    return [send.to] if send.to is not None else list(range(ctx.nodes))


# ------------------------------------------------------------------ byzantine behaviours
def equivocating_leader(ctx: ByzantineContext, send: Send) -> list[tuple[object, ...]]:
    """Proposes one block to half the replicas and another (same round) to the rest."""
    message = send.message
    if not isinstance(message, Proposal) or send.to is not None:
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
    """Votes for random blocks, forges signatures, names other voters and forges the
    timeouts inside its NEW-VIEWs; everything else goes out as the engine wanted."""
    message = send.message
    out: list[tuple[object, ...]] = []
    for dst in targets(ctx, send):
        choice = ctx.rng.randrange(4)
        if isinstance(message, Vote) and choice == 0:
            out.append((dst, dataclasses.replace(message, block_hash=ctx.rng.randbytes(32))))
        elif isinstance(message, Vote) and choice == 1:
            out.append((dst, message, b"\x00" * 32))
        elif isinstance(message, Vote) and choice == 2:
            out.append((dst, dataclasses.replace(message, voter=(ctx.node_id + 1) % ctx.nodes)))
        elif isinstance(message, NewView) and message.timeout is not None and choice < 2:
            forged = SignedMessage(ctx.node_id, message.timeout.message, b"\x00" * 32)
            out.append((dst, dataclasses.replace(message, timeout=forged)))
        else:
            out.append((dst, message))
    return out


def silent(ctx: ByzantineContext, send: Send) -> list[tuple[object, ...]]:
    """Withholds votes, timeouts and proposals: a byzantine replica that helps nobody."""
    if isinstance(send.message, (Vote, Timeout, NewView, Proposal)):
        return []
    return [(dst, send.message) for dst in targets(ctx, send)]


# ------------------------------------------------------------------ the matrix
@pytest.mark.parametrize("nodes", SIZES)
def test_happy_path_commits_everything_and_stays_consistent(nodes: int) -> None:
    result = run(scenario(nodes, seed=1, duration_ms=6_000, liveness_window_ms=3_000))
    assert_ok(result, fraction=1.0)
    assert result.committed_blocks >= 30
    assert len(set(result.heights.values())) == 1, result.heights


@pytest.mark.parametrize("nodes", SIZES)
def test_crashed_leaders(nodes: int) -> None:
    """f replicas crash for good, among them the leader of the round then under way."""
    crashed = tuple(Crash(node=1 + i, at_ms=1_500 + 300 * i) for i in range(faults_of(nodes)))
    result = run(scenario(nodes, seed=2, faults=crashed))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
def test_partition_that_heals(nodes: int) -> None:
    """No side holds 2f + 1 for 2.5 s, and a one-way link cut; then progress resumes."""
    half = nodes // 2
    groups = (tuple(range(half)), tuple(range(half, nodes)))
    result = run(scenario(nodes, seed=6, faults=(
        Partition(groups=groups, at_ms=1_000, heal_at_ms=3_500),
        LinkCut(src=1, dst=2, at_ms=0, heal_at_ms=4_000))))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
def test_lossy_network(nodes: int) -> None:
    """5 % loss, duplicates and reordering all run long: timeouts and retransmissions."""
    result = run(scenario(nodes, seed=10, network=LOSSY))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
def test_equivocating_leader(nodes: int) -> None:
    result = run(scenario(nodes, seed=3, byzantine=(
        ByzantineNode(node=1, behaviour=equivocating_leader),)))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
def test_f_byzantine_voters(nodes: int) -> None:
    byzantine = tuple(ByzantineNode(node=nodes - 1 - i, behaviour=conflicting_voter)
                      for i in range(faults_of(nodes)))
    result = run(scenario(nodes, seed=4, byzantine=byzantine))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
def test_equivocating_leader_plus_silent_replicas(nodes: int) -> None:
    byzantine = (ByzantineNode(node=1, behaviour=equivocating_leader),) + tuple(
        ByzantineNode(node=nodes - 1 - i, behaviour=silent) for i in range(faults_of(nodes) - 1))
    result = run(scenario(nodes, seed=5, byzantine=byzantine))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
def test_twins(nodes: int) -> None:
    """Node 0 runs twice with one key (the simulator's built-in twins, Bano et al. 2020):
    the even half of its peers reach one copy, the odd half the other, so the copies sign
    conflicting proposals, votes and timeouts in the same rounds."""
    sc = scenario(nodes, seed=11, byzantine=(ByzantineNode(node=0, behaviour="twins"),))
    result = run(sc)
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
@pytest.mark.parametrize("seed", (7, 8))
def test_crash_and_restart_at_random_points(nodes: int, seed: int) -> None:
    """Replicas crash between steps, after persisting, or half-way through sending, and
    restart from their durable safety data without ever signing twice in a round."""
    rng = random.Random(seed)
    points = ("between_steps", "after_persist", "mid_send")
    crashes = []
    for i in range(faults_of(nodes) + 1):  # more than f over time, never f at once
        node = rng.randrange(nodes)
        at_ms = 800 + i * 2_000 + rng.randrange(500)
        crashes.append(Crash(node=node, at_ms=at_ms, restart_at_ms=at_ms + 900,
                             point=points[rng.randrange(3)]))
    result = run(scenario(nodes, seed=seed, faults=tuple(crashes),
                                   network=NetworkConfig(delay_min_ms=1, delay_mean_ms=4,
                                                         drop_probability=0.01)))
    assert_ok(result)


def messages_per_block(nodes: int) -> float:
    result = run_scenario(Scenario(algorithm="hotstuff", nodes=nodes, seed=1,
                                   duration_ms=4_000))
    assert result.ok, result.failure_message()
    return result.messages_sent / max(result.committed_blocks, 1)


def test_messages_per_block_grow_linearly_with_n() -> None:
    """Linear happy path: about 3n messages a block (proposal, votes to one leader,
    batches forwarded to it), where PBFT needs about 2n^2."""
    per_node = {n: messages_per_block(n) / n for n in (4, 7, 16)}
    assert all(ratio < 4 for ratio in per_node.values()), per_node
    assert per_node[16] < 1.5 * per_node[4], per_node


def test_same_seed_same_trace() -> None:
    first = run(scenario(4, seed=9, duration_ms=3_000))
    second = run(scenario(4, seed=9, duration_ms=3_000))
    assert first.trace_digest == second.trace_digest
