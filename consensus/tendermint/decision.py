"""Deciding a height (Algorithm 1 lines 49-54), the commit certificate, and moving to the
next height - by decision, by catch-up, or at restart (Buchman et al. 2018; CometBFT's
timeout_commit and block sync).

Theory of operation
-------------------
Line 49: a proposal v of *any* round r of this height with 2f + 1 precommits for id(v),
v valid, decides v. The `Certificate` ("tendermint.commit") is those precommits; anyone
with the validator set checks it (`check_commit_certificate`): precommits of one round
for the block, distinct validators, power >= 2f + 1, good signatures. Then the next
height starts with a fresh round state (lines 51-54) after `timeout_commit`; the
precommits of the decided round keep arriving and go into `last_commit`, which our next
proposal carries.

A validator that falls behind learns so from messages of higher heights: when validators
with power > f (so at least one honest) are at height H > ours, heights below H are final
and it asks the driver to fetch them (`CatchUp`); `Synced` then moves it to the height
after them. At restart the durable state resumes the height in progress (with its lock
and its own votes) unless the ledger already holds that height.
"""
from __future__ import annotations

from consensus import api
from consensus.api import Applied, CatchUp, EffectsBuilder, EngineConfig, Note, Restore, Synced
from consensus.tendermint import timeouts
from consensus.tendermint.evidence import (
    COMMITTED_EVIDENCE_REMEMBERED_MAX,
    describe,
    evidence_id,
    evidence_in_block,
)
from consensus.tendermint.messages import NO_ROUND, Vote, VoteStep
from consensus.tendermint.proposals import forget_committed_txs
from consensus.tendermint.rounds import schedule, start_round, valid
from consensus.tendermint.state import KEY_OWN, KEY_STATE, DurableState, OwnMessages, Replica, Step
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Block, Certificate, SignedMessage

COMMIT_CERTIFICATE_KIND = "tendermint.commit"
FETCH_DELAY_TICKS = 2  # before fetching a block decided without us (see fetch_decided_block)


def rule_decide(r: Replica, fx: EffectsBuilder) -> bool:
    """Lines 49-54: PROPOSAL(h, r, v) and 2f + 1 PRECOMMIT(h, r, id(v)), v valid."""
    for round_number in sorted(r.proposals):
        proposal = r.proposals[round_number][0]
        block_hash = proposal.block.block_hash
        if r.votes_for(round_number, VoteStep.PRECOMMIT, block_hash) >= r.quorum \
                and valid(r, proposal):
            decide(r, fx, proposal.block, round_number)
            return True
    return False


def fetch_decided_block(r: Replica, fx: EffectsBuilder) -> None:
    """2f + 1 precommits for a block whose proposal we never got (an equivocating
    proposer showed us another, or it was lost): the block is final, so fetch it with
    its certificate from the validators that precommitted it (CometBFT fetches the
    block parts of a +2/3 precommitted block the same way)."""
    for (round_number, step), votes in sorted(r.votes.items()):
        if step != VoteStep.PRECOMMIT:
            continue
        known = r.proposals.get(round_number)
        for block_hash in {s.message.block_hash for s in votes.values()} - {b""}:  # type: ignore[attr-defined]
            if (known is None or known[0].block.block_hash != block_hash) and \
                    r.votes_for(round_number, step, block_hash) >= r.quorum:
                # The precommitters decide on the same votes, a message delay apart;
                # asked at once, they may not hold the block yet (and the driver retries
                # an empty answer only after its request timeout).
                if r.missing_since_ticks < 0:
                    r.missing_since_ticks = r.now_ticks
                if r.now_ticks - r.missing_since_ticks >= FETCH_DELAY_TICKS:
                    ask_catch_up(r, fx, r.height, tuple(sorted(v for v in votes if v != r.me)))
                return


def ask_catch_up(r: Replica, fx: EffectsBuilder, target: int, peers: tuple[int, ...]) -> None:
    """At most one request in flight per target, renewed after timeout_propose ticks."""
    if target <= r.committed_height or (target <= r.catch_up_target
                                        and r.catch_up_wait_ticks > 0):
        return
    r.catch_up_target = target
    r.catch_up_wait_ticks = r.config.timeout_propose_ticks
    fx.catch_up.append(CatchUp(target, peers))


