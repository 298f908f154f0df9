"""LMDB store: one environment, one named database per table, every write synced.

Why LMDB: copy-on-write B+tree with a single writer; a committed write transaction is
durable after fsync and a crash (even kill -9 or power loss) leaves the last committed
transaction intact, so the store is always at a block boundary.

Threading: one writer (the daemon's storage thread). Map growth calls `set_mapsize`, which
LMDB allows only while this process has no open transaction, so readers in other threads
must not hold read transactions across a commit (every read here is a short transaction).
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import lmdb

from ledger.storage.base import TABLES, Op, StoreBase
from ledger.storage.codec import StorageError, StorageWriteFailed

MAP_SIZE_BYTES_DEFAULT = 1 << 30  # grows by doubling when full (MDB_MAP_FULL)
MAP_SIZE_BYTES_MAX = 1 << 40
READERS_MAX = 256


class LmdbStore(StoreBase):
    def __init__(self, env: lmdb.Environment) -> None:
        self._env = env
        self._key_bytes_max = env.max_key_size()
        while True:  # creating the tables is a write too, and may need a bigger map
            try:
                self._dbs = {name: env.open_db(name) for name in TABLES}
                return
            except lmdb.MapFullError:
                self._grow()

    @classmethod
    def open(cls, path: str | os.PathLike[str], map_size_bytes: int = MAP_SIZE_BYTES_DEFAULT,
             ) -> LmdbStore:
        os.makedirs(path, exist_ok=True)
        # sync/metasync: commit returns only after fdatasync; writemap off keeps a stray
        # pointer from scribbling on the map; readahead off suits random reads of big maps.
        env = lmdb.open(os.fspath(path), map_size=map_size_bytes, max_dbs=len(TABLES) + 1,
                        sync=True, metasync=True, writemap=False, map_async=False,
                        readahead=False, max_readers=READERS_MAX, lock=True)
        return cls(env)

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> LmdbStore:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def map_size_bytes(self) -> int:
        return self._env.info()["map_size"]

    def disk_bytes(self) -> int:
        """Bytes of the data file actually used (pages in use * page size)."""
        info, stat = self._env.info(), self._env.stat()
        return (info["last_pgno"] + 1) * stat["psize"]

    def _get(self, table: bytes, key: bytes) -> bytes | None:
        # LMDB raises on an empty or oversized key rather than finding nothing; no such key
        # can have been written, so a lookup by it (an id from a client) finds nothing, as
        # in the memory store.
        if not 0 < len(key) <= self._key_bytes_max:
            return None
        with self._env.begin(db=self._dbs[table]) as txn:
            return txn.get(key)

    def _iter(self, table: bytes) -> Iterator[tuple[bytes, bytes]]:
        # Materialise in pages so no read transaction stays open while the caller works.
        last: bytes | None = None
        while True:
            batch: list[tuple[bytes, bytes]] = []
            with self._env.begin(db=self._dbs[table]) as txn:
                cursor = txn.cursor()
                found = cursor.set_range(last) if last is not None else cursor.first()
                while found and len(batch) < 10_000:
                    key, value = cursor.item()
                    if key != last:
                        batch.append((bytes(key), bytes(value)))
                    found = cursor.next()
            if not batch:
                return
            yield from batch
            last = batch[-1][0]

    def _scan(self, table: bytes, start: bytes, stop: bytes,
              count_max: int | None) -> list[tuple[bytes, bytes]]:
        # One short read transaction; callers bound `count_max` (None only for a range
        # they know is small, such as one block's evidence).
        out: list[tuple[bytes, bytes]] = []
        with self._env.begin(db=self._dbs[table]) as txn:
            cursor = txn.cursor()
            found = cursor.set_range(start)
            while found and (count_max is None or len(out) < count_max):
                key = bytes(cursor.key())
                if key >= stop:
                    break
                out.append((key, bytes(cursor.value())))
                found = cursor.next()
        return out

    def _write(self, ops: Sequence[Op]) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for table, key, value in ops:
                        db = self._dbs[table]
                        if value is None:
                            txn.delete(key, db=db)
                        else:
                            txn.put(key, value, db=db)
                return
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as exc:
                raise StorageWriteFailed(f"LMDB write failed: {exc}") from exc

    def _grow(self) -> None:
        size = self.map_size_bytes
        if size >= MAP_SIZE_BYTES_MAX:
            raise StorageError(f"map is at map_size_bytes_max {MAP_SIZE_BYTES_MAX}")
        self._env.set_mapsize(min(size * 2, MAP_SIZE_BYTES_MAX))
