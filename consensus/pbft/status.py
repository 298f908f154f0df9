"""Recovering lost messages: STATUS and retransmission (Castro & Liskov, TOCS 2002 §5.2).

Theory of operation
-------------------
PBFT's normal case sends each PRE-PREPARE, PREPARE and COMMIT once. With exactly 2f + 1
honest replicas every one of them is needed, so a single lost message would stall its
sequence until a view change - and the chain rule (normal_case.py) stalls every later
sequence with it. TOCS 2002 §5.2 fixes this with retransmission driven by the receiver:
a replica that is waiting multicasts a STATUS naming its view, its low water mark, its
last committed sequence and, for each sequence above that, whether it holds the
PRE-PREPARE and whose PREPAREs and COMMITs it holds. Each peer answers with the messages
*of its own* that the status shows missing:

* the primary re-sends its PRE-PREPARE, a backup its PREPARE, and anyone its COMMIT for
  the sequences of the current view it has them for (a slot with a pre-prepare means
  this replica sent PREPARE; a prepared slot means it sent COMMIT);
* a replica with a newer stable checkpoint re-sends its CHECKPOINT for it, so a replica
  whose checkpoint messages were lost still moves its water marks - or, learning from
  f + 1 of them that it is behind, fetches the blocks (checkpoint.py);
* a replica that is still changing to a view others have installed gets the NEW-VIEW
  from that view's primary; one changing to the same view gets the others' VIEW-CHANGE.

A retransmission is the very same message object the replica sent first - rebuilt from
what it stored, field for field - so the driver signs the same bytes at the same
`sign_position` and the double-sign guard sees a repeat, never an equivocation.

When: a replica sends STATUS after one status period without progress while it waits
for something (an uncommitted pre-prepare or vote, a client request, a view change, or a
checkpoint it applied that has not become stable), and again every period while it
stays stalled. A replica that commits steadily sends none. No backoff: a replica stalled
for good (a dead primary) gets nearly empty answers, while under loss every extra wait
is a longer stall - a doubling backoff cut the committed share at 5 % loss and f silent
from over 90 % to 56-80 % in the simulator (tests/sim/test_liveness_loss.py).

The period is the heartbeat but at least a quarter of the view timeout: STATUS exists to
recover a lost message before the view timer gives up on the primary, and a pipelined
replica always has some sequence waiting, so a period near the normal commit latency
would make every replica of a loaded cluster ask every period for votes that are merely
in flight - measured on 7 real nodes with a 100 ms heartbeat, the answers (thousands of
duplicate PREPAREs and COMMITs a second) saturated the CPUs until the view timers fired
and the cluster livelocked in view changes. For the same reason an answer carries only
messages this replica sent at least half a period ago: younger ones are still on their
way. Answers are bounded: at most one per requester per half period, and only for
sequences inside the water-mark window.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason, Send
from consensus.pbft.messages import Checkpoint, Commit, Prepare, SlotStatus, Status
from consensus.pbft.state import Replica
from consensus.pbft.view_change import request_waiting
from consensus.types import NodeId


def status_period_ticks(r: Replica) -> int:
    return max(2, r.config.heartbeat_ticks, r.config.view_timeout_ticks // 4)


def sent_long_ago(r: Replica, tick: int) -> bool:
    """A message sent at `tick` that a peer still lacks was lost, not delayed."""
    return r.ticks - tick >= status_period_ticks(r) // 2


# ------------------------------------------------------------------ the stalled replica
def on_tick_status(r: Replica, fx: EffectsBuilder) -> None:
    r.ticks += 1
    stalled = r.view_changing or request_waiting(r) or r.state_wait_height > 0 or any(
        n > r.committed_height for n in r.commits)
    r.status_ticks = r.status_ticks + 1 if stalled else 0
    checkpoint_due = (r.applied_height // r.config.checkpoint_interval_blocks
                      * r.config.checkpoint_interval_blocks) > r.low_water_mark
    r.checkpoint_wait_ticks = r.checkpoint_wait_ticks + 1 if checkpoint_due else 0
    period = status_period_ticks(r)
    if r.status_ticks >= period or r.checkpoint_wait_ticks >= period:
        r.status_ticks = r.checkpoint_wait_ticks = 0
        fx.send.append(Send(None, build_status(r)))


def build_status(r: Replica) -> Status:
    top = max([r.committed_height, *r.slots, *r.commits])
    top = min(top, r.committed_height + r.config.log_window_blocks)
    slots = []
    for sequence in range(r.committed_height + 1, top + 1):
        slot = r.slots.get(sequence)
        # Only commits of this view count towards a commit certificate (§4.2: 2f + 1
        # matching (v, n, d)); a replica whose older-view COMMIT we hold must still send
        # its COMMIT of this view, so it is listed as missing.
        commits = tuple(sorted(sender for sender, signed in r.commits.get(sequence, {}).items()
                               if signed.message.view == r.view))  # type: ignore[attr-defined]
        if slot is None and not commits:
            continue  # unlisted: holds nothing for it
        slots.append(SlotStatus(sequence, slot is not None and slot.pre_prepare is not None,
                                tuple(sorted(slot.prepares)) if slot else (), commits))
    return Status(r.view, r.view_changing, r.committed_height, r.low_water_mark,
                  tuple(slots), r.me)


# ------------------------------------------------------------------ answering
def on_status(r: Replica, fx: EffectsBuilder, sender: NodeId, status: Status,
              signature: bytes) -> None:
    if status.replica != sender:
        fx.reject(RejectReason.MALFORMED, sender, "status names another replica")
        return
    if sender == r.me:
        return  # our own broadcast copy
    r.peer_committed[sender] = max(r.peer_committed.get(sender, 0), status.committed_height)
    if len(status.slots) > r.config.log_window_blocks:
        fx.reject(RejectReason.OVER_LIMIT, sender, "status lists more than the window")
        return
    last = r.status_answered.get(sender)
    if last is not None and r.ticks - last < max(1, status_period_ticks(r) // 2):
        fx.reject(RejectReason.DUPLICATE, sender, "status answered within half a period")
        return
    r.status_answered[sender] = r.ticks
    if not answer_view(r, fx, sender, status):
        return
    answer_checkpoint(r, fx, sender, status)
    answer_slots(r, fx, sender, status)


def answer_view(r: Replica, fx: EffectsBuilder, sender: NodeId, status: Status) -> bool:
    """Help a replica still changing view; True when both are in the same normal view."""
    behind = status.view < r.view or (status.view == r.view and status.view_changing
                                      and not r.view_changing)
    if behind and not r.view_changing and r.new_view_sent is not None \
            and r.new_view_sent.view == r.view:
        fx.send.append(Send(sender, r.new_view_sent))  # same NEW-VIEW, same bytes
        return False
    if r.view_changing and r.my_view_change is not None and status.view <= r.view:
        fx.send.append(Send(sender, r.my_view_change))
        return False
    return status.view == r.view and not status.view_changing and not r.view_changing


def answer_checkpoint(r: Replica, fx: EffectsBuilder, sender: NodeId, status: Status) -> None:
    stable = r.stable
    if stable.sequence > status.low_water_mark and stable.sequence > 0:
        # Every honest replica sent exactly this for a proven checkpoint.
        fx.send.append(Send(sender, Checkpoint(stable.sequence, stable.state_root,
                                               stable.block_hash, r.me)))


def answer_slots(r: Replica, fx: EffectsBuilder, sender: NodeId, status: Status) -> None:
    held = {s.sequence: s for s in status.slots}
    start = max(status.committed_height, r.low_water_mark) + 1
    stop = min(r.high_water_mark, status.low_water_mark + r.config.log_window_blocks)
    primary = r.primary()
    for sequence in range(start, stop + 1):
        slot = r.slots.get(sequence)
        if slot is None or slot.pre_prepare is None:
            continue
        pp = slot.message
        assert pp is not None
        theirs = held.get(sequence)
        if not sent_long_ago(r, slot.accepted_tick):
            continue  # our PRE-PREPARE / PREPARE, and any COMMIT, are still in flight
        if r.me == primary:
            if theirs is None or not theirs.pre_prepare:
                fx.send.append(Send(sender, pp))
        elif theirs is None or r.me not in theirs.prepares:
            fx.send.append(Send(sender, Prepare(pp.view, sequence, pp.digest, r.me)))
        # A COMMIT also for a block we committed but are not prepared for in this view
        # (its prepares to us were lost after the new view re-proposed it): it is final,
        # so every later view re-proposes exactly it (§4.4) and this commit can complete
        # no other block - while the laggard needs 2f + 1 commits of this one view.
        decided = r.committed_hashes.get(sequence) == pp.digest
        fresh_commit = slot.prepared and not sent_long_ago(r, slot.prepared_tick)
        if (slot.prepared or decided) and not fresh_commit \
                and (theirs is None or r.me not in theirs.commits):
            fx.send.append(Send(sender, Commit(pp.view, sequence, pp.digest, r.me)))