def decide(r: Replica, fx: EffectsBuilder, block: Block, round_number: int) -> None:
    precommits = r.votes.get((round_number, VoteStep.PRECOMMIT), {})
    found = (r.signed_vote(round_number, VoteStep.PRECOMMIT, v, block.block_hash)
             for v in sorted(precommits))
    votes = tuple(signed for signed in found if signed is not None)
    certificate = Certificate(COMMIT_CERTIFICATE_KIND, block.height, block.block_hash, votes)
    fx.commit.append(api.Commit(block, certificate))  # line 50: decision_p[h] = v
    record_evidence(r, fx, block)
    forget_committed_txs(r, block)
    r.committed_timestamp_ms = block.header.timestamp_ms
    r.last_commit = dict(precommits)
    r.last_commit_round = round_number
    enter_height(r, fx, block.height, block.block_hash)


def record_evidence(r: Replica, fx: EffectsBuilder, block: Block) -> None:
    """Evidence in a committed block: counted, logged once per piece, no longer pending."""
    for evidence in evidence_in_block(block):
        ident = evidence_id(evidence)
        r.pending_evidence.pop(ident, None)
        if ident in r.committed_evidence:
            continue
        r.committed_evidence[ident] = block.height
        r.committed_evidence_count += 1
        fx.notes.append(Note("evidence", f"{describe(evidence)} committed_height="
                             f"{block.height}", view=evidence.height,
                             leader=evidence.validator))
    age = r.config.evidence_age_blocks_max
    for ident in [i for i, h in r.committed_evidence.items() if h + age < block.height]:
        del r.committed_evidence[ident]  # older than any evidence still acceptable
    while len(r.committed_evidence) > COMMITTED_EVIDENCE_REMEMBERED_MAX:
        del r.committed_evidence[next(iter(r.committed_evidence))]


def enter_height(r: Replica, fx: EffectsBuilder, committed: int, block_hash: bytes) -> None:
    """Lines 51-54: the next height, locks and valid value reset; StartRound(0) after
    timeout_commit (CometBFT), at once when it is 0."""
    r.committed_height, r.committed_hash = committed, block_hash
    r.height, r.round, r.step = committed + 1, 0, Step.NEW_HEIGHT
    r.locked_round, r.locked_block = NO_ROUND, None
    r.valid_round, r.valid_block = NO_ROUND, None
    r.proposals.clear()
    r.votes.clear()
    r.conflicting.clear()
    r.round_senders.clear()
    r.fired.clear()
    r.timers.clear()
    r.valid_cache.clear()
    r.behind_since_ticks = -1
    r.missing_since_ticks = -1
    r.helped.clear()
    r.idle = r.work_seen = False
    if r.config.timeout_commit_ticks > 0:
        schedule(r, timeouts.COMMIT)
    else:
        start_round(r, fx, 0)
    replay_future(r, fx)


def replay_future(r: Replica, fx: EffectsBuilder) -> None:
    from consensus.tendermint.voting import ingest

    waiting, r.future = r.future, []
    for sender, message, signature in waiting:
        if getattr(message, "height", 0) >= r.height:
            ingest(r, fx, sender, message, signature)


# ------------------------------------------------------------------ catch-up
def note_peer_height(r: Replica, sender: int, height: int) -> None:
    if height > r.peer_heights.get(sender, 0):
        r.peer_heights[sender] = height


