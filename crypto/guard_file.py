"""Reading the guard's append-only file: checksummed records, torn tail cut off."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from consensus import canonical
from crypto.errors import GuardError

_HEAD = struct.Struct(">II")


def read_records(path: Path, record_bytes_max: int) -> list[object]:
    """Decode every record; truncate the file after the last good one if the tail is torn.

    Only the final record can be torn (each append is synced before the next starts), so a
    bad record with more data after it is real corruption and raises GuardError.
    """
    data = Path(path).read_bytes()
    payloads: list[object] = []
    offset = 0
    while offset < len(data):
        end = _record_end(data, offset, record_bytes_max)
        if end is None:
            if _more_after(data, offset, record_bytes_max):
                raise GuardError(f"guard file {path} is corrupt at byte {offset}; restore "
                                 "it from backup (do not delete it)")
            _truncate(path, offset)
            break
        try:
            payloads.append(canonical.decode(data[offset + _HEAD.size:end]))
        except canonical.CanonicalError:
            raise GuardError(f"guard file {path} has an undecodable record at byte "
                             f"{offset}; restore it from backup") from None
        offset = end
    return payloads


def _record_end(data: bytes, offset: int, record_bytes_max: int) -> int | None:
    if offset + _HEAD.size > len(data):
        return None
    length, checksum = _HEAD.unpack_from(data, offset)
    end = offset + _HEAD.size + length
    if length > record_bytes_max or end > len(data):
        return None
    if zlib.crc32(data[offset + _HEAD.size:end]) != checksum:
        return None
    return end


def _more_after(data: bytes, offset: int, record_bytes_max: int) -> bool:
    """True when a complete, checksummed record follows a bad one."""
    if offset + _HEAD.size > len(data):
        return False
    length, _ = _HEAD.unpack_from(data, offset)
    if length > record_bytes_max:
        return False
    following = offset + _HEAD.size + length
    return following < len(data) and _record_end(data, following, record_bytes_max) is not None


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)
