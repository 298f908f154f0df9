"""Prometheus metrics and the HTTP endpoints on the metrics port.

`/metrics` (Prometheus text format), `/health` (200 while the process runs its loop) and
`/ready` (200 once the node has its keys, storage and a quorum of peers; 503 otherwise)
are served by one small trio server: prometheus_client's own server cannot answer the
other two paths, and a thread server would cross into trio for every probe.
"""
from __future__ import annotations

from collections.abc import Callable

import trio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REQUEST_BYTES_MAX = 8 * 1024
REQUEST_TIMEOUT_S = 5
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.height = Gauge("qenex_height", "Committed block height", registry=reg)
        self.view = Gauge("qenex_view", "View, term or round of the engine", registry=reg)
        self.leader = Gauge("qenex_leader", "Validator index of the leader (-1 unknown)",
                            registry=reg)
        self.is_leader = Gauge("qenex_is_leader", "1 when this node leads", registry=reg)
        self.committed_txs = Counter("qenex_committed_transactions",
                                     "Transactions in committed blocks", ["result"],
                                     registry=reg)
        self.commit_latency = Histogram("qenex_submit_to_commit_seconds",
                                        "Submit-to-commit latency of this node's clients",
                                        buckets=LATENCY_BUCKETS_S, registry=reg)
        self.mempool_txs = Gauge("qenex_mempool_transactions", "Transactions waiting",
                                 registry=reg)
        self.peers_connected = Gauge("qenex_peers_connected", "Authenticated peer links",
                                     registry=reg)
        self.verify_seconds = Histogram("qenex_signature_verify_seconds",
                                        "Time to verify one peer message signature",
                                        buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01,
                                                 0.05), registry=reg)
        self.view_changes = Counter("qenex_view_changes", "View changes / elections seen",
                                    registry=reg)
        self.rejected = Counter("qenex_rejected_inputs", "Refused inputs by source and reason",
                                ["source", "reason"], registry=reg)
        self.step_seconds = Histogram("qenex_engine_step_seconds", "Engine step + effects",
                                      buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5),
                                      registry=reg)
        self.messages = Counter("qenex_consensus_messages", "Consensus messages",
                                ["direction"], registry=reg)
        self.evidence = Counter("qenex_evidence_committed", "Committed evidence of "
                                "equivocation, by accused validator", ["validator"],
                                registry=reg)
        self.reads = Counter("qenex_reads", "Client reads by consistency and outcome (ok, "
                             "BEHIND, TIMEOUT, refused)", ["consistency", "outcome"],
                             registry=reg)
        self.read_wait = Histogram("qenex_read_wait_seconds", "Time a read waited for its "
                                   "read point and for the ledger to reach it",
                                   ["consistency"], buckets=LATENCY_BUCKETS_S, registry=reg)
        # Refused REST/WebSocket/GraphQL requests (malformed JSON, floats, oversized bodies,
        # unknown routes, too many or too slow subscribers...) by the problem's reason.
        self.rest_rejected = Counter("qenex_rest_rejected", "REST gateway requests refused, "
                                     "by reason", ["reason"], registry=reg)
        self.rest_subscribers = Gauge("qenex_rest_ws_subscribers", "Open /v1/events "
                                      "WebSocket subscriptions", registry=reg)
        self.transport = Gauge("qenex_transport_events", "Peer mesh counters (frames, bytes, "
                               "drops, handshake failures) since start", ["event"],
                               registry=reg)

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def _answer(stream: trio.abc.Stream, metrics: NodeMetrics,
                  ready: Callable[[], bool]) -> None:
    request = b""
    with trio.move_on_after(REQUEST_TIMEOUT_S):
        while b"\r\n\r\n" not in request and len(request) < REQUEST_BYTES_MAX:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            request += chunk
    parts = request.split(b" ", 2)
    path = parts[1].split(b"?", 1)[0] if len(parts) > 1 and parts[0] == b"GET" else b""
    if path == b"/metrics":
        status, body, kind = b"200 OK", metrics.render(), CONTENT_TYPE_LATEST.encode()
    elif path == b"/health":
        status, body, kind = b"200 OK", b"ok\n", b"text/plain"
    elif path == b"/ready":
        ok = ready()
        status = b"200 OK" if ok else b"503 Service Unavailable"
        body, kind = (b"ready\n" if ok else b"not ready\n"), b"text/plain"
    else:
        status, body, kind = b"404 Not Found", b"not found\n", b"text/plain"
    head = (b"HTTP/1.1 " + status + b"\r\nContent-Type: " + kind + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n")
    await stream.send_all(head + body)


async def serve_http(host: str, port: int, metrics: NodeMetrics, ready: Callable[[], bool],
                     *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve /metrics, /health, /ready; `task_status.started(port)` once listening."""
    listeners = await trio.open_tcp_listeners(port, host=host)

    async def handle(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                await _answer(stream, metrics, ready)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the client went away mid-answer: nothing to clean up

    bound = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, handle, listeners)
        task_status.started(bound)
