"""Normal-case operation: PRE-PREPARE, PREPARE, COMMIT (Castro & Liskov 1999 §4.2).

Theory of operation
-------------------
The primary of view v assigns the next sequence number n to a batch (here: a block of
height n) and multicasts PRE-PREPARE(v, n, d). A backup accepts it when it is in view v,
the signature is the primary's, n lies between the water marks and it has not accepted a
different digest for (v, n); it then multicasts PREPARE(v, n, d, i). The predicate
prepared(m, v, n, i) holds once the log has the pre-prepare and 2f matching prepares from
distinct backups; the replica then multicasts COMMIT(v, n, d, i). committed-local holds
with 2f + 1 matching commits, and blocks are executed (here: handed to the driver as
`Commit`) strictly in sequence order (§4.2, TOCS §4.3). Several sequence numbers may be
in flight at once inside the window (pipelining, bounded by `inflight_blocks_max`).

A replica that already committed n still prepares and commits n when a new view
re-proposes it (the same block, by safety): the replicas that did not commit it in the
old view need its votes.

Blocks chain by parent hash, which PBFT's independent sequence numbers do not know about.
One extra rule keeps the chain sound across view changes: a replica takes prepared(n)
only when it already holds the block at n - 1 that block n names as parent as committed,
stable, or prepared in the same view. So whenever n commits, f + 1 honest replicas have
prepared its whole ancestry down to the stable checkpoint, and the view-change selection
(view_change.py) re-proposes that ancestry too. PREPAREs are still sent at once, so the
pipeline does not serialise; only COMMITs wait for the parent.
"""
from __future__ import annotations

from consensus import api
from consensus.api import EffectsBuilder, Persist, Propose, RejectReason, Send
from consensus.pbft.certificates import COMMIT_CERTIFICATE_KIND, block_problem
from consensus.pbft.header import (
    observe_committed_time,
    observe_time,
    state_early,
    state_problem,
    time_problem,
)
from consensus.pbft.inbox import buffer_future
from consensus.pbft.messages import Commit, Prepare, PreparedCertificate, PrePrepare
from consensus.pbft.state import Replica, Slot, pre_prepare_key, prepared_key
from consensus.types import Certificate, NodeId, SignedMessage, make_block


def on_propose(r: Replica, fx: EffectsBuilder, event: Propose) -> None:
    """Only the primary orders; backups note that a request is waiting (§4.4 timer)."""
    observe_time(r, event.timestamp_ms)
    if not r.is_primary():
        r.request_waiting = True
        fx.reject(RejectReason.NOT_LEADER, None,
                  "view change under way" if r.view_changing else f"primary is {r.primary()}")
        return
    size = sum(len(tx) for tx in event.txs)
    if len(event.txs) > r.config.batch_txs_max or size > r.config.batch_bytes_max:
        fx.reject(RejectReason.OVER_LIMIT, None, "batch over limit")
        return
    sequence = r.assigned_sequence + 1
    if sequence > r.high_water_mark:
        fx.reject(RejectReason.OVER_LIMIT, None, f"sequence {sequence} above high water mark")
        return
    if sequence - 1 - r.committed_height >= r.config.inflight_blocks_max:
        fx.reject(RejectReason.OVER_LIMIT, None, "pipeline full")
        return
    parent = assigned_hash(r, sequence - 1)
    if parent is None:
        fx.reject(RejectReason.OVER_LIMIT, None, f"block {sequence - 1} not known yet")
        return
    # Strictly after every header this replica accepted, so after the parent (header.py).
    r.last_timestamp_ms = max(r.last_timestamp_ms + 1, event.timestamp_ms)
    block = make_block(r.config.chain_id, sequence, parent, tuple(event.txs), r.me,
                       r.last_timestamp_ms, r.applied_height, r.applied_root)
    pre_prepare = PrePrepare(r.view, sequence, block.block_hash, block)
    # Durable before it is signed: a restarted primary must not reuse (v, n).
    fx.persist.append(Persist(pre_prepare_key(sequence), pre_prepare))
    r.own_unsigned[sequence] = pre_prepare
    r.assigned_sequence = sequence
    fx.send.append(Send(None, pre_prepare))


