"""Linearizable reads under faults, every engine: seeded 7-node runs with a leader crash
and restart, message loss, and (byzantine engines) f silent replicas, with reads sent to
random honest nodes. The `linearizable_reads` invariant checks each served read against
the highest height committed anywhere before it began; the reads must also be served."""
from __future__ import annotations

import pytest

from consensus.api import engine_class, engine_names, max_faulty
from simulations.runner import LEADER, run_scenario
from simulations.scenario import ByzantineNode, Crash, NetworkConfig, Scenario, Workload

SEEDS = (1, 2)
NODES = 7


def faulty_run(algorithm: str, seed: int) -> Scenario:
    byzantine = ()
    if engine_class(algorithm).byzantine_tolerant:
        f = max_faulty(algorithm, NODES)
        # f - 1 silent, plus the crashed leader: f faulty at once.
        byzantine = tuple(ByzantineNode(n, "silent") for n in range(NODES - f + 1, NODES))
    return Scenario(algorithm=algorithm, nodes=NODES, seed=seed, duration_ms=10_000,
                    network=NetworkConfig(delay_min_ms=1, delay_mean_ms=5,
                                          drop_probability=0.02),
                    workload=Workload(tx_per_s=100, reads_per_s=50),
                    byzantine=byzantine,
                    faults=(Crash(node=LEADER, at_ms=3_000, restart_at_ms=5_000),))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("algorithm", engine_names())
def test_reads_stay_linearizable_through_crashes_loss_and_silent_replicas(algorithm, seed):
    result = run_scenario(faulty_run(algorithm, seed))
    assert result.ok, result.failure_message()
    started, served = result.counters["reads_started"], result.counters["reads_served"]
    assert served >= 0.8 * started, result.counters
