"""Tier (a): one test per HotStuff protocol rule - build the engine, feed inputs, check the
exact Effects. Jolteon (Gelashvili et al., FC 2022) §3 and DiemBFT v4 §4-5. The cluster is
n = 4, f = 1, quorum 3; the leader of round r is r mod 4.
"""
from __future__ import annotations

import dataclasses

from consensus import api
from consensus.api import (
    CatchUp,
    Note,
    Persist,
    Propose,
    Receive,
    Rejected,
    RejectReason,
    Restore,
    Send,
    Synced,
    Tick,
)
from consensus.hotstuff import HotStuffEngine
from consensus.hotstuff.certificates import COMMIT_CERTIFICATE_KIND
from consensus.hotstuff.messages import (
    GENESIS_QC,
    Batch,
    BlockRequest,
    BlockResponse,
    NewView,
    Proposal,
    Timeout,
    TimeoutCertificate,
    Vote,
)
from consensus.hotstuff.safety import SafetyData
from consensus.hotstuff.state import KEY_HIGH_QC, KEY_HIGH_TC, KEY_PROPOSAL, KEY_SAFETY
from consensus.types import GENESIS_HASH, Certificate
from tests.engines.hotstuff_helpers import (
    Chain,
    block_at,
    config,
    engine,
    qc_for,
    receive,
    sign,
    signed,
    tc_for,
    timeout_view,
)


def vote_of(round_number: int, block, parent_round: int, voter: int) -> Vote:  # type: ignore[no-untyped-def]
    return Vote(round_number, block.height, block.block_hash, parent_round,
                block.header.parent_hash, voter)


# ------------------------------------------------------------------ proposer
def test_leader_proposes_a_batch_with_the_proposal_persisted_first() -> None:
    """§3: the leader of round 1 extends the highest QC (genesis); durable before signed."""
    effects = engine(1).step(Propose((b"tx",), 1_000))
    expected = Proposal(1, block_at(1, GENESIS_HASH, 1), GENESIS_QC, None)
    assert effects == api.Effects(persist=(Persist(KEY_PROPOSAL, expected),),
                                  send=(Send(None, expected),))


def test_non_leader_hands_the_batch_to_the_next_proposer() -> None:
    """Linear forwarding: replica 2 is not the leader of round 1; replica 1 is."""
    eng = engine(2)
    assert eng.status().leader == 1
    effects = eng.step(Propose((b"tx",), 1_000))
    assert effects == api.Effects(send=(Send(1, Batch((b"tx",), 1)),))


def test_next_leader_queues_a_batch_and_proposes_it_when_its_round_starts() -> None:
    chain = Chain()
    eng = engine(2)
    receive(eng, 1, chain.p1)  # replica 2 voted in round 1: it proposes next
    assert eng.status().leader == 2
    assert receive(eng, 1, Batch((b"a",), 1)) == api.Effects()
    for voter in (0, 1):
        receive(eng, voter, vote_of(1, chain.b1, 0, voter))
    effects = receive(eng, 3, vote_of(1, chain.b1, 0, 3))
    qc = effects.persist[0].value
    proposal = Proposal(2, block_at(2, chain.b1.block_hash, 2, (b"a",)), qc, None)
    assert effects.persist[1:] == (Persist(KEY_PROPOSAL, proposal),)
    assert effects.send == (Send(None, proposal),)


def test_proposal_from_a_replica_that_does_not_lead_the_round_is_refused() -> None:
    block = block_at(1, GENESIS_HASH, 2)
    effects = receive(engine(0), 2, Proposal(1, block, GENESIS_QC, None))
    assert effects == api.Effects(notes=(Rejected(RejectReason.WRONG_LEADER, 2,
                                                  "round 1 is led by 1"),))


def test_proposal_extending_another_block_than_its_qc_is_refused() -> None:
    chain = Chain()
    bad = Proposal(2, block_at(2, b"\x07" * 32, 2), chain.qc1, None)
    effects = receive(engine(0), 2, bad)
    assert effects.notes == (Rejected(RejectReason.INVALID_BLOCK, 2,
                                      "block does not extend the block its QC certifies"),)


