"""`qenex simulate compare`: every engine on the same scenario and seeds, with plots.

Writes DIR/summary.json, four PNG plots (matplotlib, headless Agg) and DIR/report.html
that embeds them:
  throughput.png   committed transactions per second over time, fault windows shaded;
  latency_cdf.png  submit-to-commit latency CDF per engine;
  scaling.png      messages and bytes per committed block against n (fault-free runs);
  recovery.png     time from a leader crash to the next commit.
"""
from __future__ import annotations

import dataclasses
import html
import itertools
import json
from pathlib import Path
from typing import Any

from simulations.runner import LEADER, SimulationResult, run_scenario
from simulations.scenario import Crash, LinkCut, Partition, Scenario, Workload

SCALING_SIZES = (4, 7, 16, 32, 64)
SCALING_DURATION_MS = 2_000
LEADER_CRASH_AT_MS = 2_000
BUCKET_MS = 1_000


def throughput_series(result: SimulationResult) -> list[float]:
    buckets = [0] * (result.scenario.duration_ms // BUCKET_MS + 1)
    for at_ms, count in result.block_series:
        buckets[min(at_ms // BUCKET_MS, len(buckets) - 1)] += count
    return [count * 1000 / BUCKET_MS for count in buckets]


def latencies_ms(result: SimulationResult) -> list[int]:
    ledger = result.ledger
    return sorted(ledger.committed_ms[t] - ledger.offered_ms[t] for t in ledger.committed_ms)


def fault_bands(scenario: Scenario) -> list[tuple[float, float, str]]:
    bands = []
    for fault in scenario.faults:
        if isinstance(fault, Crash):
            end = fault.restart_at_ms if fault.restart_at_ms is not None else scenario.duration_ms
            bands.append((fault.at_ms / 1000, end / 1000, "crash"))
        elif isinstance(fault, (Partition, LinkCut)):
            end = fault.heal_at_ms if fault.heal_at_ms is not None else scenario.duration_ms
            label = "partition" if isinstance(fault, Partition) else "one-way cut"
            bands.append((fault.at_ms / 1000, end / 1000, label))
    return bands


def scaling_run(algorithm: str, nodes: int) -> dict[str, Any]:
    result = run_scenario(Scenario(algorithm=algorithm, nodes=nodes, seed=1,
                                   duration_ms=SCALING_DURATION_MS,
                                   workload=Workload(tx_per_s=200), liveness_window_ms=0))
    summary = result.summary()
    return {"nodes": nodes, "messages_per_block": summary["consensus_messages_per_block"],
            "bytes_per_block": summary["consensus_bytes_per_block"],
            "all_messages_per_block": summary["messages_per_block"], "ok": result.ok}


def leader_crash_recovery_ms(algorithm: str, seed: int) -> int | None:
    """The longest stretch without a commit after the leader crashes: blocks already in
    the pipeline may still commit at once, so the first commit alone would flatter."""
    scenario = Scenario(algorithm=algorithm, nodes=7, seed=seed, duration_ms=8_000,
                        faults=(Crash(node=LEADER, at_ms=LEADER_CRASH_AT_MS),),
                        liveness_window_ms=4_000)
    result = run_scenario(scenario)
    stop_ms = scenario.workload_stop_ms()
    after = [at for at, _ in result.block_series if LEADER_CRASH_AT_MS < at <= stop_ms]
    if not after:
        return None
    marks = [LEADER_CRASH_AT_MS, *after]
    return max(b - a for a, b in itertools.pairwise(marks))


def compare(algorithms: list[str], scenario: Scenario, seeds: int, out: Path,
            sizes: tuple[int, ...] = SCALING_SIZES) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    engines: dict[str, Any] = {}
    for algorithm in algorithms:
        runs = [run_scenario(dataclasses.replace(scenario, algorithm=algorithm, seed=seed))
                for seed in range(1, seeds + 1)]
        engines[algorithm] = {
            "runs": [r.summary() for r in runs],
            "throughput_tx_per_s": _mean_series([throughput_series(r) for r in runs]),
            "latencies_ms": sorted(v for r in runs for v in latencies_ms(r)),
            "scaling": [scaling_run(algorithm, n) for n in sizes],
            "leader_crash_recovery_ms": [leader_crash_recovery_ms(algorithm, s)
                                         for s in range(1, seeds + 1)],
        }
    summary = {"scenario": scenario.algorithm and _describe(scenario), "seeds": seeds,
               "engines": {a: _engine_summary(e) for a, e in engines.items()}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    plots = write_plots(engines, scenario, out)
    (out / "report.html").write_text(_html(summary, plots))
    return summary


def _describe(scenario: Scenario) -> dict[str, Any]:
    from simulations.scenario import scenario_to_dict

    try:
        return scenario_to_dict(scenario)
    except ValueError:
        return {"nodes": scenario.nodes, "duration_ms": scenario.duration_ms}


def _mean_series(series: list[list[float]]) -> list[float]:
    length = max(len(s) for s in series)
    return [sum(s[i] for s in series if i < len(s)) / len(series) for i in range(length)]


def _percentile(values: list[int], fraction: float) -> int | None:
    if not values:
        return None
    return values[min(int(len(values) * fraction), len(values) - 1)]


def _engine_summary(engine: dict[str, Any]) -> dict[str, Any]:
    runs = engine["runs"]
    lat = engine["latencies_ms"]
    return {
        "ok_runs": sum(1 for r in runs if r["ok"]), "runs": len(runs),
        "committed_fraction_after_gst": [r["liveness"]["committed_fraction_after_gst"]
                                         for r in runs],
        "latency_ms_p50": _percentile(lat, 0.5), "latency_ms_p99": _percentile(lat, 0.99),
        "messages_per_block": [r["messages_per_block"] for r in runs],
        "scaling": engine["scaling"],
        "leader_crash_recovery_ms": engine["leader_crash_recovery_ms"],
    }


def write_plots(engines: dict[str, Any], scenario: Scenario, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for algorithm, engine in engines.items():
        series = engine["throughput_tx_per_s"]
        ax.plot([i * BUCKET_MS / 1000 for i in range(len(series))], series, label=algorithm)
    for start, end, label in fault_bands(scenario):
        ax.axvspan(start, end, alpha=0.15, color="red", label=f"fault: {label}")
    _finish(ax, "Committed throughput (mean over seeds)", "simulated time (s)",
            "committed transactions / s")
    names.append(_save(fig, out / "throughput.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for algorithm, engine in engines.items():
        lat = engine["latencies_ms"]
        if lat:
            ax.plot(lat, [(i + 1) / len(lat) for i in range(len(lat))], label=algorithm)
    _finish(ax, "Submit-to-commit latency CDF", "latency (ms, simulated)", "fraction of txs")
    names.append(_save(fig, out / "latency_cdf.png"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for algorithm, engine in engines.items():
        sizes = [p["nodes"] for p in engine["scaling"]]
        left.plot(sizes, [p["messages_per_block"] for p in engine["scaling"]], "o-",
                  label=algorithm)
        right.plot(sizes, [p["bytes_per_block"] / 1e6 for p in engine["scaling"]], "o-",
                   label=algorithm)
    for axis, what, title in ((left, "messages / committed block", "Consensus messages"),
                              (right, "MB / committed block", "Consensus bytes")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        sizes = sorted({p["nodes"] for e in engines.values() for p in e["scaling"]})
        axis.set_xticks(sizes, [str(n) for n in sizes])
        axis.minorticks_off()
        _finish(axis, f"{title} per block against n (fault-free)", "validators (n)", what)
    names.append(_save(fig, out / "scaling.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = list(engines)
    values = [_median([v for v in engines[a]["leader_crash_recovery_ms"] if v is not None])
              for a in labels]
    ax.bar(labels, [v or 0 for v in values], color="tab:blue")
    _finish(ax, "Leader crash: longest stall without a commit (median)", "engine",
            "ms (simulated)", legend=False)
    names.append(_save(fig, out / "recovery.png"))
    return names


def _median(values: list[int]) -> int | None:
    return sorted(values)[len(values) // 2] if values else None


def _finish(ax: Any, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize="small")


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def _html(summary: dict[str, Any], plots: list[str]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(a)}</td><td>{e['ok_runs']}/{e['runs']}</td>"
        f"<td>{e['latency_ms_p50']}</td><td>{e['latency_ms_p99']}</td>"
        f"<td>{html.escape(str(e['leader_crash_recovery_ms']))}</td></tr>"
        for a, e in summary["engines"].items())
    images = "".join(f'<figure><img src="{html.escape(p)}" alt="{html.escape(p)}"></figure>'
                     for p in plots)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>QENEX engine "
            f"comparison</title><style>body{{font-family:sans-serif;max-width:1100px;"
            f"margin:auto}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd}}img"
            f"{{max-width:100%}}</style></head><body><h1>Engine comparison</h1>"
            f"<p>{summary['seeds']} seeds per engine; simulated time; signatures counted at "
            f"ML-DSA-87 size.</p><table><tr><th>engine</th><th>runs ok</th><th>latency p50 "
            f"ms</th><th>p99 ms</th><th>leader-crash recovery ms</th></tr>{rows}</table>"
            f"{images}<h2>Scenario</h2><pre>{html.escape(json.dumps(summary['scenario'], indent=1))}"
            f"</pre></body></html>")
