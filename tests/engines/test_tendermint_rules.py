"""Tier (a): one test per rule of Algorithm 1 (Buchman, Kwon & Milosevic 2018), each
checking the exact Effects of one input. n = 4, f = 1, quorum 3; validator 3 is tested
unless a test says otherwise (proposers at height 1: round r is proposed by r mod 4)."""
from __future__ import annotations

from consensus.api import Commit, Effects, Persist, Propose, Restore, Send
from consensus.tendermint.decision import COMMIT_CERTIFICATE_KIND
from consensus.tendermint.messages import NIL, Proposal
from consensus.tendermint.state import KEY_OWN, OwnMessages, Step
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Certificate, make_block
from tests.engines.tendermint_helpers import (
    CHAIN,
    block_at,
    engine,
    precommit,
    prevote,
    proposal,
    receive,
    signed,
    started,
    state,
    ticks,
)

V = block_at(txs=(b"v",))
W = block_at(proposer=1, txs=(b"w",))


def own(prevote_=None, precommit_=None, proposal_=None) -> Persist:  # type: ignore[no-untyped-def]
    return Persist(KEY_OWN, OwnMessages(proposal_, prevote_, precommit_))


def in_prevote_with(block=V):  # type: ignore[no-untyped-def]
    eng = started()
    receive(eng, 0, proposal(block))
    return eng


def locked_on_v_in_round_0():  # type: ignore[no-untyped-def]
    """Validator 3 prevoted and precommitted V in round 0 (locked), then round 0 timed out."""
    eng = in_prevote_with(V)
    for voter in (0, 1):
        receive(eng, voter, prevote(voter, V.block_hash))
    receive(eng, 3, prevote(3, V.block_hash))
    for voter in (0, 1):
        receive(eng, voter, precommit(voter, NIL))
    receive(eng, 3, precommit(3, V.block_hash))
    ticks(eng, 3)  # timeoutPrecommit(0) = 3: StartRound(1)
    assert (eng.replica.round, eng.replica.locked_round) == (1, 0)
    return eng


# ------------------------------------------------------------------ StartRound, 11-21
def test_line_11_to_19_the_proposer_proposes_a_new_value_with_valid_round_minus_1() -> None:
    eng = engine(node=0)  # proposer of (1, 0)
    block = make_block(CHAIN, 1, GENESIS_HASH, (), 0, 0, 0, EMPTY_ROOT)
    mine = Proposal(1, 0, block, -1, 0, ())
    assert eng.step(Restore()) == Effects(
        persist=(own(proposal_=mine), state(0, Step.PROPOSE)), send=(Send(None, mine),))


def test_line_15_the_proposer_re_proposes_its_valid_value_with_its_valid_round() -> None:
    eng = started(node=1)  # proposes (1, 1)
    receive(eng, 0, proposal(V))
    for voter in (0, 2, 1):
        receive(eng, voter, prevote(voter, V.block_hash))
    assert (eng.replica.valid_round, eng.replica.valid_block) == (0, V)
    for voter in (0, 2, 1):
        receive(eng, voter, precommit(voter, NIL if voter != 1 else V.block_hash))
    effects = ticks(eng, 3)[-1]  # timeoutPrecommit: StartRound(1), validator 1 proposes
    again = Proposal(1, 1, V, 0, 1, ())
    assert effects == Effects(persist=(own(prevote(1, V.block_hash), precommit(1, V.block_hash),
                                           again), state(1, Step.PROPOSE, (0, V), (0, V))),
                              send=(Send(None, again),))


def test_line_21_and_57_to_60_no_proposal_in_time_means_a_nil_prevote() -> None:
    eng = started()
    assert ticks(eng, 4) == [Effects()] * 4
    assert ticks(eng, 1)[0] == Effects(persist=(own(prevote(3, NIL)), state(0, Step.PREVOTE)),
                                       send=(Send(None, prevote(3, NIL)),))


# ------------------------------------------------------------------ PROPOSE step, 22-33
def test_line_22_to_24_a_valid_new_proposal_gets_a_prevote_for_it() -> None:
    eng = started()
    assert receive(eng, 0, proposal(V)) == Effects(
        persist=(own(prevote(3, V.block_hash)), state(0, Step.PREVOTE)),
        send=(Send(None, prevote(3, V.block_hash)),))


