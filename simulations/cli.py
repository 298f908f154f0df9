"""`qenex simulate`: run a cluster in the deterministic harness and print a summary."""
from __future__ import annotations

import json
import random
import sys

import click

from consensus.api import Send, engine_names
from simulations.scenario import (
    ByzantineContext,
    ByzantineNode,
    Crash,
    NetworkConfig,
    Scenario,
    Workload,
    load_scenario,
)


def silent_byzantine(ctx: ByzantineContext, send: Send) -> list[tuple[int, object]]:
    """Generic byzantine behaviour for any engine: sign nothing, send nothing (mute).

    Engine-specific attacks (equivocation, conflicting votes) live with each engine's
    tests; from the command line a mute byzantine node is the one attack every engine
    shares.
    """
    return []


def _crash_faults(nodes: int, count: int, seed: int, duration_ms: int) -> tuple[Crash, ...]:
    """`count` distinct nodes crash at seeded times in the first half; half restart."""
    rng = random.Random(seed * 7919 + count)
    victims = rng.sample(range(nodes), count)
    faults = []
    for index, node in enumerate(sorted(victims)):
        at_ms = rng.randrange(duration_ms // 10, duration_ms // 2)
        restart = at_ms + duration_ms // 5 if index % 2 else None
        faults.append(Crash(node=node, at_ms=at_ms, restart_at_ms=restart))
    return tuple(faults)


def build_scenario(algorithm: str, nodes: int, seed: int, duration_s: float, drop: float,
                   crash: int, byzantine: int, tx_rate: int) -> Scenario:
    duration_ms = int(duration_s * 1000)
    if crash + byzantine > nodes:
        raise click.BadParameter("--crash + --byzantine exceeds --nodes")
    faults = _crash_faults(nodes, crash, seed, duration_ms) if crash else ()
    crashed = {f.node for f in faults}
    liars = [n for n in range(nodes - 1, -1, -1) if n not in crashed][:byzantine]
    return Scenario(algorithm=algorithm, nodes=nodes, seed=seed, duration_ms=duration_ms,
                    network=NetworkConfig(drop_probability=drop), faults=faults,
                    byzantine=tuple(ByzantineNode(n, silent_byzantine) for n in sorted(liars)),
                    workload=Workload(tx_per_s=tx_rate))


def _print_text(summary: dict) -> None:
    inv = summary["invariants"]
    click.echo(f"{summary['algorithm']} n={summary['nodes']} seed={summary['seed']} "
               f"{summary['duration_s']} simulated s")
    click.echo(f"  committed: {summary['committed_blocks']} blocks, "
               f"{summary['committed_txs']} transactions; heights {summary['heights']}")
    click.echo(f"  messages: {summary['messages_sent']} ({summary['messages_per_block']}/block),"
               f" {summary['bytes_sent']} bytes")
    for name, result in inv.items():
        mark = "ok " if result["ok"] else "FAIL"
        click.echo(f"  [{mark}] {name} {result['detail']}")
    click.echo(f"  speed: {summary['sim_seconds_per_wall_second']} simulated s per wall s")
    click.echo(f"  trace digest: {summary['trace_digest']}")


@click.command("simulate")
@click.option("--algorithm", "-a", default="pbft", show_default=True,
              help="Consensus engine (any registered: see --list).")
@click.option("--nodes", "-n", default=7, show_default=True, type=click.IntRange(1, 64))
@click.option("--seed", "-s", default=1, show_default=True, type=int)
@click.option("--duration", "duration_s", default=10.0, show_default=True,
              type=click.FloatRange(0.1, 3600), help="Simulated seconds.")
@click.option("--drop", default=0.0, type=click.FloatRange(0, 1), help="Packet loss probability.")
@click.option("--crash", default=0, type=click.IntRange(0), help="Nodes that crash (half restart).")
@click.option("--byzantine", default=0, type=click.IntRange(0), help="Mute byzantine nodes.")
@click.option("--tx-rate", default=200, show_default=True, type=click.IntRange(0),
              help="Offered client transactions per simulated second.")
@click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False),
              help="A scenarios/*.yaml file (overrides the shape options).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--list", "list_engines", is_flag=True, help="List registered engines and exit.")
def simulate_command(algorithm: str, nodes: int, seed: int, duration_s: float, drop: float,
                     crash: int, byzantine: int, tx_rate: int, scenario_path: str | None,
                     as_json: bool, list_engines: bool) -> None:
    """Run a cluster in the deterministic simulator; exit 1 if an invariant breaks."""
    from simulations.runner import run_scenario

    if list_engines:
        click.echo("\n".join(engine_names()))
        return
    if algorithm.lower() not in engine_names():
        raise click.BadParameter(f"unknown algorithm {algorithm!r}; registered: "
                                 f"{', '.join(engine_names()) or 'none'}", param_hint="--algorithm")
    if scenario_path:
        scenario = load_scenario(scenario_path)
    else:
        scenario = build_scenario(algorithm.lower(), nodes, seed, duration_s, drop, crash,
                                  byzantine, tx_rate)
    result = run_scenario(scenario)
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_text(summary)
    if not result.ok:
        click.echo(result.failure_message(), err=True)
        sys.exit(1)
