"""Tier (a): Tendermint beyond the rules of Algorithm 1 - the timeout schedule, CometBFT's
proposer priorities (against a schedule worked out by hand), persistence before signing
and restart, commit certificates, and evidence of equivocation (valid, duplicate, too
old, forged signature, non-validator; included in a block, committed, counted)."""
from __future__ import annotations

import dataclasses

from consensus.api import Effects, Note, Persist, Propose, Rejected, RejectReason, Restore, Send
from consensus.tendermint import TendermintEngine
from consensus.tendermint.decision import COMMIT_CERTIFICATE_KIND
from consensus.tendermint.evidence import evidence_entry, make_evidence
from consensus.tendermint.messages import NIL, DuplicateVoteEvidence, Proposal, VoteStep
from consensus.tendermint.proposer import ProposerSchedule, increment
from consensus.tendermint.state import KEY_OWN, KEY_STATE, OwnMessages, Step
from consensus.tendermint.timeouts import COMMIT, PRECOMMIT, PREVOTE, PROPOSE, timeout_ticks
from consensus.types import (
    EMPTY_ROOT,
    GENESIS_HASH,
    Certificate,
    SignedMessage,
    Validator,
    ValidatorSet,
    make_block,
)
from tests.engines.tendermint_helpers import (
    CHAIN,
    block_at,
    config,
    engine,
    precommit,
    prevote,
    proposal,
    receive,
    sign,
    signed,
    started,
    state,
    ticks,
)

V = block_at(txs=(b"v",))
W = block_at(proposer=1, txs=(b"w",))


# ------------------------------------------------------------------ timeouts
def test_timeouts_grow_by_their_delta_every_round_and_commit_does_not() -> None:
    cfg = config(timeout_propose_ticks=300, timeout_propose_delta_ticks=50,
                 timeout_prevote_ticks=100, timeout_prevote_delta_ticks=50,
                 timeout_precommit_ticks=100, timeout_precommit_delta_ticks=25,
                 timeout_commit_ticks=100)
    assert [timeout_ticks(cfg, PROPOSE, r) for r in range(4)] == [300, 350, 400, 450]
    assert [timeout_ticks(cfg, PREVOTE, r) for r in range(3)] == [100, 150, 200]
    assert [timeout_ticks(cfg, PRECOMMIT, r) for r in range(3)] == [100, 125, 150]
    assert [timeout_ticks(cfg, COMMIT, r) for r in range(3)] == [100, 100, 100]


def test_the_propose_timeout_of_round_1_is_longer() -> None:
    eng = started()
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, NIL))
    ticks(eng, 3)  # round 1
    assert ticks(eng, 6) == [Effects()] * 6  # timeoutPropose(1) = 5 + 2
    assert ticks(eng, 1)[0].send == (Send(None, prevote(3, NIL, 1)),)


# ------------------------------------------------------------------ proposer priorities
def test_proposer_priorities_match_a_schedule_worked_by_hand() -> None:
    """Powers 1, 2, 3 (total 6). Each increment: shift by the average, add powers, the
    highest (ties: lower id) proposes and pays 6.
      start [0, 0, 0]  +p [1, 2, 3]  -> 2   [1, 2, -3]
            avg 0      +p [2, 4, 0]  -> 1   [2, -2, 0]
            avg 0      +p [3, 0, 3]  -> 0 (tie with 2, lower id)  [-3, 0, 3]
            avg 0      +p [-2, 2, 6] -> 2   [-2, 2, 0]
            avg 0      +p [-1, 4, 3] -> 1   [-1, -2, 3]
            avg 0      +p [0, 0, 6]  -> 2   [0, 0, 0]   and the cycle repeats."""
    powers = (1, 2, 3)
    priorities = [0, 0, 0]
    picked = [increment(powers, priorities) for _ in range(6)]
    assert picked == [2, 1, 0, 2, 1, 2]
    assert priorities == [0, 0, 0]
    validators = ValidatorSet(tuple(Validator(i, b"k", p) for i, p in enumerate(powers)))
    schedule = ProposerSchedule(validators)
    assert [schedule.proposer(h, 0) for h in range(1, 8)] == [2, 1, 0, 2, 1, 2, 2]
    assert [schedule.proposer(1, r) for r in range(3)] == [2, 1, 0]
    assert schedule.proposer(3, 2) == schedule.proposer(5, 0) == 1


def test_average_shift_and_rescaling_keep_priorities_bounded() -> None:
    powers = (1, 100)
    priorities = [0, 0]
    picks = [increment(powers, priorities) for _ in range(101 * 3)]
    assert picks.count(0) == 3
    assert max(priorities) - min(priorities) <= 2 * sum(powers)


