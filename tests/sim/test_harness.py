"""The deterministic harness itself: network model, event order, reproducibility.

Whole-cluster runs use every registered engine, so these tests grow with the project.
"""
from __future__ import annotations

import random

import pytest

from consensus.api import engine_names
from simulations.network import PacketNetwork
from simulations.runner import run_scenario
from simulations.scenario import (
    Crash,
    LinkCut,
    NetworkConfig,
    Partition,
    Scenario,
    Workload,
    scenario_from_dict,
)
from simulations.world import World


def test_events_at_one_instant_run_in_scheduling_order():
    world, seen = World(), []
    for label in "abc":
        world.at(5, seen.append, label)
    world.at(1, seen.append, "first")
    world.run_until(10)
    assert seen == ["first", "a", "b", "c"] and world.now_us == 10


def test_network_delay_loss_and_duplication_follow_the_seed():
    config = NetworkConfig(delay_min_ms=2, delay_mean_ms=3, drop_probability=0.2,
                           duplicate_probability=0.1)
    runs = []
    for _ in range(2):
        net = PacketNetwork(config, random.Random(7))
        runs.append([net.deliveries_us(0, 1) for _ in range(500)])
    assert runs[0] == runs[1]
    flat = [d for copies in runs[0] for d in copies]
    assert min(flat) >= 2_000
    dropped = sum(1 for copies in runs[0] if not copies)
    assert 60 <= dropped <= 140  # 20 % of 500, loosely
    assert any(len(copies) == 2 for copies in runs[0])


def test_partitions_are_symmetric_and_cuts_are_one_way():
    net = PacketNetwork(NetworkConfig(), random.Random(1))
    net.partition(((0, 1), (2, 3)))
    assert net.reachable(0, 1) and not net.reachable(0, 2) and not net.reachable(3, 1)
    net.heal_partition()
    net.cut(0, 1)
    assert not net.reachable(0, 1) and net.reachable(1, 0)
    net.heal_cut(0, 1)
    assert net.reachable(0, 1)


def test_scenario_yaml_keys_are_validated():
    sc = scenario_from_dict({"algorithm": "pbft", "faults": [
        {"kind": "crash", "node": 1, "at_ms": 10},
        {"kind": "partition", "groups": [[0, 1], [2, 3]], "at_ms": 5, "heal_at_ms": 9}]})
    assert isinstance(sc.faults[0], Crash) and sc.faults[1].groups == ((0, 1), (2, 3))
    assert sc.permanently_down() == {1}
    with pytest.raises(ValueError, match="unknown keys"):
        scenario_from_dict({"algorithm": "pbft", "nodez": 3})
    with pytest.raises(ValueError, match="unknown kind"):
        scenario_from_dict({"algorithm": "pbft", "faults": [{"kind": "meteor"}]})


def test_at_least_one_real_engine_is_registered():
    assert engine_names(), "no consensus engine registered"


FAULTY = (Crash(node=1, at_ms=1_000, restart_at_ms=3_000),
          Partition(groups=((0, 1, 2, 3), (4, 5, 6)), at_ms=4_000, heal_at_ms=6_000),
          LinkCut(src=2, dst=3, at_ms=500, heal_at_ms=2_500))


@pytest.mark.parametrize("algorithm", engine_names())
def test_same_seed_same_trace_and_different_seed_different_trace(algorithm):
    def run(seed: int):
        return run_scenario(Scenario(algorithm=algorithm, nodes=7, seed=seed, duration_ms=16_000,
                                     network=NetworkConfig(drop_probability=0.02),
                                     faults=FAULTY, workload=Workload(tx_per_s=100)))
    first, again, other = run(11), run(11), run(12)
    assert first.ok, first.failure_message()
    assert first.committed_blocks > 0
    assert first.trace_digest == again.trace_digest
    assert first.heights == again.heights and first.commit_times_ms == again.commit_times_ms
    assert other.trace_digest != first.trace_digest


@pytest.mark.parametrize("algorithm", engine_names())
def test_fault_free_cluster_commits_everything_offered(algorithm):
    result = run_scenario(Scenario(algorithm=algorithm, nodes=7, seed=3, duration_ms=6_000))
    assert result.ok, result.failure_message()
    assert len(set(result.heights.values())) == 1, result.heights
    offered = result.counters["submitted_txs"]
    assert result.committed_txs == offered, (result.committed_txs, offered)
