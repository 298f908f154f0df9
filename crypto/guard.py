"""Double-sign guard: no consensus signature leaves the process unless it is on disk first.

Positions come from `consensus.api.sign_position(message)`: (stream, ordinal...), e.g.
("pbft.prepare", view, seq) or ("tendermint.prevote", height, round). Rules, per stream:

  * same position, same bytes      -> the stored signature (ML-DSA signing is randomised,
                                      so re-signing would look like equivocation);
  * same position, different bytes -> refused, always (DoubleSignRefused);
  * ordinal <= the stream's floor  -> refused (below the low-water mark: pruned state);
  * monotonic streams only: ordinal below the highest signed -> refused. Tendermint
    (height, round) and HotStuff views only move forward; PBFT pipelines several
    sequence numbers per view, so its streams are not monotonic and rely on the exact
    position check plus a floor the driver raises at each stable checkpoint
    (`prune_below(stream, (view, stable_seq))`).

State per stream is bounded (`positions_per_stream_max`): beyond it the lowest position is
dropped and becomes the floor; replaying the file applies the same rule, so the floor
survives restarts without extra writes.

File: append-only records `length u32 | crc32 u32 | canonical payload`, fsynced before the
signature is returned. A torn final record (crash mid-write) is cut off at load: its
signature was never released. Damage before the final record is corruption and stops
start-up. The first record names the key (SHA-256 of its public key): a guard file from
another key stops start-up.

Rollback (restoring an old copy of the disk) is caught with a TPM NV counter when one is
configured: each record carries counter value c + 1, written and synced *before* the TPM
counter is incremented to c + 1, and only then is the signature released. At start-up
the counter must equal the last record's value (or be one behind: crashed between the
two steps, nothing released; we catch the counter up). A counter ahead of the file means
the file is older than the TPM's memory: start-up stops.
"""
from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from consensus import canonical
from crypto.errors import DoubleSignRefused, GuardError

GUARD_VERSION = 1
RECORD_BYTES_MAX = 64 * 1024
_HEAD = struct.Struct(">II")
MONOTONIC_PREFIXES = ("tendermint.", "hotstuff.", "raft.")  # terms/views only grow

Ordinal = tuple[int, ...]


class GuardCounter(Protocol):
    """A counter that can only go up and that no disk restore can rewind (TPM NV)."""

    def read(self) -> int: ...

    def increment(self) -> int: ...


@dataclass(slots=True)
class _Stream:
    signed: dict[Ordinal, tuple[bytes, bytes]] = field(default_factory=dict)
    high: Ordinal | None = None
    floor: Ordinal | None = None


def _split(position: tuple[object, ...]) -> tuple[str, Ordinal]:
    if not position or not isinstance(position[0], str):
        raise ValueError(f"sign position must start with a stream name: {position!r}")
    ordinal = position[1:]
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in ordinal):
        raise ValueError(f"sign position ordinals must be integers: {position!r}")
    return position[0], tuple(ordinal)  # type: ignore[arg-type]


def _frame(payload: bytes) -> bytes:
    return _HEAD.pack(len(payload), zlib.crc32(payload)) + payload


