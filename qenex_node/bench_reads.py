"""`qenex bench --reads`: balance reads per consistency level on a real local cluster.

Readers keep one `GetAccount` each in flight (closed loop, grpc futures, spread over the
nodes), for each level - `local` (the node's applied state) and `linearizable` (the
default: Raft ReadIndex, the BFT read barrier) - first alone, then mixed with the
closed-loop transfers of `qenex bench`. Reports reads/s and read latency p50/p99 per
phase (and the transfers' throughput in the mixed phases).
"""
from __future__ import annotations

import random
import threading
import time
from typing import Any

import grpc

from proto.qenex.v1 import node_pb2, node_pb2_grpc
from qenex_node.bench import WARMUP_S, _cpu_seconds, _Load, _percentile

READ_TIMEOUT_S = 10
LEVELS = {"local": node_pb2.LOCAL, "linearizable": node_pb2.LINEARIZABLE}


class _ReadLoad:
    def __init__(self, summary: dict[str, Any], readers: int, level: int, seed: int) -> None:
        channels = [grpc.insecure_channel(n["grpc"]) for n in summary["nodes"]]
        self.stubs = [node_pb2_grpc.NodeStub(ch) for ch in channels]
        self.addresses = [bytes.fromhex(c["address"]) for c in summary["clients"]]
        self.level = level
        self.rng = random.Random(seed)
        self.readers = readers
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)
        self.measuring = self.stopping = False
        self.in_flight = 0
        self.latencies_s: list[float] = []
        self.failures = 0

    def start(self) -> None:
        for reader in range(self.readers):
            self._read(reader)

    def _read(self, reader: int) -> None:
        with self.lock:
            if self.stopping:
                return
            self.in_flight += 1
            address = self.addresses[self.rng.randrange(len(self.addresses))]
        request = node_pb2.GetAccountRequest(
            address=address, read=node_pb2.ReadOptions(consistency=self.level))
        stub = self.stubs[reader % len(self.stubs)]
        started = time.perf_counter()
        future = stub.GetAccount.future(request, timeout=READ_TIMEOUT_S)
        future.add_done_callback(lambda f: self._finished(reader, f, started))

    def _finished(self, reader: int, future: Any, started: float) -> None:
        elapsed = time.perf_counter() - started
        ok = future.exception() is None
        with self.lock:
            self.in_flight -= 1
            if self.measuring:
                if ok:
                    self.latencies_s.append(elapsed)
                else:
                    self.failures += 1
            self.done.notify_all()
        self._read(reader)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.done.wait_for(lambda: self.in_flight == 0, timeout=READ_TIMEOUT_S + 2)


def _phase(summary: dict[str, Any], level: str, readers: int, duration_s: float,
           transfers: _Load | None, pids: list[int]) -> dict[str, Any]:
    reads = _ReadLoad(summary, readers, LEVELS[level], seed=len(level))
    if transfers is not None:
        _restart(transfers)
    reads.start()
    time.sleep(WARMUP_S)
    cpu_start, wall_start = _cpu_seconds(pids), time.perf_counter()
    with reads.lock:
        reads.measuring = True
    if transfers is not None:
        with transfers.lock:
            transfers.measuring = True
    time.sleep(duration_s)
    with reads.lock:
        reads.measuring = False
    wall_s = time.perf_counter() - wall_start
    cpu_s = _cpu_seconds(pids) - cpu_start
    reads.stop()
    result = {"consistency": level, "mixed_with_transfers": transfers is not None,
              "readers": readers, **_latency(reads.latencies_s, wall_s),
              "failed_reads": reads.failures, "cpu_s_total": round(cpu_s, 2)}
    if transfers is not None:
        committed = _stop(transfers)
        result["committed_tx_per_s"] = round(committed / wall_s, 1)
    return result


def _latency(latencies_s: list[float], wall_s: float) -> dict[str, Any]:
    ordered = sorted(latencies_s)
    return {"reads": len(ordered), "reads_per_s": round(len(ordered) / wall_s, 1),
            "read_ms_p50": round(_percentile(ordered, 0.50) * 1000, 2),
            "read_ms_p99": round(_percentile(ordered, 0.99) * 1000, 2)}


def _restart(load: _Load) -> None:
    with load.lock:
        load.stopping = load.measuring = False
        for client in load.clients:
            client.latencies_s.clear()
            client.failures = 0
    for client in load.clients:
        load.submit(client)


def _stop(load: _Load) -> int:
    with load.lock:
        load.measuring = False
        load.stopping = True
        load.done.wait_for(lambda: load.in_flight == 0, timeout=30)
        return sum(len(c.latencies_s) for c in load.clients)


def drive_reads(summary: dict[str, Any], readers: int, clients: int, duration_s: float,
                pids: list[int]) -> list[dict[str, Any]]:
    """Four phases: each level alone, then each level beside closed-loop transfers."""
    phases = [_phase(summary, level, readers, duration_s, None, pids) for level in LEVELS]
    transfers = _Load(summary, clients)
    transfers.stopping = True  # _restart starts it
    phases += [_phase(summary, level, readers, duration_s, transfers, pids)
               for level in LEVELS]
    return phases
