"""Checkpoints, water marks, garbage collection and state transfer.

Theory of operation
-------------------
Every K = `checkpoint_interval_blocks` sequence numbers a replica multicasts
CHECKPOINT(n, state root, block hash, i) once the driver has applied block n (`Applied`).
2f + 1 matching checkpoints from distinct replicas make a stable checkpoint - its proof -
and the low water mark h moves to n, the high water mark to H = h + L
(`log_window_blocks`). Everything at or below h is discarded: log entries, votes,
prepared certificates, older checkpoints and their durable records, so memory stays
bounded however long the replica runs (Castro & Liskov 1999 §4.3; TOCS 2002 §4.3).

A replica that learns from a stable checkpoint - or f + 1 matching checkpoints, at least
one of them honest - that the others executed past what it has, or that sees a commit
quorum it cannot use because it lacks earlier blocks, has fallen behind and fetches the
missing blocks from the replicas that vouched for them (TOCS §5.3.2 state transfer). The
driver checks each fetched block against its commit certificate (`check_certificate`),
applies it and feeds `Synced`; the replica then continues from there.
"""
from __future__ import annotations

from consensus.api import (
    Applied,
    CatchUp,
    EffectsBuilder,
    Note,
    Persist,
    RejectReason,
    Send,
    Synced,
)
from consensus.pbft.header import remember_root, remember_synced
from consensus.pbft.messages import Checkpoint
from consensus.pbft.normal_case import mark_committed, try_commit, try_prepared
from consensus.pbft.state import (
    KEY_STABLE,
    Replica,
    StableCheckpoint,
    pre_prepare_key,
    prepared_key,
)
from consensus.types import NodeId, SignedMessage


def on_applied(r: Replica, fx: EffectsBuilder, event: Applied) -> None:
    if event.height < r.applied_height:
        return
    r.applied_height, r.applied_root = event.height, event.state_root
    note_state(r, event.height, event.state_root)
    send_checkpoint(r, fx, event.height, event.block_hash, event.state_root)


def note_state(r: Replica, height: int, state_root: bytes) -> None:
    """Remember the root for header checks; wake a pre-prepare that waited for it."""
    remember_root(r, height, state_root)
    if r.state_wait_height and height >= r.state_wait_height:
        r.state_wait_height = 0
        r.replay_needed = True


def send_checkpoint(r: Replica, fx: EffectsBuilder, height: int, block_hash: bytes,
                    state_root: bytes) -> None:
    if height % r.config.checkpoint_interval_blocks == 0 and height > r.low_water_mark:
        fx.send.append(Send(None, Checkpoint(height, state_root, block_hash, r.me)))


def on_checkpoint(r: Replica, fx: EffectsBuilder, sender: NodeId, point: Checkpoint,
                  signature: bytes) -> None:
    if point.replica != sender or point.sequence <= 0 or \
            point.sequence % r.config.checkpoint_interval_blocks:
        fx.reject(RejectReason.MALFORMED, sender, "checkpoint off the checkpoint period")
        return
    if point.sequence <= r.low_water_mark:
        fx.reject(RejectReason.STALE, sender, f"checkpoint {point.sequence} not above the "
                  f"stable checkpoint {r.low_water_mark}")
        return
    votes = r.checkpoints.setdefault(point.sequence, {})
    previous = votes.get(sender)
    if previous is not None:
        same = previous.message == point
        fx.reject(RejectReason.DUPLICATE if same else RejectReason.CONFLICT, sender,
                  f"second checkpoint for {point.sequence}")
        return
    votes[sender] = SignedMessage(sender, point, signature)
    bound_checkpoints(r, sender)
    matching = sorted((s for s in votes.values() if s.message == Checkpoint(
        point.sequence, point.state_root, point.block_hash, s.sender)), key=lambda s: s.sender)
    if len(matching) >= r.quorum:
        proof = tuple(matching[:r.quorum])
        become_stable(r, fx, StableCheckpoint(point.sequence, point.block_hash,
                                              point.state_root, proof))
    elif len(matching) > r.faults and point.sequence > r.committed_height:
        # f + 1 agree: at least one honest replica has executed this far (TOCS §5.3.2).
        request_catch_up(r, fx, point.sequence, tuple(s.sender for s in matching))


def bound_checkpoints(r: Replica, sender: NodeId) -> None:
    """Keep at most window/K + 2 checkpoints per sender: a replica flooding checkpoints
    far ahead cannot grow this map."""
    limit = r.config.log_window_blocks // r.config.checkpoint_interval_blocks + 2
    held = sorted(seq for seq, votes in r.checkpoints.items() if sender in votes)
    for sequence in held[:-limit] if len(held) > limit else ():
        del r.checkpoints[sequence][sender]
        if not r.checkpoints[sequence]:
            del r.checkpoints[sequence]


