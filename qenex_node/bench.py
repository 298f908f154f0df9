"""`qenex bench --algorithm NAME`: a real local cluster under load.

Starts its own testnet (one funded account per client), then drives it with signed Ed25519
transfers over gRPC, `wait_for_commit` on every one, so each latency is submit-to-commit:
  closed loop  (`--rate 0`): every client keeps one transaction in flight (next nonce as
               soon as the previous one commits);
  open loop    (`--rate R`): transactions are offered at R per second across the clients,
               whatever the cluster does.
Clients use grpc futures and callbacks, not a thread each, so hundreds of clients cost the
benchmark little CPU next to the seven nodes it measures. Reports committed transactions
per second, latency p50/p95/p99, and the nodes' CPU seconds per committed transaction
(from /proc, user + system, all seven processes).
"""
from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ledger.tx import build_transfer
from proto.qenex.v1 import node_pb2, node_pb2_grpc, transaction_pb2
from qenex_node.client_keys import ClientKey, load_client_key
from qenex_node.testnet import CURRENCY, generate_testnet

WAIT_TIMEOUT_MS = 20_000
WARMUP_S = 2.0


@dataclass(slots=True)
class _Client:
    key: ClientKey
    to: bytes
    stub: Any
    nonce: int = 0
    latencies_s: list[float] = field(default_factory=list)
    failures: int = 0


class _Load:
    def __init__(self, summary: dict[str, Any], clients: int) -> None:
        self.chain_id = summary["chain_id"]
        channels = [grpc.insecure_channel(n["grpc"]) for n in summary["nodes"]]
        self.stubs = [node_pb2_grpc.NodeStub(ch) for ch in channels]
        keys = [load_client_key(c["key_file"]) for c in summary["clients"][:clients]]
        self.clients = [_Client(k, keys[(i + 1) % len(keys)].address,
                                self.stubs[i % len(self.stubs)]) for i, k in enumerate(keys)]
        self.lock = threading.Lock()
        self.measuring = False
        self.stopping = False
        self.in_flight = 0
        self.done = threading.Condition(self.lock)

    def submit(self, client: _Client) -> None:
        with self.lock:
            if self.stopping:
                return
            client.nonce += 1
            self.in_flight += 1
            nonce = client.nonce
        tx = build_transfer(self.chain_id, int(client.key.scheme), client.key.seed, nonce,
                            client.to, 1, CURRENCY)
        request = node_pb2.SubmitTransactionRequest(
            tx=transaction_pb2.SignedTransaction.FromString(tx), wait_for_commit=True,
            timeout_ms=WAIT_TIMEOUT_MS)
        started = time.perf_counter()
        future = client.stub.SubmitTransaction.future(request, timeout=WAIT_TIMEOUT_MS / 1000 + 5)
        future.add_done_callback(lambda f: self._finished(client, f, started))

    def _finished(self, client: _Client, future: Any, started: float) -> None:
        elapsed = time.perf_counter() - started
        try:
            ok = future.result().status == node_pb2.COMMITTED
        except grpc.RpcError:
            ok = False
        with self.lock:
            self.in_flight -= 1
            if self.measuring:
                if ok:
                    client.latencies_s.append(elapsed)
                else:
                    client.failures += 1
            if not ok:
                client.nonce -= 1  # the nonce was not used: reuse it
            self.done.notify_all()
        if self.closed_loop and not self.stopping:
            self.submit(client)

    closed_loop = True


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def _drive(load: _Load, duration_s: float, rate_tx_per_s: int, pids: list[int]) -> dict[str, Any]:
    load.closed_loop = rate_tx_per_s == 0
    if load.closed_loop:
        for client in load.clients:
            load.submit(client)
    offer = threading.Thread(target=_offer, args=(load, rate_tx_per_s, WARMUP_S + duration_s),
                             daemon=True) if rate_tx_per_s else None
    if offer:
        offer.start()
    time.sleep(WARMUP_S)
    cpu_start, wall_start = _cpu_seconds(pids), time.perf_counter()
    with load.lock:
        load.measuring = True
    time.sleep(duration_s)
    with load.lock:
        load.measuring = False
        load.stopping = True
    wall = time.perf_counter() - wall_start
    cpu = _cpu_seconds(pids) - cpu_start
    with load.lock:
        load.done.wait_for(lambda: load.in_flight == 0, timeout=WAIT_TIMEOUT_MS / 1000 + 6)
    latencies = sorted(s for c in load.clients for s in c.latencies_s)
    committed = len(latencies)
    return {"committed_tx": committed, "committed_tx_per_s": round(committed / wall, 1),
            "latency_ms_p50": round(_percentile(latencies, 0.50) * 1000, 1),
            "latency_ms_p95": round(_percentile(latencies, 0.95) * 1000, 1),
            "latency_ms_p99": round(_percentile(latencies, 0.99) * 1000, 1),
            "failed_tx": sum(c.failures for c in load.clients),
            "cpu_s_per_committed_tx": round(cpu / committed, 5) if committed else None,
            "cpu_s_total": round(cpu, 2), "wall_s": round(wall, 2)}


def _offer(load: _Load, rate_tx_per_s: int, total_s: float) -> None:
    interval_s = 1.0 / rate_tx_per_s
    next_at = time.perf_counter()
    index = 0
    end = next_at + total_s
    while time.perf_counter() < end and not load.stopping:
        load.submit(load.clients[index % len(load.clients)])
        index += 1
        next_at += interval_s
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)


def run_cluster_bench(algorithm: str, nodes: int, duration_s: float, clients: int,
                      rate_tx_per_s: int, block_time_ms: int = 100,
                      drive: Callable[[dict[str, Any], list[int]], dict[str, Any]] | None = None,
                      mode: str | None = None) -> dict[str, Any]:
    """`drive(summary, pids)` replaces the transfer load (the read benchmark passes its own,
    qenex_node/bench_reads.py); `mode` names it in the report."""
    import signal

    from qenex_node.node_cli import node_status, start_node_process, wait_ready

    with tempfile.TemporaryDirectory(prefix="qenex-bench-") as tmp:
        out = Path(tmp) / "net"
        summary = generate_testnet(out, nodes, algorithm, clients=clients,
                                   block_time_ms=block_time_ms)
        pids = [start_node_process(Path(n["home"])) for n in summary["nodes"]]
        try:
            status = wait_ready(out, 90)
            if not all(s["ready"] for s in status):
                raise RuntimeError("cluster did not become ready")
            if drive is not None:
                result = drive(summary, pids)
            else:
                result = _drive(_Load(summary, clients), duration_s, rate_tx_per_s, pids)
            heights = [s["height"] for s in node_status(out)]
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            for pid in pids:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
    return {"algorithm": algorithm, "nodes": nodes, "clients": clients,
            "mode": mode or ("closed-loop" if rate_tx_per_s == 0
                             else f"open-loop {rate_tx_per_s} tx/s"),
            "block_time_ms": block_time_ms, "duration_s": duration_s, **result,
            "final_heights": heights}
