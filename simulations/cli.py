"""`qenex simulate`: run a cluster in the deterministic harness and print a summary.

Every fault has one name, the same on the command line and in scenario files:
  --drop P --duplicate P --reorder P --delay-ms MIN:MEAN        network
  --partition START_S-END_S:0,1,2|3,4,5,6  (repeatable)         symmetric cut
  --one-way START_S-END_S:FROM->TO          (repeatable)         asymmetric cut
  --crash N [--crash-lose-unsynced] --torn-write P               processes and disks
  --clock-skew-ms MAX --clock-drift PPM                          clocks
  --byzantine N --behaviour B [--byzantine-leader]               byzantine nodes
  --scenario FILE.yaml                                           any of the above
Subcommands: `swarm` (many seeds, random fault mixes), `shrink` (minimise a failing
run), `compare` (engines side by side, plots and an HTML report).
"""
from __future__ import annotations

import json
import random
import re
import sys
from typing import Any

import click

from consensus.api import engine_names
from simulations.byzantine import BEHAVIOURS
from simulations.campaign import check_algorithm, compare_command, shrink_command, swarm_command
from simulations.scenario import (
    ByzantineNode,
    ClockFault,
    Crash,
    LinkCut,
    NetworkConfig,
    Partition,
    Scenario,
    Workload,
    load_scenario,
)

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?):(.+)$")


