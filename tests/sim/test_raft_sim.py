"""Seeded whole-cluster Raft runs (tier b): n = 3, 5, 7 with minority crashes, leader
crashes, partitions (including a rejoining node, the case pre-vote fixes), loss,
duplication and restarts at random points inside a step. Besides the harness's checkers
(agreement = state machine safety, chain integrity, no double commit, ...), each run
checks Raft's own properties white-box: election safety, log matching and leader
completeness (Ongaro & Ousterhout 2014, Figure 3)."""
from __future__ import annotations

import random

import pytest

from consensus.api import Note
from simulations.runner import run_scenario
from simulations.scenario import Crash, LinkCut, NetworkConfig, Partition, Scenario, Workload

ENGINE = {"election_timeout_ticks": 30, "checkpoint_interval_blocks": 8}
LOSSY = NetworkConfig(delay_min_ms=1, delay_mean_ms=4, drop_probability=0.05,
                      duplicate_probability=0.03, reorder_probability=0.05)


def leaders(result) -> list[tuple[int, int, int]]:
    """(time_ms, node, term) of every `leader` note."""
    return [(t, node, n.view) for t, node, n in result.notes
            if isinstance(n, Note) and n.kind == "leader"]


def check_raft_properties(result) -> None:
    assert result.ok, result.failure_message()
    terms = [term for _, _, term in leaders(result)]
    assert len(terms) == len(set(terms)), f"two leaders in one term: {leaders(result)}"
    engines = result.engines
    # Log Matching: same index and term => same block (and so the same prefix, by hash).
    seen: dict[tuple[int, int], bytes] = {}
    for eng in engines.values():
        for entry in eng.log.entries:
            key = (entry.index, entry.term)
            assert seen.setdefault(key, entry.block.block_hash) == entry.block.block_hash
    # Leader Completeness: the newest leader's log holds every block anyone committed.
    newest = max(engines.values(), key=lambda e: (e.role == "leader", e.term))
    committed = max(e.emitted_index for e in engines.values())
    assert newest.log.last_index >= committed or newest.role != "leader"
    for eng in engines.values():
        for index in range(newest.log.first_index, eng.emitted_index + 1):
            mine = eng.log.hash_at(index)
            if mine is not None:
                assert newest.log.hash_at(index) == mine


def scenario(nodes: int, seed: int, faults=(), duration_ms: int = 12_000, **kw) -> Scenario:
    return Scenario(algorithm="raft", nodes=nodes, seed=seed, duration_ms=duration_ms,
                    network=kw.pop("network", LOSSY), faults=tuple(faults),
                    workload=Workload(tx_per_s=200), engine=kw.pop("engine", ENGINE), **kw)


def first_leader(nodes: int, seed: int) -> tuple[int, int]:
    result = run_scenario(scenario(nodes, seed, duration_ms=1_500))
    time_ms, node, _ = leaders(result)[0]
    return node, time_ms


def random_crashes(nodes: int, seed: int) -> tuple[Crash, ...]:
    rng = random.Random(seed)
    victims = rng.sample(range(nodes), (nodes - 1) // 2)
    points = ("between_steps", "after_persist", "mid_send")
    return tuple(Crash(node=v, at_ms=rng.randrange(1_000, 5_000),
                       restart_at_ms=rng.randrange(5_500, 7_000), point=rng.choice(points))
                 for v in victims)


@pytest.mark.parametrize("nodes,seed", [(3, 1), (5, 2), (7, 3), (7, 4)])
def test_minority_crashes_and_restarts_at_random_points(nodes, seed):
    result = run_scenario(scenario(nodes, seed, random_crashes(nodes, seed)))
    check_raft_properties(result)
    assert min(result.heights.values()) >= result.committed_blocks - 2 and result.committed_blocks > 20


@pytest.mark.parametrize("nodes,seed", [(3, 5), (5, 6), (7, 7)])
def test_leader_crash_elects_a_new_leader(nodes, seed):
    leader, _ = first_leader(nodes, seed)
    result = run_scenario(scenario(nodes, seed, (Crash(leader, 3_000, 6_000, "mid_send"),)))
    check_raft_properties(result)
    after = [(t, node) for t, node, _ in leaders(result) if t >= 3_000]
    assert after and after[0][1] != leader and after[0][0] - 3_000 < 1_500


@pytest.mark.parametrize("nodes,seed", [(5, 8), (7, 9)])
def test_partition_majority_keeps_committing_and_minority_rejoins(nodes, seed):
    minority = tuple(range((nodes - 1) // 2))
    majority = tuple(range(len(minority), nodes))
    faults = (Partition((minority, majority), 2_000, 6_000), LinkCut(majority[0], 0, 0, 1_500))
    check_raft_properties(run_scenario(scenario(nodes, seed, faults)))


@pytest.mark.parametrize("nodes,seed", [(3, 10), (7, 11)])
def test_rejoining_isolated_node_does_not_disrupt_the_leader(nodes, seed):
    """Pre-vote (thesis §9.6): an isolated follower neither raises its term nor, when it
    comes back, deposes the leader."""
    leader, _ = first_leader(nodes, seed)
    loner = (leader + 1) % nodes
    rest = tuple(n for n in range(nodes) if n != loner)
    quiet = NetworkConfig(delay_min_ms=1, delay_mean_ms=4)
    result = run_scenario(scenario(nodes, seed, (Partition(((loner,), rest), 2_000, 5_000),),
                                   network=quiet))
    check_raft_properties(result)
    assert [node for _, node, _ in leaders(result)] == [leader]
    assert result.engines[loner].term == result.engines[leader].term


def test_same_seed_same_trace():
    a = run_scenario(scenario(5, 12, random_crashes(5, 12), duration_ms=6_000))
    b = run_scenario(scenario(5, 12, random_crashes(5, 12), duration_ms=6_000))
    assert a.trace_digest == b.trace_digest and a.ok
