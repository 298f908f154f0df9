"""Raft wire messages (Ongaro & Ousterhout 2014, Figure 2; Ongaro thesis §3-§6, §9.6).

Theory of operation: every RPC of Figure 2 and of the thesis extensions is one frozen
dataclass. Names and fields match the `Raft*` messages of proto/qenex/v1/consensus.proto
exactly (the generic codec maps `RequestVote` <-> `RaftRequestVote` by name), and each is
registered with `canonical` so it can be signed, persisted and hashed.

Log index == block height: the no-op entry a new leader appends (thesis §6.4) is an
*empty block*, so every entry carries a block and `Entry.block` is never None here (the
proto keeps it optional). This keeps ledger heights, snapshots and catch-up one number.

`sign_position` (double-sign guard): only a granted real vote is a binding statement
("raft.vote", term) - a node must never grant two candidates in one term (§3.4). A real
RequestVote is ("raft.request_vote", term): a candidate asks once per term it starts.
Pre-votes (§9.6), appends, heartbeats and responses may legitimately differ at one term.
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus import canonical
from consensus.types import Block, NodeId


@canonical.register("raft.request_vote.v1")
@dataclass(frozen=True, slots=True)
class RequestVote:
    term: int  # candidate's term; for a pre-vote the term it *would* start (not adopted)
    candidate: NodeId
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False  # thesis §9.6
    leader_transfer: bool = False  # campaign ordered by TimeoutNow: ignore the lease (§3.10)

    def sign_position(self) -> tuple[object, ...] | None:
        return None if self.pre_vote else ("raft.request_vote", self.term)


@canonical.register("raft.request_vote_response.v1")
@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    term: int
    voter: NodeId
    granted: bool
    pre_vote: bool = False

    def sign_position(self) -> tuple[object, ...] | None:
        if self.granted and not self.pre_vote:
            return ("raft.vote", self.term)
        return None


@canonical.register("raft.entry.v1")
@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int  # == block.height
    block: Block | None


@canonical.register("raft.append_entries.v2")
@dataclass(frozen=True, slots=True)
class AppendEntries:
    term: int
    leader: NodeId
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    read_context: int = 0  # ReadIndex round, echoed back (thesis §6.4)
    # v2: block hashes of the entries ending at leader_commit (the last one is the hash
    # at leader_commit), from what this follower confirmed committed: the leader's
    # signature binds each height it announces committed to its block (certificate.py).
    commit_hashes: tuple[bytes, ...] = ()

    def commit_hash_at(self, index: int) -> bytes | None:
        return hash_in_range(self.commit_hashes, self.leader_commit, index)

    def sign_position(self) -> None:
        return None


@canonical.register("raft.append_entries_response.v2")
@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    term: int
    follower: NodeId
    success: bool
    match_index: int  # success: last index known to match; failure: the rejected prev index
    reject_hint_index: int = 0  # failure: leader should probe at or below this index
    reject_hint_term: int = 0  # failure: term of the follower's entry at the hint
    read_context: int = 0
    match_term: int = 0  # success: term of the entry at match_index (certificates)
    # v2: success: block hashes of the entries ending at match_index that this follower
    # vouches for storing (from the leader's commit index of the request), so a
    # majority of acks binds each committed height to its block (certificate.py).
    match_hashes: tuple[bytes, ...] = ()
    commit_index: int = 0  # v2: the follower's commit index after this request

    def sign_position(self) -> None:
        return None

    def match_hash_at(self, index: int) -> bytes | None:
        return hash_in_range(self.match_hashes, self.match_index, index)


def hash_in_range(hashes: tuple[bytes, ...], last_index: int, index: int) -> bytes | None:
    """`hashes[-1]` is the hash at `last_index`, the one before at last_index - 1, ..."""
    offset = index - (last_index - len(hashes) + 1)
    return hashes[offset] if 0 <= offset < len(hashes) and index <= last_index else None


@canonical.register("raft.timeout_now.v1")
@dataclass(frozen=True, slots=True)
class TimeoutNow:
    term: int
    leader: NodeId

    def sign_position(self) -> None:
        return None


@canonical.register("raft.install_snapshot.v1")
@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    term: int
    leader: NodeId
    last_included_index: int
    last_included_term: int
    last_included_hash: bytes
    state_root: bytes

    def sign_position(self) -> None:
        return None


@canonical.register("raft.install_snapshot_response.v1")
@dataclass(frozen=True, slots=True)
class InstallSnapshotResponse:
    term: int
    follower: NodeId
    match_index: int

    def sign_position(self) -> None:
        return None


# ------------------------------------------------------------ durable records (not wire)
@canonical.register("raft.hard_state.v1")
@dataclass(frozen=True, slots=True)
class HardState:
    """Figure 2 "persistent state on all servers": currentTerm and votedFor."""
    term: int
    voted_for: NodeId | None


@canonical.register("raft.log_offset.v1")
@dataclass(frozen=True, slots=True)
class LogOffset:
    """Where the retained log starts: the last compacted (or snapshot-installed) entry."""
    index: int
    term: int
    block_hash: bytes
    timestamp_ms: int


RaftMessage = (RequestVote | RequestVoteResponse | AppendEntries | AppendEntriesResponse
               | TimeoutNow | InstallSnapshot | InstallSnapshotResponse)
MESSAGE_TYPES = (RequestVote, RequestVoteResponse, AppendEntries, AppendEntriesResponse,
                 TimeoutNow, InstallSnapshot, InstallSnapshotResponse)

KEY_HARD_STATE = "raft/hard_state"
KEY_LOG_OFFSET = "raft/log_offset"
KEY_PENDING_SNAPSHOT = "raft/pending_snapshot"
ENTRY_KEY_PREFIX = "raft/entry/"


def entry_key(index: int) -> str:
    # Zero-padded so a store that iterates keys in order yields the log in order.
    return f"{ENTRY_KEY_PREFIX}{index:020d}"
