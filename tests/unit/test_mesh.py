"""PeerMesh on loopback with the real PQ channel (crypto.channel): connectivity, identity,
garbage, oversize, back-pressure, restart. Every test is bounded by trio.fail_after and
synchronises on events or channels, never on sleeps."""
from __future__ import annotations

import os
import random
import struct

import trio

from crypto.channel import ChannelConfig, Handshake
from crypto.schemes import Scheme, SeedSigner
from qenex_node.transport.channel import PqChannelFactory
from qenex_node.transport.framing import FrameDecoder
from qenex_node.transport.mesh import PeerMesh

CHAIN = "mesh-test"
HOST = "127.0.0.1"
FRAME_BYTES_MAX = 64 * 1024
TEST_TIMEOUT_S = 10
SIGNERS = [SeedSigner(Scheme.ML_DSA_87, bytes([i + 1]) * 32) for i in range(4)]
KEYS = {i: s.public_key for i, s in enumerate(SIGNERS)}


def make_mesh(node_id: int, ports: dict[int, int], nodes: int = 3, *,
              frame_bytes_max: int = FRAME_BYTES_MAX, send_queue_max: int = 64,
              listen_port: int = 0) -> PeerMesh:
    peer_keys = {i: KEYS[i] for i in range(nodes) if i != node_id}
    factory = PqChannelFactory(SIGNERS[node_id], peer_keys, CHAIN, frame_bytes_max)
    # Higher ids are never dialled by this node, so their port may be unknown (0) here.
    peers = {i: (HOST, ports.get(i, 0)) for i in range(nodes) if i != node_id}
    return PeerMesh(node_id, HOST, listen_port, peers, factory, frame_bytes_max,
                    send_queue_max, reconnect_backoff_max_ms=200, rng=random.Random(node_id))


