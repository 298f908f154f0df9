"""Post-quantum encrypted, mutually authenticated peer channel. Sans-IO: bytes in, bytes out.

Usage (the transport owns the socket; everything here is pure computation):

    # initiator                                   # responder
    hs = Handshake.initiator(me, known, chain)    hs = Handshake.responder(me, known, chain)
    send(hs.start())                      --->    reply = hs.receive(frame)      # HELLO
    finish = hs.receive(frame)            <---    send(reply)                    # REPLY
    send(finish); ch = hs.channel()       --->    hs.receive(frame); ch = hs.channel()

    send(ch.seal(b"payload"))   # one or two wire frames (a REKEY frame may come first)
    for frame in reader.feed(received_bytes):     # FrameReader splits the TCP stream
        data = ch.open(frame)   # bytes for data frames, None for control frames
    send(ch.close())            # authenticated end of stream
    ch.at_eof()                 # call when the socket ends: raises if it was truncated

Every `ChannelError` means: drop the connection (count it, log the reason).

Protocol (frames are `u32 length | u8 type | body`; H = SHA-256):
  HELLO  I->R  ephemeral ML-KEM-1024 public key, 32-byte nonce
  REPLY  R->I  ML-KEM ciphertext, nonce, AEAD_hs_r(identity key R | ML-DSA-87 sig R)
  FINISH I->R  AEAD_hs_i(identity key I | ML-DSA-87 sig I)
Each signature covers a domain-tagged hash of the whole transcript so far (both nonces,
the ephemeral key, the ciphertext) and the signer's own identity key, so a signature cannot
be replayed into another session, and a man in the middle, even one with a valid key of
its own, cannot splice two sessions: it would need to sign as the peer. Unknown identity
keys are refused. Traffic keys come from HKDF-SHA256 over the KEM secret, salted with the
final transcript hash; one AES-256-GCM key per direction. Frames carry a 64-bit counter
that is the GCM nonce and must arrive in exact order: replayed, reordered, dropped or
forged frames fail. Rekeying (every `rekey_after_frames` frames, or `rekey()`) sends a
REKEY frame, then both sides replace that direction's key with HKDF(key, "rekey").
"""
from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Collection
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.schemes import (
    KEM_CIPHERTEXT_BYTES,
    KEM_PUBLIC_KEY_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    KeyVerifier,
    Scheme,
    Signer,
    kem_decapsulate,
    kem_encapsulate,
    kem_keypair,
    tagged,
)

VERSION = 1
NONCE_BYTES = 32
HELLO, REPLY, FINISH, DATA, REKEY, CLOSE = 1, 2, 3, 10, 11, 12
_LENGTH = struct.Struct(">I")
_COUNTER = struct.Struct(">Q")
_TAG_BYTES = 16
_ID = Scheme.ML_DSA_87
_IDENTITY_BYTES = PUBLIC_KEY_BYTES[_ID] + SIGNATURE_BYTES[_ID]
HANDSHAKE_FRAME_BYTES_MAX = 16 * 1024


class ChannelError(Exception):
    """A protocol violation by the peer (or a broken stream): close the connection."""


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    chain_id: str
    frame_bytes_max: int = 4 * 1024 * 1024  # largest plaintext in one data frame
    rekey_after_frames: int = 1 << 20


def _frame(kind: int, body: bytes) -> bytes:
    return _LENGTH.pack(1 + len(body)) + bytes([kind]) + body


def _parse(frame: bytes, limit: int) -> tuple[int, bytes]:
    if len(frame) < _LENGTH.size + 1 or len(frame) > limit + _LENGTH.size:
        raise ChannelError(f"frame of {len(frame)} bytes is malformed or over the limit")
    (length,) = _LENGTH.unpack_from(frame)
    if length != len(frame) - _LENGTH.size:
        raise ChannelError("frame length does not match its header (truncated frame?)")
    return frame[_LENGTH.size], frame[_LENGTH.size + 1:]


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, info).derive(secret)


def _h(*parts: bytes) -> bytes:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(_LENGTH.pack(len(part)) + part)
    return digest.digest()


class FrameReader:
    """Splits a byte stream into whole wire frames; refuses oversized lengths up front."""

    def __init__(self, frame_bytes_max: int) -> None:
        self._limit = frame_bytes_max + 1 + _COUNTER.size + _TAG_BYTES
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > max(self._limit, HANDSHAKE_FRAME_BYTES_MAX) or length == 0:
                raise ChannelError(f"peer announced a frame of {length} bytes (over limit)")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[:end]))
            del self._buffer[:end]
        return frames

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)


