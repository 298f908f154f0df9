"""The `qenex` command line. Each area keeps its commands in its own module."""
from __future__ import annotations

import click

from crypto.cli import bench_crypto, keys
from ledger.bench import bench_ledger
from qenex_node.bench_cli import bench
from qenex_node.client_cli import admin_group, query_group, status_command, tx_group
from qenex_node.demo import demo_command
from qenex_node.node_cli import cluster_group, node_group, testnet_command
from simulations.cli import simulate_command


@click.group()
@click.version_option(package_name="qenex-node")
def main() -> None:
    """QENEX node: pluggable BFT consensus over a deterministic ledger."""


main.add_command(simulate_command)
main.add_command(testnet_command)
main.add_command(node_group)
main.add_command(cluster_group)
main.add_command(keys)
main.add_command(bench)
main.add_command(demo_command)
main.add_command(status_command)
main.add_command(tx_group)
main.add_command(query_group)
main.add_command(admin_group)
bench.add_command(bench_ledger, "ledger")
bench.add_command(bench_crypto, "crypto")


if __name__ == "__main__":
    main()