def become_stable(r: Replica, fx: EffectsBuilder, stable: StableCheckpoint) -> None:
    """Move the low water mark to a proven checkpoint and drop everything below it."""
    if stable.sequence <= r.low_water_mark:
        return
    old_low = r.low_water_mark
    r.stable = stable
    fx.persist.append(Persist(KEY_STABLE, stable))
    fx.notes.append(Note("checkpoint", f"stable checkpoint {stable.sequence}", r.view,
                         None if r.view_changing else r.primary()))
    garbage_collect(r, fx, old_low, stable.sequence)
    r.assigned_sequence = max(r.assigned_sequence, stable.sequence)
    r.replay_needed = True
    if stable.sequence > r.committed_height:
        request_catch_up(r, fx, stable.sequence, tuple(s.sender for s in stable.proof))


def garbage_collect(r: Replica, fx: EffectsBuilder, old_low: int, sequence: int) -> None:
    # Durable records exist only inside the old window (old_low, old_low + L].
    for n in range(old_low + 1, min(sequence, old_low + r.config.log_window_blocks) + 1):
        fx.persist.append(Persist(pre_prepare_key(n), None))
        fx.persist.append(Persist(prepared_key(n), None))
    for table in (r.slots, r.prepared_certs, r.own_unsigned, r.commits, r.blocks,
                  r.checkpoints, r.committed_hashes):
        for n in [n for n in table if n <= sequence]:
            del table[n]


def request_catch_up(r: Replica, fx: EffectsBuilder, target: int,
                     peers: tuple[NodeId, ...]) -> None:
    """Ask the driver for the blocks up to `target`, at most one request in flight."""
    if target <= r.committed_height:
        return
    if target <= r.catch_up_target and r.catch_up_wait_ticks > 0:
        # One request in flight; remember the extra vouchers for the retry.
        r.catch_up_peers = tuple(sorted(set(r.catch_up_peers) | set(peers) - {r.me}))
        return
    r.catch_up_target = max(r.catch_up_target, target)
    r.catch_up_peers = tuple(sorted(p for p in set(peers) if p != r.me))
    r.catch_up_wait_ticks = max(1, r.config.view_timeout_ticks // 4)
    fx.catch_up.append(CatchUp(r.catch_up_target, r.catch_up_peers))


def on_synced(r: Replica, fx: EffectsBuilder, event: Synced) -> None:
    if event.height > r.committed_height:
        mark_committed(r, event.height, event.block_hash)
    if event.height >= r.applied_height:
        remember_synced(r, r.applied_height, event.height, event.state_root)
        r.applied_height, r.applied_root = event.height, event.state_root
        note_state(r, event.height, event.state_root)
        send_checkpoint(r, fx, event.height, event.block_hash, event.state_root)
    r.catch_up_wait_ticks = 0
    if r.committed_height < r.catch_up_target:
        request_catch_up(r, fx, r.catch_up_target, r.catch_up_peers)
    try_prepared(r, fx, r.committed_height + 1)
    try_commit(r, fx)


def on_tick_catch_up(r: Replica, fx: EffectsBuilder) -> None:
    """Retry an unanswered catch-up; start one when commits above us cannot be used."""
    if r.catch_up_wait_ticks > 0:
        r.catch_up_wait_ticks -= 1
        if r.catch_up_wait_ticks == 0 and r.committed_height < r.catch_up_target:
            request_catch_up(r, fx, r.catch_up_target, retry_peers(r, r.catch_up_target))
        return
    above = [n for n in r.commits if n > r.committed_height]
    if not above:
        r.stalled_ticks = 0
        return
    r.stalled_ticks += 1
    if r.stalled_ticks < max(1, r.config.view_timeout_ticks // 4):
        return
    r.stalled_ticks = 0
    # f + 1 matching commits above us: at least one honest replica prepared that far, so
    # the others got further than we did; fetching is harmless (blocks are checked).
    for sequence in sorted(above, reverse=True):
        voters = vouchers(r, sequence)
        if len(voters) > r.faults:
            request_catch_up(r, fx, sequence, voters)
            return


def retry_peers(r: Replica, target: int) -> tuple[NodeId, ...]:
    """Whom to ask again for blocks up to `target`: the replicas whose STATUS named a
    committed height at or beyond it (TOCS 2002 §5.2 status messages carry it), or - when
    none did - anyone, since the vouchers may be as far behind as we are now (they
    voted, then fell behind in a view change); fetched blocks are checked against their
    commit certificates, so no peer needs to be trusted. Not simply anyone: the driver
    asks the named peers in turn and waits out each unanswered request, and a crashed or
    silent replica named here stalls this replica for that whole wait while its peers
    are known to hold the blocks."""
    ahead = tuple(sorted(p for p, height in r.peer_committed.items()
                         if height >= target and p != r.me))
    return ahead or tuple(p for p in r.config.validators.node_ids if p != r.me)


def vouchers(r: Replica, sequence: int) -> tuple[NodeId, ...]:
    """The largest set of replicas whose commits for `sequence` match."""
    groups: dict[tuple[int, bytes], list[NodeId]] = {}
    for signed in r.commits.get(sequence, {}).values():
        vote = signed.message
        groups.setdefault((vote.view, vote.digest), []).append(signed.sender)  # type: ignore[attr-defined]
    return tuple(sorted(max(groups.values(), key=len, default=[])))
