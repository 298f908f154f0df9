"""A single-node dev node in a background thread: `InMemoryBackend` + the gRPC server on
their own trio loop. For tests, notebooks and SDK examples; the daemon uses the runtime.

    with DevNode(Ledger(genesis)) as node:
        client = QenexClient(node.target)
        ...
        node.commit()           # cut and commit a block now
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import trio

from ledger.ledger import Ledger
from qenex_node.api.memory_backend import InMemoryBackend
from qenex_node.api.server import GrpcServerHandle, start_grpc_server

START_TIMEOUT_S = 10.0


class DevNode:
    def __init__(self, ledger: Ledger, *, host: str = "127.0.0.1", port: int = 0,
                 block_time_ms: int | None = None, **server_options: Any) -> None:
        self.backend = InMemoryBackend(ledger)
        self._host, self._port = host, port
        self._block_time_ms = block_time_ms
        self._server_options = server_options
        self._started = threading.Event()
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._run_loop, name="qenex-devnode", daemon=True)
        self._error: BaseException | None = None
        self.token: trio.lowlevel.TrioToken | None = None
        self.handle: GrpcServerHandle | None = None

    @property
    def target(self) -> str:
        assert self.handle is not None, "not started"
        return f"{self._host}:{self.handle.port}"

    def _run_loop(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
            self._error = exc
            self._started.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                if self._block_time_ms:
                    await nursery.start(self.backend.run, self._block_time_ms)
                self._started.set()
                await trio.sleep_forever()

    def start(self) -> DevNode:
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S) or self._error is not None:
            raise RuntimeError(f"dev node did not start: {self._error!r}")
        assert self.token is not None
        self.handle = start_grpc_server(self.backend, self.token, self._host, self._port,
                                        **self._server_options)
        self.handle.set_serving(self.backend.ready)
        return self

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` (a coroutine function) on the node's trio loop."""
        return trio.from_thread.run(fn, *args, trio_token=self.token)

    def commit(self, allow_empty: bool = False) -> Any:
        return trio.from_thread.run(lambda: self.backend.commit_pending(allow_empty=allow_empty),
                                    trio_token=self.token)

    def stop(self, grace_s: float = 0.2) -> None:
        if self.handle is not None:
            self.handle.stop(grace_s)
            self.handle = None
        if self._scope is not None and self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self._scope.cancel, trio_token=self.token)
            except trio.RunFinishedError:
                pass  # already over: nothing left to cancel
        self._thread.join(START_TIMEOUT_S)

    def __enter__(self) -> DevNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
