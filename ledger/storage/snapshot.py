"""State snapshots: export the state at the store's height (with its root), import it into
an empty store so a new node can start there instead of replaying every block.

File format (all integers big-endian):
    frame   = u32 length || payload || BLAKE2b-64(payload)
    frames  = header, account bytes * count, trailer
    header  = canonical (SNAPSHOT_MAGIC, version, Genesis, height, block hash, state root,
                         count, (Block, Certificate|None, state root) of `height` or None)
    trailer = canonical ("end", count)
The importer recomputes the state root from the accounts and refuses a mismatch, so a
snapshot from an untrusted peer is safe once its root matches a certified header.
Export runs on the storage (writer) thread between commits, so the state does not move.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import BinaryIO

from consensus import canonical
from ledger.account import decode_account, encode_account
from ledger.state_tree import StateTree
from ledger.storage.base import StoreBase, height_key
from ledger.storage.codec import StorageCorruption, StorageError, seal

SNAPSHOT_MAGIC = "QENEX-SNAPSHOT"
SNAPSHOT_VERSION = 1
FRAME_BYTES_MAX = 64 * 1024 * 1024  # the header holds one block; accounts are small


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    height: int
    block_hash: bytes
    state_root: bytes
    accounts: int


def _frame(out: BinaryIO, payload: bytes) -> None:
    out.write(len(payload).to_bytes(4, "big") + payload
              + hashlib.blake2b(payload, digest_size=8).digest())


def _read_frame(src: BinaryIO) -> bytes:
    head = src.read(4)
    if len(head) != 4:
        raise StorageCorruption("snapshot truncated")
    length = int.from_bytes(head, "big")
    if length > FRAME_BYTES_MAX:
        raise StorageCorruption("snapshot frame too large")
    payload, check = src.read(length), src.read(8)
    if len(payload) != length or check != hashlib.blake2b(payload, digest_size=8).digest():
        raise StorageCorruption("snapshot frame checksum mismatch")
    return payload


def export_snapshot(store: StoreBase, path: str | os.PathLike[str]) -> SnapshotInfo:
    genesis = store.genesis()
    if genesis is None:
        raise StorageError("store has no genesis")
    height, block_hash, root = store.height, store.block_hash, store.state_root
    tip = store.block(height) if height else None
    accounts = list(store.accounts())
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as out:
        tip_value = None if tip is None else (tip.block, tip.certificate, tip.state_root)
        _frame(out, canonical.encode((SNAPSHOT_MAGIC, SNAPSHOT_VERSION, genesis, height,
                                      block_hash, root, len(accounts), tip_value)))
        for account in accounts:
            _frame(out, encode_account(account))
        _frame(out, canonical.encode(("end", len(accounts))))
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)  # a reader never sees half a snapshot
    return SnapshotInfo(height, block_hash, root, len(accounts))


def import_snapshot(path: str | os.PathLike[str], store: StoreBase) -> SnapshotInfo:
    """Load a snapshot into an empty store in one write; the root is recomputed and checked."""
    if store.genesis() is not None:
        raise StorageError("import_snapshot needs an empty store")
    with open(path, "rb") as src:
        try:
            header = canonical.decode(_read_frame(src))
            magic, version, genesis, height, block_hash, root, count, tip = header
            if (magic, version) != (SNAPSHOT_MAGIC, SNAPSHOT_VERSION):
                raise StorageCorruption("not a QENEX snapshot of this version")
            accounts = [decode_account(_read_frame(src)) for _ in range(count)]
            if canonical.decode(_read_frame(src)) != ("end", count):
                raise StorageCorruption("snapshot trailer mismatch")
        except (canonical.CanonicalError, ValueError, TypeError) as exc:
            raise StorageCorruption(f"snapshot undecodable: {exc}") from exc
    encoded = [(a.address, encode_account(a)) for a in accounts]
    if StateTree.from_accounts(encoded).root() != root:
        raise StorageCorruption("snapshot accounts do not hash to its state root")
    ops = [store._put(b"meta", b"genesis", genesis), store._put(b"meta", b"height", height),
           store._put(b"meta", b"block_hash", block_hash), store._put(b"meta", b"state_root", root)]
    if tip is not None:
        ops.append(store._put(b"blocks", height_key(height), tip))
        ops.append((b"hashes", block_hash, seal(b"hashes", block_hash, height_key(height))))
    ops += [(b"accounts", address, seal(b"accounts", address, data)) for address, data in encoded]
    store._write(ops)
    return SnapshotInfo(height, block_hash, root, count)
