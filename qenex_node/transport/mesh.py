"""Authenticated TCP mesh between validators (trio).

Theory of operation
-------------------
* One connection per pair. The node with the higher id dials the lower one; a node accepts
  only peers with a higher id. A newer connection from the same (authenticated) peer
  replaces the older one: after a restart the old socket may not have failed yet.
* Identity comes from the channel handshake (the key the peer proved), never from a
  claimed id, and that identity tags every payload put on `incoming`.
* Sending never blocks the driver: `send` puts into a bounded per-peer queue
  (`send_queue_max`) and returns False (counted) when full or not connected. Consensus
  protocols retransmit, so a drop costs latency, never safety; a blocked driver would.
* Receiving applies back-pressure instead: the reader awaits space on the bounded
  `incoming` channel, so a slow driver slows TCP reads, and the peers' queues drop.
* Any fault on a connection (garbage, oversized or truncated frames, failed handshake,
  unknown key, socket error) closes that connection only, and is counted by reason.
* Dialling retries with capped exponential back-off and jitter, so a restarted cluster
  does not reconnect in lock-step.
"""
from __future__ import annotations

import collections
import random
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
import trio

from qenex_node.transport.channel import ChannelFactory, ChannelFailure, PeerChannel, PeerHandshake
from qenex_node.transport.framing import FrameDecoder, FrameError

READ_CHUNK_BYTES = 64 * 1024
INCOMING_QUEUE_MAX = 1_024  # payloads decoded but not yet taken by the driver
HANDSHAKES_PENDING_MAX = 64  # unauthenticated inbound connections at once
HANDSHAKE_TIMEOUT_MS = 5_000
CONNECT_TIMEOUT_MS = 5_000
CLOSE_TIMEOUT_MS = 200  # for the farewell CLOSE frame on shutdown
RECONNECT_BACKOFF_MIN_MS = 50

_log = structlog.get_logger("qenex.transport")

# Failures of one connection: counted and the connection closed; never Cancelled.
_CONNECTION_ERRORS = (ChannelFailure, FrameError, trio.BrokenResourceError,
                      trio.ClosedResourceError, OSError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (ChannelFailure, FrameError)):
        return exc.reason
    if isinstance(exc, trio.TooSlowError):
        return "TIMEOUT"
    return "IO"


@dataclass(slots=True)
class _Link:
    peer: int
    queue: trio.MemorySendChannel[bytes]
    scope: trio.CancelScope


