"""Garbage on the peer port and on the gRPC port leaves every node running and healthy:
random bytes, truncated frames, oversized frames, a client with no valid handshake, and
well-formed gRPC calls carrying junk transactions."""
from __future__ import annotations

import os
import random
import socket
import struct
import time
import urllib.request

import grpc
import pytest

from proto.qenex.v1 import node_pb2, transaction_pb2
from tests.integration.cluster_util import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NODES = 4


def _blast(address: str, payload: bytes) -> None:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            sock.sendall(payload)
            sock.settimeout(0.5)
            try:
                sock.recv(1024)
            except (TimeoutError, ConnectionError):
                pass
    except OSError:
        pass  # the node may close on us mid-send: that is the point


def _garbage_payloads(rng: random.Random) -> list[bytes]:
    return [
        rng.randbytes(4096),                                   # noise
        struct.pack(">I", 64) + rng.randbytes(10),             # truncated frame
        struct.pack(">I", 0xFFFFFFF0) + rng.randbytes(100),    # absurd length
        struct.pack(">I", 40) + b"\x01" + rng.randbytes(39),   # HELLO-typed junk
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                  # wrong protocol
        b"",                                                   # connect and leave
    ]


def _healthy(cluster: Cluster) -> bool:
    for node in cluster.summary["nodes"]:
        try:
            with urllib.request.urlopen(f"http://{node['metrics']}/health", timeout=2) as r:
                if r.status != 200:
                    return False
        except OSError:
            return False
    return all(p is not None for p in (s["pid"] for s in cluster.status()))


def test_garbage_on_peer_and_grpc_ports_is_survived(tmp_path):
    cluster = Cluster(tmp_path / "net", NODES, "pbft", clients=2)
    cluster.start()
    try:
        assert all(s["ready"] for s in cluster.wait_ready()), cluster.status()
        rng = random.Random(7)
        for node in cluster.summary["nodes"]:
            for payload in _garbage_payloads(rng):
                _blast(node["peer"], payload)
                _blast(node["grpc"], payload)
        stub = cluster.stub(0)
        junk = [transaction_pb2.SignedTransaction(body=os.urandom(64), scheme=1,
                                                  public_key=os.urandom(32),
                                                  signature=os.urandom(64)),
                transaction_pb2.SignedTransaction()]
        for tx in junk:
            with pytest.raises(grpc.RpcError) as info:
                stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(tx=tx), timeout=5)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(
                tx=transaction_pb2.SignedTransaction(body=b"x" * (8 << 20))), timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        time.sleep(1.0)
        assert _healthy(cluster)
        assert all(s["ready"] for s in cluster.wait_ready(30)), cluster.status()
    finally:
        cluster.stop()