def _crash_faults(nodes: int, count: int, seed: int, duration_ms: int,
                  point: str) -> tuple[Crash, ...]:
    """`count` distinct nodes crash at seeded times in the first half; half restart."""
    rng = random.Random(seed * 7919 + count)
    victims = rng.sample(range(nodes), count)
    faults = []
    for index, node in enumerate(sorted(victims)):
        at_ms = rng.randrange(duration_ms // 10, duration_ms // 2)
        restart = at_ms + duration_ms // 5 if index % 2 else None
        faults.append(Crash(node=node, at_ms=at_ms, restart_at_ms=restart, point=point))
    return tuple(faults)


def parse_window(text: str, option: str) -> tuple[int, int, str]:
    match = _WINDOW.match(text)
    if not match:
        raise click.BadParameter(f"expected START_S-END_S:..., got {text!r}", param_hint=option)
    start_ms, end_ms = int(float(match[1]) * 1000), int(float(match[2]) * 1000)
    if end_ms <= start_ms:
        raise click.BadParameter(f"window {text!r} ends before it starts", param_hint=option)
    return start_ms, end_ms, match[3]


def parse_partition(text: str, nodes: int) -> Partition:
    start_ms, end_ms, spec = parse_window(text, "--partition")
    try:
        groups = tuple(tuple(int(n) for n in group.split(",")) for group in spec.split("|"))
    except ValueError:
        raise click.BadParameter(f"groups like 0,1,2|3,4,5,6, got {spec!r}",
                                 param_hint="--partition") from None
    named = [n for g in groups for n in g]
    if len(set(named)) != len(named) or not all(0 <= n < nodes for n in named):
        raise click.BadParameter(f"groups must name distinct nodes 0..{nodes - 1}",
                                 param_hint="--partition")
    return Partition(groups=groups, at_ms=start_ms, heal_at_ms=end_ms)


def parse_one_way(text: str, nodes: int) -> LinkCut:
    start_ms, end_ms, spec = parse_window(text, "--one-way")
    parts = spec.split("->")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise click.BadParameter(f"expected FROM->TO, got {spec!r}", param_hint="--one-way")
    src, dst = int(parts[0]), int(parts[1])
    if not (0 <= src < nodes and 0 <= dst < nodes) or src == dst:
        raise click.BadParameter(f"nodes must be distinct, 0..{nodes - 1}", param_hint="--one-way")
    return LinkCut(src=src, dst=dst, at_ms=start_ms, heal_at_ms=end_ms)


def parse_delay(text: str | None) -> tuple[float, float]:
    if text is None:
        return 1.0, 4.0
    parts = text.split(":")
    try:
        low, mean = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        raise click.BadParameter(f"expected MIN:MEAN in ms, got {text!r}",
                                 param_hint="--delay-ms") from None
    if low < 0 or mean < 0 or len(parts) != 2:
        raise click.BadParameter("MIN and MEAN must be >= 0", param_hint="--delay-ms")
    return low, mean


def _clock_faults(nodes: int, seed: int, skew_ms: int, drift_ppm: int) -> tuple[ClockFault, ...]:
    if not skew_ms and not drift_ppm:
        return ()
    rng = random.Random(seed * 104_729 + 3)
    return tuple(ClockFault(node, rng.randint(-skew_ms, skew_ms),
                            rng.randint(-drift_ppm, drift_ppm)) for node in range(nodes))


def byzantine_ids(nodes: int, count: int, avoid: set[int], leader: int | None) -> list[int]:
    """Highest ids first (the view-0 leader is usually 0), or from the leader on."""
    if leader is not None:
        order = [(leader + i) % nodes for i in range(nodes)]
    else:
        order = list(range(nodes - 1, -1, -1))
    return sorted([n for n in order if n not in avoid][:count])


def build_scenario(options: dict[str, Any]) -> Scenario:
    """A Scenario from the command-line options (names as in scenario files)."""
    o = options
    nodes, seed = o["nodes"], o["seed"]
    duration_ms = int(o["duration_s"] * 1000)
    if o["crash"] + o["byzantine"] > nodes:
        raise click.BadParameter("--crash + --byzantine exceeds --nodes")
    point = "mid_write" if o["crash_lose_unsynced"] else "between_steps"
    faults: tuple[Crash | Partition | LinkCut, ...] = ()
    if o["crash"]:
        faults = _crash_faults(nodes, o["crash"], seed, duration_ms, point)
    faults += tuple(parse_partition(p, nodes) for p in o["partition"])
    faults += tuple(parse_one_way(w, nodes) for w in o["one_way"])
    crashed = {f.node for f in faults if isinstance(f, Crash)}
    leader = None
    if o["byzantine_leader"]:
        from simulations.runner import initial_leader

        leader = initial_leader(o["algorithm"], nodes)
    liars = byzantine_ids(nodes, o["byzantine"], crashed, leader)
    low, mean = parse_delay(o["delay_ms"])
    return Scenario(
        algorithm=o["algorithm"], nodes=nodes, seed=seed, duration_ms=duration_ms,
        network=NetworkConfig(delay_min_ms=low, delay_mean_ms=mean,
                              drop_probability=o["drop"],
                              duplicate_probability=o["duplicate"],
                              reorder_probability=o["reorder"]),
        faults=faults, byzantine=tuple(ByzantineNode(n, o["behaviour"]) for n in liars),
        workload=Workload(tx_per_s=o["tx_rate"], reads_per_s=o["read_rate"]),
        clocks=_clock_faults(nodes, seed, o["clock_skew_ms"], o["clock_drift"]),
        torn_write_probability=o["torn_write"])


def _print_text(summary: dict) -> None:
    inv = summary["invariants"]
    live = summary["liveness"]
    click.echo(f"{summary['algorithm']} n={summary['nodes']} seed={summary['seed']} "
               f"{summary['duration_s']} simulated s")
    click.echo(f"  committed: {summary['committed_blocks']} blocks, "
               f"{summary['committed_txs']} of {summary['offered_txs']} offered transactions; "
               f"heights {summary['heights']}")
    click.echo(f"  liveness: expected={live['expected']} judged={live['judged']} "
               f"after GST {live['gst_ms']} ms: {live['committed_fraction_after_gst']} "
               f"committed, recovery {live['recovery_ms']} ms")
    click.echo(f"  messages: {summary['messages_sent']} ({summary['messages_per_block']}/block),"
               f" {summary['bytes_sent']} bytes")
    for name, result in inv.items():
        mark = "ok " if result["ok"] else "FAIL"
        click.echo(f"  [{mark}] {name} {result['detail']}")
    click.echo(f"  speed: {summary['sim_seconds_per_wall_second']} simulated s per wall s")
    click.echo(f"  trace digest: {summary['trace_digest']}")


def scenario_options(func: Any) -> Any:
    """The options that describe one run, shared by `simulate` and its subcommands."""
    options = [
        click.option("--algorithm", "-a", default="pbft", show_default=True,
                     help="Consensus engine (any registered: see --list)."),
        click.option("--nodes", "-n", default=7, show_default=True, type=click.IntRange(1, 64)),
        click.option("--seed", "-s", default=1, show_default=True, type=int),
        click.option("--duration", "duration_s", default=10.0, show_default=True,
                     type=click.FloatRange(0.1, 3600), help="Simulated seconds."),
        click.option("--drop", default=0.0, type=click.FloatRange(0, 1),
                     help="Packet loss probability."),
        click.option("--duplicate", default=0.0, type=click.FloatRange(0, 1),
                     help="Packet duplication probability."),
        click.option("--reorder", default=0.0, type=click.FloatRange(0, 1),
                     help="Probability a packet is held back so later ones pass it."),
        click.option("--delay-ms", "delay_ms", default=None,
                     help="MIN:MEAN one-way delay: minimum + exponential (default 1:4)."),
        click.option("--partition", multiple=True,
                     help="START_S-END_S:0,1,2|3,4,5,6 (repeatable)."),
        click.option("--one-way", "one_way", multiple=True,
                     help="START_S-END_S:FROM->TO, packets FROM->TO lost (repeatable)."),
        click.option("--crash", default=0, type=click.IntRange(0),
                     help="Nodes that crash (half restart)."),
        click.option("--crash-lose-unsynced", is_flag=True,
                     help="Crashes land inside a write, which is lost."),
        click.option("--torn-write", default=0.0, type=click.FloatRange(0, 1),
                     help="Probability that a write is torn (lost) and the node crashes."),
        click.option("--clock-skew-ms", default=0, type=click.IntRange(0),
                     help="Each node's clock is off by up to this much."),
        click.option("--clock-drift", default=0, type=click.IntRange(0, 100_000),
                     help="Each node's ticks run up to this many ppm fast or slow."),
        click.option("--byzantine", default=0, type=click.IntRange(0),
                     help="Byzantine nodes (see --behaviour)."),
        click.option("--behaviour", default="silent", show_default=True,
                     type=click.Choice(sorted(BEHAVIOURS)), help="What byzantine nodes do."),
        click.option("--byzantine-leader", is_flag=True,
                     help="Make a byzantine node the first proposer."),
        click.option("--tx-rate", default=200, show_default=True, type=click.IntRange(0),
                     help="Offered client transactions per simulated second."),
        click.option("--read-rate", default=0, show_default=True, type=click.IntRange(0),
                     help="Linearizable reads per simulated second at random honest nodes, "
                          "each checked against real time (invariant linearizable_reads)."),
        click.option("--scenario", "scenario_path", type=click.Path(exists=True, dir_okay=False),
                     help="A scenarios/*.yaml file (its faults replace the options above)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def scenario_from_options(options: dict[str, Any], given: frozenset[str] = frozenset()
                          ) -> Scenario:
    """The run the options describe; with --scenario, the file's own algorithm and seed
    stand unless -a / -s were given on the command line (`given`)."""
    options["algorithm"] = check_algorithm(options["algorithm"])
    if options.get("scenario_path"):
        from dataclasses import replace

        scenario = load_scenario(options["scenario_path"])
        changes = {k: options[k] for k in ("algorithm", "seed") if k in given}
        return replace(scenario, **changes)
    return build_scenario(options)


@click.group("simulate", invoke_without_command=True)
@scenario_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--list", "list_engines", is_flag=True, help="List registered engines and exit.")
@click.pass_context
def simulate_command(ctx: click.Context, as_json: bool, list_engines: bool,
                     **options: Any) -> None:
    """Run a cluster in the deterministic simulator; exit 1 if an invariant breaks."""
    if ctx.invoked_subcommand is not None:
        return
    if list_engines:
        click.echo("\n".join(engine_names()))
        return
    from simulations.runner import run_scenario

    given = frozenset(name for name in ("algorithm", "seed")
                      if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT)
    result = run_scenario(scenario_from_options(options, given))
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        _print_text(summary)
    if not result.ok:
        click.echo(result.failure_message(), err=True)
        sys.exit(1)


simulate_command.add_command(swarm_command)
simulate_command.add_command(shrink_command)
simulate_command.add_command(compare_command)
