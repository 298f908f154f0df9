"""The pacemaker: rounds, round timers, TIMEOUT, NEW-VIEW and timeout certificates
(Jolteon §3 'Pacemaker'; DiemBFT v4 §5).

Theory of operation
-------------------
A replica is in round max(high QC round, high TC round) + 1 and moves on as soon as it
sees any valid QC or TC of its round or later - in a proposal, a vote quorum, a NEW-VIEW
- so replicas synchronise on certificates, not clocks. Entering a round by a QC is
progress: the round timer returns to its base `view_timeout_ticks`. Entering by a TC
means the round failed: the timer doubles (up to 2^TIMEOUT_DOUBLINGS_MAX), so after GST
rounds become long enough for an honest leader to finish one.

The timer runs only while there is work: a batch waits here for a proposal, a batch this
replica handed on is not final yet, a block with transactions is not final yet, or this
replica has already timed out in the round. An idle cluster therefore sends nothing, and
a silent or crashed leader is noticed as soon as transactions arrive. Half-way through a
round that has not ended, a replica re-sends its proposal and vote of the round, byte for
byte: lost packets are the usual reason a round stalls, and a TC costs a doubled timeout.

When the timer expires the safety rules sign TIMEOUT(round, high QC round) - it is sent
to this replica itself for its signature - and the replica broadcasts NEW-VIEW(signed
timeout, high QC, TC of the previous round). A NEW-VIEW is processed as sync info first
(its QC and TC may advance the round), then its timeout is counted: f + 1 timeouts of
the current round make a replica time out too (DiemBFT v4 process_remote_timeout: at
least one of them is honest, so the round is really stuck), 2f + 1 form TC(round), which
ends the round. A timed-out replica re-broadcasts the very same NEW-VIEW at every expiry
until the round ends, which recovers lost timeouts. A replica that sends a timeout for a
round others have left is answered once per round with sync info, so it can catch up.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, Note, Persist, RejectReason, Send
from consensus.hotstuff.certificates import check_qc, check_tc
from consensus.hotstuff.chain import observe_qc
from consensus.hotstuff.messages import NewView, Timeout, TimeoutCertificate
from consensus.hotstuff.safety import Refusal, decide_timeout
from consensus.hotstuff.state import KEY_HIGH_TC, KEY_SAFETY, ROUNDS_AHEAD_MAX, Replica
from consensus.types import NodeId, SignedMessage


def advance_round(r: Replica, fx: EffectsBuilder, new_round: int, via_qc: bool) -> None:
    if new_round <= r.round:
        return
    r.round = new_round
    r.failed_rounds = 0 if via_qc else r.failed_rounds + 1
    r.round_ticks = 0
    r.timed_out_view = None
    low = new_round - 1
    for table in (r.votes, r.timeouts, r.proposals):
        for old in [n for n in table if n < low]:
            del table[old]
    if not via_qc:
        fx.notes.append(Note("view_change", f"round {new_round} after a timeout certificate",
                             new_round, r.leader(new_round)))


def observe_tc(r: Replica, fx: EffectsBuilder, tc: TimeoutCertificate) -> None:
    if r.high_tc is None or tc.round > r.high_tc.round:
        r.high_tc = tc
        fx.persist.append(Persist(KEY_HIGH_TC, tc))
        # Replicas whose timeout is not in the TC nor came in since may have crashed
        # (a crashed leader or vote collector is why rounds fail). Until they are heard
        # from again they get no batches (voting.take_batch) and their rounds no
        # back-off (Replica.round_timeout_ticks).
        heard = {s.sender for s in tc.timeouts} | set(r.timeouts.get(tc.round, {}))
        r.suspects |= set(r.config.validators.node_ids) - heard - {r.me}
    advance_round(r, fx, tc.round + 1, via_qc=False)


# ------------------------------------------------------------------ timer
def timer_running(r: Replica) -> bool:
    return (bool(r.queued) or bool(r.offered) or r.wanted_height() > r.committed_height
            or r.timed_out_view is not None)


def on_tick_round(r: Replica, fx: EffectsBuilder) -> None:
    if not timer_running(r):
        r.round_ticks = 0
        return
    r.round_ticks += 1
    if r.round_ticks == r.round_timeout_ticks() // 2:
        resend_round_messages(r, fx)
    if r.round_ticks < r.round_timeout_ticks():
        return
    r.round_ticks = 0
    if r.timed_out_view is not None:
        fx.send.append(Send(None, r.timed_out_view))  # same bytes: recovers lost timeouts
        return
    local_timeout(r, fx)


def resend_round_messages(r: Replica, fx: EffectsBuilder) -> None:
    """Half-way through a round that has not ended, send our proposal and vote of this
    round once more, byte for byte (the guard returns the same signatures): one lost
    packet then costs half a round instead of a TC and a doubled timeout."""
    proposal = r.my_proposal
    if proposal is not None and proposal.round == r.round:
        fx.send.append(Send(None, proposal))
    vote = r.safety.last_vote
    if vote is not None and vote.round == r.round:
        fx.send.append(Send(r.leader(vote.round + 1), vote))


def local_timeout(r: Replica, fx: EffectsBuilder) -> None:
    """Give up on the current round: safety rules first, durable before signing."""
    tc_round = r.high_tc.round if r.high_tc is not None else 0
    decision = decide_timeout(r.safety, r.me, r.round, r.high_qc.round, tc_round)
    if isinstance(decision, Refusal):
        fx.notes.append(Note("timeout_refused", decision.reason, r.round, r.leader()))
        return
    data, timeout = decision
    if data != r.safety:
        r.safety = data
        fx.persist.append(Persist(KEY_SAFETY, data))
    fx.send.append(Send(r.me, timeout))  # signed by the driver, handed back to on_timeout


def on_timeout(r: Replica, fx: EffectsBuilder, sender: NodeId, timeout: Timeout,
               signature: bytes) -> None:
    """Our own signed timeout comes back: wrap it with the sync info and broadcast."""
    if sender != r.me:
        fx.reject(RejectReason.MALFORMED, sender, "timeouts travel inside a NEW-VIEW")
        return
    if timeout != r.safety.last_timeout or timeout.round != r.round:
        return  # the round ended meanwhile
    tc = r.high_tc if r.high_tc is not None and r.high_tc.round == r.round - 1 else None
    view = NewView(SignedMessage(r.me, timeout, signature), r.high_qc, tc)
    r.timed_out_view = view
    fx.send.append(Send(None, view))


# ------------------------------------------------------------------ NEW-VIEW
def on_new_view(r: Replica, fx: EffectsBuilder, sender: NodeId, view: NewView,
                signature: bytes) -> None:
    problem = check_qc(r.config, view.high_qc)
    if problem is None and view.last_round_tc is not None:
        problem = check_tc(r.config, view.last_round_tc)
    if problem is not None:
        fx.reject(RejectReason.BAD_SIGNATURE, sender, problem)
        return
    observe_qc(r, fx, view.high_qc, sender)
    advance_round(r, fx, view.high_qc.round + 1, via_qc=True)
    if view.last_round_tc is not None:
        observe_tc(r, fx, view.last_round_tc)
    if view.timeout is not None:
        count_timeout(r, fx, sender, view)


def count_timeout(r: Replica, fx: EffectsBuilder, sender: NodeId, view: NewView) -> None:
    signed = view.timeout
    timeout = signed.message if signed is not None else None
    if not isinstance(timeout, Timeout) or signed.sender != sender or timeout.voter != sender:
        fx.reject(RejectReason.MALFORMED, sender, "NEW-VIEW timeout of another replica")
        return
    if view.high_qc.round < timeout.high_qc_round:
        fx.reject(RejectReason.MALFORMED, sender, "timeout's high QC not carried")
        return
    if not r.config.verifier.verify(sender, timeout, signed.signature):
        fx.reject(RejectReason.BAD_SIGNATURE, sender, "timeout signature")
        return
    if timeout.round < r.round:
        help_laggard(r, fx, sender)
        return
    if timeout.round > r.round + ROUNDS_AHEAD_MAX:
        fx.reject(RejectReason.FUTURE, sender, f"timeout for round {timeout.round}")
        return
    pending = r.timeouts.setdefault(timeout.round, {})
    previous = pending.get(sender)
    if previous is not None:
        if previous.message != timeout:
            fx.reject(RejectReason.CONFLICT, sender, f"second timeout for {timeout.round}")
        return  # a retransmission
    pending[sender] = signed
    if len(pending) == r.faults + 1 and timeout.round == r.round and r.timed_out_view is None:
        local_timeout(r, fx)  # f + 1 gave up: at least one honest replica is stuck
    if len(pending) >= r.quorum:
        chosen = tuple(sorted(pending.values(), key=lambda s: s.sender)[:r.quorum])
        observe_tc(r, fx, TimeoutCertificate(timeout.round, chosen))


def help_laggard(r: Replica, fx: EffectsBuilder, sender: NodeId) -> None:
    """A replica times out in a round we have left: give it our certificates, once per
    round of ours, so a flood of stale timeouts cannot make us flood back."""
    if sender == r.me or r.helped.get(sender, -1) >= r.round:
        return
    r.helped[sender] = r.round
    fx.send.append(Send(sender, NewView(None, r.high_qc, r.high_tc)))
