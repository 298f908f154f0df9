"""Double-sign guard: position rules, durability, torn writes, kill -9, foreign files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from crypto.errors import DoubleSignRefused, GuardError
from crypto.guard import SignGuard

KEY = b"k" * 32


def _signer():
    calls = []

    def sign(data: bytes) -> bytes:  # randomised like ML-DSA: differs on every call
        calls.append(data)
        return data[:4] + os.urandom(8)
    return sign, calls


def test_same_bytes_return_stored_signature(tmp_path):
    guard = SignGuard(tmp_path / "g", KEY)
    sign, calls = _signer()
    first = guard.sign(("pbft.prepare", 0, 1), b"a", sign)
    assert guard.sign(("pbft.prepare", 0, 1), b"a", sign) == first
    assert len(calls) == 1


def test_different_bytes_same_position_refused_after_restart(tmp_path):
    sign, _ = _signer()
    guard = SignGuard(tmp_path / "g", KEY)
    first = guard.sign(("pbft.prepare", 0, 1), b"a", sign)
    guard.close()
    again = SignGuard(tmp_path / "g", KEY)
    with pytest.raises(DoubleSignRefused):
        again.sign(("pbft.prepare", 0, 1), b"b", sign)
    assert again.sign(("pbft.prepare", 0, 1), b"a", sign) == first


def test_pbft_out_of_order_allowed_but_floor_refuses(tmp_path):
    sign, _ = _signer()
    guard = SignGuard(tmp_path / "g", KEY)
    guard.sign(("pbft.prepare", 0, 5), b"5", sign)
    guard.sign(("pbft.prepare", 0, 3), b"3", sign)  # pipelined: lower seq is legitimate
    guard.prune_below("pbft.prepare", (0, 4))
    with pytest.raises(DoubleSignRefused):
        guard.sign(("pbft.prepare", 0, 4), b"4", sign)
    guard.close()
    with pytest.raises(DoubleSignRefused):  # the floor is durable
        SignGuard(tmp_path / "g", KEY).sign(("pbft.prepare", 0, 2), b"2", sign)


def test_monotonic_stream_refuses_lower_position(tmp_path):
    sign, _ = _signer()
    guard = SignGuard(tmp_path / "g", KEY)
    guard.sign(("tendermint.prevote", 5, 1), b"x", sign)
    with pytest.raises(DoubleSignRefused):
        guard.sign(("tendermint.prevote", 5, 0), b"y", sign)
    with pytest.raises(DoubleSignRefused):
        guard.sign(("tendermint.prevote", 4, 9), b"y", sign)
    guard.sign(("tendermint.prevote", 5, 2), b"z", sign)
    guard.sign(("pbft.commit", 1, 1), b"z", sign, monotonic=False)


def test_state_is_bounded_and_pruned_positions_refused(tmp_path):
    sign, _ = _signer()
    guard = SignGuard(tmp_path / "g", KEY, positions_per_stream_max=8, compact_after_records=20)
    for seq in range(50):
        guard.sign(("pbft.prepare", 0, seq), bytes([seq]), sign)
    assert len(guard._streams["pbft.prepare"].signed) == 8
    guard.close()
    again = SignGuard(tmp_path / "g", KEY, positions_per_stream_max=8)
    with pytest.raises(DoubleSignRefused):
        again.sign(("pbft.prepare", 0, 10), b"other", sign)
    with pytest.raises(DoubleSignRefused):
        again.sign(("pbft.prepare", 0, 49), b"other", sign)


def test_torn_tail_is_cut_and_mid_file_damage_stops(tmp_path):
    sign, _ = _signer()
    path = tmp_path / "g"
    guard = SignGuard(path, KEY)
    guard.sign(("hotstuff.vote", 1), b"a", sign)
    guard.sign(("hotstuff.vote", 2), b"b", sign)
    guard.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # torn last append
    again = SignGuard(path, KEY)
    assert again.signed_at(("hotstuff.vote", 1)) is not None
    assert again.signed_at(("hotstuff.vote", 2)) is None
    again.close()
    damaged = bytearray(whole)
    damaged[60] ^= 0xFF  # inside the first vote record, with a good record after it
    path.write_bytes(bytes(damaged))
    with pytest.raises(GuardError, match="corrupt"):
        SignGuard(path, KEY)
    assert path.read_bytes() == bytes(damaged)  # nothing overwritten


def test_guard_file_of_another_key_stops_startup(tmp_path):
    SignGuard(tmp_path / "g", KEY).close()
    before = (tmp_path / "g").read_bytes()
    with pytest.raises(GuardError, match="another key"):
        SignGuard(tmp_path / "g", b"other" * 8)
    assert (tmp_path / "g").read_bytes() == before


_CHILD = textwrap.dedent("""
    import os, sys
    from crypto.guard import SignGuard
    guard = SignGuard(sys.argv[1], b"k" * 32)
    for seq in range(10_000):
        sig = guard.sign(("tendermint.precommit", seq, 0), b"v%d" % seq, lambda d: os.urandom(16))
        print(seq, sig.hex(), flush=True)
""")


def test_survives_kill_9(tmp_path):
    path = tmp_path / "g"
    released = {}
    for _ in range(3):
        child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)],
                                 stdout=subprocess.PIPE, text=True)
        for _ in range(40 + len(released)):
            seq, sig = child.stdout.readline().split()
            released[int(seq)] = bytes.fromhex(sig)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    guard = SignGuard(path, KEY)
    for seq, sig in released.items():  # every released signature is on disk
        assert guard.signed_at(("tendermint.precommit", seq, 0)) == sig
    top = max(released)
    with pytest.raises(DoubleSignRefused):
        guard.sign(("tendermint.precommit", top, 0), b"different", lambda d: b"s")
