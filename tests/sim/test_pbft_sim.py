"""Tier (b): seeded whole-cluster PBFT runs in the deterministic simulator.

Issue 5 item 6: n = 4, 7, 10 with (a) f crashed replicas, (b) an equivocating primary,
(c) f byzantine replicas sending conflicting or invalid votes, (d) partitions that heal,
(e) crash and restart of replicas at random points. Agreement, chain integrity and
no-equivocation (every invariant checker) must hold in every run; liveness is judged by
the harness after the last fault heals.
"""
from __future__ import annotations

import dataclasses
import random

import pytest

from consensus.api import Send
from consensus.pbft.messages import Commit, Prepare, PrePrepare, ViewChange
from consensus.types import make_block
from simulations.runner import run_scenario
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


def faults_of(nodes: int) -> int:
    return (nodes - 1) // 3


def scenario(nodes: int, seed: int, **kwargs: object) -> Scenario:
    base = Scenario(algorithm="pbft", nodes=nodes, seed=seed, duration_ms=12_000,
                    network=NetworkConfig(delay_min_ms=1, delay_mean_ms=4),
                    workload=Workload(tx_per_s=200), liveness_window_ms=5_000,
                    engine={"view_timeout_ticks": 50})
    return dataclasses.replace(base, **kwargs)


def assert_ok(result) -> None:  # type: ignore[no-untyped-def]
    assert result.ok, result.failure_message()


# ------------------------------------------------------------------ byzantine behaviours
def equivocating_primary(ctx: ByzantineContext, send: Send) -> list[tuple[int, object]]:
    """Sends one block to half the replicas and a different block (same sequence) to the
    other half (Castro & Liskov §4.2: backups must not both prepare)."""
    message = send.message
    targets = [send.to] if send.to is not None else list(range(ctx.nodes))
    if not isinstance(message, PrePrepare) or send.to is not None:
        return [(dst, message) for dst in targets]
    header = message.block.header
    other = make_block(header.chain_id, header.height, header.parent_hash, (b"evil",),
                       header.proposer, header.timestamp_ms + 1, header.state_height,
                       header.state_root)
    twin = PrePrepare(message.view, message.sequence, other.block_hash, other)
    half = ctx.nodes // 2
    return [(dst, message if dst < half or dst == ctx.node_id else twin) for dst in targets]


def conflicting_voter(ctx: ByzantineContext, send: Send) -> list[tuple[object, ...]]:
    """Votes for random digests to some replicas, forges bad signatures to others and
    names other replicas in its votes; everything else goes out as the engine wanted."""
    message = send.message
    targets = [send.to] if send.to is not None else list(range(ctx.nodes))
    if not isinstance(message, (Prepare, Commit)):
        return [(dst, message) for dst in targets]
    out: list[tuple[object, ...]] = []
    for dst in targets:
        choice = ctx.rng.randrange(4)
        if choice == 0:
            out.append((dst, dataclasses.replace(message, digest=ctx.rng.randbytes(32))))
        elif choice == 1:
            out.append((dst, message, b"\x00" * 32))  # invalid signature
        elif choice == 2:
            out.append((dst, dataclasses.replace(message, replica=(ctx.node_id + 1) % ctx.nodes)))
        else:
            out.append((dst, message))
    return out


def silent_view_changer(ctx: ByzantineContext, send: Send) -> list[tuple[int, object]]:
    """Withholds its view changes and votes: a byzantine replica that helps nobody."""
    if isinstance(send.message, (ViewChange, Prepare, Commit)):
        return []
    targets = [send.to] if send.to is not None else list(range(ctx.nodes))
    return [(dst, send.message) for dst in targets]


# ------------------------------------------------------------------ the matrix
@pytest.mark.parametrize("nodes", SIZES)
def test_happy_path_commits_and_stays_consistent(nodes: int) -> None:
    result = run_scenario(scenario(nodes, seed=1, duration_ms=6_000, liveness_window_ms=3_000))
    assert_ok(result)
    assert result.committed_blocks >= 30
    assert min(result.heights.values()) >= result.committed_blocks - 2


