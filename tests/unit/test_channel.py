"""PQ channel, in memory: handshake, tampering, replay, reorder, truncation, size, MITM."""
from __future__ import annotations

import pytest

from crypto.channel import ChannelConfig, ChannelError, FrameReader, Handshake
from crypto.schemes import Scheme, SeedSigner

CONFIG = ChannelConfig(chain_id="test", frame_bytes_max=1024, rekey_after_frames=3)
ALICE = SeedSigner(Scheme.ML_DSA_87, b"a" * 32)
BOB = SeedSigner(Scheme.ML_DSA_87, b"b" * 32)
MALLORY = SeedSigner(Scheme.ML_DSA_87, b"m" * 32)  # a valid, known validator gone bad
KNOWN = {ALICE.public_key, BOB.public_key, MALLORY.public_key}


def _connect(config=CONFIG, initiator=ALICE, responder=BOB, expected=None):
    left = Handshake.initiator(initiator, KNOWN, config, expected_peer=expected)
    right = Handshake.responder(responder, KNOWN, config)
    finish = left.receive(right.receive(left.start()))
    assert right.receive(finish) is None
    return left.channel(), right.channel()


def test_handshake_and_both_directions():
    a, b = _connect(expected=BOB.public_key)
    assert a.peer_public_key == BOB.public_key and b.peer_public_key == ALICE.public_key
    assert b.open(a.seal(b"hello")) == b"hello"
    assert a.open(b.seal(b"back")) == b"back"


def test_tampered_frame_fails():
    a, b = _connect()
    frame = bytearray(a.seal(b"hello"))
    frame[-1] ^= 1
    with pytest.raises(ChannelError, match="authentication"):
        b.open(bytes(frame))


def test_replay_and_reorder_fail():
    a, b = _connect()
    first, second = a.seal(b"1"), a.seal(b"2")
    with pytest.raises(ChannelError, match="reordered"):
        b.open(second)
    assert b.open(first) == b"1"
    with pytest.raises(ChannelError, match="replayed"):
        b.open(first)


def test_truncated_frame_and_truncated_stream():
    a, b = _connect()
    frame = a.seal(b"hello")
    with pytest.raises(ChannelError, match="truncated"):
        b.open(frame[:-3])
    reader = FrameReader(CONFIG.frame_bytes_max)
    assert reader.feed(frame[:-3]) == [] and reader.pending_bytes == len(frame) - 3
    assert b.open(reader.feed(frame[-3:])[0]) == b"hello"
    with pytest.raises(ChannelError, match="without a close"):
        b.at_eof()
    assert b.open(a.close()) is None
    b.at_eof()
    with pytest.raises(ChannelError):
        b.open(a.seal(b"late"))


def test_oversized_frames_refused():
    a, b = _connect()
    with pytest.raises(ValueError):
        a.seal(b"x" * (CONFIG.frame_bytes_max + 1))
    with pytest.raises(ChannelError, match="over limit"):
        FrameReader(CONFIG.frame_bytes_max).feed((10**7).to_bytes(4, "big") + b"\x0a")
    with pytest.raises(ChannelError):
        b.open(b"\x00" * (CONFIG.frame_bytes_max + 100))


def test_rekey_automatic_and_on_demand():
    a, b = _connect()
    reader = FrameReader(CONFIG.frame_bytes_max)
    received = []
    stream = b"".join(a.seal(bytes([i])) for i in range(10)) + a.rekey() + a.seal(b"end")
    for frame in reader.feed(stream):
        data = b.open(frame)
        if data is not None:
            received.append(data)
    assert received == [bytes([i]) for i in range(10)] + [b"end"]
    assert a._send_key == b._receive_key


def test_unknown_identity_refused():
    stranger = SeedSigner(Scheme.ML_DSA_87, b"s" * 32)
    left = Handshake.initiator(stranger, KNOWN, CONFIG)
    right = Handshake.responder(BOB, KNOWN, CONFIG)
    reply = right.receive(left.start())
    left_known = Handshake.initiator(ALICE, {ALICE.public_key}, CONFIG)
    with pytest.raises(ChannelError, match="unknown peer"):  # initiator refuses BOB
        left_known.receive(Handshake.responder(BOB, KNOWN, CONFIG).receive(left_known.start()))
    finish = left.receive(reply)
    with pytest.raises(ChannelError, match="unknown peer"):  # responder refuses stranger
        right.receive(finish)


def test_mitm_with_own_valid_key():
    # 1. Mallory answers Alice's dial to Bob with her own (valid, known) identity.
    alice = Handshake.initiator(ALICE, KNOWN, CONFIG, expected_peer=BOB.public_key)
    hello = alice.start()
    with pytest.raises(ChannelError, match="not the one we dialled"):
        alice.receive(Handshake.responder(MALLORY, KNOWN, CONFIG).receive(hello))
    # 2. Mallory relays Bob's proof but substitutes her ephemeral KEM key to read traffic.
    alice = Handshake.initiator(ALICE, KNOWN, CONFIG, expected_peer=BOB.public_key)
    alice.start()  # Alice is waiting for a REPLY to her HELLO
    mallory_to_bob = Handshake.initiator(MALLORY, KNOWN, CONFIG)
    bob = Handshake.responder(BOB, KNOWN, CONFIG)
    reply_from_bob = bob.receive(mallory_to_bob.start())
    with pytest.raises(ChannelError, match="authentication"):
        alice.receive(reply_from_bob)  # encrypted to Mallory's KEM key, transcript differs
    # 3. Mallory forwards Alice's HELLO untouched, then swaps in her own FINISH: Bob sees
    # Mallory's signature over a transcript whose KEM secret Mallory does not know.
    alice = Handshake.initiator(ALICE, KNOWN, CONFIG)
    bob = Handshake.responder(BOB, KNOWN, CONFIG)
    reply = bob.receive(alice.start())
    forged = Handshake.initiator(MALLORY, KNOWN, CONFIG)
    forged.start()
    with pytest.raises(ChannelError):
        forged.receive(reply)


def test_tampered_handshake_fails():
    left = Handshake.initiator(ALICE, KNOWN, CONFIG)
    right = Handshake.responder(BOB, KNOWN, CONFIG)
    reply = bytearray(right.receive(left.start()))
    reply[-40] ^= 1
    with pytest.raises(ChannelError):
        left.receive(bytes(reply))
    with pytest.raises(ChannelError, match="unexpected"):
        Handshake.responder(BOB, KNOWN, CONFIG).receive(bytes(reply))


def test_hello_with_an_invalid_kem_key_is_a_channel_error():
    """A HELLO of the right size whose ML-KEM key fails FIPS 203's modulus check must be
    refused as a channel error (drop the connection), not escape as a bare ValueError."""
    from crypto.channel import HELLO, NONCE_BYTES, VERSION, _frame
    from crypto.schemes import KEM_PUBLIC_KEY_BYTES

    responder = Handshake.responder(BOB, KNOWN, CONFIG)
    body = bytes([VERSION]) + b"\xff" * KEM_PUBLIC_KEY_BYTES + bytes(NONCE_BYTES)
    frame = _frame(HELLO, body)
    with pytest.raises(ChannelError, match="invalid ML-KEM"):
        responder.receive(frame)