class Handshake:
    """One side of the three-message handshake. Create with `initiator` or `responder`."""

    def __init__(self, role: str, identity: Signer, known_peers: Collection[bytes],
                 config: ChannelConfig, expected_peer: bytes | None) -> None:
        if identity.scheme != _ID:
            raise ValueError("channel identities are ML-DSA-87 keys")
        self.role = role
        self.config = config
        self._identity = identity
        self._known = frozenset(bytes(k) for k in known_peers)
        self._expected = expected_peer
        self._transcript = _h(b"QENEX/channel", config.chain_id.encode(), bytes([VERSION]))
        self._kem_private = None
        self._secret = b""
        self._state = "start"
        self.peer_public_key: bytes | None = None

    @classmethod
    def initiator(cls, identity: Signer, known_peers: Collection[bytes], config: ChannelConfig,
                  expected_peer: bytes | None = None) -> Handshake:
        return cls("initiator", identity, known_peers, config, expected_peer)

    @classmethod
    def responder(cls, identity: Signer, known_peers: Collection[bytes],
                  config: ChannelConfig) -> Handshake:
        return cls("responder", identity, known_peers, config, None)

    @property
    def complete(self) -> bool:
        return self._state == "done"

    def start(self) -> bytes:
        """Initiator only: the HELLO frame."""
        if self.role != "initiator" or self._state != "start":
            raise ChannelError("start() is for a fresh initiator")
        self._kem_private, public = kem_keypair()
        frame = _frame(HELLO, bytes([VERSION]) + public + os.urandom(NONCE_BYTES))
        self._absorb(frame)
        self._state = "sent_hello"
        return frame

    def receive(self, frame: bytes) -> bytes | None:
        """Consume the peer's frame; returns the frame to send back, if any."""
        kind, body = _parse(frame, HANDSHAKE_FRAME_BYTES_MAX)
        if self.role == "responder" and self._state == "start" and kind == HELLO:
            return self._on_hello(frame, body)
        if self.role == "initiator" and self._state == "sent_hello" and kind == REPLY:
            return self._on_reply(frame, body)
        if self.role == "responder" and self._state == "sent_reply" and kind == FINISH:
            self._on_finish(frame, body)
            return None
        state, self._state = self._state, "failed"
        raise ChannelError(f"unexpected handshake frame type {kind} in state {state}")

    def channel(self) -> SecureChannel:
        if not self.complete:
            raise ChannelError("handshake is not complete")
        i2r = _hkdf(self._secret, self._transcript, b"QENEX/channel i2r")
        r2i = _hkdf(self._secret, self._transcript, b"QENEX/channel r2i")
        send, receive = (i2r, r2i) if self.role == "initiator" else (r2i, i2r)
        assert self.peer_public_key is not None
        return SecureChannel(send, receive, self.config, self.peer_public_key)

    # ------------------------------------------------------------ steps
    def _on_hello(self, frame: bytes, body: bytes) -> bytes:
        if len(body) != 1 + KEM_PUBLIC_KEY_BYTES + NONCE_BYTES or body[0] != VERSION:
            raise ChannelError("malformed HELLO or unsupported channel version")
        self._absorb(frame)
        try:
            self._secret, ciphertext = kem_encapsulate(body[1:1 + KEM_PUBLIC_KEY_BYTES])
        except ValueError:
            # Right length, not a valid ML-KEM-1024 key (FIPS 203 modulus check): garbage.
            raise ChannelError("HELLO carries an invalid ML-KEM-1024 public key") from None
        head = ciphertext + os.urandom(NONCE_BYTES)
        self._absorb(head)
        sealed = self._seal_identity(b"hs r")
        reply = _frame(REPLY, head + sealed)
        self._absorb(sealed)
        self._state = "sent_reply"
        return reply

    def _on_reply(self, frame: bytes, body: bytes) -> bytes:
        if len(body) != KEM_CIPHERTEXT_BYTES + NONCE_BYTES + _IDENTITY_BYTES + _TAG_BYTES:
            raise ChannelError("malformed REPLY")
        split = KEM_CIPHERTEXT_BYTES + NONCE_BYTES
        head, sealed = body[:split], body[split:]
        self._secret = kem_decapsulate(self._kem_private, head[:KEM_CIPHERTEXT_BYTES])
        self._kem_private = None  # forward secrecy: the ephemeral key is used once
        self._absorb(head)
        self._open_identity(sealed, b"hs r", "responder")
        self._absorb(sealed)
        sealed_mine = self._seal_identity(b"hs i")
        self._absorb(sealed_mine)
        self._state = "done"
        return _frame(FINISH, sealed_mine)

    def _on_finish(self, frame: bytes, body: bytes) -> None:
        if len(body) != _IDENTITY_BYTES + _TAG_BYTES:
            raise ChannelError("malformed FINISH")
        self._open_identity(body, b"hs i", "initiator")
        self._absorb(body)
        self._state = "done"

    # ------------------------------------------------------------ identity proof
    def _absorb(self, data: bytes) -> None:
        self._transcript = _h(self._transcript, data)

    def _signed_bytes(self, role: str, public_key: bytes) -> bytes:
        return tagged("QENEX/channel", self.config.chain_id, role,
                      _h(self._transcript, public_key))

    def _seal_identity(self, label: bytes) -> bytes:
        me = self._identity.public_key
        signature = self._identity.sign(self._signed_bytes(self.role, me))
        key = _hkdf(self._secret, self._transcript, b"QENEX/channel " + label)
        return AESGCM(key).encrypt(bytes(12), me + signature, self._transcript)

    def _open_identity(self, sealed: bytes, label: bytes, peer_role: str) -> None:
        key = _hkdf(self._secret, self._transcript, b"QENEX/channel " + label)
        try:
            plain = AESGCM(key).decrypt(bytes(12), sealed, self._transcript)
        except InvalidTag:
            raise ChannelError("handshake frame fails authentication (tampered or "
                               "man in the middle)") from None
        peer, signature = plain[:PUBLIC_KEY_BYTES[_ID]], plain[PUBLIC_KEY_BYTES[_ID]:]
        if peer not in self._known:
            raise ChannelError(f"unknown peer identity {hashlib.sha256(peer).hexdigest()[:16]}")
        if self._expected is not None and peer != self._expected:
            raise ChannelError("peer is a known node but not the one we dialled")
        if not KeyVerifier(_ID, peer).verify(self._signed_bytes(peer_role, peer), signature):
            raise ChannelError("peer's identity signature does not cover this handshake")
        self.peer_public_key = peer


