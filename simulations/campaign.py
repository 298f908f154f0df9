"""`qenex simulate swarm | shrink | compare`: campaigns over many runs."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from consensus.api import engine_names
from simulations.invariants import SAFETY
from simulations.scenario import load_scenario, scenario_from_dict, scenario_to_dict


def check_algorithm(algorithm: str) -> str:
    if algorithm.lower() not in engine_names():
        raise click.BadParameter(f"unknown algorithm {algorithm!r}; registered: "
                                 f"{', '.join(engine_names()) or 'none'}", param_hint="--algorithm")
    return algorithm.lower()


@click.command("swarm")
@click.option("--algorithm", "-a", default="pbft", show_default=True)
@click.option("--nodes", "-n", default=7, show_default=True, type=click.IntRange(4, 64))
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1))
@click.option("--jobs", "-j", default=2, show_default=True, type=click.IntRange(1, 256),
              help="Local worker processes.")
@click.option("--seed", "-s", default=1, show_default=True, type=int, help="Root seed.")
@click.option("--scheduler", default=None,
              help="ADDRESS of a Dask distributed scheduler: run there instead of locally.")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Folder for runs.jsonl and failing scenarios (default ./swarm-SEED).")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON line per run, then a summary object as the last line.")
def swarm_command(algorithm: str, nodes: int, runs: int, jobs: int, seed: int,
                  scheduler: str | None, out_dir: str | None, as_json: bool) -> None:
    """Many seeded runs, each with a random subset of fault kinds; exit 1 on a failure."""
    from simulations.swarm import map_dask, map_local, summarise, swarm_specs

    algorithm = check_algorithm(algorithm)
    out = Path(out_dir or f"swarm-{seed}")
    (out / "failures").mkdir(parents=True, exist_ok=True)
    specs = swarm_specs(algorithm, nodes, seed, runs)
    results = map_dask(specs, scheduler) if scheduler else map_local(specs, jobs)
    records, failures = [], []
    with open(out / "runs.jsonl", "w", encoding="utf-8") as log, \
            click.progressbar(length=runs, label=f"swarm {algorithm}", file=sys.stderr) as bar:
        for record in results:
            records.append(record)
            log.write(json.dumps(record, sort_keys=True) + "\n")
            if as_json:
                click.echo(json.dumps(_line(record), sort_keys=True))
            if not record["ok"]:
                failures.append(_failure(record, out))
            bar.update(1)
    for failure in failures:
        click.echo(f"FAILED seed={failure['seed']} {failure['failed']}: "
                   f"{failure['command']}", err=True)
    summary = summarise(records, failures)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(f"{summary['runs']} runs, {len(failures)} failures; lowest committed "
                   f"fraction after GST {summary['committed_fraction_after_gst_min']}")
    if failures:
        sys.exit(1)


def _line(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("seed", "algorithm", "ok", "failed", "liveness",
                                   "offered_txs", "committed_txs", "wall_seconds")}


def _failure(record: dict[str, Any], out: Path) -> dict[str, Any]:
    from simulations.swarm import reproduce_command

    path = out / "failures" / f"{record['algorithm']}-{record['seed']}.yaml"
    path.write_text(yaml.safe_dump(record["scenario"], sort_keys=True))
    run_path = path.with_suffix(".json")
    run_path.write_text(json.dumps(record, sort_keys=True))
    return {"seed": record["seed"], "failed": record["failed"], "scenario": str(path),
            "run": str(run_path), "command": reproduce_command(record, str(path))}


@click.command("shrink")
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--runs-max", default=200, show_default=True, type=click.IntRange(1))
@click.option("--out", "out_file", default=None, type=click.Path(dir_okay=False),
              help="Write the minimal scenario here (printed as YAML as well).")
def shrink_command(run_file: str, runs_max: int, out_file: str | None) -> None:
    """Reduce a failing run (a swarm failure's .json, or a scenario .yaml) to a minimal
    fault schedule that breaks the same invariant, and print it as a scenario file."""
    from simulations.runner import run_scenario
    from simulations.shrink import shrink

    if run_file.endswith((".yaml", ".yml")):
        scenario = load_scenario(run_file)
    else:
        record = json.loads(Path(run_file).read_text())
        scenario = scenario_from_dict(record.get("scenario", record))
    first = run_scenario(scenario)
    broken = {r.name for r in first.invariants if not r.ok}
    if not broken:
        raise click.ClickException("that run does not fail: nothing to shrink")
    # Keep the worst thing the run shows: a safety violation must survive shrinking, not
    # be traded for a liveness failure that is easier to keep.
    broken = (broken & set(SAFETY)) or broken

    def fails(candidate: Any) -> bool:
        result = run_scenario(candidate)
        return any(not r.ok and r.name in broken for r in result.invariants)

    minimal, spent = shrink(scenario, fails, runs_max)
    text = yaml.safe_dump({"description": f"shrunk from {run_file}: breaks "
                           f"{', '.join(sorted(broken))} ({spent} runs)",
                           **scenario_to_dict(minimal)}, sort_keys=True)
    if out_file:
        Path(out_file).write_text(text)
    click.echo(text)


@click.command("compare")
@click.option("--algorithms", default="pbft,raft", show_default=True,
              help="Comma-separated engines.")
@click.option("--scenario", "scenario_path", required=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--sizes", default="4,7,16,32,64", show_default=True,
              help="Cluster sizes for the messages/bytes-per-block plot.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def compare_command(algorithms: str, scenario_path: str, seeds: int, sizes: str,
                    out_dir: str) -> None:
    """Every engine on one scenario and seeds: summary.json, plots and report.html."""
    from simulations.report import compare

    names = [check_algorithm(a.strip()) for a in algorithms.split(",") if a.strip()]
    try:
        size_list = tuple(int(s) for s in sizes.split(","))
    except ValueError:
        raise click.BadParameter("comma-separated integers", param_hint="--sizes") from None
    summary = compare(names, load_scenario(scenario_path), seeds, Path(out_dir), size_list)
    for name, engine in summary["engines"].items():
        click.echo(f"{name}: {engine['ok_runs']}/{engine['runs']} runs ok, latency p50 "
                   f"{engine['latency_ms_p50']} ms p99 {engine['latency_ms_p99']} ms, leader "
                   f"crash recovery {engine['leader_crash_recovery_ms']} ms")
    click.echo(f"report: {Path(out_dir) / 'report.html'}")
