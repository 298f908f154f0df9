"""The seam between the runtime driver and the mesh: domain messages in, envelopes out.

`EnvelopeOutbox` implements the driver's `Outbox` protocol (send / broadcast of a signed
message); `receive_envelopes` turns the mesh's authenticated payloads into decoded
envelopes. The signature is NOT verified here (the driver does that, off the trio thread);
what is checked here is everything that needs no key: size, version, chain, sender range,
schema, and that the envelope's signer is the peer the channel authenticated. Relaying
someone else's signed message as one's own envelope is refused, so a peer's faults are
counted against that peer.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

import structlog

from qenex_node.transport.codec import CodecError, Envelope, decode_envelope, encode_envelope
from qenex_node.transport.mesh import PeerMesh

_log = structlog.get_logger("qenex.transport")


class EnvelopeOutbox:
    def __init__(self, mesh: PeerMesh, chain_id: str) -> None:
        self.mesh = mesh
        self.chain_id = chain_id

    def send(self, peer: int, message: object, signature: bytes) -> bool:
        """Encode once and queue for `peer`; False if dropped (counted by the mesh).

        A CodecError here is our own bug (an engine message the schema cannot carry),
        so it propagates.
        """
        payload = encode_envelope(self.chain_id, self.mesh.node_id, message, signature)
        return self.mesh.send(peer, payload)

    def broadcast(self, message: object, signature: bytes) -> int:
        """To every peer (the driver feeds its own copy back itself); how many accepted."""
        payload = encode_envelope(self.chain_id, self.mesh.node_id, message, signature)
        return self.mesh.broadcast(payload)


async def receive_envelopes(mesh: PeerMesh, chain_id: str, nodes: int, *,
                            envelope_bytes_max: int) -> AsyncIterator[tuple[int, Envelope]]:
    """(authenticated peer, envelope) for every well-formed payload; the rest is counted
    as `decode_errors.<REASON>` in `mesh.counters` and dropped."""
    async for peer, payload in mesh.incoming:
        try:
            envelope = decode_envelope(payload, chain_id, nodes,
                                       envelope_bytes_max=envelope_bytes_max)
        except CodecError as exc:
            mesh.counters[f"decode_errors.{exc.reason}"] += 1
            _log.debug("undecodable envelope", peer=peer, reason=exc.reason,
                       detail=exc.detail[:200])
            continue
        if envelope.sender != peer:
            mesh.counters["decode_errors.SENDER_MISMATCH"] += 1
            continue
        yield peer, envelope