class PeerMesh:
    def __init__(self, node_id: int, listen_host: str, listen_port: int,
                 peers: dict[int, tuple[str, int]], channel_factory: ChannelFactory,
                 frame_bytes_max: int, send_queue_max: int, reconnect_backoff_max_ms: int,
                 *, incoming_queue_max: int = INCOMING_QUEUE_MAX,
                 handshake_timeout_ms: int = HANDSHAKE_TIMEOUT_MS,
                 reconnect_backoff_min_ms: int = RECONNECT_BACKOFF_MIN_MS,
                 rng: random.Random | None = None) -> None:
        if node_id in peers:
            raise ValueError("peers must not include this node")
        self.node_id = node_id
        self.listen_host = listen_host
        self.listen_port = listen_port  # replaced by the bound port once listening
        self.peers = dict(peers)
        self.channel_factory = channel_factory
        self.frame_bytes_max = frame_bytes_max
        self.send_queue_max = send_queue_max
        self.reconnect_backoff_max_ms = reconnect_backoff_max_ms
        self.reconnect_backoff_min_ms = min(reconnect_backoff_min_ms, reconnect_backoff_max_ms)
        self.handshake_timeout_ms = handshake_timeout_ms
        # Jitter only: an OS RNG unless a test wants a seeded one.
        self._rng = rng if rng is not None else random.SystemRandom()
        self._incoming_send, self.incoming = trio.open_memory_channel[tuple[int, bytes]](
            incoming_queue_max)
        self.counters: collections.Counter[str] = collections.Counter()
        self._links: dict[int, _Link] = {}
        self._links_changed = trio.Event()
        self._handshakes_pending = 0

    # ------------------------------------------------------------ public API
    def send(self, peer: int, payload: bytes) -> bool:
        """Queue `payload` for `peer` without blocking; False (and a counted drop) if not."""
        if len(payload) > self.frame_bytes_max:
            return self._drop("oversized")
        link = self._links.get(peer)
        if link is None:
            return self._drop("not_connected")
        try:
            link.queue.send_nowait(payload)
        except trio.WouldBlock:
            return self._drop("queue_full")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return self._drop("not_connected")  # the link is being torn down
        return True

    def broadcast(self, payload: bytes) -> int:
        """`send` to every peer (not to ourselves); returns how many accepted it."""
        return sum(self.send(peer, payload) for peer in sorted(self.peers))

    def connected_peers(self) -> frozenset[int]:
        return frozenset(self._links)

    async def wait_connected(self, peers: Iterable[int]) -> None:
        """Return once every peer in `peers` has an authenticated connection."""
        wanted = frozenset(peers)
        while not wanted <= self.connected_peers():
            await self._links_changed.wait()

    async def wait_links_changed(self) -> None:
        """Return at the next connect or disconnect (for readiness checks and tests)."""
        await self._links_changed.wait()

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, dial lower-id peers, serve until cancelled. `started` gets the bound port."""
        listeners = await trio.open_tcp_listeners(self.listen_port, host=self.listen_host)
        self.listen_port = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._serve, listeners)
                for peer in sorted(self.peers):
                    if peer < self.node_id:
                        nursery.start_soon(self._dial_forever, peer)
                task_status.started(self.listen_port)
        finally:
            self._incoming_send.close()

    # ------------------------------------------------------------ helpers
    def _drop(self, reason: str) -> bool:
        self.counters[f"drops.{reason}"] += 1
        return False

    def _notify_links_changed(self) -> None:
        self._links_changed.set()
        self._links_changed = trio.Event()

    # ------------------------------------------------------------ accepting
    async def _serve(self, listeners: list[trio.SocketListener]) -> None:
        try:
            await trio.serve_listeners(self._accept, listeners)
        finally:
            for listener in listeners:
                await trio.aclose_forcefully(listener)

    async def _accept(self, stream: trio.SocketStream) -> None:
        # Unauthenticated sockets are cheap to open: bound how many may be handshaking.
        if self._handshakes_pending >= HANDSHAKES_PENDING_MAX:
            self.counters["handshake_failures.TOO_MANY_PENDING"] += 1
            await trio.aclose_forcefully(stream)
            return
        await self._connection(stream, self.channel_factory.responder(), expected_peer=None)

    # ------------------------------------------------------------ dialling
    async def _dial_forever(self, peer: int) -> None:
        backoff_ms = self.reconnect_backoff_min_ms
        while True:
            host, port = self.peers[peer]
            stream = None
            with trio.move_on_after(CONNECT_TIMEOUT_MS / 1000):
                try:
                    stream = await trio.open_tcp_stream(host, port)
                except OSError as exc:
                    self.counters["dial_failures"] += 1
                    _log.debug("dial failed", peer=peer, error=str(exc))
            if stream is not None:
                self.counters["dials"] += 1
                handshake = self.channel_factory.initiator(peer)
                if await self._connection(stream, handshake, expected_peer=peer):
                    backoff_ms = self.reconnect_backoff_min_ms  # it worked: retry quickly
            # "Equal jitter": wait between half and all of the current back-off.
            await trio.sleep(self._rng.uniform(backoff_ms / 2, backoff_ms) / 1000)
            backoff_ms = min(backoff_ms * 2, self.reconnect_backoff_max_ms)

    # ------------------------------------------------------------ one connection
    async def _connection(self, stream: trio.SocketStream, handshake: PeerHandshake,
                          expected_peer: int | None) -> bool:
        """Handshake, then carry frames until the connection ends. True if authenticated."""
        decoder = FrameDecoder(self.channel_factory.wire_frame_bytes_max, keep_header=True)
        self._handshakes_pending += 1
        try:
            with trio.fail_after(self.handshake_timeout_ms / 1000):
                channel, leftover = await self._handshake(stream, handshake, decoder)
            self._check_identity(channel.peer_id, expected_peer)
        except (*_CONNECTION_ERRORS, trio.TooSlowError) as exc:
            self.counters[f"handshake_failures.{_reason(exc)}"] += 1
            _log.info("peer handshake failed", expected_peer=expected_peer,
                      reason=_reason(exc), detail=str(exc)[:200])
            await trio.aclose_forcefully(stream)
            return False
        finally:
            self._handshakes_pending -= 1
        await self._run_link(stream, channel, decoder, leftover)
        return True

    def _check_identity(self, peer: int, expected_peer: int | None) -> None:
        if expected_peer is not None and peer != expected_peer:
            raise ChannelFailure("WRONG_PEER", f"dialled {expected_peer}, reached {peer}")
        if expected_peer is None and (peer <= self.node_id or peer not in self.peers):
            # Tie-break: only higher ids dial us, so each pair has exactly one connection.
            raise ChannelFailure("WRONG_DIRECTION", f"peer {peer} must not dial {self.node_id}")

    async def _handshake(self, stream: trio.SocketStream, handshake: PeerHandshake,
                         decoder: FrameDecoder) -> tuple[PeerChannel, list[bytes]]:
        """Run the handshake; returns the channel and frames that arrived right after it."""
        first = handshake.start()
        if first:
            await stream.send_all(first)
        while True:
            data = await stream.receive_some(READ_CHUNK_BYTES)
            if not data:
                raise ChannelFailure("EOF", "peer closed during the handshake")
            frames = decoder.feed(data)
            for index, frame in enumerate(frames):
                reply = handshake.receive(frame)
                if reply:
                    await stream.send_all(reply)
                if handshake.complete:
                    return handshake.channel(), frames[index + 1:]

    async def _run_link(self, stream: trio.SocketStream, channel: PeerChannel,
                        decoder: FrameDecoder, leftover: list[bytes]) -> None:
        peer = channel.peer_id
        queue_in, queue_out = trio.open_memory_channel[bytes](self.send_queue_max)
        with trio.CancelScope() as scope:
            link = _Link(peer, queue_in, scope)
            self._install(link)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop, stream, channel, queue_out,
                                       nursery.cancel_scope)
                    await self._read_loop(stream, channel, decoder, leftover)
                    nursery.cancel_scope.cancel()
            finally:
                self._uninstall(link)
                queue_in.close()
                queue_out.close()
                await self._say_goodbye(stream, channel)
                await trio.aclose_forcefully(stream)
        if scope.cancelled_caught:
            self.counters["connections_replaced"] += 1

    async def _say_goodbye(self, stream: trio.SocketStream, channel: PeerChannel) -> None:
        # An authenticated CLOSE lets the peer tell a clean shutdown from a truncated
        # stream. Shielded and bounded: this runs while we are being cancelled.
        with trio.move_on_after(CLOSE_TIMEOUT_MS / 1000) as scope:
            scope.shield = True
            try:
                await stream.send_all(channel.close())
            except _CONNECTION_ERRORS:
                pass  # the connection is already gone: nothing left to tell the peer

    def _install(self, link: _Link) -> None:
        old = self._links.get(link.peer)
        if old is not None:
            old.scope.cancel()  # a newer connection from the same peer wins
        self._links[link.peer] = link
        self.counters["connections_opened"] += 1
        _log.info("peer connected", peer=link.peer)
        self._notify_links_changed()

    def _uninstall(self, link: _Link) -> None:
        if self._links.get(link.peer) is link:
            del self._links[link.peer]
            _log.info("peer disconnected", peer=link.peer)
            self._notify_links_changed()

    async def _read_loop(self, stream: trio.SocketStream, channel: PeerChannel,
                         decoder: FrameDecoder, frames: list[bytes]) -> None:
        peer = channel.peer_id
        try:
            while True:
                for frame in frames:
                    payload = channel.open(frame)
                    self.counters["frames_in"] += 1
                    self.counters["bytes_in"] += len(frame)
                    if payload is not None:
                        await self._incoming_send.send((peer, payload))
                data = await stream.receive_some(READ_CHUNK_BYTES)
                if not data:
                    decoder.at_eof()
                    channel.at_eof()
                    self.counters["connections_closed.EOF"] += 1
                    return
                frames = decoder.feed(data)
        except _CONNECTION_ERRORS as exc:
            self.counters[f"connections_closed.{_reason(exc)}"] += 1
            _log.info("peer connection dropped", peer=peer, reason=_reason(exc),
                      detail=str(exc)[:200])

    async def _write_loop(self, stream: trio.SocketStream, channel: PeerChannel,
                          queue_out: trio.MemoryReceiveChannel[bytes],
                          link_scope: trio.CancelScope) -> None:
        try:
            async for payload in queue_out:
                wire = channel.seal(payload)
                await stream.send_all(wire)
                self.counters["frames_out"] += 1
                self.counters["bytes_out"] += len(wire)
        except _CONNECTION_ERRORS as exc:
            self.counters[f"connections_closed.{_reason(exc)}"] += 1
        finally:
            link_scope.cancel()  # either direction failing ends the connection