def assigned_hash(r: Replica, sequence: int) -> bytes | None:
    """The hash of the block this view holds at `sequence` (the next block's parent)."""
    known = r.known_hash(sequence)
    if known is not None:
        return known
    if sequence in r.own_unsigned:
        return r.own_unsigned[sequence].digest
    slot = r.slots.get(sequence)
    return slot.message.digest if slot is not None and slot.message is not None else None


def admit(r: Replica, fx: EffectsBuilder, sender: NodeId, message: object, signature: bytes,
          view: int, sequence: int) -> bool:
    """Common view and water-mark checks for normal-case messages (§4.2)."""
    if view < r.view:
        fx.reject(RejectReason.STALE, sender, f"view {view}, replica in view {r.view}")
        return False
    if view > r.view or r.view_changing:
        # For the view this replica is changing to (or a later one): useful once the
        # NEW-VIEW is installed, so it waits.
        buffer_future(r, fx, sender, message, signature, f"view {view}, replica in view "
                      f"{r.view}" + (" (view change)" if r.view_changing else ""))
        return False
    if sequence <= r.low_water_mark:
        fx.reject(RejectReason.STALE, sender, f"sequence {sequence} at or below low water "
                  f"mark {r.low_water_mark}")
        return False
    if sequence > r.high_water_mark:
        buffer_future(r, fx, sender, message, signature, f"sequence {sequence} above "
                      f"high water mark {r.high_water_mark}")
        return False
    return True


def on_pre_prepare(r: Replica, fx: EffectsBuilder, sender: NodeId, pp: PrePrepare,
                   signature: bytes) -> None:
    if r.view_changing and pp.view == r.view and r.new_view_plan is not None \
            and sender == r.me:
        from consensus.pbft.view_change import on_own_new_view_pre_prepare
        on_own_new_view_pre_prepare(r, fx, pp, signature)
        return
    if not admit(r, fx, sender, pp, signature, pp.view, pp.sequence):
        return
    if sender != r.primary(pp.view):
        fx.reject(RejectReason.WRONG_LEADER, sender, f"pre-prepare from {sender}, primary "
                  f"of view {pp.view} is {r.primary(pp.view)}")
        return
    decided = r.committed_hashes.get(pp.sequence)
    if pp.sequence <= r.committed_height and decided != pp.digest:
        fx.reject(RejectReason.STALE, sender, f"sequence {pp.sequence} already committed")
        return
    problem = block_problem(r.config, pp.view, pp.sequence, pp.digest, pp.block) \
        or time_problem(r, pp.block) or state_problem(r, pp.block)
    if problem is not None:
        fx.reject(RejectReason.INVALID_BLOCK, sender, problem)
        return
    if state_early(r, pp.block):
        # Not wrong, only early: replayed once `Applied` reaches its state height.
        r.state_wait_height = max(r.state_wait_height, pp.block.header.state_height)
        buffer_future(r, fx, sender, pp, signature, f"state height "
                      f"{pp.block.header.state_height} not applied here yet")
        return
    slot = r.slots.setdefault(pp.sequence, Slot())
    if slot.message is not None:
        same = slot.message.digest == pp.digest
        fx.reject(RejectReason.DUPLICATE if same else RejectReason.CONFLICT, sender,
                  f"pre-prepare for ({pp.view}, {pp.sequence}) already accepted")
        return
    parent = assigned_hash(r, pp.sequence - 1)
    if parent is not None and parent != pp.block.header.parent_hash:
        fx.reject(RejectReason.INVALID_BLOCK, sender, f"block {pp.sequence} does not extend "
                  f"the block this replica holds at {pp.sequence - 1}")
        return
    accept_pre_prepare(r, fx, SignedMessage(sender, pp, signature))


