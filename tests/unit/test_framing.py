"""Framing: arbitrary splits, truncation, oversize refused before buffering."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qenex_node.transport.framing import (
    HEADER_BYTES,
    LENGTH,
    FrameDecoder,
    FrameError,
    encode_frame,
)

LIMIT = 64


@settings(max_examples=200, deadline=None)
@given(payloads=st.lists(st.binary(max_size=LIMIT), max_size=8), data=st.data())
def test_random_splits_give_back_the_frames(payloads: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(encode_frame(p, LIMIT) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = FrameDecoder(LIMIT)
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)]):
        out += decoder.feed(stream[start:end])
    assert out == payloads
    decoder.at_eof()
    assert decoder.pending_bytes == 0


def test_keep_header_returns_whole_frames() -> None:
    decoder = FrameDecoder(LIMIT, keep_header=True)
    assert decoder.feed(encode_frame(b"ab", LIMIT) * 2) == [b"\0\0\0\x02ab"] * 2


@settings(max_examples=100, deadline=None)
@given(payload=st.binary(min_size=1, max_size=LIMIT), data=st.data())
def test_truncated_stream_is_detected(payload: bytes, data: st.DataObject) -> None:
    frame = encode_frame(payload, LIMIT)
    cut = data.draw(st.integers(1, len(frame) - 1))
    decoder = FrameDecoder(LIMIT)
    assert decoder.feed(frame[:cut]) == []
    with pytest.raises(FrameError) as info:
        decoder.at_eof()
    assert info.value.reason == "TRUNCATED"


def test_oversized_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder(LIMIT)
    # Only the header has arrived: refused before any body byte is buffered.
    with pytest.raises(FrameError) as info:
        decoder.feed(LENGTH.pack(LIMIT + 1))
    assert info.value.reason == "OVERSIZED"
    assert decoder.pending_bytes == 0
    with pytest.raises(FrameError):
        decoder.feed(encode_frame(b"ok", LIMIT))  # a failed decoder stays failed


def test_oversized_after_good_frames_and_header_split() -> None:
    decoder = FrameDecoder(LIMIT)
    assert decoder.feed(encode_frame(b"x", LIMIT) + LENGTH.pack(2**32 - 1)[:2]) == [b"x"]
    with pytest.raises(FrameError):
        decoder.feed(LENGTH.pack(2**32 - 1)[2:])


def test_encode_refuses_oversized_payload() -> None:
    with pytest.raises(FrameError):
        encode_frame(b"\0" * (LIMIT + 1), LIMIT)
    assert len(encode_frame(b"\0" * LIMIT, LIMIT)) == LIMIT + HEADER_BYTES