def test_equal_powers_give_plain_round_robin_far_out() -> None:
    priorities = [0] * 5
    assert [increment((7,) * 5, priorities) for _ in range(23)] == [i % 5 for i in range(23)]
    schedule = ProposerSchedule(config().validators)
    assert [schedule.proposer(h, 0) for h in range(1, 9)] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert schedule.proposer(10_001, 3) == (10_000 + 3) % 4
    assert schedule.proposer(2, 0) == 1  # earlier counts after later ones: same answer


# ------------------------------------------------------------------ persistence, restart
def test_state_and_own_vote_are_persisted_in_the_effects_of_the_vote() -> None:
    eng = started()
    effects = receive(eng, 0, proposal(V))
    assert effects.persist == (Persist(KEY_OWN, OwnMessages(None, prevote(3, V.block_hash),
                                                            None)),
                               state(0, Step.PREVOTE))
    assert effects.send == (Send(None, prevote(3, V.block_hash)),)


def restarted(eng: TendermintEngine, records: dict[str, object]) -> TendermintEngine:
    again = engine()
    again.step(Restore(tuple(sorted(records.items()))))
    return again


def durable(*effects: Effects) -> dict[str, object]:
    records: dict[str, object] = {}
    for fx in effects:
        for op in fx.persist:
            records[op.key] = op.value
    return records


def test_a_restarted_validator_re_sends_its_prevote_and_never_signs_another() -> None:
    eng = engine()
    first = [eng.step(Restore()), receive(eng, 0, proposal(V))]
    again = restarted(eng, durable(*first))
    assert again.replica.step == Step.PROPOSE  # the round is re-entered
    timeout = ticks(again, 5)[-1]  # timeoutPropose would prevote nil: it re-sends V
    assert timeout.send == (Send(None, prevote(3, V.block_hash)),)
    assert all(op.key != KEY_OWN for op in timeout.persist)


def test_a_restarted_validator_keeps_its_lock() -> None:
    eng = engine()
    fx = [eng.step(Restore()), receive(eng, 0, proposal(V))]
    for voter in (0, 1, 3):
        fx.append(receive(eng, voter, prevote(voter, V.block_hash)))
    assert eng.replica.locked_round == 0
    for voter in (0, 1, 2):
        fx.append(receive(eng, voter, precommit(voter, NIL)))
    fx += ticks(eng, 3)  # round 1
    again = restarted(eng, durable(*fx))
    assert (again.replica.round, again.replica.locked_round, again.replica.locked_block) == \
        (1, 0, V)
    effects = receive(again, 1, proposal(W, round_number=1))
    assert effects.send == (Send(None, prevote(3, NIL, 1)),)


def test_a_restarted_proposer_re_sends_its_proposal() -> None:
    eng = engine(node=0)
    first = eng.step(Restore())
    again = engine(node=0)
    effects = again.step(Restore(tuple(sorted(durable(first).items()))))
    assert effects.send == first.send
    assert all(op.key != KEY_OWN for op in effects.persist)


def test_a_restart_after_the_ledger_passed_the_persisted_height_starts_fresh() -> None:
    eng = engine()
    records = durable(eng.step(Restore()), receive(eng, 0, proposal(V)))
    again = engine()
    again.step(Restore(tuple(sorted(records.items())), committed_height=1,
                       committed_hash=V.block_hash, state_root=EMPTY_ROOT))
    assert (again.replica.height, again.replica.round, again.replica.locked_round) == (2, 0, -1)
    assert records[KEY_STATE] is not None


# ------------------------------------------------------------------ certificates
def certificate(voters: tuple[int, ...], block=V) -> Certificate:  # type: ignore[no-untyped-def]
    votes = tuple(signed(v, precommit(v, block.block_hash)) for v in voters)
    return Certificate(COMMIT_CERTIFICATE_KIND, block.height, block.block_hash, votes)


def test_a_commit_certificate_needs_2f_plus_1_good_precommits_of_one_round() -> None:
    cfg = config()
    assert TendermintEngine.check_certificate(cfg, V, certificate((0, 1, 2)))
    assert not TendermintEngine.check_certificate(cfg, V, certificate((0, 1)))
    assert not TendermintEngine.check_certificate(cfg, V, certificate((0, 0, 1)))
    forged = certificate((0, 1, 2))
    bad = dataclasses.replace(forged, votes=forged.votes[:2] + (
        SignedMessage(2, forged.votes[2].message, b"forged"),))
    assert not TendermintEngine.check_certificate(cfg, V, bad)
    mixed = dataclasses.replace(forged, votes=forged.votes[:2] + (
        signed(2, precommit(2, V.block_hash, round_number=1)),))
    assert not TendermintEngine.check_certificate(cfg, V, mixed)
    assert not TendermintEngine.check_certificate(cfg, W, certificate((0, 1, 2)))