def test_line_26_an_invalid_proposal_gets_a_nil_prevote() -> None:
    eng = started()
    bad = make_block(CHAIN, 1, b"\x07" * 32, (b"v",), 0, 1_000)  # wrong parent
    assert receive(eng, 0, proposal(bad)) == Effects(
        persist=(own(prevote(3, NIL)), state(0, Step.PREVOTE)),
        send=(Send(None, prevote(3, NIL)),))


def test_line_23_a_locked_validator_prevotes_nil_for_another_new_value() -> None:
    eng = locked_on_v_in_round_0()
    effects = receive(eng, 1, proposal(W, round_number=1))
    assert effects == Effects(
        persist=(own(prevote(3, NIL, 1), precommit(3, V.block_hash)),
                 state(1, Step.PREVOTE, (0, V), (0, V))),
        send=(Send(None, prevote(3, NIL, 1)),))


def test_line_23_a_locked_validator_prevotes_for_its_locked_value() -> None:
    eng = locked_on_v_in_round_0()
    effects = receive(eng, 1, proposal(V, round_number=1))
    assert effects.send == (Send(None, prevote(3, V.block_hash, 1)),)


def test_line_28_to_30_a_proposal_with_a_newer_polka_unlocks() -> None:
    """Locked on V in round 0; round 2 re-proposes W with valid round 1, where W had
    2f + 1 prevotes: lockedRound 0 <= vr 1, so prevote W."""
    eng = locked_on_v_in_round_0()
    ticks(eng, 7)  # round 1: timeoutPropose(1) = 7 -> prevote nil
    for voter in (0, 1, 2):
        receive(eng, voter, prevote(voter, W.block_hash, 1))
    ticks(eng, 4)  # timeoutPrevote(1) = 4 -> precommit nil
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, NIL, 1))
    ticks(eng, 4)  # timeoutPrecommit(1) = 4 -> round 2
    assert eng.replica.round == 2
    effects = receive(eng, 2, proposal(W, round_number=2, pol_round=1))
    assert effects.send == (Send(None, prevote(3, W.block_hash, 2)),)


def test_line_28_without_the_polka_of_the_valid_round_nothing_happens() -> None:
    eng = started()
    ticks(eng, 5)
    eng = started()
    assert receive(eng, 0, proposal(V, pol_round=0, round_number=1, proposer=1)).send == ()


def test_line_32_a_locked_validator_refuses_an_older_polka() -> None:
    """Locked on V in round 1; W re-proposed in round 2 with a polka of round 0 < 1."""
    eng = started()
    for voter in (0, 1, 2):
        receive(eng, voter, prevote(voter, W.block_hash, 0))
    ticks(eng, 5)  # prevote nil in round 0
    ticks(eng, 3)
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, NIL, 0))
    ticks(eng, 3)  # round 1
    receive(eng, 1, proposal(V, round_number=1))
    for voter in (0, 1, 2):
        receive(eng, voter, prevote(voter, V.block_hash, 1))
    assert eng.replica.locked_round == 1
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, NIL, 1))
    ticks(eng, 4)  # round 2
    effects = receive(eng, 2, proposal(W, round_number=2, pol_round=0))
    assert effects.send == (Send(None, prevote(3, NIL, 2)),)


# ------------------------------------------------------------------ PREVOTE step, 34-46
def test_line_34_35_and_61_to_64_any_2f_plus_1_prevotes_start_timeout_prevote() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, prevote(0, NIL))
    receive(eng, 1, prevote(1, W.block_hash))
    assert receive(eng, 3, prevote(3, V.block_hash)) == Effects()
    assert ticks(eng, 2) == [Effects()] * 2
    assert ticks(eng, 1)[0] == Effects(
        persist=(own(prevote(3, V.block_hash), precommit(3, NIL)), state(0, Step.PRECOMMIT)),
        send=(Send(None, precommit(3, NIL)),))


def test_line_36_to_43_a_polka_locks_and_precommits_the_value() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, prevote(0, V.block_hash))
    receive(eng, 1, prevote(1, V.block_hash))
    assert receive(eng, 3, prevote(3, V.block_hash)) == Effects(
        persist=(own(prevote(3, V.block_hash), precommit(3, V.block_hash)),
                 state(0, Step.PRECOMMIT, (0, V), (0, V))),
        send=(Send(None, precommit(3, V.block_hash)),))


