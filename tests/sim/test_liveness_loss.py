"""Tier (b): liveness under message loss with f faulty nodes (issue 11).

7 nodes; PBFT with f = 2 byzantine replicas that send nothing at all (silent), or with
the primaries of views 0 and 1 crashed for good; Raft with f = 3 nodes crashed for good
from the start, so every remaining node is needed for a
quorum and any lost message must be recovered by a rule the engine names (ARCHITECTURE
rule 13). The network drops 2 %, 5 % or 10 % of the packets; there is no other fault, so
GST is the start of the run and every transaction submitted counts as offered.

Measures (see `measure`):
* committed fraction: successful transactions committed / transactions offered, where
  offered means submitted to a node that passes it on (a silent byzantine node drops its
  clients' transactions - a real client would retry elsewhere);
* recovery time: the longest stretch without a newly committed block while transactions
  were offered, i.e. how long the worst lost message stalled the cluster.

The default suite runs a few seeds per loss rate; the 50-seed sweep is `slow`
(`pytest -m sweep tests/sim/test_liveness_loss.py`; deselected by default).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from consensus.api import Send
from simulations.runner import Simulation, SimulationResult
from simulations.scenario import (
    ByzantineContext,
    ByzantineNode,
    Crash,
    NetworkConfig,
    Scenario,
    Workload,
)

NODES = 7
DURATION_MS = 20_000
LOSS_RATES = (0.02, 0.05, 0.10)
COMMITTED_FRACTION_MIN = 0.90
QUICK_SEEDS = tuple(range(1, 9))
SWEEP_SEEDS = tuple(range(1, 51))


def silent(ctx: ByzantineContext, send: Send) -> list[tuple[int, object]]:
    """A byzantine replica that never sends a consensus message."""
    return []


def scenario(case: str, drop: float, seed: int) -> Scenario:
    """`pbft`: f silent backups; `pbft_crashed_primaries`: the primaries of views 0 and 1
    crashed for good, so the cluster starts with two view changes; `raft`: f crashed."""
    network = NetworkConfig(delay_min_ms=1, delay_mean_ms=4, drop_probability=drop)
    if case.startswith("pbft"):
        faulty = (NODES - 1) // 3
        byzantine = tuple(ByzantineNode(NODES - 1 - i, silent) for i in range(faulty))
        crashed = tuple(Crash(i, at_ms=0) for i in range(faulty))
        return Scenario(algorithm="pbft", nodes=NODES, seed=seed, duration_ms=DURATION_MS,
                        network=network, workload=Workload(tx_per_s=200),
                        byzantine=byzantine if case == "pbft" else (),
                        faults=crashed if case == "pbft_crashed_primaries" else (),
                        engine={"view_timeout_ticks": 50}, liveness_window_ms=5_000)
    crashed = tuple(Crash(NODES - 1 - i, at_ms=0) for i in range((NODES - 1) // 2))
    return Scenario(algorithm="raft", nodes=NODES, seed=seed, duration_ms=DURATION_MS,
                    network=network, faults=crashed, workload=Workload(tx_per_s=200),
                    engine={"election_timeout_ticks": 30}, liveness_window_ms=5_000)


@dataclass(frozen=True, slots=True)
class Liveness:
    submitted_txs: int  # every transaction the workload submitted to a running node
    swallowed_txs: int  # submitted to a node that never passed it on (0: clients avoid
    # byzantine nodes in the simulator)
    committed_txs: int
    recovery_ms: int  # longest gap between commits while load was offered

    @property
    def offered_txs(self) -> int:
        """What honest nodes were offered: a byzantine node may drop its clients' txs
        (a client would retry elsewhere), which no consensus rule can recover."""
        return self.submitted_txs - self.swallowed_txs

    @property
    def committed_fraction(self) -> float:
        return self.committed_txs / max(1, self.offered_txs)


def measure(result: SimulationResult, swallowed_txs: int = 0) -> Liveness:
    """Committed fraction of the offered load and the longest commit stall.

    Load is offered from the workload's start to its stop; a stall is the time from one
    committed block (or the start) to the next, counted only inside that window - the
    tail after the last offer is allowed to drain."""
    load = result.scenario.workload
    stop_ms = load.stop_ms if load.stop_ms is not None else result.scenario.duration_ms * 4 // 5
    times = sorted(t for t in result.commit_times_ms.values() if t <= stop_ms)
    marks = [load.start_ms, *times, stop_ms]
    gap = max(b - a for a, b in itertools.pairwise(marks))
    return Liveness(result.counters.get("submitted_txs", 0), swallowed_txs,
                    result.committed_txs, gap)


def run(case: str, drop: float, seed: int) -> Liveness:
    # The simulator's clients send to honest nodes only (a client of a byzantine node
    # retries elsewhere), so nothing is swallowed and `committed_txs` counts distinct
    # offered transactions committed; the run's own liveness check must agree.
    result = Simulation(scenario(case, drop, seed)).run()
    assert result.ok, result.failure_message()
    return measure(result)


def sweep(case: str, drop: float, seeds: tuple[int, ...]) -> dict[str, float]:
    """Summary over seeds: mean and worst committed fraction, median and worst stall."""
    runs = [run(case, drop, seed) for seed in seeds]
    fractions = sorted(r.committed_fraction for r in runs)
    stalls = sorted(r.recovery_ms for r in runs)
    return {"seeds": len(runs), "fraction_mean": sum(fractions) / len(runs),
            "fraction_min": fractions[0], "recovery_ms_median": stalls[len(stalls) // 2],
            "recovery_ms_max": stalls[-1]}


def check(case: str, drop: float, seeds: tuple[int, ...]) -> None:
    for seed in seeds:
        live = run(case, drop, seed)
        assert live.committed_fraction >= COMMITTED_FRACTION_MIN, (
            f"{case} drop={drop} seed={seed}: committed {live.committed_txs} of "
            f"{live.offered_txs} offered ({live.committed_fraction:.1%}), longest stall "
            f"{live.recovery_ms} ms")


@pytest.mark.parametrize("drop", LOSS_RATES)
@pytest.mark.parametrize("case", ("pbft", "raft"))
def test_f_faulty_and_loss_commit_the_offered_load(case: str, drop: float) -> None:
    check(case, drop, QUICK_SEEDS)


@pytest.mark.parametrize("drop", LOSS_RATES)
def test_crashed_primaries_and_loss_commit_the_offered_load(drop: float) -> None:
    check("pbft_crashed_primaries", drop, QUICK_SEEDS[:2])


@pytest.mark.sweep
@pytest.mark.parametrize("drop", LOSS_RATES)
@pytest.mark.parametrize("case", ("pbft", "pbft_crashed_primaries", "raft"))
def test_sweep_50_seeds(case: str, drop: float) -> None:
    check(case, drop, SWEEP_SEEDS)


if __name__ == "__main__":
    import json
    import sys
    seeds = tuple(range(1, int(sys.argv[3]) + 1)) if len(sys.argv) > 3 else QUICK_SEEDS
    print(json.dumps({"case": sys.argv[1], "drop": float(sys.argv[2]),
                      **sweep(sys.argv[1], float(sys.argv[2]), seeds)}))
