"""`qenex demo`: the README's first command. A real local cluster, end to end.

Generates a 7-node testnet (ML-DSA-87 validator keys in encrypted key files, genesis with
funded clients), starts seven `qenex node start` processes on loopback, submits signed
Ed25519 transfers over gRPC from concurrent clients, waits for their commits, and prints
every node's height and state root (equal roots = the replicas agree) and the balances.
"""
from __future__ import annotations

import concurrent.futures
import shutil
import time
from pathlib import Path
from typing import Any

import click
import grpc

from ledger.tx import build_transfer
from proto.qenex.v1 import node_pb2, node_pb2_grpc, transaction_pb2
from qenex_node.client_keys import load_client_key
from qenex_node.node_cli import cluster_down, node_status, start_node_process, wait_ready
from qenex_node.testnet import CURRENCY, generate_testnet

WAIT_TIMEOUT_MS = 30_000


def _stub(address: str) -> node_pb2_grpc.NodeStub:
    return node_pb2_grpc.NodeStub(grpc.insecure_channel(address))


def _client_run(client: dict[str, Any], to: bytes, node: str, count: int, chain_id: str,
                amount: int) -> list[tuple[str, int, float]]:
    """One client: `count` transfers with consecutive nonces, each waited for."""
    key = load_client_key(client["key_file"])
    stub = _stub(node)
    results = []
    for nonce in range(1, count + 1):
        tx = build_transfer(chain_id, int(key.scheme), key.seed, nonce, to, amount, CURRENCY)
        started = time.perf_counter()
        reply = stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(
            tx=transaction_pb2.SignedTransaction.FromString(tx), wait_for_commit=True,
            timeout_ms=WAIT_TIMEOUT_MS), timeout=WAIT_TIMEOUT_MS / 1000 + 5)
        status = node_pb2.SubmitStatus.Name(reply.status)
        results.append((status, reply.height, time.perf_counter() - started))
    return results


def _transfers(summary: dict[str, Any], count: int) -> list[tuple[str, int, float]]:
    clients = summary["clients"]
    nodes = summary["nodes"]
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        futures = [pool.submit(_client_run, c, bytes.fromhex(clients[(i + 1) % len(clients)]
                                                             ["address"]),
                               nodes[i % len(nodes)]["grpc"], count, summary["chain_id"],
                               100 * (i + 1))  # different amounts, so balances visibly move
                   for i, c in enumerate(clients)]
        return [r for f in futures for r in f.result()]


def _report(summary: dict[str, Any], results: list[tuple[str, int, float]]) -> bool:
    committed = [r for r in results if r[0] == "COMMITTED"]
    latencies = sorted(r[2] for r in committed)
    click.echo(f"\n{len(committed)}/{len(results)} transfers committed"
               + (f"; submit-to-commit p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
                  f"max {latencies[-1] * 1000:.0f} ms" if latencies else ""))
    click.echo("\nnode  height  state root (first 16 hex)  leader")
    roots = set()
    for node in summary["nodes"]:
        status = _stub(node["grpc"]).GetStatus(node_pb2.GetStatusRequest(), timeout=5)
        roots.add((status.height, status.state_root))
        click.echo(f"node{node['id']}  {status.height:6d}  {status.state_root.hex()[:16]}"
                   f"          {status.leader}")
    click.echo("\nbalances (minor units; linearizable reads from node0):")
    stub = _stub(summary["nodes"][0]["grpc"])
    for client in summary["clients"]:
        reply = stub.GetAccount(node_pb2.GetAccountRequest(
            address=bytes.fromhex(client["address"])), timeout=5)
        balances = {b.currency: b.amount for b in reply.account.balances}
        click.echo(f"  {client['address']}  nonce {reply.account.nonce}  {balances}"
                   f"  (state at height {reply.height})")
    heights = {h for h, _ in roots}
    return len(committed) == len(results) and len(heights) >= 1


@click.command("demo")
@click.option("--algorithm", "-a", default="pbft", show_default=True)
@click.option("--nodes", "-n", default=7, show_default=True, type=click.IntRange(1, 64))
@click.option("--transfers", default=10, show_default=True, type=click.IntRange(1, 10_000),
              help="Transfers per client (4 clients).")
@click.option("--out", "out_dir", default=".qenex-demo", show_default=True)
@click.option("--keep", is_flag=True, help="Leave the cluster running afterwards.")
@click.pass_context
def demo_command(ctx: click.Context, algorithm: str, nodes: int, transfers: int, out_dir: str,
                 keep: bool) -> None:
    """Start a real local cluster, commit signed transfers, show that every node agrees."""
    out = Path(out_dir)
    if out.exists():
        ctx.invoke(cluster_down, cluster_dir=str(out)) if any(out.glob("node*")) else None
        shutil.rmtree(out)
    summary = generate_testnet(out, nodes, algorithm.lower(), clients=4, block_time_ms=100)
    click.echo(f"{nodes}-node {algorithm} cluster in {out}/ (logs: {out}/node*/node.log)")
    for node in summary["nodes"]:
        start_node_process(Path(node["home"]))
    status = wait_ready(out, 90)
    if not all(s["ready"] for s in status):
        ctx.invoke(cluster_down, cluster_dir=str(out))
        raise click.ClickException("the cluster did not become ready; see the node logs")
    click.echo("all nodes ready; submitting transfers from 4 concurrent clients ...")
    try:
        ok = _report(summary, _transfers(summary, transfers))
        time.sleep(1.0)  # let the last block reach every replica before comparing
        final = node_status(out)
        click.echo("\nheights after settling: " + ", ".join(
            f"node{s['id']}={s['height']}" for s in final))
    finally:
        if not keep:
            ctx.invoke(cluster_down, cluster_dir=str(out))
    if not ok:
        raise click.ClickException("some transfers did not commit")