class SecureChannel:
    """AEAD-protected frames in both directions after a completed handshake."""

    def __init__(self, send_key: bytes, receive_key: bytes, config: ChannelConfig,
                 peer_public_key: bytes) -> None:
        self.config = config
        self.peer_public_key = peer_public_key
        self._send_key, self._receive_key = send_key, receive_key
        self._send_counter = 0
        self._receive_counter = 0
        self._since_rekey = 0
        self.closed_by_peer = False
        self.closed_by_us = False

    def seal(self, plaintext: bytes) -> bytes:
        if len(plaintext) > self.config.frame_bytes_max:
            raise ValueError(f"plaintext of {len(plaintext)} B exceeds frame_bytes_max")
        prefix = b""
        if self._since_rekey >= self.config.rekey_after_frames:
            prefix = self.rekey()
        return prefix + self._seal(DATA, plaintext)

    def rekey(self) -> bytes:
        """Emit a REKEY frame (under the old key), then switch our sending key."""
        frame = self._seal(REKEY, b"")
        self._send_key = _hkdf(self._send_key, b"", b"QENEX/channel rekey")
        self._since_rekey = 0
        return frame

    def close(self) -> bytes:
        frame = self._seal(CLOSE, b"")
        self.closed_by_us = True
        return frame

    def open(self, frame: bytes) -> bytes | None:
        if self.closed_by_peer:
            raise ChannelError("frame after the peer closed the channel")
        kind, body = _parse(frame, self.config.frame_bytes_max + 1 + _COUNTER.size + _TAG_BYTES)
        if kind not in (DATA, REKEY, CLOSE) or len(body) < _COUNTER.size + _TAG_BYTES:
            raise ChannelError(f"unexpected frame type {kind} on an open channel")
        (counter,) = _COUNTER.unpack_from(body)
        if counter != self._receive_counter:
            raise ChannelError(f"frame counter {counter}, expected {self._receive_counter}: "
                               "replayed, reordered or dropped frame")
        header = frame[:_LENGTH.size + 1 + _COUNTER.size]
        try:
            plaintext = AESGCM(self._receive_key).decrypt(
                bytes(4) + body[:_COUNTER.size], body[_COUNTER.size:], header)
        except InvalidTag:
            raise ChannelError("frame fails authentication (tampered or forged)") from None
        self._receive_counter += 1
        if kind == REKEY:
            self._receive_key = _hkdf(self._receive_key, b"", b"QENEX/channel rekey")
            return None
        if kind == CLOSE:
            self.closed_by_peer = True
            return None
        return plaintext

    def at_eof(self) -> None:
        """The transport saw the stream end: fine only after the peer's CLOSE frame."""
        if not self.closed_by_peer:
            raise ChannelError("stream ended without a close frame (truncated)")

    def _seal(self, kind: int, plaintext: bytes) -> bytes:
        if self.closed_by_us:
            raise ChannelError("channel already closed by us")
        if self._send_counter >= 2 ** 64 - 1:
            raise ChannelError("frame counter exhausted; open a new channel")
        counter = _COUNTER.pack(self._send_counter)
        length = 1 + _COUNTER.size + len(plaintext) + _TAG_BYTES
        header = _LENGTH.pack(length) + bytes([kind]) + counter
        sealed = AESGCM(self._send_key).encrypt(bytes(4) + counter, plaintext, header)
        self._send_counter += 1
        self._since_rekey += 1
        return header + sealed
