"""What every store does, over a tiny atomic key-value interface (LMDB or memory).

Tables (all values sealed by codec.seal, all payloads consensus.canonical bytes):
    meta      b"genesis" | b"height" | b"block_hash" | b"state_root"
    blocks    height (8 B big-endian)  -> (Block, Certificate|None, state_root after it)
    hashes    block hash               -> height (8 B)
    txs       tx id                    -> (height, index, success, reason name)
    accounts  address                  -> account bytes (ledger.account.encode_account)
    engine    record key (UTF-8)       -> engine's durable value
    guard     record key (UTF-8)       -> signing guard's durable value
    archive   height (8 B)             -> zlib(blocks payload): the compressed warm tier
    evidence, evidence_validator       -> the evidence index (ledger/storage/evidence.py)

A block's commit (block, receipts, changed accounts, engine records, evidence index, meta)
is ONE write.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from consensus import canonical
from consensus.types import GENESIS_HASH, Block, Certificate
from ledger.account import Account, decode_account, encode_account
from ledger.genesis import Genesis
from ledger.receipts import AppliedBlock
from ledger.state_tree import StateTree
from ledger.storage.codec import StorageCorruption, StorageError, seal, unseal
from ledger.storage.evidence import (
    BY_VALIDATOR_TABLE,
    EVIDENCE_TABLE,
    EvidencePage,
    evidence_ops,
    query_evidence,
)

TABLES = (b"meta", b"blocks", b"hashes", b"txs", b"accounts", b"engine", b"guard", b"archive",
          EVIDENCE_TABLE, BY_VALIDATOR_TABLE)
ARCHIVE_ZLIB_LEVEL = 6

Op = tuple[bytes, bytes, bytes | None]  # (table, key, sealed value or None = delete)


@dataclass(frozen=True, slots=True)
class StoredBlock:
    block: Block
    certificate: Certificate | None
    state_root: bytes  # ledger state root after applying this block


@dataclass(frozen=True, slots=True)
class TxRecord:
    tx_id: bytes
    height: int
    index: int
    success: bool
    reason: str
    tx: bytes  # the SignedTransaction envelope as included in the block


def height_key(height: int) -> bytes:
    return height.to_bytes(8, "big")


def _record_ops(table: bytes, ops: Iterable[Any]) -> list[Op]:
    """(key, value|None) pairs or consensus.api.Persist objects -> sealed ops."""
    out: list[Op] = []
    for op in ops:
        key, value = (op.key, op.value) if hasattr(op, "key") else op
        raw = key.encode("utf-8")
        out.append((table, raw, None if value is None else seal(table, raw, canonical.encode(value))))
    return out


class StoreBase:
    """Subclasses provide _get, _iter, _write (atomic + durable) and _closed handling."""

    # ------------------------------------------------------------ primitives
    def _get(self, table: bytes, key: bytes) -> bytes | None:
        raise NotImplementedError

    def _iter(self, table: bytes) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError

    def _scan(self, table: bytes, start: bytes, stop: bytes,
              count_max: int | None) -> list[tuple[bytes, bytes]]:
        """Pairs with start <= key < stop in key order, at most `count_max` (None: all)."""
        raise NotImplementedError

    def _write(self, ops: Sequence[Op]) -> None:
        raise NotImplementedError

    def _load(self, table: bytes, key: bytes) -> Any:
        value = self._get(table, key)
        if value is None:
            return None
        payload = unseal(table, key, value)
        try:
            return canonical.decode(payload)
        except canonical.CanonicalError as exc:
            raise StorageCorruption(f"{table.decode()}[{key.hex()}]: {exc}") from exc

    def _put(self, table: bytes, key: bytes, value: Any) -> Op:
        return (table, key, seal(table, key, canonical.encode(value)))

    # ------------------------------------------------------------ meta
    @property
    def height(self) -> int:
        return self._load(b"meta", b"height") or 0

    @property
    def block_hash(self) -> bytes:
        return self._load(b"meta", b"block_hash") or GENESIS_HASH

    @property
    def state_root(self) -> bytes:
        return self._load(b"meta", b"state_root") or b""

    def genesis(self) -> Genesis | None:
        return self._load(b"meta", b"genesis")

    def init_genesis(self, genesis: Genesis) -> None:
        """Write genesis and its accounts once; a second call must pass the same genesis."""
        existing = self.genesis()
        if existing is not None:
            if existing != genesis:
                raise StorageError("store holds a different genesis")
            return
        root = StateTree.from_accounts([(a.address, encode_account(a))
                                        for a in genesis.accounts]).root()
        ops = [self._put(b"meta", b"genesis", genesis), self._put(b"meta", b"height", 0),
               self._put(b"meta", b"block_hash", GENESIS_HASH),
               self._put(b"meta", b"state_root", root)]
        ops += [(b"accounts", a.address, seal(b"accounts", a.address, encode_account(a)))
                for a in genesis.accounts]
        self._write(ops)

    # ------------------------------------------------------------ the block commit
    def commit_block(self, block: Block, certificate: Certificate | None, applied: AppliedBlock,
                     state_changes: Iterable[tuple[bytes, bytes | None]],
                     engine_records: Iterable[Any] = (), evidence: Iterable[Any] = ()) -> None:
        """Block, receipts, changed accounts, engine records, the index of the evidence
        the block carries (pieces with a `validator`, in block order) and meta in ONE
        synced write."""
        height = block.header.height
        if height != self.height + 1 or applied.height != height:
            raise StorageError(f"commit of block {height} at stored height {self.height}")
        if block.header.parent_hash != self.block_hash:
            raise StorageError(f"block {height} does not extend the stored chain")
        ops = [self._put(b"blocks", height_key(height), (block, certificate, applied.state_root)),
               (b"hashes", block.block_hash, seal(b"hashes", block.block_hash, height_key(height)))]
        ops += self._receipt_ops(height, applied)
        for address, data in state_changes:
            ops.append((b"accounts", address,
                        None if data is None else seal(b"accounts", address, data)))
        ops += _record_ops(b"engine", engine_records)
        ops += evidence_ops(height, evidence)
        ops += [self._put(b"meta", b"height", height),
                self._put(b"meta", b"block_hash", block.block_hash),
                self._put(b"meta", b"state_root", applied.state_root)]
        self._write(ops)

    def _receipt_ops(self, height: int, applied: AppliedBlock) -> list[Op]:
        ops = []
        for outcome in applied.outcomes:
            if not outcome.tx_id:
                continue  # unparseable bytes have no id to look them up by
            if not outcome.success:
                # A success receipt is never overwritten by a later refused copy of the
                # same tx (re-proposed after a leader change): clients were told it committed.
                old = self._load(b"txs", outcome.tx_id)
                if old is not None and old[2]:
                    continue
            ops.append(self._put(b"txs", outcome.tx_id,
                                 (height, outcome.index, outcome.success, outcome.reason)))
        return ops

    # ------------------------------------------------------------ durable records
    def put_engine_records(self, ops: Iterable[Any]) -> None:
        """Engine persist effects not tied to a block (votes, views): one synced write."""
        self._write(_record_ops(b"engine", ops))

    def engine_records(self) -> tuple[tuple[str, object], ...]:
        return self._records(b"engine")

    def put_guard_records(self, ops: Iterable[Any]) -> None:
        """The double-sign guard's state: one synced write, before the signature leaves."""
        self._write(_record_ops(b"guard", ops))

    def guard_records(self) -> tuple[tuple[str, object], ...]:
        return self._records(b"guard")

    def _records(self, table: bytes) -> tuple[tuple[str, object], ...]:
        out = []
        for key, value in self._iter(table):
            try:
                out.append((key.decode("utf-8"), canonical.decode(unseal(table, key, value))))
            except (canonical.CanonicalError, UnicodeDecodeError) as exc:
                raise StorageCorruption(f"{table.decode()}[{key.hex()}]: {exc}") from exc
        return tuple(out)

    # ------------------------------------------------------------ reads
    def block(self, height: int) -> StoredBlock | None:
        value = self._load(b"blocks", height_key(height))
        if value is None:
            value = self._load_archived(height)
        return None if value is None else StoredBlock(*value)

    def block_by_hash(self, block_hash: bytes) -> StoredBlock | None:
        raw = self._get(b"hashes", block_hash)
        if raw is None:
            return None
        return self.block(int.from_bytes(unseal(b"hashes", block_hash, raw), "big"))

    def transaction(self, tx_id: bytes) -> TxRecord | None:
        value = self._load(b"txs", tx_id)
        if value is None:
            return None
        height, index, success, reason = value
        stored = self.block(height)
        if stored is None or index >= len(stored.block.txs):
            raise StorageCorruption(f"tx {tx_id.hex()} points at missing block {height}")
        return TxRecord(tx_id, height, index, success, reason, stored.block.txs[index])

    def evidence(self, from_height: int, to_height: int, *, validator: int | None = None,
                 limit: int) -> EvidencePage:
        """Committed evidence at heights [from_height, to_height], optionally only against
        `validator`: range scans of the evidence index, paged by `next_height`."""
        return query_evidence(self, from_height, to_height, validator, limit)

    def account(self, address: bytes) -> Account | None:
        raw = self._get(b"accounts", address)
        return None if raw is None else self._decode_account(address, raw)

    def accounts(self) -> Iterator[Account]:
        for address, raw in self._iter(b"accounts"):
            yield self._decode_account(address, raw)

    def _decode_account(self, address: bytes, raw: bytes) -> Account:
        try:
            account = decode_account(unseal(b"accounts", address, raw))
        except canonical.CanonicalError as exc:
            raise StorageCorruption(f"accounts[{address.hex()}]: {exc}") from exc
        if account.address != address:
            raise StorageCorruption(f"accounts[{address.hex()}]: holds another address")
        return account

    # ------------------------------------------------------------ retention
    def archive_blocks(self, before_height: int) -> int:
        """Move blocks below `before_height` to the compressed tier; they stay readable.

        Each block moves in its own small write so a crash leaves every block in exactly
        one tier. Returns how many blocks moved.
        """
        moved = 0
        for height in range(1, min(before_height, self.height + 1)):
            key = height_key(height)
            raw = self._get(b"blocks", key)
            if raw is None:
                continue
            packed = zlib.compress(unseal(b"blocks", key, raw), ARCHIVE_ZLIB_LEVEL)
            self._write([(b"archive", key, seal(b"archive", key, packed)), (b"blocks", key, None)])
            moved += 1
        return moved

    def _load_archived(self, height: int) -> Any:
        key = height_key(height)
        raw = self._get(b"archive", key)
        if raw is None:
            return None
        try:
            return canonical.decode(zlib.decompress(unseal(b"archive", key, raw)))
        except (zlib.error, canonical.CanonicalError) as exc:
            raise StorageCorruption(f"archive[{height}]: {exc}") from exc
