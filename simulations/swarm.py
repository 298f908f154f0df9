"""Swarm testing: many seeds, each with a random mix of fault kinds.

Groce et al. ("Swarm Testing", ISSTA 2012): a run that enables a random *subset* of
fault kinds explores more than runs that enable all of them at once, because faults mask
each other. Each run draws, from its own seed, which kinds are on and how hard they hit;
faulty nodes never exceed the engine's f, so safety must hold in every run and liveness
wherever the run says it is expected. A run is plain data (`Scenario`), written as one
JSON line; a failing one carries the command that reproduces it exactly.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from typing import Any

from consensus.api import is_byzantine_tolerant, max_faulty
from simulations.byzantine import BEHAVIOURS
from simulations.scenario import (
    ByzantineNode,
    ClockFault,
    Crash,
    LinkCut,
    NetworkConfig,
    Partition,
    Scenario,
    Workload,
    scenario_from_dict,
    scenario_to_dict,
)

FAULT_KINDS = ("loss", "duplicate", "reorder", "delay", "partition", "one_way", "crash",
               "lose_unsynced", "torn_write", "clock", "byzantine")
SWARM_DURATION_MS = 10_000
FAULTS_END_MS = 5_000  # temporary faults are over by then: 5 s of GST for liveness


def run_seed(root_seed: int, index: int) -> int:
    digest = hashlib.sha256(f"swarm/{root_seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def _window(rng: random.Random) -> tuple[int, int]:
    start = rng.randrange(500, 3_000)
    return start, min(start + rng.randrange(300, 2_000), FAULTS_END_MS)


def _split(rng: random.Random, nodes: int) -> tuple[tuple[int, ...], ...]:
    order = list(range(nodes))
    rng.shuffle(order)
    cut = rng.randrange(1, nodes)
    return tuple(sorted(order[:cut])), tuple(sorted(order[cut:]))


def draw_scenario(algorithm: str, nodes: int, seed: int) -> Scenario:
    """One swarm run: which fault kinds are on, and their parameters, from `seed`."""
    rng = random.Random(seed)
    on = {kind for kind in FAULT_KINDS if rng.random() < 0.5}
    f = max_faulty(algorithm, nodes)
    network = NetworkConfig(
        delay_min_ms=rng.choice((0.5, 1.0, 5.0)) if "delay" in on else 1.0,
        delay_mean_ms=rng.choice((2.0, 10.0, 30.0)) if "delay" in on else 4.0,
        drop_probability=rng.choice((0.01, 0.02, 0.05, 0.1)) if "loss" in on else 0.0,
        duplicate_probability=rng.choice((0.01, 0.05)) if "duplicate" in on else 0.0,
        reorder_probability=rng.choice((0.05, 0.2)) if "reorder" in on else 0.0)
    faults: list[Crash | Partition | LinkCut] = []
    if "partition" in on:
        start, end = _window(rng)
        faults.append(Partition(_split(rng, nodes), start, end))
    if "one_way" in on:
        start, end = _window(rng)
        src, dst = rng.sample(range(nodes), 2)
        faults.append(LinkCut(src, dst, start, end))
    budget = f
    byzantine: list[ByzantineNode] = []
    if "byzantine" in on and is_byzantine_tolerant(algorithm) and budget:
        count = rng.randint(1, budget)
        budget -= count
        for node in rng.sample(range(nodes), count):
            byzantine.append(ByzantineNode(node, rng.choice(sorted(BEHAVIOURS))))
    if "crash" in on:
        faults += _crashes(rng, nodes, {b.node for b in byzantine}, budget,
                           "mid_write" if "lose_unsynced" in on else None)
    clocks = ()
    if "clock" in on:
        skew, drift = rng.choice((50, 500)), rng.choice((100, 5_000))
        clocks = tuple(ClockFault(n, rng.randint(-skew, skew), rng.randint(-drift, drift))
                       for n in range(nodes))
    return Scenario(algorithm=algorithm, nodes=nodes, seed=seed,
                    duration_ms=SWARM_DURATION_MS, network=network, faults=tuple(faults),
                    byzantine=tuple(sorted(byzantine, key=lambda b: b.node)),
                    workload=Workload(tx_per_s=rng.choice((50, 200, 400)),
                                      reads_per_s=rng.choice((0, 50, 100))), clocks=clocks,
                    torn_write_probability=0.002 if "torn_write" in on else 0.0,
                    torn_write_until_ms=FAULTS_END_MS,
                    liveness_window_ms=SWARM_DURATION_MS - FAULTS_END_MS)


def _crashes(rng: random.Random, nodes: int, byzantine: set[int], budget: int,
             point: str | None) -> list[Crash]:
    """Up to `budget` permanent crashes, plus restarting crashes (never more than the
    budget down at once, so the run stays within f)."""
    points = ("between_steps", "after_persist", "mid_send")
    candidates = [n for n in range(nodes) if n not in byzantine]
    rng.shuffle(candidates)
    out: list[Crash] = []
    permanent = rng.randint(0, budget) if budget else 0
    for node in candidates[:permanent]:
        out.append(Crash(node, rng.randrange(500, FAULTS_END_MS), None,
                         point or rng.choice(points)))
    spare = budget - permanent
    if spare > 0:
        for node in candidates[permanent:permanent + spare]:
            at_ms = rng.randrange(500, FAULTS_END_MS - 1_000)
            out.append(Crash(node, at_ms, at_ms + rng.randrange(300, 1_000),
                             point or rng.choice(points)))
    return out


# ------------------------------------------------------------------ running
def run_one(scenario_data: dict[str, Any]) -> dict[str, Any]:
    """Run one scenario given as plain data (picklable: process pools, Dask workers)."""
    from simulations.runner import run_scenario

    scenario = scenario_from_dict(scenario_data)
    result = run_scenario(scenario)
    summary = result.summary()
    failed = [name for name, r in summary["invariants"].items() if not r["ok"]]
    return {"seed": scenario.seed, "algorithm": scenario.algorithm, "ok": result.ok,
            "failed": failed, "liveness": summary["liveness"],
            "offered_txs": summary["offered_txs"], "committed_txs": summary["committed_txs"],
            "wall_seconds": summary["wall_seconds"],
            "sim_seconds_per_wall_second": summary["sim_seconds_per_wall_second"],
            "invariants": summary["invariants"], "scenario": scenario_data}


def reproduce_command(record: dict[str, Any], path: str) -> str:
    return f"qenex simulate --scenario {path} -a {record['algorithm']} -s {record['seed']}"


def map_local(specs: list[dict[str, Any]], jobs: int) -> Iterable[dict[str, Any]]:
    if jobs <= 1:
        yield from (run_one(spec) for spec in specs)
        return
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no inherited threads or handles
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context) as pool:
        yield from pool.map(run_one, specs, chunksize=4)


def map_dask(specs: list[dict[str, Any]], scheduler: str) -> Iterable[dict[str, Any]]:
    """Runs on an existing Dask `distributed` cluster (thousands of seeds on many hosts)."""
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = client.map(run_one, specs, pure=False)
        for future in as_completed(futures):
            yield future.result()


def swarm_specs(algorithm: str, nodes: int, root_seed: int, runs: int) -> list[dict[str, Any]]:
    return [scenario_to_dict(draw_scenario(algorithm, nodes, run_seed(root_seed, i)))
            for i in range(runs)]


def summarise(records: list[dict[str, Any]], failures: list[dict[str, Any]]) -> dict[str, Any]:
    expected = [r for r in records if r["liveness"]["expected"] and r["liveness"]["judged"]]
    fractions = [r["liveness"]["committed_fraction_after_gst"] for r in expected
                 if r["liveness"]["committed_fraction_after_gst"] is not None]
    return {"runs": len(records), "failures": failures,
            "liveness_judged_runs": len(expected),
            "committed_fraction_after_gst_min": min(fractions) if fractions else None,
            "wall_seconds_total": round(sum(r["wall_seconds"] for r in records), 1)}

