"""The replicated log (Ongaro & Ousterhout 2014 §5.3; thesis §3.5, §5 compaction).

Theory of operation: entries (offset.index, last_index] are held in memory and each is a
durable record `raft/entry/<index>`; everything at or below `offset` has been compacted
into the ledger (the ledger's blocks are the snapshot, thesis §5.1). Every mutation
returns the `Persist` ops that make it durable, and the engine puts them in the same
`Effects` as the message that depends on them, so the driver writes them first (§3.8).

Log Matching (§5.3): two logs holding an entry with the same index and term are identical
up to it. Entries at or below the offset are committed, hence (State Machine Safety) equal
to every other node's entries there, so `matches(prev)` is true for any prev <= offset.
"""
from __future__ import annotations

from consensus.api import Persist
from consensus.raft.messages import KEY_LOG_OFFSET, Entry, LogOffset, entry_key
from consensus.types import GENESIS_HASH


class RaftLog:
    __slots__ = ("entries", "offset")

    def __init__(self, offset: LogOffset | None = None) -> None:
        self.offset = offset or LogOffset(index=0, term=0, block_hash=GENESIS_HASH,
                                          timestamp_ms=0)
        self.entries: list[Entry] = []  # entries[i].index == offset.index + 1 + i

    # ------------------------------------------------------------ queries
    @property
    def first_index(self) -> int:
        return self.offset.index + 1

    @property
    def last_index(self) -> int:
        return self.offset.index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.offset.term

    def entry(self, index: int) -> Entry | None:
        if self.offset.index < index <= self.last_index:
            return self.entries[index - self.offset.index - 1]
        return None

    def term_at(self, index: int) -> int | None:
        """Term of the entry at `index`; None when compacted away or past the end."""
        if index == self.offset.index:
            return self.offset.term
        entry = self.entry(index)
        return entry.term if entry is not None else None

    def hash_at(self, index: int) -> bytes | None:
        if index == self.offset.index:
            return self.offset.block_hash
        entry = self.entry(index)
        if entry is None or entry.block is None:
            return None
        return entry.block.block_hash

    def timestamp_at_last(self) -> int:
        for entry in reversed(self.entries):
            if entry.block is not None:
                return entry.block.header.timestamp_ms
        return self.offset.timestamp_ms

    def matches(self, index: int, term: int) -> bool:
        """AppendEntries consistency check (Figure 2, receiver rule 2)."""
        if index <= self.offset.index:
            return True  # committed prefix: identical on every node
        return self.term_at(index) == term

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """§5.4.1 election restriction: is (last_term, last_index) at least as new as ours?"""
        return (last_term, last_index) >= (self.last_term, self.last_index)

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """Largest i <= index whose term <= term (fast back-off, thesis §5.3 / etcd)."""
        index = min(index, self.last_index)
        while index > self.offset.index:
            entry_term = self.term_at(index)
            if entry_term is not None and entry_term <= term:
                return index
            index -= 1
        return self.offset.index

    def slice(self, start: int, bytes_max: int, count_max: int) -> tuple[Entry, ...]:
        """Entries from `start`, at least one, then up to `bytes_max` payload bytes."""
        out: list[Entry] = []
        size = 0
        for index in range(max(start, self.first_index), self.last_index + 1):
            entry = self.entry(index)
            assert entry is not None
            cost = entry.block.payload_bytes() if entry.block is not None else 0
            if out and (size + cost > bytes_max or len(out) >= count_max):
                break
            out.append(entry)
            size += cost
        return tuple(out)

    # ------------------------------------------------------------ mutations
    def append(self, entry: Entry) -> list[Persist]:
        if entry.index != self.last_index + 1:
            raise AssertionError(f"log gap: appending {entry.index} after {self.last_index}")
        self.entries.append(entry)
        return [Persist(entry_key(entry.index), entry)]

    def truncate_from(self, index: int) -> list[Persist]:
        """Delete entries >= index (a conflicting suffix, Figure 2 receiver rule 3)."""
        if index <= self.offset.index:
            raise AssertionError(f"truncating compacted entry {index}")
        ops = [Persist(entry_key(i), None) for i in range(index, self.last_index + 1)]
        del self.entries[index - self.offset.index - 1:]
        return ops

    def compact_to(self, index: int) -> list[Persist]:
        """Drop entries <= index (they are in the ledger); the offset moves to `index`."""
        entry = self.entry(index)
        if entry is None or entry.block is None:
            return []
        ops = [Persist(entry_key(i), None) for i in range(self.first_index, index + 1)]
        self.offset = LogOffset(index=index, term=entry.term,
                                block_hash=entry.block.block_hash,
                                timestamp_ms=entry.block.header.timestamp_ms)
        self.entries = [e for e in self.entries if e.index > index]
        ops.append(Persist(KEY_LOG_OFFSET, self.offset))
        return ops

    def reset_to(self, offset: LogOffset) -> list[Persist]:
        """Install a snapshot: keep a suffix that agrees with it, else drop the log (§5.1)."""
        ops: list[Persist] = []
        keep = self.term_at(offset.index) == offset.term
        for entry in self.entries:
            if not keep or entry.index <= offset.index:
                ops.append(Persist(entry_key(entry.index), None))
        self.entries = [e for e in self.entries if keep and e.index > offset.index]
        self.offset = offset
        ops.append(Persist(KEY_LOG_OFFSET, offset))
        return ops