def request_catch_up(r: Replica, fx: EffectsBuilder) -> None:
    """Fetch heights that are final elsewhere. Validators with power > f (so one honest)
    at a height above ours + 1 prove it at once (one height ahead is the normal race,
    which the next proposal's last_commit decides). A single validator ahead for
    timeout_propose ticks is believed too: fetched blocks carry certificates the driver
    checks, so a liar costs one request, while a lone honest validator that decided
    without us (it counted votes we missed) cannot carry us there in any other way."""
    ahead = sorted(((h, v) for v, h in r.peer_heights.items() if h > r.height), reverse=True)
    if not ahead:
        r.behind_since_ticks = -1
        return
    if r.behind_since_ticks < 0:
        r.behind_since_ticks = r.now_ticks
    power, target = 0, 0
    for height, validator in ahead:
        power += r.power((validator,))
        if power >= r.skip and height > r.height + 1:
            target = height - 1
            break
    if not target and r.now_ticks - r.behind_since_ticks >= r.config.timeout_propose_ticks:
        target = ahead[0][0] - 1
    if target:
        ask_catch_up(r, fx, target, tuple(sorted(v for h, v in ahead if h > target)))


def on_tick_catch_up(r: Replica) -> None:
    if r.catch_up_wait_ticks > 0:
        r.catch_up_wait_ticks -= 1


def on_synced(r: Replica, fx: EffectsBuilder, event: Synced) -> None:
    r.applied_height, r.applied_root = event.height, event.state_root
    if event.height < r.height:
        return
    # These may hold transactions of the fetched blocks, which this engine never saw: the
    # driver's mempool re-offers whatever is still not committed.
    r.queued_txs.clear()
    r.pending_evidence.clear()  # likewise: it may be committed in the fetched blocks
    r.last_commit, r.last_commit_round = {}, NO_ROUND
    enter_height(r, fx, event.height, event.block_hash)


def on_applied(r: Replica, event: Applied) -> None:
    if event.height > r.applied_height:
        r.applied_height, r.applied_root = event.height, event.state_root


# ------------------------------------------------------------------ restart
def on_restore(r: Replica, fx: EffectsBuilder, event: Restore) -> None:
    records = dict(event.records)
    r.applied_height = event.committed_height
    r.applied_root = event.state_root or EMPTY_ROOT  # a fresh ledger names no root
    own = records.get(KEY_OWN)
    if isinstance(own, OwnMessages):
        r.own = own
    state = records.get(KEY_STATE)
    r.committed_height = event.committed_height
    r.committed_hash = event.committed_hash or GENESIS_HASH
    if isinstance(state, DurableState) and state.height == event.committed_height + 1:
        r.height = state.height
        r.locked_round, r.locked_block = state.locked_round, state.locked_block
        r.valid_round, r.valid_block = state.valid_round, state.valid_block
        start_round(r, fx, state.round)  # own votes at this round are re-sent, never new
        return
    r.height = event.committed_height + 1
    start_round(r, fx, 0)


# ------------------------------------------------------------------ certificates
def check_commit_certificate(config: EngineConfig, block: Block,
                             certificate: Certificate) -> bool:
    if certificate.kind != COMMIT_CERTIFICATE_KIND or certificate.height != block.height \
            or certificate.block_hash != block.block_hash:
        return False
    return check_vote_quorum(config, VoteStep.PRECOMMIT, block.height, block.block_hash,
                             certificate.votes)


def check_vote_quorum(config: EngineConfig, step: VoteStep, height: int, block_hash: bytes,
                      votes: tuple[SignedMessage, ...]) -> bool:
    """Signed votes of one round and `step` for (height, block_hash), from distinct
    validators holding +2/3 of the power: a commit (precommits) or a polka (prevotes,
    the read barrier's proof, read_barrier.py)."""
    from consensus.tendermint.state import quorum_powers

    if not votes:
        return False
    rounds, signers = set(), set()
    for signed in votes:
        vote = signed.message if isinstance(signed, SignedMessage) else None
        if not isinstance(vote, Vote) or vote.step != step \
                or vote.height != height or vote.block_hash != block_hash \
                or vote.validator != signed.sender or signed.sender in signers \
                or signed.sender not in config.validators:
            return False
        rounds.add(vote.round)
        signers.add(signed.sender)
    power = sum(config.validators.validators[v].power for v in signers)
    if len(rounds) != 1 or power < quorum_powers(config)[0]:
        return False
    return all(config.verifier.verify(s.sender, s.message, s.signature) for s in votes)