class SignGuard:
    """Durable anti-equivocation record for one signing key. Not thread-safe: one driver."""

    def __init__(self, path: Path, public_key: bytes, *, counter: GuardCounter | None = None,
                 counter_is_new: bool = False, positions_per_stream_max: int = 4096,
                 monotonic_prefixes: tuple[str, ...] = MONOTONIC_PREFIXES,
                 compact_after_records: int = 65_536) -> None:
        self.path = Path(path)
        self._key_hash = hashlib.sha256(public_key).digest()
        self._counter = counter
        self._positions_max = positions_per_stream_max
        self._monotonic = monotonic_prefixes
        self._compact_after = compact_after_records
        self._streams: dict[str, _Stream] = {}
        self._records = 0
        self._last_count = 0
        self._fd = -1
        if not self.path.exists():
            self._create(counter_is_new)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            self._load(counter_is_new and self._records == 0)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- public API
    def sign(self, position: tuple[object, ...], data: bytes,
             signer: Callable[[bytes], bytes], monotonic: bool | None = None) -> bytes:
        """Return a signature over `data` at `position`, or raise DoubleSignRefused."""
        stream_name, ordinal = _split(position)
        stream = self._streams.setdefault(stream_name, _Stream())
        digest = hashlib.sha256(data).digest()
        if monotonic is None:
            monotonic = stream_name.startswith(self._monotonic)
        self._check(stream_name, stream, ordinal, digest, monotonic)
        if ordinal in stream.signed:
            return stream.signed[ordinal][1]
        signature = signer(data)
        count = self._last_count + 1 if self._counter is not None else 0
        self._append(("S", stream_name, ordinal, digest, signature, count))
        if self._counter is not None:
            self._counter.increment()
            self._last_count = count
        self._remember(stream, ordinal, digest, signature)
        return signature

    def prune_below(self, stream_name: str, ordinal: Ordinal) -> None:
        """Raise the floor of a stream: positions <= ordinal are refused from now on."""
        stream = self._streams.setdefault(stream_name, _Stream())
        ordinal = tuple(ordinal)
        if stream.floor is not None and ordinal <= stream.floor:
            return
        self._append(("F", stream_name, ordinal))
        self._apply_floor(stream, ordinal)

    def signed_at(self, position: tuple[object, ...]) -> bytes | None:
        stream_name, ordinal = _split(position)
        entry = self._streams.get(stream_name, _Stream()).signed.get(ordinal)
        return entry[1] if entry else None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # ---------------------------------------------------------------- rules
    def _check(self, name: str, stream: _Stream, ordinal: Ordinal, digest: bytes,
               monotonic: bool) -> None:
        if stream.floor is not None and ordinal <= stream.floor:
            raise DoubleSignRefused(f"{name} {ordinal} is at or below the low-water mark "
                                    f"{stream.floor}")
        previous = stream.signed.get(ordinal)
        if previous is not None:
            if previous[0] != digest:
                raise DoubleSignRefused(f"{name} {ordinal} already signed for other bytes")
            return
        if monotonic and stream.high is not None and ordinal < stream.high:
            raise DoubleSignRefused(f"{name} {ordinal} is below the highest signed "
                                    f"position {stream.high} of a monotonic stream")

    def _remember(self, stream: _Stream, ordinal: Ordinal, digest: bytes,
                  signature: bytes) -> None:
        stream.signed[ordinal] = (digest, signature)
        if stream.high is None or ordinal > stream.high:
            stream.high = ordinal
        if len(stream.signed) > self._positions_max:
            self._apply_floor(stream, min(stream.signed))

    @staticmethod
    def _apply_floor(stream: _Stream, ordinal: Ordinal) -> None:
        stream.floor = ordinal if stream.floor is None else max(stream.floor, ordinal)
        for old in [o for o in stream.signed if o <= stream.floor]:
            del stream.signed[old]
        if stream.high is None or stream.floor > stream.high:
            stream.high = stream.floor

    # ---------------------------------------------------------------- file
    def _append(self, payload: tuple[object, ...]) -> None:
        os.write(self._fd, _frame(canonical.encode(payload)))
        os.fsync(self._fd)
        self._records += 1
        if self._records > self._compact_after:
            self._compact()

    def _header(self) -> bytes:
        return _frame(canonical.encode(("H", GUARD_VERSION, self._key_hash, self._last_count)))

    def _create(self, counter_is_new: bool) -> None:
        if self._counter is not None:
            if not counter_is_new:
                raise GuardError(f"guard file {self.path} is missing but its TPM counter "
                                 "exists: the disk was wiped or restored; restore the latest "
                                 "guard file (starting fresh could equivocate)")
            self._last_count = self._counter.read()
        _write_synced(self.path, self._header())
        self._records = 1  # the header; _load then reads it back without adopting

    def _load(self, counter_is_new: bool) -> None:
        from crypto.guard_file import read_records
        payloads = read_records(self.path, RECORD_BYTES_MAX)
        self._check_header(payloads[0] if payloads else None)
        for payload in payloads[1:]:
            self._replay(payload)
        self._records = len(payloads)
        if self._counter is not None and counter_is_new:
            # A guard that predates its TPM counter adopts the counter's current value.
            self._last_count = self._counter.read()
            self._append(("C", self._last_count))
        self._check_counter()

    def _check_header(self, header: object) -> None:
        if not (isinstance(header, tuple) and len(header) == 4 and header[0] == "H"
                and header[1] == GUARD_VERSION):
            raise GuardError(f"guard file {self.path} has no valid header (corrupt or not a "
                             "guard file); restore it from backup")
        if header[2] != self._key_hash:
            raise GuardError(f"guard file {self.path} belongs to another key; point the "
                             "guard at this key's file (never delete a guard to start)")
        self._last_count = int(header[3])  # type: ignore[call-overload]

    def _replay(self, payload: object) -> None:
        if not isinstance(payload, tuple) or payload[0] not in ("S", "F", "C"):
            raise GuardError(f"guard file {self.path} has an unknown record; restore it")
        if payload[0] == "C":
            self._last_count = max(self._last_count, payload[1])
            return
        stream = self._streams.setdefault(payload[1], _Stream())
        if payload[0] == "F":
            self._apply_floor(stream, tuple(payload[2]))
            return
        _, _, ordinal, digest, signature, count = payload
        self._remember(stream, tuple(ordinal), digest, signature)
        self._last_count = max(self._last_count, count)

    def _check_counter(self) -> None:
        if self._counter is None:
            return
        tpm_count = self._counter.read()
        if tpm_count == self._last_count:
            return
        if tpm_count == self._last_count - 1:  # crashed after the sync, before increment
            self._counter.increment()
            return
        raise GuardError(f"guard file {self.path} is older than the TPM counter "
                         f"({self._last_count} < {tpm_count}): it was restored from an old "
                         "copy; restore the latest guard file")

    def _compact(self) -> None:
        parts = [self._header()]
        for name in sorted(self._streams):
            stream = self._streams[name]
            if stream.floor is not None:
                parts.append(_frame(canonical.encode(("F", name, stream.floor))))
            for ordinal in sorted(stream.signed):
                digest, signature = stream.signed[ordinal]
                parts.append(_frame(canonical.encode(
                    ("S", name, ordinal, digest, signature, self._last_count))))
        temporary = self.path.with_suffix(self.path.suffix + ".compact")
        _write_synced(temporary, b"".join(parts))
        os.replace(temporary, self.path)
        _sync_dir(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._records = len(parts)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
