"""`qenex bench`: cluster throughput and latency (subcommands: ledger, crypto)."""
from __future__ import annotations

import json

import click


@click.group("bench", invoke_without_command=True)
@click.option("--algorithm", "-a", default="pbft", show_default=True)
@click.option("--nodes", "-n", default=7, show_default=True, type=click.IntRange(1, 64))
@click.option("--duration", "duration_s", default=20.0, show_default=True,
              type=click.FloatRange(1, 3600))
@click.option("--clients", default=16, show_default=True, type=click.IntRange(1, 4096))
@click.option("--rate", "rate_tx_per_s", default=0, type=click.IntRange(0),
              help="Offered load (open loop); 0 = closed loop.")
@click.option("--block-time", "block_time_ms", default=100, show_default=True,
              type=click.IntRange(1), help="Longest wait before a batch is cut, in ms.")
@click.option("--reads", is_flag=True, help="Benchmark balance reads per consistency level "
              "(local, linearizable), alone and mixed with closed-loop transfers.")
@click.option("--readers", default=16, show_default=True, type=click.IntRange(1, 4096),
              help="Closed-loop readers for --reads.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def bench(ctx: click.Context, algorithm: str, nodes: int, duration_s: float, clients: int,
          rate_tx_per_s: int, block_time_ms: int, reads: bool, readers: int,
          as_json: bool) -> None:
    """Start a local cluster, drive it with signed transfers, report throughput/latency."""
    if ctx.invoked_subcommand is not None:
        return
    from qenex_node.bench import run_cluster_bench

    drive = None
    if reads:
        from qenex_node.bench_reads import drive_reads

        def drive(summary: dict, pids: list[int]) -> dict:
            return {"read_phases": drive_reads(summary, readers, clients, duration_s, pids)}

    result = run_cluster_bench(algorithm.lower(), nodes, duration_s, clients, rate_tx_per_s,
                               block_time_ms, drive=drive, mode="reads" if reads else None)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            click.echo(f"{key}: {value}")