def test_proposal_whose_round_its_certificates_do_not_justify_is_refused() -> None:
    """§3: round r needs QC(r - 1) or TC(r - 1)."""
    block = block_at(1, GENESIS_HASH, 3)
    effects = receive(engine(0), 3, Proposal(3, block, GENESIS_QC, None))
    assert effects == api.Effects(notes=(Rejected(
        RejectReason.MALFORMED, 3, "round justified by neither its QC nor TC(round - 1)"),))


def test_proposal_with_a_forged_or_short_qc_is_refused() -> None:
    chain = Chain()
    forged = dataclasses.replace(chain.qc1, votes=chain.qc1.votes[:2] + (
        dataclasses.replace(chain.qc1.votes[2], signature=b"\x00" * 32),))
    short = dataclasses.replace(chain.qc1, votes=chain.qc1.votes[:2])
    for qc, why in ((forged, "QC vote with a bad signature"), (short, "QC without 2f + 1 votes")):
        effects = receive(engine(0), 2, Proposal(2, chain.b2, qc, None))
        assert effects == api.Effects(notes=(Rejected(RejectReason.BAD_SIGNATURE, 2, why),))


def test_second_proposal_in_a_round_is_a_conflict_and_a_repeat_a_duplicate() -> None:
    chain = Chain()
    eng = engine(0)
    receive(eng, 1, chain.p1)
    other = Proposal(1, block_at(1, GENESIS_HASH, 1, (b"other",)), GENESIS_QC, None)
    assert receive(eng, 1, other).notes == (Rejected(RejectReason.CONFLICT, 1,
                                                     "second proposal for round 1"),)
    assert receive(eng, 1, chain.p1).notes == (Rejected(RejectReason.DUPLICATE, 1,
                                                        "second proposal for round 1"),)


def test_messages_from_non_validators_are_refused() -> None:
    chain = Chain()
    effects = engine(0).step(Receive(9, chain.p1, b"sig"))
    assert effects == api.Effects(notes=(Rejected(RejectReason.UNKNOWN_SENDER, 9,
                                                  "not a validator"),))


def test_proposals_of_left_or_far_rounds_are_refused() -> None:
    chain = Chain()
    eng = engine(0)
    for p in (chain.p1, chain.p2, chain.p3):
        receive(eng, p.round % 4, p)
    assert eng.status().view == 3
    far = Proposal(40, block_at(4, chain.b3.block_hash, 0), chain.qc3, None)
    assert receive(eng, 0, far).notes == (Rejected(RejectReason.FUTURE, 0,
                                                   "proposal for round 40, replica in 3"),)
    late = Proposal(2, block_at(2, chain.b1.block_hash, 2, (b"late",)), chain.qc1, None)
    effects = receive(engine(0), 2, late)
    assert effects.send  # a fresh replica votes for it ...
    eng2 = engine(0)
    for p in (chain.p1, chain.p3):
        receive(eng2, p.round % 4, p)
    effects = receive(eng2, 2, chain.p2)  # ... one in round 3 keeps the block, no vote
    assert effects == api.Effects(notes=(Rejected(RejectReason.STALE, 2,
                                                  "round 2 left for 3"),))


# ------------------------------------------------------------------ voting rule
def test_replica_votes_to_the_next_leader_with_safety_data_persisted_first() -> None:
    """Linear voting (§3): the vote goes to the leader of round 2 only, after the safety
    data that forbids a second vote in round 1 is durable."""
    chain = Chain()
    effects = receive(engine(0), 1, chain.p1)
    vote = vote_of(1, chain.b1, 0, 0)
    assert effects == api.Effects(persist=(Persist(KEY_SAFETY, SafetyData(1, 0, 0, vote)),),
                                  send=(Send(2, vote),))


def test_replica_never_votes_twice_in_a_round_even_after_a_restart() -> None:
    chain = Chain()
    eng = engine(0)
    effects = receive(eng, 1, chain.p1)
    records = tuple((p.key, p.value) for p in effects.persist)
    restarted = engine(0)
    effects = restarted.step(Restore(records))
    vote = vote_of(1, chain.b1, 0, 0)
    assert effects == api.Effects(send=(Send(2, vote),))  # the very same vote again
    other = Proposal(1, block_at(1, GENESIS_HASH, 1, (b"other",)), GENESIS_QC, None)
    effects = receive(restarted, 1, other)
    assert effects.send == () and effects.notes[0].reason == RejectReason.STALE


