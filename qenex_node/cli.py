"""The `qenex` command line."""
from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="qenex-node")
def main() -> None:
    """QENEX node: pluggable BFT consensus over a deterministic ledger."""
