"""Algorithm 1's rounds: StartRound, the PROPOSE / PREVOTE / PRECOMMIT rules and the
timeouts (Buchman, Kwon & Milosevic 2018, Algorithm 1; line numbers cited per rule).

Theory of operation
-------------------
Handlers (voting.py) only store what arrives; after every input `progress` re-evaluates
the upon-rules of Algorithm 1 against the stored proposals and votes until none fires.
Each rule either changes step, round or height (and `progress` looks again) or only
schedules a timer once ("for the first time"). Votes go through `sign_vote`, the only
code that creates a vote: the validator's last prevote and precommit are durable, so at
a position it signed already it re-sends that vote, and below it signs nothing.
The durable state (height, round, step, lock, valid value) is persisted in the same
Effects as the vote that follows from it (engine.py), so persist precedes every send.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, Persist, Send
from consensus.tendermint import timeouts
from consensus.tendermint.messages import NIL, NO_ROUND, Proposal, Vote, Votes, VoteStep
from consensus.tendermint.proposals import block_problem, new_block
from consensus.tendermint.state import (
    KEY_OWN,
    PROGRESS_STEPS_MAX,
    ROUNDS_AHEAD_MAX,
    OwnMessages,
    Replica,
    Step,
)


# ------------------------------------------------------------------ signing
def sign_vote(r: Replica, fx: EffectsBuilder, step: VoteStep, block_hash: bytes) -> None:
    """Broadcast our vote of (height, round, step); re-send the one already signed there."""
    own = r.own.prevote if step == VoteStep.PREVOTE else r.own.precommit
    here = (r.height, r.round)
    if own is not None and (own.height, own.round) > here:
        return
    if own is None or (own.height, own.round) < here:
        own = Vote(r.height, r.round, step, block_hash, r.me)
        if step == VoteStep.PREVOTE:
            r.own = OwnMessages(r.own.proposal, own, r.own.precommit)
        else:
            r.own = OwnMessages(r.own.proposal, r.own.prevote, own)
        fx.persist.append(Persist(KEY_OWN, r.own))
    fx.send.append(Send(None, own))


def schedule(r: Replica, kind: str) -> None:
    ticks = timeouts.timeout_ticks(r.config, kind, r.round)
    r.timers[kind] = (r.now_ticks + ticks, r.height, r.round)


# ------------------------------------------------------------------ StartRound
def start_round(r: Replica, fx: EffectsBuilder, round_number: int) -> None:
    """Lines 11-21: enter `round_number`; its proposer proposes validValue or a new
    value, with validRound; everyone else waits timeoutPropose(round)."""
    r.round, r.step = round_number, Step.PROPOSE
    r.timers.clear()
    r.resend_at_ticks = r.now_ticks + r.config.heartbeat_ticks
    prune_rounds(r)
    if r.proposer() != r.me:
        schedule(r, timeouts.PROPOSE)  # line 21
        return
    own = r.own.proposal
    if own is None or (own.height, own.round) < (r.height, r.round):
        if r.valid_block is not None:  # lines 15-16
            block, pol_round = r.valid_block, r.valid_round
        else:  # line 18: getValue()
            block, pol_round = new_block(r), NO_ROUND
        last_commit = tuple(r.last_commit[v] for v in sorted(r.last_commit))
        own = Proposal(r.height, r.round, block, pol_round, r.me, last_commit)
        r.own = OwnMessages(own, r.own.prevote, r.own.precommit)
        fx.persist.append(Persist(KEY_OWN, r.own))
    if (own.height, own.round) == (r.height, r.round):
        fx.send.append(Send(None, own))  # line 19


def prune_rounds(r: Replica) -> None:
    """Keep the rounds rules may still need: recent ones and the valid / locked round."""
    low = r.round - ROUNDS_AHEAD_MAX
    keep = {r.valid_round, r.locked_round}
    for key in [k for k in r.votes if k[0] < low and k[0] not in keep]:
        del r.votes[key]
        r.conflicting.pop(key, None)
    for key in [k for k in r.proposals if k < low and k not in keep]:
        del r.proposals[key]
    for key in [k for k in r.round_senders if k <= r.round]:
        del r.round_senders[key]


# ------------------------------------------------------------------ upon rules
def valid(r: Replica, proposal: Proposal) -> bool:
    block_hash = proposal.block.block_hash
    if block_hash not in r.valid_cache:
        r.valid_cache[block_hash] = block_problem(r, proposal.block)
    return r.valid_cache[block_hash] is None


def rule_proposal(r: Replica, fx: EffectsBuilder) -> bool:
    """Lines 22-27 (vr = -1) and 28-33 (0 <= vr < r, with 2f + 1 prevotes for v in vr):
    prevote id(v) if v is valid and the lock allows it, else nil."""
    if r.step != Step.PROPOSE or r.round not in r.proposals:
        return False
    proposal = r.proposals[r.round][0]
    v, vr = proposal.block, proposal.pol_round
    if vr == NO_ROUND:
        allowed = r.locked_round == NO_ROUND or r.locked_block == v  # line 23
    elif 0 <= vr < r.round and r.votes_for(vr, VoteStep.PREVOTE, v.block_hash) >= r.quorum:
        allowed = r.locked_round <= vr or r.locked_block == v  # line 29
    else:
        return False
    ok = allowed and valid(r, proposal)
    sign_vote(r, fx, VoteStep.PREVOTE, v.block_hash if ok else NIL)  # lines 24 / 26
    r.step = Step.PREVOTE  # line 27 / 33
    return True


def rule_prevote_timer(r: Replica) -> None:
    """Lines 34-35: 2f + 1 prevotes of any kind in our round, for the first time."""
    if r.step == Step.PREVOTE and ("prevote_timer", r.round) not in r.fired \
            and r.votes_for(r.round, VoteStep.PREVOTE, None) >= r.quorum:
        r.fired.add(("prevote_timer", r.round))
        schedule(r, timeouts.PREVOTE)


def rule_polka(r: Replica, fx: EffectsBuilder) -> bool:
    """Lines 36-43: proposal v and 2f + 1 prevotes for id(v) in our round, for the first
    time, step >= prevote: in prevote lock v and precommit it; always set valid value."""
    if r.step not in (Step.PREVOTE, Step.PRECOMMIT) or r.round not in r.proposals \
            or ("polka", r.round) in r.fired:
        return False
    proposal = r.proposals[r.round][0]
    v = proposal.block
    if r.votes_for(r.round, VoteStep.PREVOTE, v.block_hash) < r.quorum or not valid(r, proposal):
        return False
    r.fired.add(("polka", r.round))
    if r.step == Step.PREVOTE:
        r.locked_block, r.locked_round = v, r.round  # lines 38-39
        sign_vote(r, fx, VoteStep.PRECOMMIT, v.block_hash)  # line 40
        r.step = Step.PRECOMMIT  # line 41
    r.valid_block, r.valid_round = v, r.round  # lines 42-43
    return True


def rule_nil_polka(r: Replica, fx: EffectsBuilder) -> bool:
    """Lines 44-46: 2f + 1 prevotes for nil in our round while in prevote: precommit nil."""
    if r.step != Step.PREVOTE or r.votes_for(r.round, VoteStep.PREVOTE, NIL) < r.quorum:
        return False
    sign_vote(r, fx, VoteStep.PRECOMMIT, NIL)
    r.step = Step.PRECOMMIT
    return True


def rule_precommit_timer(r: Replica) -> None:
    """Lines 47-48: 2f + 1 precommits of any kind in our round, for the first time."""
    if r.step != Step.NEW_HEIGHT and ("precommit_timer", r.round) not in r.fired \
            and r.votes_for(r.round, VoteStep.PRECOMMIT, None) >= r.quorum:
        r.fired.add(("precommit_timer", r.round))
        schedule(r, timeouts.PRECOMMIT)


def rule_skip_round(r: Replica, fx: EffectsBuilder) -> bool:
    """Lines 55-56: messages of a higher round from f + 1 validators (power > f):
    StartRound there (the highest such round)."""
    if r.step == Step.NEW_HEIGHT:
        return False
    ahead = [rr for rr, senders in r.round_senders.items()
             if rr > r.round and r.power(senders) >= r.skip]
    if not ahead:
        return False
    start_round(r, fx, max(ahead))
    return True


def progress(r: Replica, fx: EffectsBuilder) -> None:
    """Evaluate the upon-rules until none fires (each firing moves step/round/height)."""
    from consensus.tendermint.decision import rule_decide

    for _ in range(PROGRESS_STEPS_MAX):
        rule_prevote_timer(r)
        rule_precommit_timer(r)
        if not (rule_decide(r, fx) or rule_leave_idle(r, fx) or rule_skip_round(r, fx)
                or rule_proposal(r, fx)
                or rule_polka(r, fx) or rule_nil_polka(r, fx)):
            rule_prevote_timer(r)
            rule_precommit_timer(r)
            return


# ------------------------------------------------------------------ timeouts
def on_tick_timers(r: Replica, fx: EffectsBuilder) -> None:
    r.now_ticks += 1
    for kind in [k for k, (at, _, _) in r.timers.items() if at <= r.now_ticks]:
        timer = r.timers.pop(kind, None)  # an earlier timeout may have started a round
        if timer is not None and timer[1:] == (r.height, r.round):
            on_timeout(r, fx, kind)
    if r.step != Step.NEW_HEIGHT and r.now_ticks >= r.resend_at_ticks:
        resend_own(r, fx)


def on_timeout(r: Replica, fx: EffectsBuilder, kind: str) -> None:
    if kind == timeouts.PROPOSE and r.step == Step.PROPOSE:  # lines 57-60
        if r.round not in r.proposals:
            r.suspects.add(r.proposer())  # batches go past it until it is heard from
        sign_vote(r, fx, VoteStep.PREVOTE, NIL)
        r.step = Step.PREVOTE
    elif kind == timeouts.PREVOTE and r.step == Step.PREVOTE:  # lines 61-64
        sign_vote(r, fx, VoteStep.PRECOMMIT, NIL)
        r.step = Step.PRECOMMIT
    elif kind == timeouts.PRECOMMIT and r.step != Step.NEW_HEIGHT:  # lines 65-67
        start_round(r, fx, r.round + 1)
    elif kind == timeouts.COMMIT and r.step == Step.NEW_HEIGHT:  # CometBFT timeout_commit
        r.idle = True
        rule_leave_idle(r, fx)


def has_work(r: Replica) -> bool:
    return r.work_seen or bool(r.queued_txs) or bool(r.pending_evidence)


def rule_leave_idle(r: Replica, fx: EffectsBuilder) -> bool:
    """CometBFT's create_empty_blocks = false: after timeout_commit a height starts
    (StartRound(0), line 10) only once there is something to order - transactions
    offered to us or queued for our proposal, pending evidence - or another validator
    has started it (any message of the height). An idle cluster is quiet and its
    heights stay equal."""
    if r.step != Step.NEW_HEIGHT or not r.idle or not has_work(r):
        return False
    r.idle = False
    start_round(r, fx, 0)
    return True


def resend_own(r: Replica, fx: EffectsBuilder) -> None:
    """Retransmission (CometBFT gossips until peers have them): a round that has not
    decided after heartbeat_ticks gets our proposal and votes of it again - the same
    signed messages, so the double-sign guard sees nothing new. Recovers lost messages
    without waiting for a round change."""
    r.resend_at_ticks = r.now_ticks + r.config.heartbeat_ticks
    here = (r.height, r.round)
    for own in (r.own.proposal, r.own.prevote, r.own.precommit):
        if own is not None and (own.height, own.round) == here:
            fx.send.append(Send(None, own))
    if 0 <= r.valid_round < r.round and r.valid_block is not None:
        # The POL of our valid value: a proposer re-proposing it (line 16) needs the
        # others to hold these prevotes (line 28), and lost ones are not sent again.
        pol = r.votes.get((r.valid_round, VoteStep.PREVOTE), {})
        found = (r.signed_vote(r.valid_round, VoteStep.PREVOTE, v, r.valid_block.block_hash)
                 for v in sorted(pol))
        fx.send.append(Send(None, Votes(r.height, r.valid_round,
                                        tuple(s for s in found if s is not None))))
