"""View changes: the timer, VIEW-CHANGE, NEW-VIEW (Castro & Liskov 1999 §4.4, §4.5.2;
TOCS 2002 §4.4-4.5).

Theory of operation
-------------------
A replica's view-change timer runs, in ticks, while a request is waiting: a batch it was
asked to propose but could not order (a backup; the driver forwarded it to the primary),
or a pre-prepare it accepted but has not committed. It restarts on every commit. When it
expires in view v the replica stops accepting normal-case messages of v and multicasts
VIEW-CHANGE(v + 1, n, C, P, i): n and C its stable checkpoint and 2f + 1 proof, P its
prepared certificates above n. If the timer (restarted once 2f + 1 view changes for v + 1
are in) expires again before a NEW-VIEW installs or a request commits, it moves on to
v + 2 with twice the timeout, and so on (§4.5.2). A replica that sees f + 1 view changes
for views above its own joins the smallest of them at once, so a correct replica is never
left behind by the others' timers (§4.5.2).

The primary of v + 1, with 2f + 1 valid view changes, computes O: min-s is the latest
stable checkpoint among them, max-s the highest prepared sequence; for each n in
(min-s, max-s] it re-proposes the prepared block of the highest view - here: the
highest-view one that extends the block chosen at n - 1 - and a null block (no txs,
parent = the block chosen at n - 1) where there is none. The chain rule in
normal_case.py makes the highest-view certificate extend its predecessor whenever
anything at n may have committed, so the extra condition only ever replaces
uncommitted blocks, never a committed one. Sequence numbers above max-s are fresh.
The primary signs each pre-prepare of O (sent to itself), then multicasts
NEW-VIEW(v + 1, V, O). Backups re-derive O from V themselves, checking every signature
in V, and accept the NEW-VIEW only if it matches; then they PREPARE each pre-prepare of O.
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus.api import EffectsBuilder, Note, Persist, RejectReason, Send
from consensus.pbft.certificates import check_checkpoint_proof, check_view_change, signed_ok
from consensus.pbft.checkpoint import become_stable
from consensus.pbft.header import time_problem
from consensus.pbft.messages import NewView, PrePrepare, ViewChange
from consensus.pbft.normal_case import accept_pre_prepare
from consensus.pbft.state import (
    KEY_NEW_VIEW,
    KEY_VIEW,
    KEY_VIEW_CHANGE,
    NewViewPlan,
    Replica,
    StableCheckpoint,
    ViewRecord,
)
from consensus.types import Block, NodeId, SignedMessage, make_block


# ------------------------------------------------------------------ timer
def on_tick_view(r: Replica, fx: EffectsBuilder) -> None:
    if r.view_changing:
        if not r.view_change_timer_on:
            # §4.5.2: the timer starts only once 2f + 1 replicas have left the old view.
            # Counting view changes for this view *or later* ones matters after restarts:
            # a replica that forgot the others' view changes must not wait forever for
            # 2f + 1 of exactly its view while some have already moved further on.
            r.view_change_timer_on = count_view_changes(r, r.view) >= r.quorum
        r.resend_ticks += 1
        if r.view_change_timer_on:
            r.timer_ticks += 1
    elif request_waiting(r):
        r.timer_ticks += 1
    else:
        r.timer_ticks = 0
        return
    if r.timer_ticks >= r.view_timeout_ticks():
        r.failed_view_changes += 1
        become_view_changing(r, fx, r.view + 1)
    elif r.view_changing and r.resend_ticks >= r.config.view_timeout_ticks \
            and r.my_view_change is not None:
        # Same bytes again: lost view changes must not stall the view change.
        r.resend_ticks = 0
        fx.send.append(Send(None, r.my_view_change))


def request_waiting(r: Replica) -> bool:
    return r.request_waiting or bool(r.own_unsigned) or any(
        n > r.committed_height and slot.pre_prepare is not None for n, slot in r.slots.items())


def note_older_view(r: Replica, sender: NodeId, view: int) -> None:
    """A replica changing view alone (its timer fired, the others' did not: a lost
    pre-prepare, a cut link) waits until the others change view too, which may be never
    while they commit. Its clients' requests must not wait with it: in Castro & Liskov
    (TOCS 2002 §4.1) a client whose request is not answered multicasts it to all
    replicas, so it reaches the primary the others follow. Here the driver forwards
    batches to `status().leader`, so that names the primary of the view that f + 1
    replicas (at least one correct) still send normal-case messages in. Only a leader
    for forwarding: this replica itself accepts nothing of that view (§4.4)."""
    if r.view_changing and view < r.view and sender != r.me:
        r.older_views[sender] = view


def followed_primary(r: Replica) -> NodeId | None:
    """The primary of an older view f + 1 others still work in, while we change view."""
    if not r.view_changing:
        return None
    counts: dict[int, int] = {}
    for view in r.older_views.values():
        counts[view] = counts.get(view, 0) + 1
    views = [view for view, count in counts.items() if count > r.faults]
    return r.primary(max(views)) if views else None


def count_view_changes(r: Replica, view: int) -> int:
    """Replicas whose latest view change is for `view` or a later view."""
    return sum(1 for s in r.view_changes.values() if s.message.new_view >= view)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ VIEW-CHANGE
def become_view_changing(r: Replica, fx: EffectsBuilder, new_view: int) -> None:
    """Leave view v for `new_view`: stop normal-case work, multicast VIEW-CHANGE."""
    r.view, r.view_changing = new_view, True
    r.timer_ticks = r.resend_ticks = 0
    r.older_views.clear()
    r.view_change_timer_on = False
    r.slots.clear()
    r.own_unsigned.clear()
    r.new_view_plan, r.plan_signed, r.new_view_sent = None, {}, None
    prepared = tuple(r.prepared_certs[n] for n in sorted(r.prepared_certs)
                     if n > r.low_water_mark)
    change = ViewChange(new_view, r.low_water_mark, r.stable.proof, prepared, r.me)
    r.my_view_change = change
    # Durable before sending: after a restart the replica re-sends exactly this.
    fx.persist.append(Persist(KEY_VIEW, ViewRecord(new_view, True, r.failed_view_changes)))
    fx.persist.append(Persist(KEY_VIEW_CHANGE, change))
    fx.send.append(Send(None, change))
    fx.notes.append(Note("view_change", f"view change to {new_view}", new_view,
                         r.primary(new_view)))


def on_view_change(r: Replica, fx: EffectsBuilder, sender: NodeId, change: ViewChange,
                   signature: bytes) -> None:
    if change.replica != sender:
        fx.reject(RejectReason.MALFORMED, sender, "view change names another replica")
        return
    if change.new_view < r.view or (change.new_view == r.view and not r.view_changing):
        if r.new_view_sent is not None and r.new_view_sent.view == r.view and not r.view_changing:
            fx.send.append(Send(sender, r.new_view_sent))  # bring a laggard into our view
        fx.reject(RejectReason.STALE, sender, f"view change to {change.new_view}, "
                  f"replica in view {r.view}")
        return
    r.older_views.pop(sender, None)  # it left its old view
    signed = SignedMessage(sender, change, signature)
    previous = r.view_changes.get(sender)
    if previous is not None and previous.message.new_view >= change.new_view:  # type: ignore[attr-defined]
        same = previous.message == change
        fx.reject(RejectReason.DUPLICATE if same else RejectReason.STALE if
                  previous.message.new_view > change.new_view  # type: ignore[attr-defined]
                  else RejectReason.CONFLICT, sender, f"view change to {change.new_view}")
        return
    if check_view_change(r.config, signed) is None:
        fx.reject(RejectReason.BAD_SIGNATURE, sender, "view change with an invalid proof "
                  "or certificate")
        return
    r.view_changes[sender] = signed
    join_higher_view(r, fx)
    if r.view_changing and r.primary(r.view) == r.me:
        try_plan_new_view(r, fx)


def join_higher_view(r: Replica, fx: EffectsBuilder) -> None:
    """f + 1 replicas want views above ours: join the smallest (§4.5.2)."""
    higher = sorted(s.message.new_view for s in r.view_changes.values()  # type: ignore[attr-defined]
                    if s.message.new_view > r.view)  # type: ignore[attr-defined]
    if len(higher) > r.faults:
        become_view_changing(r, fx, higher[0])


# ------------------------------------------------------------------ selection
@dataclass(frozen=True, slots=True)
class Selection:
    min_s: int
    base: StableCheckpoint
    max_s: int
    candidates: dict[int, tuple[PrePrepare, ...]]  # highest view first

    def extending(self, sequence: int, parent_hash: bytes) -> Block | None:
        """The highest-view prepared block at `sequence` whose parent is `parent_hash`."""
        for pp in self.candidates.get(sequence, ()):
            if pp.block.header.parent_hash == parent_hash:
                return pp.block
        return None


def select(r: Replica, changes: list[ViewChange]) -> Selection:
    """min-s, max-s and the prepared blocks between, from checked view changes (§4.4)."""
    best = max(changes, key=lambda c: (c.stable_sequence, c.replica))
    base_hash, base_root = check_checkpoint_proof(r.config, best.stable_sequence,  # type: ignore[misc]
                                                  best.checkpoint_proof)
    base = StableCheckpoint(best.stable_sequence, base_hash, base_root, best.checkpoint_proof)
    found: dict[int, dict[tuple[int, bytes], PrePrepare]] = {}
    for change in changes:
        for cert in change.prepared:
            pp = cert.message
            if pp.sequence > base.sequence:
                found.setdefault(pp.sequence, {})[(pp.view, pp.digest)] = pp
    candidates = {n: tuple(pps[k] for k in sorted(pps, key=lambda k: (-k[0], k[1])))
                  for n, pps in found.items()}
    return Selection(base.sequence, base, max(candidates, default=base.sequence), candidates)


def checked_view_changes(r: Replica, view: int,
                         signed_changes: tuple[SignedMessage, ...]) -> list[ViewChange] | None:
    senders: set[NodeId] = set()
    changes: list[ViewChange] = []
    for signed in signed_changes:
        change = check_view_change(r.config, signed, view) if isinstance(
            signed, SignedMessage) else None
        if change is None or signed.sender in senders:
            return None
        senders.add(signed.sender)
        changes.append(change)
    return changes if len(senders) >= r.quorum else None


# ------------------------------------------------------------------ NEW-VIEW (primary)
def try_plan_new_view(r: Replica, fx: EffectsBuilder) -> None:
    if r.new_view_plan is not None or r.new_view_sent is not None:
        return
    signed = sorted((s for s in r.view_changes.values()
                     if s.message.new_view == r.view), key=lambda s: s.sender)  # type: ignore[attr-defined]
    if len(signed) < r.quorum:
        return
    chosen = tuple(signed[:r.quorum])
    selection = select(r, [s.message for s in chosen])  # type: ignore[misc]
    parent, timestamp_ms = selection.base.block_hash, r.last_timestamp_ms
    pre_prepares: list[PrePrepare] = []
    for sequence in range(selection.min_s + 1, selection.max_s + 1):
        block = selection.extending(sequence, parent)
        if block is None:
            # A null batch keeps the chain unbroken. Its state is the checkpoint the
            # selection starts from (2f + 1 vouch for it) and its time follows its parent
            # (header.py), so every backup can check both from V alone.
            timestamp_ms += 1
            block = make_block(r.config.chain_id, sequence, parent, (), r.me, timestamp_ms,
                               selection.base.sequence, selection.base.state_root)
        timestamp_ms = max(timestamp_ms, block.header.timestamp_ms)
        pre_prepares.append(PrePrepare(r.view, sequence, block.block_hash, block))
        parent = block.block_hash
    plan = NewViewPlan(r.view, chosen, tuple(pre_prepares))
    r.new_view_plan = plan
    fx.persist.append(Persist(KEY_NEW_VIEW, plan))
    send_plan(r, fx)


def send_plan(r: Replica, fx: EffectsBuilder) -> None:
    """Have each pre-prepare of O signed (sent to ourselves), or finish at once."""
    plan = r.new_view_plan
    assert plan is not None
    for pp in plan.pre_prepares:
        if pp.sequence not in r.plan_signed:
            fx.send.append(Send(r.me, pp))
    finish_new_view(r, fx)


def on_own_new_view_pre_prepare(r: Replica, fx: EffectsBuilder, pp: PrePrepare,
                                signature: bytes) -> None:
    plan = r.new_view_plan
    assert plan is not None
    if pp not in plan.pre_prepares:
        fx.reject(RejectReason.CONFLICT, r.me, "own pre-prepare not in the new-view plan")
        return
    r.plan_signed[pp.sequence] = SignedMessage(r.me, pp, signature)
    finish_new_view(r, fx)


def finish_new_view(r: Replica, fx: EffectsBuilder) -> None:
    plan = r.new_view_plan
    if plan is None or len(r.plan_signed) < len(plan.pre_prepares):
        return
    signed = tuple(r.plan_signed[pp.sequence] for pp in plan.pre_prepares)
    new_view = NewView(plan.view, plan.view_changes, signed)
    r.new_view_sent = new_view
    fx.persist.append(Persist(KEY_NEW_VIEW, new_view))
    fx.send.append(Send(None, new_view))


# ------------------------------------------------------------------ NEW-VIEW (all)
def on_new_view(r: Replica, fx: EffectsBuilder, sender: NodeId, new_view: NewView,
                signature: bytes) -> None:
    if new_view.view < r.view or (new_view.view == r.view and not r.view_changing):
        reason = RejectReason.DUPLICATE if new_view.view == r.view else RejectReason.STALE
        fx.reject(reason, sender, f"new view {new_view.view}, replica in view {r.view}")
        return
    if sender != r.primary(new_view.view):
        fx.reject(RejectReason.WRONG_LEADER, sender, f"new view {new_view.view} not from "
                  f"its primary {r.primary(new_view.view)}")
        return
    changes = checked_view_changes(r, new_view.view, new_view.view_changes)
    if changes is None:
        fx.reject(RejectReason.QUORUM_MISSING, sender, "new view without 2f + 1 valid "
                  "view changes")
        return
    selection = select(r, changes)
    problem = new_view_problem(r, new_view, selection)
    if problem is not None:
        fx.reject(RejectReason.INVALID_BLOCK, sender, f"new view does not match its view "
                  f"changes: {problem}")
        return
    install_new_view(r, fx, new_view, selection)


def new_view_problem(r: Replica, new_view: NewView, selection: Selection) -> str | None:
    """Re-derive O from V (§4.4): every pre-prepare must be the one the rules pick."""
    if len(new_view.pre_prepares) != selection.max_s - selection.min_s:
        return "wrong number of pre-prepares"
    primary = r.primary(new_view.view)
    parent = selection.base.block_hash
    previous_ms: int | None = None  # timestamp of the block at sequence - 1, if in O
    for offset, signed in enumerate(new_view.pre_prepares):
        sequence = selection.min_s + 1 + offset
        pp = signed.message
        if not isinstance(pp, PrePrepare) or signed.sender != primary or \
                (pp.view, pp.sequence) != (new_view.view, sequence) or \
                pp.digest != pp.block.block_hash or not signed_ok(r.config, signed, PrePrepare):
            return f"pre-prepare {sequence} malformed or badly signed"
        expected = selection.extending(sequence, parent)
        if expected is not None and pp.block != expected:
            return f"sequence {sequence} must re-propose {expected.block_hash.hex()[:12]}"
        if expected is None and not is_null_block(r, pp.block, sequence, parent, primary):
            return f"sequence {sequence} must be a null block"
        if expected is None:
            problem = null_header_problem(r, pp.block, selection, previous_ms)
            if problem is not None:
                return f"null block {sequence}: {problem}"
        previous_ms = pp.block.header.timestamp_ms
        parent = pp.digest
    return None


def null_header_problem(r: Replica, block: Block, selection: Selection,
                        previous_ms: int | None) -> str | None:
    header = block.header
    if (header.state_height, header.state_root) != \
            (selection.base.sequence, selection.base.state_root):
        return "state is not the stable checkpoint the selection starts from"
    if previous_ms is not None and header.timestamp_ms <= previous_ms:
        return "timestamp not after its parent's"
    return time_problem(r, block)


def is_null_block(r: Replica, block: Block, sequence: int, parent: bytes,
                  primary: NodeId) -> bool:
    header = block.header
    return (not block.txs and header.height == sequence and header.parent_hash == parent
            and header.proposer == primary and header.chain_id == r.config.chain_id
            and block.tx_root_matches())


def install_new_view(r: Replica, fx: EffectsBuilder, new_view: NewView,
                     selection: Selection) -> None:
    """become_primary / become_backup of the new view: adopt min-s, accept O."""
    r.view, r.view_changing = new_view.view, False
    r.timer_ticks = r.resend_ticks = 0
    r.older_views.clear()
    r.slots.clear()
    r.own_unsigned.clear()
    r.new_view_plan, r.plan_signed = None, {}
    if r.primary() != r.me:
        r.new_view_sent = None
    r.view_changes = {k: s for k, s in r.view_changes.items()
                      if s.message.new_view > r.view}  # type: ignore[attr-defined]
    fx.persist.append(Persist(KEY_VIEW, ViewRecord(r.view, False, r.failed_view_changes)))
    fx.notes.append(Note("leader", f"view {r.view} installed, primary {r.primary()}",
                         r.view, r.primary()))
    if selection.min_s > r.low_water_mark:
        become_stable(r, fx, selection.base)
    for signed in new_view.pre_prepares:
        pp: PrePrepare = signed.message  # type: ignore[assignment]
        decided = r.committed_hashes.get(pp.sequence, pp.digest)
        # Already-committed sequences are prepared again too: laggards need our votes.
        if pp.sequence > r.low_water_mark and decided == pp.digest:
            accept_pre_prepare(r, fx, signed)
    # Fresh sequence numbers start right above max-s, whatever this replica assigned
    # in an earlier view of its own.
    r.assigned_sequence = max(selection.max_s, r.committed_height, r.low_water_mark)
    r.reproposed_top = selection.max_s
    r.replay_needed = True
