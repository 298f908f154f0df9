"""Raft election rules: Figure 2 (RequestVote, rules for all servers), §5.2, §5.4.1,
pre-vote (thesis §9.6) and check-quorum / leader lease (thesis §4.2.3, §6.2)."""
from __future__ import annotations

from consensus.api import Note, Persist, Rejected, RejectReason, Send, Tick, sign_position
from consensus.raft import RaftEngine
from consensus.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    HardState,
    RequestVote,
    RequestVoteResponse,
    entry_key,
)
from tests.engines.test_raft_support import (
    append,
    chain,
    elect,
    engine,
    recv,
    sends_of,
    tick_until_sends,
)


def test_randomised_election_timeout_is_seeded_and_in_range():
    timeouts = [engine(seed=s).randomized_election_timeout_ticks for s in range(30)]
    assert all(10 <= t < 20 for t in timeouts) and len(set(timeouts)) > 3
    assert engine(seed=4).randomized_election_timeout_ticks == \
        engine(seed=4).randomized_election_timeout_ticks


def test_timeout_starts_pre_vote_without_touching_term_or_vote():
    eng = engine()
    fx = tick_until_sends(eng)
    assert fx.persist == ()
    assert fx.send == (Send(1, RequestVote(1, 0, 0, 0, pre_vote=True)),
                       Send(2, RequestVote(1, 0, 0, 0, pre_vote=True)))
    assert eng.term == 0 and eng.voted_for is None and eng.role == "pre_candidate"


def test_pre_vote_majority_persists_term_and_vote_before_requesting_votes():
    eng = engine()
    tick_until_sends(eng)
    fx = recv(eng, 1, RequestVoteResponse(1, 1, True, pre_vote=True))
    assert fx.persist == (Persist("raft/hard_state", HardState(1, 0)),)
    assert sends_of(fx, RequestVote) == [(1, RequestVote(1, 0, 0, 0)),
                                         (2, RequestVote(1, 0, 0, 0))]
    assert eng.role == "candidate"


def next_resend(eng: RaftEngine) -> tuple[int, list]:
    """(election ticks elapsed, RequestVotes sent) at the first tick that sends any."""
    for _ in range(100):
        sent = sends_of(eng.step(Tick()), RequestVote)
        if sent:
            return eng.election_elapsed_ticks, sent
    raise AssertionError("no RequestVote re-sent")


def test_a_campaign_asks_again_every_heartbeat_only_the_peers_that_did_not_answer():
    """§5.1: RPCs without a response are retried. With exactly a majority up every vote
    is needed; a lost request or reply must not cost the rest of the election timeout."""
    eng = engine(nodes=5, heartbeat_ticks=3, election_timeout_ticks=50)
    tick_until_sends(eng, limit=200)
    pre_vote = RequestVote(1, 0, 0, 0, pre_vote=True)
    recv(eng, 1, RequestVoteResponse(1, 1, True, pre_vote=True))
    elapsed, resent = next_resend(eng)
    assert elapsed == 3 and resent == [(2, pre_vote), (3, pre_vote), (4, pre_vote)]
    recv(eng, 2, RequestVoteResponse(1, 2, True, pre_vote=True))  # a majority of 5
    vote = RequestVote(1, 0, 0, 0)
    assert eng.role == "candidate"
    recv(eng, 1, RequestVoteResponse(1, 1, True))  # 2 of the 3 votes needed
    elapsed, resent = next_resend(eng)
    assert elapsed == 3 and resent == [(2, vote), (3, vote), (4, vote)]  # to the silent
    every_tick = engine(nodes=5, heartbeat_ticks=1, election_timeout_ticks=50)
    tick_until_sends(every_tick, limit=200)
    assert next_resend(every_tick)[0] == 1


def test_voter_persists_vote_in_the_same_effects_as_the_grant():
    eng = engine(node=1)
    fx = recv(eng, 0, RequestVote(1, 0, 0, 0))
    assert fx.persist == (Persist("raft/hard_state", HardState(1, None)),
                          Persist("raft/hard_state", HardState(1, 0)))
    assert fx.send == (Send(0, RequestVoteResponse(1, 1, True)),)
    assert sign_position(fx.send[0].message) == ("raft.vote", 1)


def test_at_most_one_vote_per_term():
    eng = engine(node=1)
    recv(eng, 0, RequestVote(1, 0, 0, 0))
    fx = recv(eng, 2, RequestVote(1, 2, 0, 0))
    assert fx.persist == () and fx.send == (Send(2, RequestVoteResponse(1, 1, False)),)
    # Asking again as the same candidate is answered yes (a retransmission).
    assert recv(eng, 0, RequestVote(1, 0, 0, 0)).send[0].message.granted


