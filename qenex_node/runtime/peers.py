"""The node's side of the peer mesh: envelopes out, verified inputs in.

Outbound: encode a signed message into a ConsensusEnvelope and hand it to the mesh (a
bounded queue per peer; a full queue drops, which every engine tolerates by design and
which is counted). Inbound: decode, check that the envelope's sender is the peer the
channel authenticated, verify the ML-DSA signature on a worker thread, then route:
consensus messages to the driver, sync requests to storage, sync responses through the
engine's certificate check, forwarded transactions through admission. Bad input of any
kind is counted by reason and dropped; it never stops the loop.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio

from consensus.api import Receive
from qenex_node.core.mempool import AddResult
from qenex_node.core.sync import (
    SyncRequest,
    SyncResponse,
    TransactionBatch,
    accept_synced_blocks,
    blocks_to_serve,
)
from qenex_node.runtime.driver import SyncedBlocks
from qenex_node.transport.channel import PqChannelFactory
from qenex_node.transport.codec import CodecError, decode_envelope
from qenex_node.transport.envelopes import EnvelopeOutbox
from qenex_node.transport.mesh import PeerMesh

if TYPE_CHECKING:
    from qenex_node.runtime.node import NodeRuntime

VERIFY_THREADS_MAX = 2  # ML-DSA verify releases the GIL: two cores, two verifiers


class PeerLink:
    def __init__(self, runtime: NodeRuntime) -> None:
        self.rt = runtime
        self._verify_limit = trio.CapacityLimiter(VERIFY_THREADS_MAX)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.mesh = build_mesh(self.rt)
        self.outbox = EnvelopeOutbox(self.mesh, self.rt.config.chain_id)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.mesh.run)
            nursery.start_soon(self._receive_loop)
            task_status.started()

    def connected(self) -> frozenset[int]:
        mesh = getattr(self, "mesh", None)
        return mesh.connected_peers() if mesh is not None else frozenset()

    # ------------------------------------------------------------ outbound
    def send(self, peer: int, message: object, signature: bytes) -> bool:
        sent = self.outbox.send(peer, message, signature)
        if not sent:
            self.rt.metrics.rejected.labels("outbound", "PEER_QUEUE_FULL").inc()
        return sent

    def broadcast(self, message: object, signature: bytes) -> int:
        return self.outbox.broadcast(message, signature)

    # ------------------------------------------------------------ inbound
    async def _receive_loop(self) -> None:
        async for peer, payload in self.mesh.incoming:
            await self._handle(peer, payload)

    def _refuse(self, reason: str, peer: int, detail: str = "") -> None:
        self.rt.metrics.rejected.labels("peer", reason).inc()
        self.rt.log.debug("peer_input_refused", reason=reason, peer=peer, detail=detail)

    async def _handle(self, peer: int, payload: bytes) -> None:
        cfg = self.rt.config
        try:
            envelope = decode_envelope(payload, cfg.chain_id, cfg.consensus.nodes)
        except CodecError as exc:
            self._refuse(exc.reason, peer, exc.detail)
            return
        if envelope.sender != peer:
            self._refuse("SENDER_MISMATCH", peer, f"envelope says {envelope.sender}")
            return
        started = time.perf_counter()
        ok = await trio.to_thread.run_sync(self.rt.verifier.verify, envelope.sender,
                                           envelope.message, envelope.signature,
                                           limiter=self._verify_limit)
        self.rt.metrics.verify_seconds.observe(time.perf_counter() - started)
        if not ok:
            self._refuse("BAD_SIGNATURE", peer)
            return
        self.rt.metrics.messages.labels("in").inc()
        await self._route(peer, envelope.message, envelope.signature)

    async def _route(self, peer: int, message: object, signature: bytes) -> None:
        if isinstance(message, SyncRequest):
            await self._serve_sync(peer, message)
        elif isinstance(message, SyncResponse):
            await self._on_sync_response(message)
        elif isinstance(message, TransactionBatch):
            await self._admit_forwarded(peer, message)
        else:
            await self.rt.driver.send_inputs.send(Receive(peer, message, signature))

    async def _serve_sync(self, peer: int, request: SyncRequest) -> None:
        storage = self.rt.storage
        chain = await trio.to_thread.run_sync(storage.committed_range, request.from_height,
                                              blocks_to_serve(request))
        response = SyncResponse(tuple(chain), storage.store.height, self.rt.config.node_id)
        signature = await trio.to_thread.run_sync(self.rt.signer.sign, response)
        self.send(peer, response, signature)

    async def _on_sync_response(self, response: SyncResponse) -> None:
        store = self.rt.storage.store
        engine_cls = type(self.rt.engine)

        def check() -> list:
            return accept_synced_blocks(engine_cls, self.rt.engine_config, store.height,
                                        store.block_hash, response)

        accepted = await trio.to_thread.run_sync(check, limiter=self._verify_limit)
        if not accepted:
            self._refuse("SYNC_REJECTED", response.responder, "no acceptable blocks")
            return
        await self.rt.driver.send_inputs.send(SyncedBlocks(tuple(accepted)))

    async def _admit_forwarded(self, peer: int, batch: TransactionBatch) -> None:
        for tx in batch.txs[: self.rt.config.consensus.batch_txs_max]:
            check = await trio.to_thread.run_sync(self.rt.check_tx, tx)
            if not check.ok:
                self._refuse(f"FORWARDED_{check.reason}", peer)
                continue
            if self.rt.mempool.add(check.tx_id, tx, check.sender, check.nonce) == AddResult.FULL:
                self._refuse("MEMPOOL_FULL", peer)
                return


RECONNECT_BACKOFF_MAX_MS = 2_000


def build_mesh(rt: NodeRuntime) -> PeerMesh:
    """The TCP mesh over the PQ channel, keyed by the validator set's ML-DSA-87 keys."""
    cfg = rt.config
    peer_keys = {v.node_id: v.public_key for v in rt.validators.validators
                 if v.node_id != cfg.node_id}
    factory = PqChannelFactory(rt.node_key, peer_keys, cfg.chain_id, cfg.frame_bytes_max)
    return PeerMesh(cfg.node_id, cfg.listen_host, cfg.listen_port,
                    {p.node_id: (p.host, p.port) for p in cfg.peers}, factory,
                    factory.wire_frame_bytes_max, cfg.send_queue_max, RECONNECT_BACKOFF_MAX_MS)