# ------------------------------------------------------------------ evidence
def equivocation(voter: int = 1, height: int = 1) -> DuplicateVoteEvidence:
    return make_evidence(signed(voter, prevote(voter, V.block_hash, height=height)),
                         signed(voter, prevote(voter, W.block_hash, height=height)))


def test_two_votes_of_one_validator_become_evidence_gossiped_once() -> None:
    eng = started()
    receive(eng, 1, prevote(1, V.block_hash))
    effects = receive(eng, 1, prevote(1, W.block_hash))
    assert effects == Effects(send=(Send(None, equivocation()),))
    assert receive(eng, 1, prevote(1, W.block_hash)) == Effects()  # duplicate: nothing
    assert receive(eng, 2, equivocation()) == Effects()  # gossiped back: known already
    assert len(eng.replica.pending_evidence) == 1


def test_gossiped_evidence_is_verified_then_kept_and_gossiped() -> None:
    eng = started()
    assert receive(eng, 2, equivocation()) == Effects(send=(Send(None, equivocation()),))


def test_evidence_with_a_forged_signature_is_refused() -> None:
    eng = started()
    good = equivocation()
    forged = DuplicateVoteEvidence(good.vote_a, SignedMessage(1, good.vote_b.message, b"x"))
    assert receive(eng, 2, forged) == Effects(notes=(
        Rejected(RejectReason.BAD_SIGNATURE, 2, "evidence refused: bad signature"),))


def test_evidence_against_a_non_validator_is_refused() -> None:
    eng = started()
    a, b = prevote(9, V.block_hash), prevote(9, W.block_hash)
    stranger = make_evidence(SignedMessage(9, a, sign(9, a)), SignedMessage(9, b, sign(9, b)))
    assert receive(eng, 2, stranger) == Effects(notes=(
        Rejected(RejectReason.MALFORMED, 2, "evidence refused: not a validator"),))


def test_evidence_older_than_the_age_limit_is_refused() -> None:
    eng = started(evidence_age_blocks_max=0)
    eng.step(Restore(committed_height=5, committed_hash=b"\x05" * 32))
    assert receive(eng, 2, equivocation(height=1)) == Effects(notes=(
        Rejected(RejectReason.STALE, 2, "evidence refused: evidence too old"),))


def test_same_block_twice_is_not_evidence() -> None:
    eng = started()
    same = DuplicateVoteEvidence(signed(1, prevote(1, V.block_hash)),
                                 signed(1, prevote(1, V.block_hash)))
    assert receive(eng, 2, same).notes[0].reason == RejectReason.MALFORMED  # type: ignore[union-attr]


def test_pending_evidence_is_proposed_committed_and_counted_once() -> None:
    """Validator 1 proposes round 1 with the pending piece; validator 0 commits it."""
    proposer = started(node=1)
    receive(proposer, 2, equivocation())
    for voter in (0, 2, 3):
        receive(proposer, voter, precommit(voter, NIL))
    out = ticks(proposer, 3)[-1]  # timeoutPrecommit(0): round 1 is 1's
    block = out.send[0].message.block  # type: ignore[attr-defined]
    assert block.txs == (evidence_entry(equivocation()),)
    eng = started(node=0)
    receive(eng, 2, equivocation())
    for voter in (1, 2, 3):
        receive(eng, voter, precommit(voter, NIL))
    ticks(eng, 3)
    receive(eng, 1, out.send[0].message)
    for voter in (1, 2):
        receive(eng, voter, precommit(voter, block.block_hash, round_number=1))
    effects = receive(eng, 3, precommit(3, block.block_hash, round_number=1))
    assert [c.block for c in effects.commit] == [block]
    assert [n.kind for n in effects.notes if isinstance(n, Note)] == ["evidence"]
    assert (eng.committed_evidence(), eng.replica.pending_evidence) == (1, {})
    assert receive(eng, 2, equivocation()) == Effects()  # committed: not pending again


def test_a_block_with_invalid_or_committed_evidence_gets_a_nil_prevote() -> None:
    eng = started()
    bogus = make_block(CHAIN, 1, GENESIS_HASH, (evidence_entry(DuplicateVoteEvidence(
        signed(1, prevote(1, V.block_hash)), signed(1, prevote(1, V.block_hash)))),), 0, 1_000,
        0, EMPTY_ROOT)
    assert receive(eng, 0, proposal(bogus)).send == (Send(None, prevote(3, NIL)),)


def test_committing_evidence_emits_one_structured_note_per_piece() -> None:
    eng = started()
    piece = equivocation()
    block = make_block(CHAIN, 1, GENESIS_HASH, (b"tx", evidence_entry(piece)), 0, 1_000, 0,
                       EMPTY_ROOT)
    receive(eng, 0, proposal(block))
    for voter in (0, 1):
        receive(eng, voter, precommit(voter, block.block_hash))
    effects = receive(eng, 2, precommit(2, block.block_hash))
    notes = [n for n in effects.notes if isinstance(n, Note) and n.kind == "evidence"]
    assert len(notes) == 1 and notes[0].leader == 1 and notes[0].view == 1
    assert "validator=1 height=1 round=0 type=prevote" in notes[0].detail
    assert eng.committed_evidence() == 1
    assert VoteStep.PREVOTE == piece.vote.step


