"""Bridge `backend.watch()` (an async iterator living in trio) to a gRPC server stream
(a sync generator running on one of grpcio's threads).

One trio system task (the pump) iterates the backend's iterator from start to end, so the
iterator may hold cancel scopes and channels across its yields, and hands events to the
gRPC thread over a bounded trio memory channel; the gRPC thread pulls them one at a time
with `trio.from_thread.run(receive)`. When the client goes away, grpcio runs the RPC's
termination callback, which cancels the pump; the pump closes its send side, so the pending
`receive` ends with EndOfChannel and the generator returns. A full channel suspends the
pump (back-pressure), and the backend's own bounded per-subscriber queue then decides when
a watcher is too slow (it ends the iterator with BackendRefusal("WATCH_LAGGED")).
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import trio

from qenex_node.api.backend import BackendRefusal, NodeBackend, NodeEvent

log = logging.getLogger(__name__)

WATCH_BUFFER_EVENTS_MAX = 256


@dataclass(frozen=True, slots=True)
class WatchFailure:
    """The last item of a stream that ended with an error instead of cleanly."""
    reason: str
    detail: str


async def _close_iterator(events: AsyncIterator[NodeEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def _forward(backend: NodeBackend, from_height: int,
                   send: trio.MemorySendChannel) -> WatchFailure | None:
    events = backend.watch(from_height)
    try:
        async for event in events:
            await send.send(event)
    except BackendRefusal as exc:
        return WatchFailure(exc.reason, exc.detail)
    finally:
        with trio.CancelScope(shield=True):  # closing must finish even while cancelled
            await _close_iterator(events)
    return None


async def _pump(backend: NodeBackend, from_height: int, send: trio.MemorySendChannel,
                scope: trio.CancelScope) -> None:
    async with send:
        with scope:
            try:
                failure = await _forward(backend, from_height, send)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the gRPC side closed its end: nobody to tell
            except Exception as exc:
                # A backend bug. This is a system task, where an escaping exception would
                # crash the whole trio run, so log it and end this one stream with INTERNAL.
                log.exception("watch backend failed")
                failure = WatchFailure("INTERNAL", f"{type(exc).__name__}: {exc}")
            if failure is not None:
                try:
                    await send.send(failure)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return


def _start(backend: NodeBackend, from_height: int,
           buffer_max: int) -> tuple[trio.MemoryReceiveChannel, trio.CancelScope]:
    # Runs in the trio thread (via from_thread.run_sync). A system task because the gRPC
    # thread owns no nursery; its lifetime is bounded by the cancel scope we hand back.
    send, receive = trio.open_memory_channel(buffer_max)
    scope = trio.CancelScope()
    trio.lowlevel.spawn_system_task(_pump, backend, from_height, send, scope,
                                    name="qenex.api.watch")
    return receive, scope


class EventBridge:
    """One WatchEvents call: start the pump, pull events, stop the pump."""

    def __init__(self, backend: NodeBackend, token: trio.lowlevel.TrioToken,
                 buffer_max: int = WATCH_BUFFER_EVENTS_MAX) -> None:
        self._backend = backend
        self._token = token
        self._buffer_max = buffer_max
        self._scope: trio.CancelScope | None = None
        self._receive: trio.MemoryReceiveChannel | None = None

    def start(self, from_height: int) -> None:
        """Raises trio.RunFinishedError when the runtime has stopped."""
        self._receive, self._scope = trio.from_thread.run_sync(
            _start, self._backend, from_height, self._buffer_max, trio_token=self._token)

    def stop(self) -> None:
        """Idempotent; safe from any non-trio thread (grpcio's termination callback)."""
        if self._scope is None or self._receive is None:
            return
        try:
            trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
            trio.from_thread.run_sync(self._receive.close, trio_token=self._token)
        except trio.RunFinishedError:
            pass  # the trio run is over, and the pump and channel ended with it

    def events(self) -> Iterator[NodeEvent | WatchFailure]:
        """Pull until the stream ends; raises trio.RunFinishedError if the runtime stops."""
        assert self._receive is not None, "start() first"
        while True:
            try:
                item = trio.from_thread.run(self._receive.receive, trio_token=self._token)
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return
            yield item
            if isinstance(item, WatchFailure):
                return
