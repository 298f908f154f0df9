"""The evidence index: committed misbehaviour evidence, queryable by height and by validator.

Tables (values sealed by codec.seal):
    evidence            height (8 B) || index (4 B)                 -> (validator, piece bytes)
    evidence_validator  validator (4 B) || height (8 B) || index (4 B) -> b""

`height` is the committed block that carries the piece, `index` its place among that
block's evidence, `piece bytes` its consensus.canonical encoding (what the engine hashes
and gossips). Both keys are big-endian, so "every piece in heights [a, b]" and "every
piece against validator v in heights [a, b]" are range scans of one table, never a walk
over all blocks.

Storage knows nothing of any engine's evidence type: the runtime hands `commit_block`
the pieces its engine class finds in the block (`evidence_in_block`), and they are
written in the block's own write transaction, so a block is never durable without its
index entries or the other way round. Each piece only needs a `validator` attribute
(the accused) and a canonical encoding.

Pages never split a block: `next_height` is where the next page starts, and resuming
there must neither repeat nor skip a piece. So a page that would end inside a block ends
before it instead, unless that block is the page's first; then the page is that whole
block (an engine bounds evidence per block: Tendermint's `evidence_per_block_max`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from consensus import canonical
from ledger.storage.codec import StorageCorruption, StorageError, seal, unseal

EVIDENCE_TABLE = b"evidence"
BY_VALIDATOR_TABLE = b"evidence_validator"
HEIGHT_BYTES = 8
INDEX_BYTES = 4
VALIDATOR_BYTES = 4
HEIGHT_END = 1 << (8 * HEIGHT_BYTES)  # one past the largest height a key can hold
VALIDATOR_END = 1 << (8 * VALIDATOR_BYTES)

Op = tuple[bytes, bytes, bytes | None]  # as base.Op (base imports this module)


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    height: int  # the committed block that carries the piece
    index: int  # its place among that block's evidence
    validator: int  # the validator it accuses
    evidence: bytes  # the piece's consensus.canonical bytes


@dataclass(frozen=True, slots=True)
class EvidencePage:
    records: tuple[EvidenceRecord, ...]
    next_height: int  # from_height of the next page; 0 when nothing more is in range


class RangeReader(Protocol):
    def _scan(self, table: bytes, start: bytes, stop: bytes,
              count_max: int | None) -> list[tuple[bytes, bytes]]: ...

    def _get(self, table: bytes, key: bytes) -> bytes | None: ...


def evidence_key(height: int, index: int) -> bytes:
    return height.to_bytes(HEIGHT_BYTES, "big") + index.to_bytes(INDEX_BYTES, "big")


def validator_key(validator: int, height: int, index: int) -> bytes:
    return validator.to_bytes(VALIDATOR_BYTES, "big") + evidence_key(height, index)


def evidence_ops(height: int, pieces: Iterable[Any]) -> list[Op]:
    """The index entries of the evidence one block carries (block order)."""
    ops: list[Op] = []
    for index, piece in enumerate(pieces):
        validator = piece.validator
        if not isinstance(validator, int) or not 0 <= validator < VALIDATOR_END:
            raise StorageError(f"evidence at height {height} names validator {validator!r}")
        key = evidence_key(height, index)
        payload = canonical.encode((validator, canonical.encode(piece)))
        ops.append((EVIDENCE_TABLE, key, seal(EVIDENCE_TABLE, key, payload)))
        vkey = validator_key(validator, height, index)
        ops.append((BY_VALIDATOR_TABLE, vkey, seal(BY_VALIDATOR_TABLE, vkey, b"")))
    return ops


def _record(key: bytes, value: bytes) -> EvidenceRecord:
    try:
        validator, data = canonical.decode(unseal(EVIDENCE_TABLE, key, value))
    except (canonical.CanonicalError, TypeError, ValueError) as exc:
        raise StorageCorruption(f"evidence[{key.hex()}]: {exc}") from exc
    height = int.from_bytes(key[:HEIGHT_BYTES], "big")
    return EvidenceRecord(height, int.from_bytes(key[HEIGHT_BYTES:], "big"), validator, data)


def query_evidence(store: RangeReader, from_height: int, to_height: int,
                   validator: int | None, limit: int) -> EvidencePage:
    """Pieces committed at heights [from_height, to_height] (against `validator`, or
    anyone), oldest first: at most `limit`, or one whole block that alone holds more."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    # hi + 1 must still fit a key (no chain gets near 2**64 blocks)
    lo, hi = max(from_height, 0), min(to_height, HEIGHT_END - 2)
    if validator is None:
        table, prefix = EVIDENCE_TABLE, b""
    elif 0 <= validator < VALIDATOR_END:
        table, prefix = BY_VALIDATOR_TABLE, validator.to_bytes(VALIDATOR_BYTES, "big")
    else:
        return EvidencePage((), 0)  # no key can name it
    if lo > hi:
        return EvidencePage((), 0)
    positions, next_height = _page_positions(store, table, prefix, lo, hi, limit)
    return EvidencePage(tuple(_load(store, p) for p in positions), next_height)


def _height_of(position: bytes) -> int:
    return int.from_bytes(position[:HEIGHT_BYTES], "big")


def _scan_positions(store: RangeReader, table: bytes, prefix: bytes, lo: int, stop: int,
                    count_max: int | None) -> list[bytes]:
    """Evidence keys (height || index) in heights [lo, stop) of one table and prefix."""
    found = store._scan(table, prefix + lo.to_bytes(HEIGHT_BYTES, "big"),
                        prefix + stop.to_bytes(HEIGHT_BYTES, "big"), count_max)
    return [key[len(prefix):] for key, _ in found]


def _page_positions(store: RangeReader, table: bytes, prefix: bytes, lo: int, hi: int,
                    limit: int) -> tuple[list[bytes], int]:
    positions = _scan_positions(store, table, prefix, lo, hi + 1, limit + 1)
    if len(positions) <= limit:
        return positions, 0
    next_height = _height_of(positions[limit])
    page = positions[:limit]
    if _height_of(page[-1]) != next_height:
        return page, next_height
    whole_blocks = [p for p in page if _height_of(p) < next_height]
    if whole_blocks:
        return whole_blocks, next_height  # the cut block starts the next page
    # One block holds more than `limit` pieces: it is the page, whole.
    block = _scan_positions(store, table, prefix, next_height, next_height + 1, None)
    after = _scan_positions(store, table, prefix, next_height + 1, hi + 1, 1)
    return block, (_height_of(after[0]) if after else 0)


def _load(store: RangeReader, position: bytes) -> EvidenceRecord:
    value = store._get(EVIDENCE_TABLE, position)
    if value is None:  # index entries are written with their row and never deleted
        raise StorageCorruption(f"evidence_validator points at missing evidence[{position.hex()}]")
    return _record(position, value)