# ------------------------------------------------------------------ batches
def test_a_batch_is_refused_unless_this_validator_proposes_soon() -> None:
    """NOT_LEADER makes the driver forward it to status().leader's mempool: the first
    proposer of a coming height, skipping one whose proposal never came."""
    eng = started()  # 3 proposes (1, 3) and (4, 0): not soon
    assert eng.step(Propose((b"t1",), 5)) == Effects(notes=(
        Rejected(RejectReason.NOT_LEADER, None, "validator 1 proposes next"),))
    assert eng.status().leader == 1
    eng.replica.suspects.add(1)
    assert eng.status().leader == 2
    receive(eng, 1, prevote(1, NIL))  # heard from: no longer a suspect
    assert eng.status().leader == 1
    assert started(node=2).step(Propose((b"t1",), 5)) == Effects()  # proposes (3, 0)


def test_the_next_proposer_queues_a_batch_and_proposes_it_at_its_height() -> None:
    eng = started(node=1)
    receive(eng, 0, proposal(V))
    assert eng.step(Propose((b"t1", b"t2"), 5)) == Effects()
    for voter in (0, 2, 3):
        receive(eng, voter, precommit(voter, V.block_hash))
    effects = ticks(eng, 2)[-1]  # timeout_commit, then StartRound(0) of height 2
    sent = effects.send[0].message
    assert isinstance(sent, Proposal) and (sent.height, sent.round) == (2, 0)
    assert sent.block.txs == (b"t1", b"t2") and sent.block.header.parent_hash == V.block_hash


def test_a_committed_transaction_is_not_proposed_again() -> None:
    eng = started(node=1)
    receive(eng, 0, proposal(V))
    eng.step(Propose((b"v", b"new"), 5))  # b"v" is in V, which commits
    for voter in (0, 2, 3):
        receive(eng, voter, precommit(voter, V.block_hash))
    sent = ticks(eng, 2)[-1].send[0].message
    assert sent.block.txs == (b"new",)  # type: ignore[attr-defined]


def test_the_engine_class_reads_evidence_back_from_a_committed_block() -> None:
    from consensus.tendermint.evidence import evidence_fields, evidence_id

    piece = equivocation()
    block = make_block(CHAIN, 4, b"\x03" * 32, (b"tx", evidence_entry(piece), b"QENEX/"), 0,
                       1_000, 0, EMPTY_ROOT)
    assert TendermintEngine.evidence_in_block(block) == (piece,)
    assert evidence_fields(piece) == {
        "id": evidence_id(piece).hex(), "validator": 1, "height": 1, "round": 0,
        "type": "prevote", "block_a": min(V.block_hash, W.block_hash).hex(),
        "block_b": max(V.block_hash, W.block_hash).hex()}


# ------------------------------------------------------------------ relayed votes
def test_a_stalled_later_round_relays_the_pol_prevotes_of_the_valid_round() -> None:
    from consensus.tendermint.messages import Votes

    eng = started(heartbeat_ticks=4)
    receive(eng, 0, proposal(V))
    for voter in (0, 1, 3):
        receive(eng, voter, prevote(voter, V.block_hash))
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, NIL))
    ticks(eng, 3)  # round 1, valid round 0
    resent = ticks(eng, 4)[-1]
    pol = Votes(1, 0, tuple(signed(v, prevote(v, V.block_hash)) for v in (0, 1, 3)))
    assert Send(None, pol) in resent.send
    other = started()
    other_fx = receive(other, 2, pol)
    assert other.replica.votes_for(0, VoteStep.PREVOTE, V.block_hash) == 3
    assert other_fx.send == ()


def test_a_validator_still_voting_at_a_decided_height_gets_the_last_commit() -> None:
    from consensus.tendermint.messages import Votes

    eng = started()
    receive(eng, 0, proposal(V))
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, V.block_hash))
    assert eng.replica.height == 2
    late = receive(eng, 1, prevote(1, NIL, round_number=1))  # 1 is still at height 1
    last = Votes(1, 0, tuple(signed(v, precommit(v, V.block_hash)) for v in (0, 1, 2)))
    assert late == Effects(send=(Send(1, last),))
    assert receive(eng, 1, prevote(1, NIL, round_number=2)) == Effects()  # once a height
    laggard = started()
    receive(laggard, 0, proposal(V))
    assert [c.block for c in receive(laggard, 2, last).commit] == [V]
