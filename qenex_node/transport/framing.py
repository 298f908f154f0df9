"""Sans-IO length-prefixed frames: `u32 big-endian length | payload`.

The length is checked against `frame_bytes_max` as soon as the 4 header bytes arrive, so a
peer announcing a huge frame is refused before we buffer a single byte of its body: the
receive buffer never holds more than one partial frame plus the last chunk read.

The secure channel's wire frames (crypto.channel) use the same prefix, so one decoder
splits the TCP stream for both the real channel and the test-only plaintext channel.
"""
from __future__ import annotations

import struct

LENGTH = struct.Struct(">I")
HEADER_BYTES = LENGTH.size


class FrameError(ValueError):
    """The peer broke framing (oversized or truncated frame): drop the connection."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode_frame(payload: bytes, frame_bytes_max: int) -> bytes:
    if len(payload) > frame_bytes_max:
        raise FrameError("OVERSIZED", f"payload of {len(payload)} B > {frame_bytes_max} B")
    return LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    """Feed stream bytes in any split; get back whole frames.

    `keep_header=True` returns each frame with its 4-byte prefix (what crypto.channel's
    `open` expects); otherwise only the payload.
    """

    def __init__(self, frame_bytes_max: int, *, keep_header: bool = False) -> None:
        if frame_bytes_max < 0 or frame_bytes_max > 2**32 - 1:
            raise ValueError("frame_bytes_max must fit the 32-bit length prefix")
        self.frame_bytes_max = frame_bytes_max
        self.keep_header = keep_header
        self._buffer = bytearray()
        self._failed = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._failed:
            raise FrameError("CLOSED", "decoder already failed; the connection must close")
        self._buffer += data
        frames: list[bytes] = []
        offset = 0
        while len(self._buffer) - offset >= HEADER_BYTES:
            (length,) = LENGTH.unpack_from(self._buffer, offset)
            if length > self.frame_bytes_max:
                self._failed = True
                self._buffer.clear()
                raise FrameError("OVERSIZED", f"peer announced {length} B > "
                                 f"frame_bytes_max {self.frame_bytes_max} B")
            end = offset + HEADER_BYTES + length
            if end > len(self._buffer):
                break
            start = offset if self.keep_header else offset + HEADER_BYTES
            frames.append(bytes(self._buffer[start:end]))
            offset = end
        del self._buffer[:offset]  # one move per feed, not per frame
        return frames

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def at_eof(self) -> None:
        """The stream ended: fine only on a frame boundary."""
        if self._buffer:
            raise FrameError("TRUNCATED", f"stream ended inside a frame "
                             f"({len(self._buffer)} B pending)")