def test_vote_after_a_tc_needs_a_qc_as_high_as_the_tcs() -> None:
    """Jolteon §3 'safe to extend': after TC(2) naming a round-1 high QC, a round-3
    proposal extending genesis (QC round 0) gets no vote; one extending QC(1) does."""
    chain = Chain()
    tc = tc_for(2, {0: 1, 1: 0, 2: 0})
    stale = Proposal(3, block_at(1, GENESIS_HASH, 3, (b"x",)), GENESIS_QC, tc)
    effects = receive(engine(0), 3, stale)
    assert effects.send == () and effects.notes[-1] == Rejected(
        RejectReason.STALE, 3, "safety rules: round 3 neither follows its QC round 0 nor "
        "extends a TC's highest QC")
    b2 = block_at(2, chain.b1.block_hash, 3, ())
    effects = receive(engine(0), 3, Proposal(3, b2, chain.qc1, tc))
    assert effects.send == (Send(0, vote_of(3, b2, 1, 0)),)


# ------------------------------------------------------------------ QC formation
def test_next_leader_forms_a_qc_from_2f_plus_1_matching_votes() -> None:
    chain = Chain()
    eng = engine(2)
    assert receive(eng, 0, vote_of(1, chain.b1, 0, 0)) == api.Effects()
    assert receive(eng, 1, vote_of(1, chain.b1, 0, 1)) == api.Effects()  # 2f: not yet
    effects = receive(eng, 3, vote_of(1, chain.b1, 0, 3))
    qc = qc_for(1, chain.b1, 0, voters=(0, 1, 3))
    # The block itself is unknown here, so it proposes an empty child at once.
    proposal = Proposal(2, block_at(2, chain.b1.block_hash, 2, (), 0), qc, None)
    assert effects == api.Effects(persist=(Persist(KEY_HIGH_QC, qc),
                                           Persist(KEY_PROPOSAL, proposal)),
                                  send=(Send(None, proposal),))


def test_votes_for_another_block_do_not_count_toward_a_qc() -> None:
    chain = Chain()
    other = block_at(1, GENESIS_HASH, 1, (b"other",))
    eng = engine(2)
    receive(eng, 0, vote_of(1, chain.b1, 0, 0))
    receive(eng, 1, vote_of(1, chain.b1, 0, 1))
    assert receive(eng, 3, vote_of(1, other, 0, 3)) == api.Effects()


def test_vote_sent_to_a_replica_that_does_not_collect_it_is_refused() -> None:
    chain = Chain()
    effects = receive(engine(3), 0, vote_of(1, chain.b1, 0, 0))
    assert effects == api.Effects(notes=(Rejected(RejectReason.NOT_LEADER, 0,
                                                  "votes of round 1 go to 2"),))


def test_duplicate_and_conflicting_votes_are_refused() -> None:
    chain = Chain()
    eng = engine(2)
    receive(eng, 0, vote_of(1, chain.b1, 0, 0))
    assert receive(eng, 0, vote_of(1, chain.b1, 0, 0)).notes == (
        Rejected(RejectReason.DUPLICATE, 0, "second vote for round 1"),)
    other = block_at(1, GENESIS_HASH, 1, (b"other",))
    assert receive(eng, 0, vote_of(1, other, 0, 0)).notes == (
        Rejected(RejectReason.CONFLICT, 0, "second vote for round 1"),)
    assert receive(eng, 1, vote_of(1, chain.b1, 0, 0)).notes[0].reason == RejectReason.MALFORMED


# ------------------------------------------------------------------ 2-chain commit
def test_two_chain_commits_the_parent_of_a_block_certified_one_round_later() -> None:
    """§3: QC(B2) with round(B2) = round(B1) + 1 makes B1 final; the certificate is QC(B2),
    whose votes name B1's hash."""
    chain = Chain()
    eng = engine(0)
    receive(eng, 1, chain.p1)
    effects = receive(eng, 2, chain.p2)
    assert effects.commit == ()  # QC(B1) alone commits nothing
    effects = receive(eng, 3, chain.p3)
    certificate = Certificate(COMMIT_CERTIFICATE_KIND, 1, chain.b1.block_hash, chain.qc2.votes)
    vote = vote_of(3, chain.b3, 2, 0)
    assert effects == api.Effects(
        persist=(Persist(KEY_HIGH_QC, chain.qc2), Persist(KEY_SAFETY, SafetyData(3, 2, 0, vote))),
        send=(Send(0, vote),), commit=(api.Commit(chain.b1, certificate),))
    assert HotStuffEngine.check_certificate(config(3), chain.b1, certificate)
    assert eng.status().committed_height == 1


