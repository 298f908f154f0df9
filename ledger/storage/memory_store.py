"""In-memory store with the LmdbStore API and fault hooks, for the simulator and tests.

Durability model: a write either lands completely or not at all (like an LMDB commit);
`crash()` loses nothing that was written and makes this handle unusable, `reopen()` gives a
fresh handle on the same durable contents, as a restarted process would see them.
Fault hooks: `fail_next_write()` (the next write raises StorageWriteFailed and stores
nothing), `corrupt(table, key)` (flip a byte: the next read raises StorageCorruption).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

from ledger.storage.base import TABLES, Op, StoreBase
from ledger.storage.codec import StorageError, StorageWriteFailed


class StoreClosed(StorageError):
    """The handle was crashed or closed; reopen() to continue."""


class MemoryStore(StoreBase):
    def __init__(self, tables: dict[bytes, dict[bytes, bytes]] | None = None) -> None:
        self._tables = tables if tables is not None else {name: {} for name in TABLES}
        self._fail_writes = 0
        self._open = True
        self.writes = 0  # committed write transactions (what an fsync count would be)

    @classmethod
    def open(cls, path: object = None, map_size_bytes: int = 0) -> MemoryStore:
        return cls()

    def close(self) -> None:
        self._open = False

    # ------------------------------------------------------------ fault hooks
    def crash(self) -> None:
        self._open = False

    def reopen(self) -> MemoryStore:
        return MemoryStore(self._tables)

    def fail_next_write(self, count: int = 1) -> None:
        self._fail_writes += count

    def corrupt(self, table: bytes, key: bytes) -> None:
        value = bytearray(self._tables[table][key])
        value[-1] ^= 0x01
        self._tables[table][key] = bytes(value)

    # ------------------------------------------------------------ primitives
    def _check_open(self) -> None:
        if not self._open:
            raise StoreClosed("store handle is closed")

    def _get(self, table: bytes, key: bytes) -> bytes | None:
        self._check_open()
        return self._tables[table].get(key)

    def _iter(self, table: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        yield from sorted(self._tables[table].items())

    def _scan(self, table: bytes, start: bytes, stop: bytes,
              count_max: int | None) -> list[tuple[bytes, bytes]]:
        # A sort per call: fine for the simulator's and tests' small tables.
        self._check_open()
        found = sorted((k, v) for k, v in self._tables[table].items() if start <= k < stop)
        return found if count_max is None else found[:count_max]

    def _write(self, ops: Sequence[Op]) -> None:
        self._check_open()
        if self._fail_writes:
            self._fail_writes -= 1
            raise StorageWriteFailed("injected write failure")
        for table, key, value in ops:
            if value is None:
                self._tables[table].pop(key, None)
            else:
                self._tables[table][key] = value
        self.writes += 1
