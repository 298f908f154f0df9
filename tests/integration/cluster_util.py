"""Helpers for integration tests: a real local cluster of `qenex node start` processes."""
from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ledger.tx import build_transfer
from proto.qenex.v1 import node_pb2, node_pb2_grpc, transaction_pb2
from qenex_node.client_keys import load_client_key
from qenex_node.node_cli import node_status, start_node_process, wait_ready
from qenex_node.testnet import CURRENCY, generate_testnet

SUBMIT_TIMEOUT_MS = 15_000


class Cluster:
    def __init__(self, root: Path, nodes: int, algorithm: str, clients: int) -> None:
        self.root = root
        self.summary = generate_testnet(root, nodes, algorithm, clients=clients,
                                        block_time_ms=100)
        self.pids: dict[int, int] = {}

    def start(self, node: int | None = None) -> None:
        for info in self.summary["nodes"]:
            if node is None or info["id"] == node:
                self.pids[info["id"]] = start_node_process(Path(info["home"]))

    def wait_ready(self, timeout_s: float = 90) -> list[dict[str, Any]]:
        return wait_ready(self.root, timeout_s)

    def kill9(self, node: int) -> None:
        os.kill(self.pids[node], signal.SIGKILL)
        os.waitpid(self.pids[node], 0)

    def stop(self) -> None:
        for pid in self.pids.values():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        for pid in self.pids.values():
            while time.monotonic() < deadline:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                except ChildProcessError:
                    break
                time.sleep(0.05)
            else:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass

    def status(self) -> list[dict[str, Any]]:
        return node_status(self.root)

    def stub(self, node: int) -> node_pb2_grpc.NodeStub:
        return node_pb2_grpc.NodeStub(grpc.insecure_channel(self.summary["nodes"][node]["grpc"]))

    def grpc_status(self, node: int) -> node_pb2.NodeStatus:
        return self.stub(node).GetStatus(node_pb2.GetStatusRequest(), timeout=5)

    def log_tail(self, node: int, lines: int = 20) -> str:
        path = Path(self.summary["nodes"][node]["home"]) / "node.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass(slots=True)
class ClientLoad:
    """Each client thread sends transfers with consecutive nonces, waiting for each commit,
    spreading them over the nodes that are up; it records what was acknowledged."""
    cluster: Cluster
    acked: dict[int, list[bytes]] = field(default_factory=dict)  # client -> tx ids
    failures: int = 0
    stop_event: threading.Event = field(default_factory=threading.Event)
    down: set[int] = field(default_factory=set)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: threading.Event = field(default_factory=threading.Event)
    inflight: int = 0
    # client -> its last submission was not acknowledged (timed out or refused): that
    # transfer may still commit after the client stopped, once (same bytes, same id).
    unacked_last: dict[int, bool] = field(default_factory=dict)

    def pause(self, timeout_s: float = SUBMIT_TIMEOUT_MS / 1000 + 5) -> None:
        """Stop sending and wait until no submission is in flight: the cluster is idle."""
        self.running.clear()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.inflight == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("client submissions still in flight after pause")

    def resume(self) -> None:
        self.running.set()

    def start(self) -> None:
        self.running.set()
        clients = self.cluster.summary["clients"]
        for index in range(len(clients)):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, index: int) -> None:
        clients = self.cluster.summary["clients"]
        key = load_client_key(clients[index]["key_file"])
        to = bytes.fromhex(clients[(index + 1) % len(clients)]["address"])
        chain_id = self.cluster.summary["chain_id"]
        nodes = len(self.cluster.summary["nodes"])
        # One channel per node for the thread's life (gRPC reconnects after a restart);
        # a channel per call cost the client more CPU than the node it measured.
        stubs = [self.cluster.stub(n) for n in range(nodes)]
        nonce, attempt = 1, index
        while not self.stop_event.is_set():
            if not self.running.wait(timeout=0.1):
                continue
            node = attempt % nodes
            attempt += 1
            if node in self.down:
                continue
            tx = build_transfer(chain_id, int(key.scheme), key.seed, nonce, to, 1, CURRENCY)
            with self.lock:
                if not self.running.is_set():
                    continue
                self.inflight += 1
            try:
                acked = self._submit(stubs[node], tx)
            finally:
                with self.lock:
                    self.inflight -= 1
            with self.lock:
                self.unacked_last[index] = not acked
            if acked:
                with self.lock:
                    body = transaction_pb2.SignedTransaction.FromString(tx).body
                    self.acked.setdefault(index, []).append(hashlib.sha256(body).digest())
                nonce += 1

    def _submit(self, stub: node_pb2_grpc.NodeStub, tx: bytes) -> bool:
        request = node_pb2.SubmitTransactionRequest(
            tx=transaction_pb2.SignedTransaction.FromString(tx), wait_for_commit=True,
            timeout_ms=SUBMIT_TIMEOUT_MS)
        try:
            reply = stub.SubmitTransaction(
                request, timeout=SUBMIT_TIMEOUT_MS / 1000 + 2)
        except grpc.RpcError:
            with self.lock:
                self.failures += 1
            return False
        if reply.status == node_pb2.COMMITTED and reply.receipt.success:
            return True
        # A resubmission of an already committed nonce after a timeout comes back as a
        # refused copy; the receipt of the first copy stands. Count only clean acks.
        return False

    def acked_count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.acked.values())

    def finish(self) -> None:
        self.stop_event.set()
        self.running.set()
        for thread in self.threads:
            thread.join(timeout=SUBMIT_TIMEOUT_MS / 1000 + 5)


READ_TIMEOUT_S = 10


@dataclass(slots=True)
class StaleReadCheck:
    """Reader threads beside a ClientLoad: default (linearizable) GetAccount of a random
    client's account on a random node that is up. A read is stale when the account's nonce
    it shows is below the transfers of that client acknowledged before the read began
    (real time), or below a nonce this reader already saw for that account (monotonic
    reads). Refusals (BEHIND, TIMEOUT, a node being killed) are counted, never stale."""
    load: ClientLoad
    readers: int = 4
    seed: int = 1
    consistency: int = node_pb2.READ_CONSISTENCY_UNSPECIFIED  # LOCAL shows stale reads
    reads: int = 0
    refused: int = 0
    stale: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for reader in range(self.readers):
            thread = threading.Thread(target=self._run, args=(reader,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, reader: int) -> None:
        import random

        rng = random.Random(self.seed * 1_000 + reader)
        cluster = self.load.cluster
        clients = cluster.summary["clients"]
        nodes = len(cluster.summary["nodes"])
        stubs = [cluster.stub(n) for n in range(nodes)]
        seen: dict[int, int] = {}
        while not self.stop_event.is_set():
            client, node = rng.randrange(len(clients)), rng.randrange(nodes)
            if node in self.load.down:
                continue
            with self.load.lock:
                acked_before = len(self.load.acked.get(client, ()))
            request = node_pb2.GetAccountRequest(
                address=bytes.fromhex(clients[client]["address"]),
                read=node_pb2.ReadOptions(consistency=self.consistency))
            try:
                reply = stubs[node].GetAccount(request, timeout=READ_TIMEOUT_S)
            except grpc.RpcError:
                with self.lock:
                    self.refused += 1
                continue
            nonce = reply.account.nonce
            floor = max(acked_before, seen.get(client, 0))
            with self.lock:
                self.reads += 1
                if nonce < floor:
                    self.stale.append(f"reader {reader} node {node} client {client}: nonce "
                                      f"{nonce} at height {reply.height}, expected >= {floor}")
            seen[client] = max(seen.get(client, 0), nonce)

    def finish(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=READ_TIMEOUT_S + 5)
