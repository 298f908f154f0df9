"""Checksummed values: LMDB keeps no checksums, so every stored value carries its own.

    value = version (1 B) || BLAKE2b-64(db name || key || payload) (8 B) || payload

The checksum covers the key and table too, so a value written under the wrong key (or a
page that ends up in the wrong place) is caught as well as flipped bits.
"""
from __future__ import annotations

import hashlib

FORMAT_VERSION = 1
CHECKSUM_BYTES = 8
HEADER_BYTES = 1 + CHECKSUM_BYTES


class StorageError(Exception):
    """Base class for storage failures (disk, corruption, misuse)."""


class StorageCorruption(StorageError):
    """A stored value failed its checksum or could not be decoded: the disk lied."""


class StorageWriteFailed(StorageError):
    """A write transaction did not commit; nothing of it is stored."""


def _checksum(db: bytes, key: bytes, payload: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=CHECKSUM_BYTES)
    h.update(len(db).to_bytes(1, "big") + db)
    h.update(len(key).to_bytes(2, "big") + key)
    h.update(payload)
    return h.digest()


def seal(db: bytes, key: bytes, payload: bytes) -> bytes:
    return bytes([FORMAT_VERSION]) + _checksum(db, key, payload) + payload


def unseal(db: bytes, key: bytes, value: bytes) -> bytes:
    """The payload of a sealed value, or StorageCorruption."""
    if len(value) < HEADER_BYTES or value[0] != FORMAT_VERSION:
        raise StorageCorruption(f"{db.decode()}[{key.hex()}]: bad header")
    payload = bytes(value[HEADER_BYTES:])
    if value[1:HEADER_BYTES] != _checksum(db, key, payload):
        raise StorageCorruption(f"{db.decode()}[{key.hex()}]: checksum mismatch")
    return payload