@pytest.mark.parametrize("nodes", SIZES)
def test_f_crashed_replicas_including_the_primary(nodes: int) -> None:
    """(a) §4.4: the primary and f - 1 others crash for good; the rest change view."""
    crashed = tuple(Crash(node=i, at_ms=1_500 + 300 * i) for i in range(faults_of(nodes)))
    result = run_scenario(scenario(nodes, seed=2, faults=crashed))
    assert_ok(result)
    alive = [h for node, h in result.heights.items() if node >= faults_of(nodes)]
    assert min(alive) > 40


@pytest.mark.parametrize("nodes", SIZES)
def test_equivocating_primary(nodes: int) -> None:
    """(b) The view-0 primary sends different pre-prepares to different replicas."""
    result = run_scenario(scenario(nodes, seed=3, byzantine=(
        ByzantineNode(node=0, behaviour=equivocating_primary),)))
    assert_ok(result)
    assert result.committed_blocks > 20


@pytest.mark.parametrize("nodes", SIZES)
def test_f_byzantine_replicas_with_conflicting_or_invalid_votes(nodes: int) -> None:
    """(c) f replicas (not the primary) send conflicting, forged and mislabelled votes."""
    byzantine = tuple(ByzantineNode(node=nodes - 1 - i, behaviour=conflicting_voter)
                      for i in range(faults_of(nodes)))
    result = run_scenario(scenario(nodes, seed=4, byzantine=byzantine))
    assert_ok(result)
    assert result.committed_blocks > 40


@pytest.mark.parametrize("nodes", SIZES)
def test_byzantine_primary_plus_silent_replicas(nodes: int) -> None:
    """(b)+(c) An equivocating primary and f - 1 replicas that withhold votes and view
    changes: the honest 2f + 1 must still agree and move on."""
    byzantine = (ByzantineNode(node=0, behaviour=equivocating_primary),) + tuple(
        ByzantineNode(node=nodes - 1 - i, behaviour=silent_view_changer)
        for i in range(faults_of(nodes) - 1))
    result = run_scenario(scenario(nodes, seed=5, byzantine=byzantine))
    assert_ok(result)
    assert result.committed_blocks > 10


# Known gap, kept visible: at n = 4 one replica changes view alone after the heal and its
# clients' transactions wait with it (74 % committed after GST). Naming the primary the
# others follow fixed it here but broke real 7-process clusters, so it was reverted.
@pytest.mark.parametrize("nodes", (4, 7, 10))
def test_partition_that_heals(nodes: int) -> None:
    """(d) No side has 2f + 1 for 2 s; after healing the cluster must make progress."""
    half = nodes // 2
    groups = (tuple(range(half)), tuple(range(half, nodes)))
    result = run_scenario(scenario(nodes, seed=6, faults=(
        Partition(groups=groups, at_ms=1_000, heal_at_ms=3_500),
        LinkCut(src=1, dst=2, at_ms=0, heal_at_ms=4_000))))
    assert_ok(result)


@pytest.mark.parametrize("nodes", SIZES)
@pytest.mark.parametrize("seed", (7, 8))
def test_crash_and_restart_at_random_points(nodes: int, seed: int) -> None:
    """(e) Replicas crash between steps, after persisting, or half-way through sending,
    and restart from their durable records (§4.3; TOCS §5.3)."""
    rng = random.Random(seed)
    points = ("between_steps", "after_persist", "mid_send")
    crashes = []
    for i in range(faults_of(nodes) + 1):  # more than f over time, never f at once
        node = rng.randrange(nodes)
        at_ms = 800 + i * 2_000 + rng.randrange(500)
        crashes.append(Crash(node=node, at_ms=at_ms, restart_at_ms=at_ms + 900,
                             point=points[rng.randrange(3)]))
    result = run_scenario(scenario(nodes, seed=seed, faults=tuple(crashes),
                                   network=NetworkConfig(delay_min_ms=1, delay_mean_ms=4,
                                                         drop_probability=0.01)))
    assert_ok(result)


def test_same_seed_same_trace() -> None:
    first = run_scenario(scenario(4, seed=9, duration_ms=3_000))
    second = run_scenario(scenario(4, seed=9, duration_ms=3_000))
    assert first.trace_digest == second.trace_digest
