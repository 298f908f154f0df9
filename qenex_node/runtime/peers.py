"""The node's side of the peer mesh: envelopes out, verified inputs in.

Outbound: `transport.envelopes.EnvelopeOutbox` encodes a signed message into a
ConsensusEnvelope and hands it to the mesh (a bounded queue per peer; a full queue drops,
which every engine tolerates by design and which is counted). Inbound: the one decode path,
`transport.envelopes.receive_envelopes` (size within `frame_bytes_max`, version, chain,
sender range, schema, signer = the peer the channel authenticated), then the ML-DSA
signature is verified on a worker thread and the message goes to the driver, which lets
the replica core route it. Bad input of any kind is counted by reason and dropped; it
never stops the loop. New connections are reported to the driver too (`PeerConnected`),
so the two sides exchange their heights at once.
"""
from __future__ import annotations

import time

import structlog
import trio

from consensus.api import Verifier
from qenex_node.runtime.driver import VERIFY_THREADS_MAX, PeerConnected, PeerMessage
from qenex_node.runtime.metrics import NodeMetrics
from qenex_node.transport.envelopes import EnvelopeOutbox, receive_envelopes
from qenex_node.transport.mesh import PeerMesh


class PeerLink:
    def __init__(self, *, mesh: PeerMesh, chain_id: str, nodes: int, envelope_bytes_max: int,
                 verifier: Verifier, inputs: trio.MemorySendChannel[object],
                 metrics: NodeMetrics, log: structlog.BoundLogger) -> None:
        self.mesh = mesh
        self.chain_id = chain_id
        self.nodes = nodes
        self.envelope_bytes_max = envelope_bytes_max
        self.verifier = verifier
        self.inputs = inputs
        self.metrics = metrics
        self.log = log
        self.outbox = EnvelopeOutbox(mesh, chain_id)
        self._verify_limit = trio.CapacityLimiter(VERIFY_THREADS_MAX)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.mesh.run)
            nursery.start_soon(self._receive_loop)
            nursery.start_soon(self._watch_links)
            task_status.started()

    def connected(self) -> frozenset[int]:
        return self.mesh.connected_peers()

    # ------------------------------------------------------------ outbound (driver Outbox)
    def send(self, peer: int, message: object, signature: bytes) -> bool:
        return self.outbox.send(peer, message, signature)

    def broadcast(self, message: object, signature: bytes) -> int:
        return self.outbox.broadcast(message, signature)

    # ------------------------------------------------------------ inbound
    async def _receive_loop(self) -> None:
        async for peer, envelope in receive_envelopes(self.mesh, self.chain_id, self.nodes,
                                                      envelope_bytes_max=self.envelope_bytes_max):
            started = time.perf_counter()
            ok = await trio.to_thread.run_sync(self.verifier.verify, envelope.sender,
                                               envelope.message, envelope.signature,
                                               limiter=self._verify_limit)
            self.metrics.verify_seconds.observe(time.perf_counter() - started)
            if not ok:
                self.metrics.rejected.labels("peer", "BAD_SIGNATURE").inc()
                self.log.debug("peer_input_refused", reason="BAD_SIGNATURE", peer=peer)
                continue
            self.metrics.messages.labels("in").inc()
            await self.inputs.send(PeerMessage(peer, envelope.message, envelope.signature))

    async def _watch_links(self) -> None:
        known: frozenset[int] = frozenset()
        while True:
            now = self.mesh.connected_peers()
            for peer in sorted(now - known):
                await self.inputs.send(PeerConnected(peer))
            known = now
            await self.mesh.wait_links_changed()