async def run_mesh(mesh: PeerMesh, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Run `mesh` in its own cancel scope, handed back so a test can 'crash' the node."""
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(mesh.run)
            task_status.started(scope)


async def start_cluster(nursery: trio.Nursery, nodes: int = 3, **kwargs):
    meshes, scopes, ports = [], [], {}
    for node in range(nodes):  # in id order: each node dials only lower ids
        mesh = make_mesh(node, ports, nodes, **kwargs)
        scopes.append(await nursery.start(run_mesh, mesh))
        ports[node] = mesh.listen_port
        meshes.append(mesh)
    for mesh in meshes:
        await mesh.wait_connected(set(range(nodes)) - {mesh.node_id})
    return meshes, scopes, ports


async def until(mesh: PeerMesh, predicate) -> None:
    while not predicate():
        await mesh.wait_links_changed()


async def test_three_nodes_exchange_tagged_messages() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            meshes, _, _ = await start_cluster(nursery)
            for mesh in meshes:
                assert mesh.connected_peers() == frozenset({0, 1, 2}) - {mesh.node_id}
                assert mesh.broadcast(f"hello from {mesh.node_id}".encode()) == 2
            for mesh in meshes:
                got = {await mesh.incoming.receive() for _ in range(2)}
                assert got == {(p, f"hello from {p}".encode())
                               for p in range(3) if p != mesh.node_id}
            # Exactly one connection per pair: 3 in total, one opened on each side.
            assert sum(m.counters["connections_opened"] for m in meshes) == 6
            assert meshes[0].counters["frames_out"] == 2
            nursery.cancel_scope.cancel()


async def test_send_is_bounded_and_never_blocks() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            meshes, _, _ = await start_cluster(nursery, 2, send_queue_max=4)
            a = meshes[1]
            # No checkpoint between sends, so the writer cannot drain: the queue fills.
            # 4 fit the queue; an idle writer already waiting may take one more directly
            # (trio's scheduler is randomised, so either can happen).
            results = [a.send(0, b"x") for _ in range(7)]
            accepted = results.count(True)
            assert accepted in (4, 5) and results == [True] * accepted + [False] * (7 - accepted)
            assert a.counters["drops.queue_full"] == 7 - accepted
            assert a.send(3, b"x") is False and a.counters["drops.not_connected"] == 1
            assert a.send(0, b"\0" * (FRAME_BYTES_MAX + 1)) is False
            assert a.counters["drops.oversized"] == 1
            for _ in range(accepted):
                assert await meshes[0].incoming.receive() == (1, b"x")
            nursery.cancel_scope.cancel()


async def _raw_exchange(port: int, payload: bytes, *, half_close: bool = False) -> None:
    """Send bytes to a mesh port; return once the mesh has closed the connection."""
    stream = await trio.open_tcp_stream(HOST, port)
    await stream.send_all(payload)
    if half_close:
        await stream.send_eof()
    try:
        while await stream.receive_some(65536):
            pass  # e.g. a handshake reply; we only wait for the close
    except trio.BrokenResourceError:
        pass  # reset instead of FIN: closed all the same
    await stream.aclose()


async def test_garbage_clients_are_dropped_and_counted() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            meshes, _, ports = await start_cluster(nursery)
            target = meshes[0]
            rng = random.Random(7)
            await _raw_exchange(ports[0], struct.pack(">I", 2**31) + b"junk")  # oversized
            await _raw_exchange(ports[0], struct.pack(">I", 5) + b"\x63abcd")  # bad type
            await _raw_exchange(ports[0], struct.pack(">I", 100) + b"short", half_close=True)
            hello = bytes([1]) + bytes([1]) + b"\xff" * 1568 + bytes(32)  # invalid KEM key
            await _raw_exchange(ports[0], struct.pack(">I", len(hello)) + hello)
            for _ in range(5):
                await _raw_exchange(ports[0], rng.randbytes(rng.randrange(1, 3000)),
                                    half_close=True)
            failures = sum(v for k, v in target.counters.items()
                           if k.startswith("handshake_failures."))
            assert failures == 9
            assert target.counters["handshake_failures.OVERSIZED"] >= 1
            assert target.counters["handshake_failures.EOF"] >= 1
            # The authenticated peers never noticed.
            assert target.connected_peers() == {1, 2}
            assert meshes[2].send(0, b"still here")
            assert await target.incoming.receive() == (2, b"still here")
            nursery.cancel_scope.cancel()


async def test_unknown_key_is_refused() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            meshes, _, ports = await start_cluster(nursery, 2)
            stranger = SeedSigner(Scheme.ML_DSA_87, os.urandom(32))
            # The stranger knows node 0's key and completes its side of the handshake;
            # node 0 must refuse it at FINISH.
            handshake = Handshake.initiator(stranger, [KEYS[0]], ChannelConfig(CHAIN),
                                            expected_peer=KEYS[0])
            stream = await trio.open_tcp_stream(HOST, ports[0])
            await stream.send_all(handshake.start())
            decoder = FrameDecoder(65536, keep_header=True)
            frames: list[bytes] = []
            while not frames:
                frames = decoder.feed(await stream.receive_some(65536))
            await stream.send_all(handshake.receive(frames[0]))
            try:
                assert await stream.receive_some(65536) == b""
            except trio.BrokenResourceError:
                pass
            await stream.aclose()
            assert meshes[0].counters["handshake_failures.HANDSHAKE"] == 1
            assert meshes[0].connected_peers() == {1}
            nursery.cancel_scope.cancel()


async def test_oversized_frame_from_a_peer_drops_only_that_connection() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            ports: dict[int, int] = {}
            small = make_mesh(0, ports)
            await nursery.start(run_mesh, small)
            ports[0] = small.listen_port
            big = make_mesh(1, ports, frame_bytes_max=4 * FRAME_BYTES_MAX)  # misconfigured
            await nursery.start(run_mesh, big)
            ports[1] = big.listen_port
            third = make_mesh(2, ports)
            await nursery.start(run_mesh, third)
            await small.wait_connected({1, 2})
            await third.wait_connected({1})
            assert big.send(0, b"\0" * (2 * FRAME_BYTES_MAX))
            await until(small, lambda: small.counters["connections_closed.OVERSIZED"] == 1)
            assert third.send(0, b"unaffected")
            assert await small.incoming.receive() == (2, b"unaffected")
            await small.wait_connected({1})  # node 1 dials again after back-off
            assert big.send(0, b"small is fine")
            assert await small.incoming.receive() == (1, b"small is fine")
            nursery.cancel_scope.cancel()


async def test_reconnect_after_peer_restart() -> None:
    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            meshes, scopes, ports = await start_cluster(nursery)
            scopes[1].cancel()  # node 1 "crashes": its sockets close
            await until(meshes[0], lambda: 1 not in meshes[0].connected_peers())
            await until(meshes[2], lambda: 1 not in meshes[2].connected_peers())
            assert meshes[0].send(1, b"lost") is False
            # Node 1 said an authenticated goodbye (CLOSE) before its sockets closed.
            assert meshes[0].counters["connections_closed.EOF"] == 1
            reborn = make_mesh(1, ports, listen_port=ports[1])
            await nursery.start(run_mesh, reborn)
            await reborn.wait_connected({0, 2})
            await meshes[0].wait_connected({1})
            await meshes[2].wait_connected({1})
            assert meshes[2].send(1, b"welcome back")
            assert await reborn.incoming.receive() == (2, b"welcome back")
            assert reborn.send(0, b"hi")
            assert await meshes[0].incoming.receive() == (1, b"hi")
            nursery.cancel_scope.cancel()


async def test_envelopes_end_to_end() -> None:
    from consensus.types import signing_bytes
    from qenex_node.core.sync import SyncRequest, TransactionBatch
    from qenex_node.transport.codec import encode_envelope
    from qenex_node.transport.envelopes import EnvelopeOutbox, receive_envelopes

    with trio.fail_after(TEST_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            meshes, _, _ = await start_cluster(nursery, 2)
            outbox = EnvelopeOutbox(meshes[1], CHAIN)
            request = SyncRequest(5, 64, 1)
            assert meshes[1].send(0, b"not protobuf at all \xff\xff")
            assert meshes[1].send(0, encode_envelope(CHAIN, 0, request, b"sig"))  # claims 0
            assert outbox.send(0, request, b"sig")
            assert outbox.broadcast(TransactionBatch((b"tx",), 1), b"sig2") == 1
            received = receive_envelopes(meshes[0], CHAIN, 2, envelope_bytes_max=FRAME_BYTES_MAX)
            peer, envelope = await received.__anext__()
            assert (peer, envelope.message, envelope.signature) == (1, request, b"sig")
            assert signing_bytes(CHAIN, envelope.message) == signing_bytes(CHAIN, request)
            peer, envelope = await received.__anext__()
            assert envelope.message == TransactionBatch((b"tx",), 1)
            assert meshes[0].counters["decode_errors.MALFORMED"] == 1
            assert meshes[0].counters["decode_errors.SENDER_MISMATCH"] == 1
            await received.aclose()
            nursery.cancel_scope.cancel()
