"""The `qenex` command line. Each area keeps its commands in its own module."""
from __future__ import annotations

import click

from simulations.cli import simulate_command


@click.group()
@click.version_option(package_name="qenex-node")
def main() -> None:
    """QENEX node: pluggable BFT consensus over a deterministic ledger."""


main.add_command(simulate_command)


@main.group(invoke_without_command=True)
def bench() -> None:
    """Benchmarks (ledger; cluster options to come)."""


from ledger.bench import bench_ledger  # noqa: E402  (lmdb is imported only by this command)
bench.add_command(bench_ledger, "ledger")