def test_vote_refused_to_a_candidate_with_an_older_log():
    eng = engine(node=1)
    recv(eng, 0, append(2, 0, 0, 0, chain([1, 2])))
    eng.election_elapsed_ticks = eng.config.election_timeout_ticks  # lease expired
    fx = recv(eng, 2, RequestVote(3, 2, 5, 1))  # longer but older last term
    assert fx.send == (Send(2, RequestVoteResponse(3, 1, False)),)
    assert eng.voted_for is None


def test_pre_vote_is_answered_without_adopting_the_term():
    eng = engine(node=1)
    fx = recv(eng, 0, RequestVote(5, 0, 0, 0, pre_vote=True))
    assert fx.persist == () and eng.term == 0
    assert fx.send == (Send(0, RequestVoteResponse(5, 1, True, pre_vote=True)),)
    assert sign_position(fx.send[0].message) is None


def test_lease_ignores_vote_requests_while_the_leader_is_heard():
    eng = engine(node=1)
    recv(eng, 0, append(1, 0, 0, 0))
    fx = recv(eng, 2, RequestVote(2, 2, 9, 9))
    assert eng.term == 1 and fx.send == ()
    assert fx.notes == (Rejected(RejectReason.STALE, 2, "vote request inside leader lease"),)
    pre = recv(eng, 2, RequestVote(2, 2, 9, 9, pre_vote=True))
    assert pre.send == (Send(2, RequestVoteResponse(1, 1, False, pre_vote=True)),)


def test_rejoining_node_with_higher_pre_vote_term_cannot_disrupt_leader():
    leader = engine(node=0)
    elect(leader)
    fx = recv(leader, 2, RequestVote(leader.term + 5, 2, 0, 0, pre_vote=True))
    assert leader.role == "leader" and leader.term == 1
    assert not fx.send[0].message.granted


def test_candidate_with_majority_becomes_leader_and_appends_a_no_op_block():
    eng = engine()
    fx = elect(eng)
    assert Note("leader", "leader of term 1", view=1, leader=0) in fx.notes
    (entry_op,) = [p for p in fx.persist if p.key == entry_key(1)]
    assert entry_op.value.term == 1 and entry_op.value.block.txs == ()
    assert entry_op.value.block.height == 1
    assert sends_of(fx, AppendEntries) == [
        (1, append(1, 0, 0, 0, (entry_op.value,))), (2, append(1, 0, 0, 0, (entry_op.value,)))]


def test_single_node_cluster_elects_itself_and_commits():
    eng = engine(nodes=1)
    for _ in range(30):
        fx = eng.step(Tick())
        if fx.commit:
            break
    assert eng.role == "leader" and [c.block.height for c in fx.commit] == [1]


def test_higher_term_in_any_message_makes_a_leader_follow():
    eng = engine()
    elect(eng)
    fx = recv(eng, 1, AppendEntriesResponse(4, 1, False, 0))
    assert eng.role == "follower" and eng.term == 4 and eng.voted_for is None
    assert Persist("raft/hard_state", HardState(4, None)) in fx.persist


def test_stale_leader_is_told_the_newer_term():
    eng = engine(node=1)
    recv(eng, 2, append(3, 2, 0, 0))
    fx = recv(eng, 0, append(2, 0, 0, 0))
    assert fx.send == (Send(0, AppendEntriesResponse(3, 1, False, 0)),)
    assert fx.notes[0].reason == RejectReason.STALE


def test_check_quorum_leader_steps_down_without_a_majority():
    eng = engine(nodes=5)
    elect(eng)
    notes = []
    for _ in range(10):
        notes += eng.step(Tick()).notes
    assert eng.role == "follower" and eng.term == 1
    assert any(n.kind == "check_quorum" for n in notes)


def test_check_quorum_leader_stays_when_a_majority_answers():
    eng = engine(nodes=3)
    elect(eng)
    for t in range(25):
        eng.step(Tick())
        recv(eng, 1, AppendEntriesResponse(1, 1, True, 0))
    assert eng.role == "leader"


def test_majority_of_refusals_ends_the_campaign():
    eng = engine()
    tick_until_sends(eng)
    recv(eng, 1, RequestVoteResponse(0, 1, False, pre_vote=True))
    recv(eng, 2, RequestVoteResponse(0, 2, False, pre_vote=True))
    assert eng.role == "follower" and eng.term == 0


def test_message_naming_another_sender_is_refused():
    eng = engine(node=1)
    fx = recv(eng, 2, RequestVote(1, 0, 0, 0))
    assert fx.notes[0].reason == RejectReason.MALFORMED and eng.term == 0
    assert isinstance(RaftEngine.name, str)