def test_non_consecutive_rounds_commit_nothing_until_a_direct_chain_forms() -> None:
    """B2 in round 3 (after TC(2)) certified: B1 stays uncommitted; QC(B3, round 4) then
    makes B2 final directly and B1 with it, with a chained certificate."""
    chain = Chain()
    b2 = block_at(2, chain.b1.block_hash, 3, ())
    tc2 = tc_for(2, {0: 1, 1: 1, 2: 1})
    qc2 = qc_for(3, b2, 1)
    b3 = block_at(3, b2.block_hash, 0, ())
    qc3 = qc_for(4, b3, 3)
    b4 = block_at(4, b3.block_hash, 1, ())
    eng = engine(2)
    receive(eng, 1, chain.p1)
    receive(eng, 3, Proposal(3, b2, chain.qc1, tc2))
    assert receive(eng, 0, Proposal(4, b3, qc2, None)).commit == ()
    effects = receive(eng, 1, Proposal(5, b4, qc3, None))
    first = Certificate(COMMIT_CERTIFICATE_KIND, 1, chain.b1.block_hash, qc2.votes + qc3.votes)
    second = Certificate(COMMIT_CERTIFICATE_KIND, 2, b2.block_hash, qc3.votes)
    assert effects.commit == (api.Commit(chain.b1, first), api.Commit(b2, second))
    assert all(HotStuffEngine.check_certificate(config(0), c.block, c.certificate)
               for c in effects.commit)


def test_commit_certificate_check_refuses_what_does_not_prove_finality() -> None:
    chain = Chain()
    good = Certificate(COMMIT_CERTIFICATE_KIND, 1, chain.b1.block_hash, chain.qc2.votes)
    cfg = config(0)
    assert HotStuffEngine.check_certificate(cfg, chain.b1, good)
    assert not HotStuffEngine.check_certificate(cfg, chain.b2, good)  # names B1, not B2
    short = dataclasses.replace(good, votes=good.votes[:2])
    assert not HotStuffEngine.check_certificate(cfg, chain.b1, short)
    tc_child = qc_for(3, chain.b2, 1)  # child certified two rounds later: no 2-chain
    assert not HotStuffEngine.check_certificate(cfg, chain.b1, dataclasses.replace(
        good, votes=tc_child.votes))
    forged = dataclasses.replace(good, votes=good.votes[:2] + (
        dataclasses.replace(good.votes[2], signature=b"\x00" * 32),))
    assert not HotStuffEngine.check_certificate(cfg, chain.b1, forged)


def test_leader_proposes_empty_blocks_until_every_transaction_is_final_then_announces() -> None:
    """Rounds without transactions still finish the 2-chain (like PBFT null batches),
    and the QC that makes the last block final is broadcast as sync info."""
    chain = Chain()
    eng = engine(3)  # leads round 3
    receive(eng, 1, chain.p1)
    receive(eng, 2, chain.p2)
    for voter in (0, 1):
        receive(eng, voter, vote_of(2, chain.b2, 1, voter))
    effects = receive(eng, 2, vote_of(2, chain.b2, 1, 2))
    qc2 = qc_for(2, chain.b2, 1, voters=(0, 1, 2))
    # QC(B2) makes B1 (the only block with transactions) final: no block, sync info.
    assert effects.commit[0].block == chain.b1
    assert effects.send == (Send(None, NewView(None, qc2, None)),)
    eng2 = engine(2)  # leads round 2: B1 with transactions is not final by QC(B1)
    receive(eng2, 1, chain.p1)
    for voter in (0, 1, 3):
        effects = receive(eng2, voter, vote_of(1, chain.b1, 0, voter))
    assert [s.message.block.txs for s in effects.send] == [()]


