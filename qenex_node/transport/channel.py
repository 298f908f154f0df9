"""What the mesh needs from a secure channel, and the adapter to crypto.channel (PQ).

The mesh is written against the small protocols below (handshake as a bytes-in/bytes-out
state machine, then seal/open), so the simulator or a test can plug in another channel.
The production implementation is `PqChannelFactory`: crypto.channel's ML-KEM-1024 +
ML-DSA-87 handshake and AES-256-GCM frames. The peer's validator id comes from the
identity key it proved in the handshake, never from anything it claims.

Every wire frame is `u32 big-endian length | body` (crypto.channel's format), so the mesh
splits the stream with `framing.FrameDecoder(keep_header=True)`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from crypto.channel import (
    HANDSHAKE_FRAME_BYTES_MAX,
    ChannelConfig,
    ChannelError,
    Handshake,
    SecureChannel,
)
from crypto.schemes import Signer

# Wire bytes crypto.channel adds to one sealed payload: type (1) + counter (8) + GCM tag (16).
PQ_FRAME_OVERHEAD_BYTES = 1 + 8 + 16


class ChannelFailure(Exception):
    """The peer broke the channel protocol (or proved an unexpected identity): drop it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PeerChannel(Protocol):
    peer_id: int

    def seal(self, payload: bytes) -> bytes: ...  # one or more wire frames

    def open(self, frame: bytes) -> bytes | None: ...  # None for control frames

    def close(self) -> bytes: ...  # authenticated end-of-stream frame

    def at_eof(self) -> None: ...  # raises ChannelFailure if the stream was truncated


class PeerHandshake(Protocol):
    def start(self) -> bytes: ...  # the initiator's first frame; b"" for a responder

    def receive(self, frame: bytes) -> bytes | None: ...  # reply frame, if any

    @property
    def complete(self) -> bool: ...

    def channel(self) -> PeerChannel: ...


class ChannelFactory(Protocol):
    # Largest wire frame (without the 4-byte prefix) the decoder must accept.
    wire_frame_bytes_max: int

    def initiator(self, peer_id: int) -> PeerHandshake: ...

    def responder(self) -> PeerHandshake: ...


# ------------------------------------------------------------------ PQ adapter
class _PqChannel:
    def __init__(self, inner: SecureChannel, peer_id: int) -> None:
        self._inner = inner
        self.peer_id = peer_id

    def seal(self, payload: bytes) -> bytes:
        return self._inner.seal(payload)

    def open(self, frame: bytes) -> bytes | None:
        try:
            return self._inner.open(frame)
        except ChannelError as exc:
            raise ChannelFailure("CHANNEL", str(exc)) from None

    def close(self) -> bytes:
        try:
            return self._inner.close()
        except ChannelError as exc:
            raise ChannelFailure("CHANNEL", str(exc)) from None

    def at_eof(self) -> None:
        try:
            self._inner.at_eof()
        except ChannelError as exc:
            raise ChannelFailure("EOF_WITHOUT_CLOSE", str(exc)) from None


class _PqHandshake:
    def __init__(self, inner: Handshake, ids_by_key: Mapping[bytes, int]) -> None:
        self._inner = inner
        self._ids_by_key = ids_by_key

    def start(self) -> bytes:
        return self._inner.start() if self._inner.role == "initiator" else b""

    def receive(self, frame: bytes) -> bytes | None:
        try:
            return self._inner.receive(frame)
        except ChannelError as exc:
            raise ChannelFailure("HANDSHAKE", str(exc)) from None
        except ValueError as exc:
            # A well-sized but invalid ML-KEM key in HELLO makes `cryptography` raise
            # ValueError straight through crypto.channel: peer garbage, not our bug.
            raise ChannelFailure("HANDSHAKE", f"invalid key material: {exc}") from None

    @property
    def complete(self) -> bool:
        return self._inner.complete

    def channel(self) -> _PqChannel:
        try:
            inner = self._inner.channel()
        except ChannelError as exc:
            raise ChannelFailure("HANDSHAKE", str(exc)) from None
        peer_id = self._ids_by_key.get(inner.peer_public_key)
        if peer_id is None:  # crypto refuses unknown keys first; this is belt and braces
            raise ChannelFailure("UNKNOWN_PEER", "handshake proved a key we do not know")
        return _PqChannel(inner, peer_id)


class PqChannelFactory:
    """crypto.channel handshakes for a validator set: `peer_keys` maps id -> ML-DSA-87 key."""

    def __init__(self, identity: Signer, peer_keys: Mapping[int, bytes], chain_id: str,
                 frame_bytes_max: int) -> None:
        self._identity = identity
        self._keys = dict(peer_keys)
        self._ids_by_key = {bytes(key): node for node, key in self._keys.items()}
        if len(self._ids_by_key) != len(self._keys):
            raise ValueError("two validators share one identity key")
        self._config = ChannelConfig(chain_id=chain_id, frame_bytes_max=frame_bytes_max)
        self.wire_frame_bytes_max = max(frame_bytes_max + PQ_FRAME_OVERHEAD_BYTES,
                                        HANDSHAKE_FRAME_BYTES_MAX)

    def initiator(self, peer_id: int) -> _PqHandshake:
        inner = Handshake.initiator(self._identity, self._keys.values(), self._config,
                                    expected_peer=self._keys[peer_id])
        return _PqHandshake(inner, self._ids_by_key)

    def responder(self) -> _PqHandshake:
        inner = Handshake.responder(self._identity, self._keys.values(), self._config)
        return _PqHandshake(inner, self._ids_by_key)
