"""Start and stop the client gRPC server: `qenex.v1.Node`, `grpc.health.v1.Health` and
server reflection on one port.

Limits: `grpc_workers_max` threads run handlers; grpcio answers calls beyond
`concurrent_rpcs_max` (in flight, counting queued ones) with RESOURCE_EXHAUSTED instead of
queueing them without bound; a message larger than `grpc_message_bytes_max` is refused by
grpcio with RESOURCE_EXHAUSTED before any handler sees it.

Health: the overall status ("") and "qenex.v1.Node" are SERVING only while the backend
says `ready`. `Check` asks the backend each time (so it is never stale); `Watch`
subscribers see what the runtime last pushed with `handle.set_serving(...)`.

The runtime calls `start_grpc_server` from any thread (it only starts grpcio's own
threads) and `handle.stop(grace_s)` from a worker thread (`trio.to_thread.run_sync`),
because stopping waits for in-flight handlers, which may be waiting on the trio loop.
"""
from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass

import grpc
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proto.qenex.v1 import node_pb2, node_pb2_grpc
from qenex_node.api.backend import NodeBackend
from qenex_node.api.codec import VoteEncoder
from qenex_node.api.service import NodeService

SERVICE_NAME = node_pb2.DESCRIPTOR.services_by_name["Node"].full_name  # "qenex.v1.Node"
GRPC_WORKERS_MAX_DEFAULT = 16
GRPC_MESSAGE_BYTES_MAX_DEFAULT = 4 * 1024 * 1024  # a 1,000-block sync page fits elsewhere
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ReadinessHealth(health.HealthServicer):
    """The standard health service, asking the backend for readiness on each Check."""

    def __init__(self, backend: NodeBackend, token: trio.lowlevel.TrioToken) -> None:
        super().__init__(experimental_non_blocking=True)
        self._backend = backend
        self._token = token

    def set_serving(self, serving: bool) -> None:
        status = _SERVING if serving else _NOT_SERVING
        for name in ("", SERVICE_NAME):
            self.set(name, status)

    def _backend_ready(self) -> bool:
        try:
            return bool(trio.from_thread.run(self._backend.status, trio_token=self._token).ready)
        except trio.RunFinishedError:
            return False  # the runtime is gone: certainly not serving

    def Check(self, request, context):  # type: ignore[no-untyped-def]
        if request.service in ("", SERVICE_NAME):
            self.set_serving(self._backend_ready())
        return super().Check(request, context)


@dataclass
class GrpcServerHandle:
    server: grpc.Server
    port: int
    health: ReadinessHealth

    def set_serving(self, serving: bool) -> None:
        self.health.set_serving(serving)

    def stop(self, grace_s: float | None = 1.0) -> None:
        """Refuse new calls, let in-flight ones finish for `grace_s`, then cancel them.

        Blocks until done; never call it on the trio thread (handlers may need the loop).
        """
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def _options(message_bytes_max: int) -> list[tuple[str, int]]:
    return [("grpc.max_receive_message_length", message_bytes_max),
            ("grpc.max_send_message_length", message_bytes_max),
            ("grpc.so_reuseport", 0)]  # port 0 must really mean a port of our own


def start_grpc_server(backend: NodeBackend, trio_token: trio.lowlevel.TrioToken, host: str,
                      port: int, *, grpc_workers_max: int = GRPC_WORKERS_MAX_DEFAULT,
                      grpc_message_bytes_max: int = GRPC_MESSAGE_BYTES_MAX_DEFAULT,
                      concurrent_rpcs_max: int | None = None,
                      watch_streams_max: int | None = None,
                      vote_encoder: VoteEncoder | None = None) -> GrpcServerHandle:
    """Bind `host:port` (0 = a free port; see `.port`), start serving, return the handle.

    Health starts NOT_SERVING until the backend reports ready. Raises RuntimeError if the
    address cannot be bound.
    """
    if grpc_workers_max < 2:
        raise ValueError("grpc_workers_max must be at least 2 (health checks need a thread)")
    concurrent = concurrent_rpcs_max if concurrent_rpcs_max is not None else 4 * grpc_workers_max
    watchers = watch_streams_max if watch_streams_max is not None else grpc_workers_max // 2
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=grpc_workers_max,
                                                    thread_name_prefix="qenex-grpc"),
                         options=_options(grpc_message_bytes_max),
                         maximum_concurrent_rpcs=concurrent)
    service = NodeService(backend, trio_token, watch_streams_max=watchers,
                          vote_encoder=vote_encoder)
    node_pb2_grpc.add_NodeServicer_to_server(service, server)
    health_service = ReadinessHealth(backend, trio_token)
    health_service.set_serving(False)
    health_pb2_grpc.add_HealthServicer_to_server(health_service, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    bound_port = server.add_insecure_port(f"{host}:{port}")
    if bound_port == 0:
        raise RuntimeError(f"cannot bind the gRPC server to {host}:{port}")
    server.start()
    return GrpcServerHandle(server, bound_port, health_service)