def accept_pre_prepare(r: Replica, fx: EffectsBuilder, signed: SignedMessage) -> None:
    """Log the pre-prepare durably, then PREPARE it if this replica is a backup."""
    pp: PrePrepare = signed.message  # type: ignore[assignment]
    slot = r.slots.setdefault(pp.sequence, Slot())
    slot.pre_prepare = signed
    slot.accepted_tick = r.ticks
    r.own_unsigned.pop(pp.sequence, None)
    r.blocks.setdefault(pp.sequence, {})[pp.digest] = pp.block
    r.last_timestamp_ms = max(r.last_timestamp_ms, pp.block.header.timestamp_ms)
    # Durable before the PREPARE leaves: a restart must not prepare another digest.
    fx.persist.append(Persist(pre_prepare_key(pp.sequence), signed))
    if r.me != r.primary(pp.view):
        fx.send.append(Send(None, Prepare(pp.view, pp.sequence, pp.digest, r.me)))
    try_prepared(r, fx, pp.sequence)
    try_commit(r, fx)


def on_prepare(r: Replica, fx: EffectsBuilder, sender: NodeId, vote: Prepare,
               signature: bytes) -> None:
    if vote.replica != sender:
        fx.reject(RejectReason.MALFORMED, sender, "prepare names another replica")
        return
    if not admit(r, fx, sender, vote, signature, vote.view, vote.sequence):
        return
    if sender == r.primary(vote.view):
        fx.reject(RejectReason.MALFORMED, sender, "the primary does not send PREPARE")
        return
    # Votes for sequences this replica already committed are still kept: replicas that
    # lag behind need its PREPARE and COMMIT to finish the same sequence in this view.
    slot = r.slots.setdefault(vote.sequence, Slot())
    previous = slot.prepares.get(sender)
    if previous is not None:
        same = previous.message.digest == vote.digest  # type: ignore[attr-defined]
        fx.reject(RejectReason.DUPLICATE if same else RejectReason.CONFLICT, sender,
                  f"second prepare for ({vote.view}, {vote.sequence})")
        return
    slot.prepares[sender] = SignedMessage(sender, vote, signature)
    try_prepared(r, fx, vote.sequence)
    try_commit(r, fx)


def try_prepared(r: Replica, fx: EffectsBuilder, sequence: int) -> None:
    """Take prepared(n) - and then for n + 1, n + 2, ... whose parent it unblocks."""
    while True:
        slot = r.slots.get(sequence)
        if slot is None or slot.prepared or slot.message is None:
            return
        pp = slot.message
        matching = sorted((s for s in slot.prepares.values()
                           if s.message.digest == pp.digest),  # type: ignore[attr-defined]
                          key=lambda s: s.sender)
        if len(matching) < r.quorum - 1:
            return
        if r.known_hash(sequence - 1) != pp.block.header.parent_hash:
            return  # the chain rule: the parent must be prepared (or final) first
        slot.prepared = True
        slot.prepared_tick = r.ticks
        certificate = PreparedCertificate(slot.pre_prepare, tuple(matching[:r.quorum - 1]))
        r.prepared_certs[sequence] = certificate
        fx.persist.append(Persist(prepared_key(sequence), certificate))
        fx.send.append(Send(None, Commit(pp.view, sequence, pp.digest, r.me)))
        sequence += 1


def on_commit(r: Replica, fx: EffectsBuilder, sender: NodeId, vote: Commit,
              signature: bytes) -> None:
    """Commits of any view up to the current one count: a 2f + 1 commit certificate is
    final whatever view this replica has moved to since (§4.2, §4.4)."""
    if vote.replica != sender:
        fx.reject(RejectReason.MALFORMED, sender, "commit names another replica")
        return
    if vote.view > r.view:
        buffer_future(r, fx, sender, vote, signature, f"view {vote.view} > {r.view}")
        return
    if not r.low_water_mark < vote.sequence:
        fx.reject(RejectReason.STALE, sender, f"sequence {vote.sequence} at or below low "
                  f"water mark {r.low_water_mark}")
        return
    if vote.sequence > r.high_water_mark:
        buffer_future(r, fx, sender, vote, signature, f"sequence {vote.sequence} above "
                      f"high water mark")
        return
    if vote.sequence <= r.committed_height:
        return  # late vote for a decided sequence
    votes = r.commits.setdefault(vote.sequence, {})
    previous = votes.get(sender)
    if previous is not None:
        old: Commit = previous.message  # type: ignore[assignment]
        if old.view > vote.view:
            fx.reject(RejectReason.STALE, sender, "commit of an older view")
            return
        if old.view == vote.view:
            same = old.digest == vote.digest
            fx.reject(RejectReason.DUPLICATE if same else RejectReason.CONFLICT, sender,
                      f"second commit for ({vote.view}, {vote.sequence})")
            return
    votes[sender] = SignedMessage(sender, vote, signature)
    try_commit(r, fx)
    note_cluster_progress(r, vote.sequence)