# ------------------------------------------------------------------ pacemaker
def test_f_plus_1_timeouts_make_a_replica_join_and_2f_plus_1_form_a_tc() -> None:
    """DiemBFT v4 §5: f + 1 timeouts (one honest) -> time out too; 2f + 1 -> TC -> round 2."""
    eng = engine(0)
    assert receive(eng, 1, timeout_view(1, 1)) == api.Effects()
    effects = receive(eng, 2, timeout_view(2, 1))
    mine = Timeout(1, 0, 0)
    assert effects == api.Effects(persist=(Persist(KEY_SAFETY, SafetyData(1, 0, 1, None, mine)),),
                                  send=(Send(0, mine),))
    effects = receive(eng, 3, timeout_view(3, 1))
    tc = tc_for(1, {1: 0, 2: 0, 3: 0})
    assert effects == api.Effects(persist=(Persist(KEY_HIGH_TC, tc),), notes=(
        Note("view_change", "round 2 after a timeout certificate", 2, 2),))
    assert eng.status().view == 2


def test_own_signed_timeout_is_broadcast_inside_a_new_view() -> None:
    eng = engine(0)
    receive(eng, 1, timeout_view(1, 1))
    receive(eng, 2, timeout_view(2, 1))
    mine = Timeout(1, 0, 0)
    effects = eng.step(Receive(0, mine, sign(0, mine)))
    assert effects == api.Effects(send=(Send(None, NewView(signed(0, mine), GENESIS_QC, None)),))
    assert receive(eng, 1, mine).notes == (Rejected(RejectReason.MALFORMED, 1,
                                                    "timeouts travel inside a NEW-VIEW"),)


def test_timeout_whose_high_qc_is_not_carried_is_refused() -> None:
    view = NewView(signed(1, Timeout(1, 0, 1)), GENESIS_QC, None)
    lying = NewView(signed(1, Timeout(3, 2, 1)), GENESIS_QC, None)
    eng = engine(0)
    assert receive(eng, 1, view) == api.Effects()
    assert receive(eng, 1, lying).notes == (Rejected(RejectReason.MALFORMED, 1,
                                                     "timeout's high QC not carried"),)


def run_ticks(eng: HotStuffEngine, count: int) -> list[api.Effects]:
    return [eng.step(Tick()) for _ in range(count)]


def test_round_timeout_doubles_after_failed_rounds_and_resets_after_a_qc() -> None:
    chain = Chain()
    eng = engine(0)
    receive(eng, 1, chain.p1)  # a block with transactions waits: the timer runs
    ticks = run_ticks(eng, 10)
    assert ticks[4] == api.Effects(send=(Send(2, vote_of(1, chain.b1, 0, 0)),))  # half-way
    assert all(e == api.Effects() for e in ticks[:4] + ticks[5:9])
    assert ticks[9].send == (Send(0, Timeout(1, 0, 0)),)
    view = NewView(signed(0, Timeout(1, 0, 0)), GENESIS_QC, None)
    eng.step(Receive(0, Timeout(1, 0, 0), sign(0, Timeout(1, 0, 0))))
    assert run_ticks(eng, 10)[9].send == (Send(None, view),)  # same bytes again
    for sender in (1, 2, 3):
        receive(eng, sender, timeout_view(sender, 1))
    assert eng.status().view == 2 and eng.replica.round_timeout_ticks() == 20
    ticks = run_ticks(eng, 20)
    assert all(not e.send for e in ticks[:19]) and ticks[19].send == (Send(0, Timeout(2, 0, 0)),)
    tc1 = tc_for(1, {1: 0, 2: 0, 3: 0})
    b2 = block_at(1, GENESIS_HASH, 2, (b"y",))
    receive(eng, 2, Proposal(2, b2, GENESIS_QC, tc1))  # voted in 2 already timed out
    qc2 = qc_for(2, b2, 0)
    receive(eng, 3, Proposal(3, block_at(2, b2.block_hash, 3, ()), qc2, None))
    assert eng.status().view == 3 and eng.replica.round_timeout_ticks() == 10


