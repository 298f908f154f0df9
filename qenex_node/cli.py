"""The `qenex` command line. Each area keeps its commands in its own module."""
from __future__ import annotations

import click

from simulations.cli import simulate_command


@click.group()
@click.version_option(package_name="qenex-node")
def main() -> None:
    """QENEX node: pluggable BFT consensus over a deterministic ledger."""


main.add_command(simulate_command)