def test_line_36_in_precommit_step_a_late_polka_only_sets_the_valid_value() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, prevote(0, V.block_hash))
    receive(eng, 1, prevote(1, NIL))
    receive(eng, 3, prevote(3, V.block_hash))
    ticks(eng, 3)  # timeoutPrevote(0) -> precommit nil
    assert eng.replica.step == Step.PRECOMMIT
    assert receive(eng, 2, prevote(2, V.block_hash)) == Effects(
        persist=(state(0, Step.PRECOMMIT, valid=(0, V)),))
    assert eng.replica.locked_round == -1


def test_line_44_to_46_2f_plus_1_nil_prevotes_precommit_nil() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, prevote(0, NIL))
    receive(eng, 1, prevote(1, NIL))
    assert receive(eng, 2, prevote(2, NIL)) == Effects(
        persist=(own(prevote(3, V.block_hash), precommit(3, NIL)), state(0, Step.PRECOMMIT)),
        send=(Send(None, precommit(3, NIL)),))


def test_2f_prevotes_are_not_a_polka() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, prevote(0, V.block_hash))
    assert receive(eng, 3, prevote(3, V.block_hash)) == Effects()
    assert eng.replica.locked_round == -1


# ------------------------------------------------------------------ PRECOMMIT, 47-54, 65-67
def test_line_47_48_and_65_to_67_any_2f_plus_1_precommits_then_the_next_round() -> None:
    eng = in_prevote_with(V)
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, NIL))
    assert ticks(eng, 2) == [Effects()] * 2
    assert ticks(eng, 1)[0] == Effects(persist=(state(1, Step.PROPOSE),))


def test_line_49_to_54_2f_plus_1_precommits_decide_and_start_the_next_height() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, precommit(0, V.block_hash))
    receive(eng, 1, precommit(1, V.block_hash))
    effects = receive(eng, 2, precommit(2, V.block_hash))
    votes = tuple(signed(v, precommit(v, V.block_hash)) for v in (0, 1, 2))
    assert effects == Effects(
        persist=(state(0, Step.NEW_HEIGHT, height=2),),
        commit=(Commit(V, Certificate(COMMIT_CERTIFICATE_KIND, 1, V.block_hash, votes)),))
    assert ticks(eng, 2) == [Effects()] * 2  # timeout_commit: nothing to order, idle
    assert eng.replica.step == Step.NEW_HEIGHT
    # Work (kept: validator 3 proposes height 4): StartRound(0) of height 2.
    assert eng.step(Propose((b"t",), 9)) == Effects(persist=(state(0, Step.PROPOSE, height=2),))


def test_an_idle_height_starts_when_another_validator_starts_it() -> None:
    eng = in_prevote_with(V)
    for voter in (0, 1, 2):
        receive(eng, voter, precommit(voter, V.block_hash))
    ticks(eng, 2)
    effects = receive(eng, 2, prevote(2, NIL, height=2))
    assert effects.persist == (state(0, Step.PROPOSE, height=2),)


def test_line_49_a_decision_in_an_older_round_counts() -> None:
    eng = in_prevote_with(V)
    receive(eng, 1, precommit(1, V.block_hash))
    receive(eng, 2, precommit(2, V.block_hash))
    receive(eng, 3, precommit(3, NIL))
    ticks(eng, 3)  # timeoutPrecommit(0): round 1
    assert (eng.replica.height, eng.replica.round) == (1, 1)
    effects = receive(eng, 0, precommit(0, V.block_hash))  # late, of round 0
    assert [c.block for c in effects.commit] == [V]


def test_2f_precommits_do_not_decide() -> None:
    eng = in_prevote_with(V)
    receive(eng, 0, precommit(0, V.block_hash))
    assert receive(eng, 1, precommit(1, V.block_hash)).commit == ()


# ------------------------------------------------------------------ round skip, 55-56
def test_line_55_56_f_plus_1_messages_of_a_higher_round_start_that_round() -> None:
    eng = started()
    assert receive(eng, 0, prevote(0, NIL, round_number=2)) == Effects()
    assert receive(eng, 1, precommit(1, NIL, round_number=2)) == Effects(
        persist=(state(2, Step.PROPOSE),))