def test_rounds_of_suspected_replicas_get_a_short_timeout_and_no_batches() -> None:
    """A TC without replica 2's timeout makes 2 a suspect: round 2, which 2 leads, is
    short, and batches wait here instead of going to it - until 2 is heard from."""
    eng = engine(0)
    for sender in (1, 3, 0):
        receive(eng, sender, timeout_view(sender, 1))
    assert eng.status().view == 2 and eng.replica.suspects == {2}
    assert eng.replica.round_timeout_ticks() == 10 // 4
    assert eng.step(Propose((b"tx",), 1_000)) == api.Effects()
    assert eng.replica.queued == [((b"tx",), 0)]
    receive(eng, 2, timeout_view(2, 1))  # a stale timeout, but 2 is alive
    assert eng.replica.suspects == set() and eng.replica.round_timeout_ticks() == 20


def test_idle_replica_never_times_out() -> None:
    eng = engine(0)
    assert all(e == api.Effects() for e in run_ticks(eng, 100))


def test_replica_behind_is_sent_sync_info_once_per_round() -> None:
    chain = Chain()
    eng = engine(0)
    for p in (chain.p1, chain.p2):
        receive(eng, p.round % 4, p)
    effects = receive(eng, 3, timeout_view(3, 1))
    assert effects.send == (Send(3, NewView(None, chain.qc1, None)),)
    assert receive(eng, 3, timeout_view(3, 1)).send == ()


# ------------------------------------------------------------------ catch-up / restore
def test_commit_of_missing_blocks_fetches_them_then_continues() -> None:
    """QC(B2) makes B1 final, but this replica never saw B1: after a quarter round it asks
    a voter's block tree (block retrieval) and the peers' ledgers (CatchUp)."""
    chain = Chain()
    eng = engine(0)
    receive(eng, 3, chain.p3)
    ticks = run_ticks(eng, 2)
    assert ticks[0] == api.Effects()
    assert ticks[1].send == (Send(2, BlockRequest(chain.b1.block_hash, 1)),)
    assert ticks[1].catch_up == (CatchUp(1, (1, 2, 3)),)
    effects = eng.step(Synced(1, chain.b1.block_hash, b"\x11" * 32))
    assert eng.status().committed_height == 1 and effects.catch_up == ()


def test_retrieved_block_completes_a_waiting_commit() -> None:
    chain = Chain()
    eng = engine(0)
    receive(eng, 3, chain.p3)
    assert receive(eng, 2, BlockResponse((chain.b3,), (chain.qc2,))) == api.Effects()  # unasked
    effects = receive(eng, 2, BlockResponse((chain.b1,), (GENESIS_QC,)))
    certificate = Certificate(COMMIT_CERTIFICATE_KIND, 1, chain.b1.block_hash, chain.qc2.votes)
    assert effects == api.Effects(commit=(api.Commit(chain.b1, certificate),))


def test_block_requests_are_served_from_the_tree_once_per_round() -> None:
    chain = Chain()
    eng = engine(0)
    for p in (chain.p1, chain.p2):
        receive(eng, p.round % 4, p)
    effects = receive(eng, 3, BlockRequest(chain.b2.block_hash, 5))
    assert effects == api.Effects(send=(Send(3, BlockResponse((chain.b2, chain.b1),
                                                              (chain.qc1, GENESIS_QC))),))
    assert receive(eng, 3, BlockRequest(chain.b2.block_hash, 5)).notes == (
        Rejected(RejectReason.OVER_LIMIT, 3, "one block request per round"),)


def test_restart_resumes_the_round_and_resends_its_timeout() -> None:
    eng = engine(0)
    receive(eng, 1, timeout_view(1, 1))
    effects = receive(eng, 2, timeout_view(2, 1))
    records = tuple((p.key, p.value) for p in effects.persist)
    restarted = engine(0)
    effects = restarted.step(Restore(records))
    assert effects == api.Effects(send=(Send(0, Timeout(1, 0, 0)),))
    assert restarted.status().view == 1


def test_status_names_the_replica_that_will_propose_next() -> None:
    chain = Chain()
    eng = engine(0)
    assert eng.status() == api.EngineStatus("hotstuff", "replica", 1, 1, 0)
    receive(eng, 1, chain.p1)
    assert eng.status().leader == 2  # voted in round 1: the votes' collector proposes next
    tc = TimeoutCertificate(1, ())
    assert tc.high_qc_round() == 0
