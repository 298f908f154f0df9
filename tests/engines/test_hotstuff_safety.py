"""The safety rules driven alone, as the Diem Safety Rules specification tests them: no
engine, no network - only SafetyData in, a signed-or-refused decision out (DiemBFT v4 §4
'Safety'; Jolteon §3)."""
from __future__ import annotations

from consensus.hotstuff.messages import Timeout, Vote
from consensus.hotstuff.safety import Refusal, SafetyData, VoteRequest, decide_timeout, decide_vote

H1, H2, H3 = b"\x01" * 32, b"\x02" * 32, b"\x03" * 32


def request(round_number: int, qc_round: int, tc_round: int | None = None,
            tc_high_qc_round: int = 0, block: bytes = H2) -> VoteRequest:
    return VoteRequest(round_number, 2, block, qc_round, H1, tc_round, tc_high_qc_round)


def test_vote_for_a_block_following_its_qc_raises_last_voted_and_preferred_round() -> None:
    data, vote = decide_vote(SafetyData(), 3, request(5, 4))  # type: ignore[misc]
    assert vote == Vote(5, 2, H2, 4, H1, 3)
    assert data == SafetyData(last_voted_round=5, preferred_round=4, last_vote=vote)


def test_never_two_votes_in_a_round_nor_a_vote_in_an_older_round() -> None:
    data, _ = decide_vote(SafetyData(), 3, request(5, 4))  # type: ignore[misc]
    assert isinstance(decide_vote(data, 3, request(5, 4, block=H3)), Refusal)
    assert isinstance(decide_vote(data, 3, request(4, 3)), Refusal)


def test_the_same_vote_is_returned_again_unchanged() -> None:
    data, vote = decide_vote(SafetyData(), 3, request(5, 4))  # type: ignore[misc]
    assert decide_vote(data, 3, request(5, 4)) == (data, vote)


def test_non_consecutive_round_needs_a_tc_of_the_previous_round() -> None:
    assert isinstance(decide_vote(SafetyData(), 3, request(6, 4)), Refusal)
    assert isinstance(decide_vote(SafetyData(), 3, request(6, 4, tc_round=4)), Refusal)
    data, vote = decide_vote(SafetyData(), 3, request(6, 4, tc_round=5,  # type: ignore[misc]
                                                      tc_high_qc_round=4))
    assert vote.round == 6 and data.preferred_round == 4


def test_tc_rule_refuses_a_qc_below_the_tcs_highest() -> None:
    """Locking in the 2-chain protocol: some honest replica in the TC holds QC(4)."""
    assert isinstance(decide_vote(SafetyData(), 3, request(6, 3, tc_round=5,
                                                           tc_high_qc_round=4)), Refusal)


def test_timeout_must_carry_a_qc_at_least_the_preferred_round() -> None:
    data = SafetyData(last_voted_round=5, preferred_round=4)
    assert isinstance(decide_timeout(data, 3, 5, 3, 4), Refusal)  # high QC 3 < preferred 4
    updated, timeout = decide_timeout(data, 3, 5, 4, 0)  # type: ignore[misc]
    assert timeout == Timeout(5, 4, 3)
    assert updated == SafetyData(5, 4, 5, None, timeout)


def test_no_vote_after_a_timeout_in_the_same_round() -> None:
    data, _ = decide_timeout(SafetyData(), 3, 1, 0, 0)  # type: ignore[misc]
    assert data.last_voted_round == 1
    assert isinstance(decide_vote(data, 3, VoteRequest(1, 1, H1, 0, H1)), Refusal)


def test_timeout_after_a_vote_in_the_same_round_is_allowed_once() -> None:
    data, _ = decide_vote(SafetyData(), 3, request(5, 4))  # type: ignore[misc]
    data, first = decide_timeout(data, 3, 5, 4, 0)  # type: ignore[misc]
    assert decide_timeout(data, 3, 5, 4, 0) == (data, first)  # retransmission: same bytes
    assert isinstance(decide_timeout(data, 3, 4, 3, 0), Refusal)  # an older round


def test_timeout_round_must_follow_the_high_qc_or_a_tc() -> None:
    assert isinstance(decide_timeout(SafetyData(), 3, 7, 4, 5), Refusal)
    assert not isinstance(decide_timeout(SafetyData(), 3, 7, 4, 6), Refusal)
    assert not isinstance(decide_timeout(SafetyData(), 3, 5, 4, 0), Refusal)
