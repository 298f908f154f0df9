"""Checking what a proposed header claims: its time and its state (issue 11).

Theory of operation
-------------------
PBFT orders whatever batch the primary picks (Castro & Liskov 1999 §4.2); the backups'
only duty is that it is well formed. Our blocks carry two more facts the ledger trusts:
`timestamp_ms`, the ledger's only clock (transaction expiry), and (`state_height`,
`state_root`), the state that state proofs are certified against. A byzantine primary
must not choose them, so a backup PREPAREs a fresh block only when both hold by its own
knowledge - the same "non-deterministic choices are checked by the backups" rule as
TOCS 2002 §6.2.3 (the primary proposes the time; backups check it against their own):

Time. Engines have no clock, so a replica estimates one: the latest `Propose` timestamp
it was given (the driver's clock) plus `tick_ms` per tick since. A header is accepted
when its timestamp is later than its parent's (strictly monotonic) and at most
`timestamp_skew_max_ms` ahead of that estimate. Header timestamps never move the
estimate, so a byzantine primary cannot ratchet it forward block by block. A replica
that has never been given a `Propose` anchors on committed blocks' timestamps instead
(each was checked by f + 1 honest replicas); one that knows neither skips the bound.
When the parent's timestamp is unknown (the parent came by state transfer) only the
bound is checked.

State. The primary names the latest height it has applied and that height's root (a
pipelined primary proposes before its predecessors are applied, so state_height may be
below height - 1, never at or above height). A backup compares the root with the one it
learned from `Applied`/`Synced` for that height. If it has not applied that height yet,
the block is not wrong, only early: the PRE-PREPARE waits in the future buffer
(inbox.py) and is replayed when `Applied` arrives - the height is committed (the primary
applied it), so this backup gets there through commits, retransmission (status.py) or
state transfer, and liveness holds. Roots are kept for the last `log_window_blocks`
heights; an older claim is refused. One exception: heights a replica skipped by state
transfer (`Synced` names only the tip's root) it cannot check, so it leaves them to the
replicas that computed them - a wrong root still needs f + 1 honest PREPAREs, and only
honest replicas that skipped that very height could give one.

A NEW-VIEW's null block is built from the view changes alone, so its state is the stable
checkpoint the selection starts from (certified by 2f + 1 CHECKPOINTs) and its time the
latest it extends plus one; re-proposed blocks keep the header that f + 1 honest
replicas already checked when they prepared it.
"""
from __future__ import annotations

from consensus.pbft.state import Replica
from consensus.types import Block


def observe_time(r: Replica, timestamp_ms: int) -> None:
    """A `Propose` carries the driver's clock: re-anchor the estimate."""
    r.clock_ms = max(r.clock_ms, timestamp_ms)
    r.clock_from_propose = True


def observe_committed_time(r: Replica, timestamp_ms: int) -> None:
    r.committed_timestamp_ms = timestamp_ms
    if not r.clock_from_propose:
        r.clock_ms = max(r.clock_ms, timestamp_ms)
        r.clock_known = True


def tick_time(r: Replica) -> None:
    if r.clock_from_propose or r.clock_known:
        r.clock_ms += r.config.tick_ms


def time_problem(r: Replica, block: Block) -> str | None:
    timestamp_ms = block.header.timestamp_ms
    parent_ms = parent_timestamp_ms(r, block)
    if parent_ms is not None and timestamp_ms <= parent_ms:
        return f"timestamp {timestamp_ms} not after its parent's {parent_ms}"
    if (r.clock_from_propose or r.clock_known) and \
            timestamp_ms > r.clock_ms + r.config.timestamp_skew_max_ms:
        return (f"timestamp {timestamp_ms} more than {r.config.timestamp_skew_max_ms} ms "
                f"ahead of this replica's clock {r.clock_ms}")
    return None


def parent_timestamp_ms(r: Replica, block: Block) -> int | None:
    parent_height, parent_hash = block.height - 1, block.header.parent_hash
    if parent_height == r.committed_height and parent_hash == r.committed_hash:
        return r.committed_timestamp_ms
    parent = r.blocks.get(parent_height, {}).get(parent_hash)
    return parent.header.timestamp_ms if parent is not None else None


def remember_root(r: Replica, height: int, state_root: bytes | None) -> None:
    """`None`: this replica reached `height` by state transfer and never computed it."""
    r.applied_roots[height] = state_root
    while len(r.applied_roots) > r.config.log_window_blocks:
        del r.applied_roots[min(r.applied_roots)]


def remember_synced(r: Replica, old_height: int, height: int, state_root: bytes) -> None:
    for skipped in range(max(old_height + 1, height - r.config.log_window_blocks), height):
        remember_root(r, skipped, None)
    remember_root(r, height, state_root)


def state_problem(r: Replica, block: Block) -> str | None:
    """Why the header's state claim is wrong, or None; `state_early` says when to wait."""
    header = block.header
    if header.state_height >= header.height:
        return f"state height {header.state_height} not below height {header.height}"
    if header.state_height > r.applied_height:
        return None  # early: state_early() holds, the caller buffers
    if header.state_height not in r.applied_roots:
        return f"state height {header.state_height} too old to check"
    known = r.applied_roots[header.state_height]
    if known is None:
        return None  # skipped by state transfer: the replicas that computed it check it
    if known != header.state_root:
        return f"state root at {header.state_height} is not the one this replica computed"
    return None


def state_early(r: Replica, block: Block) -> bool:
    return block.header.state_height > r.applied_height