def note_cluster_progress(r: Replica, sequence: int) -> None:
    """2f + 1 matching COMMITs for a sequence this replica has not executed: the view
    works - at least f + 1 correct replicas committed something new in it - and only
    this replica lags, so its view-change timer restarts as if it had committed (§4.5.2
    suspects the primary when no request executes; here one did, elsewhere) and it
    catches up instead (checkpoint.py). Without this a lagging replica changed view
    alone and, with exactly 2f + 1 correct replicas, left the others unable to commit
    for seconds: a VIEW-CHANGE cannot be taken back. Only a full commit quorum counts;
    f + 1 commits can stay short of one for good, and pausing on them could keep every
    timer from ever firing under a byzantine primary."""
    if sequence <= max(r.committed_height, r.progress_seen) or r.view_changing:
        return
    if commit_quorum(r, sequence) is not None:
        r.progress_seen = sequence
        r.timer_ticks = 0


def commit_quorum(r: Replica, sequence: int) -> tuple[bytes, tuple[SignedMessage, ...]] | None:
    """(digest, 2f + 1 matching commits of one view) for `sequence`, if there are."""
    groups: dict[tuple[int, bytes], list[SignedMessage]] = {}
    for signed in r.commits.get(sequence, {}).values():
        vote: Commit = signed.message  # type: ignore[assignment]
        groups.setdefault((vote.view, vote.digest), []).append(signed)
    for (_, digest), votes in sorted(groups.items()):
        if len(votes) >= r.quorum:
            return digest, tuple(sorted(votes, key=lambda s: s.sender)[:r.quorum])
    return None


def try_commit(r: Replica, fx: EffectsBuilder) -> None:
    """Hand committed-local blocks to the driver in sequence order, each exactly once."""
    while True:
        sequence = r.committed_height + 1
        found = commit_quorum(r, sequence)
        if found is None:
            return
        digest, votes = found
        block = r.blocks.get(sequence, {}).get(digest)
        if block is None or block.header.parent_hash != r.committed_hash:
            return  # block unknown here: state transfer fetches it (checkpoint.py)
        certificate = Certificate(COMMIT_CERTIFICATE_KIND, sequence, digest, votes)
        fx.commit.append(api.Commit(block, certificate))
        mark_committed(r, sequence, digest)
        r.commit_certificate = certificate
        observe_committed_time(r, block.header.timestamp_ms)
        # The chain rule may have held back the child (its prepares came before this
        # parent was fixed here) and they will not come again: decide it now.
        try_prepared(r, fx, sequence + 1)


def mark_committed(r: Replica, height: int, block_hash: bytes) -> None:
    """Progress: the view-change timer restarts and the failure backoff resets."""
    r.committed_height = height
    r.committed_hash = block_hash
    r.committed_timestamp_ms = None  # known only when the block is (try_commit)
    r.committed_hashes[height] = block_hash
    r.assigned_sequence = max(r.assigned_sequence, height)
    r.request_waiting = False
    r.timer_ticks = 0
    r.stalled_ticks = 0
    r.status_ticks = 0  # progress: only a replica stalled for a whole period asks
    if height > r.reproposed_top:
        r.failed_view_changes = 0  # a request new to this view executed (§4.5.2)
    r.commits.pop(height, None)
