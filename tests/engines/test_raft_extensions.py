"""Raft extensions: log compaction and InstallSnapshot via catch-up (thesis §5),
ReadIndex (thesis §6.4), leadership transfer (thesis §3.10)."""
from __future__ import annotations

from consensus.api import (
    Applied,
    CatchUp,
    Effects,
    Note,
    Persist,
    Propose,
    ReadReady,
    ReadRequest,
    Rejected,
    RejectReason,
    Send,
    Synced,
    Tick,
    TransferLeadership,
)
from consensus.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    LogOffset,
    RequestVote,
    TimeoutNow,
    entry_key,
)
from tests.engines.test_raft_support import ack, append, chain, elect, engine, recv, sends_of


def _leader_with_blocks(blocks: int, **overrides):
    eng = engine(**overrides)
    elect(eng)
    for i in range(blocks):
        eng.step(Propose((b"t%d" % i,), 9000 + i))
    ack(eng, 1, eng.log.last_index)
    return eng


def test_applied_compacts_the_log_behind_a_tail():
    eng = _leader_with_blocks(8, checkpoint_interval_blocks=4)
    for h in range(1, 8):
        assert eng.step(Applied(h, eng.log.hash_at(h), b"root%d" % h)).persist == ()
    # applied - offset >= 2K (= 8): compact to applied - K, keeping a tail of K entries
    fx = eng.step(Applied(8, eng.log.hash_at(8), b"root8"))
    assert Persist(entry_key(1), None) in fx.persist
    assert fx.persist[-1] == Persist("raft/log_offset", eng.log.offset)
    assert eng.log.offset.index == 4 and eng.log.first_index == 5


def test_leader_sends_install_snapshot_when_needed_entries_are_compacted():
    eng = _leader_with_blocks(8, checkpoint_interval_blocks=4)
    eng.step(Applied(8, eng.log.hash_at(8), b"root8"))
    fx = recv(eng, 2, AppendEntriesResponse(1, 2, False, 0, 0, 0))  # follower 2 is empty
    assert sends_of(fx, InstallSnapshot) == [
        (2, InstallSnapshot(1, 0, 8, 1, eng.log.hash_at(8), b"root8"))]
    assert eng.progress[2].state == "snapshot"
    fx = recv(eng, 2, InstallSnapshotResponse(1, 2, 8))
    assert eng.progress[2].state == "probe" and eng.progress[2].match == 8
    assert [m.prev_log_index for _, m in sends_of(fx, AppendEntries)] == [8]


def test_follower_catches_up_on_install_snapshot_then_answers_after_synced():
    eng = engine(node=2)
    snap = InstallSnapshot(1, 0, 8, 1, b"h" * 32, b"r" * 32)
    fx = recv(eng, 0, snap)
    assert Persist("raft/pending_snapshot", snap) in fx.persist
    assert fx.catch_up == (CatchUp(8, (0,)),)
    assert recv(eng, 0, snap).catch_up == ()  # already catching up: no second fetch
    fx = eng.step(Synced(8, b"h" * 32, b"r" * 32))
    assert fx.send == (Send(0, InstallSnapshotResponse(1, 2, 8)),)
    assert eng.log.offset == LogOffset(8, 1, b"h" * 32, 0)
    assert eng.status().committed_height == 8 and fx.commit == ()
    # The log continues after the snapshot: prev = 8 matches.
    nxt = recv(eng, 0, append(1, 0, 8, 1, ()))
    assert nxt.send[0].message.success


def test_read_index_is_ready_after_a_majority_confirms_leadership():
    eng = _leader_with_blocks(1)
    fx = eng.step(ReadRequest(1))
    beats = sends_of(fx, AppendEntries)
    assert sorted(to for to, _ in beats) == [1, 2] and all(m.read_context == 1 for _, m in beats)
    assert fx.notes == () and fx.reads == ()
    fx = recv(eng, 2, AppendEntriesResponse(1, 2, True, 0, read_context=1))
    assert fx.reads == (ReadReady(1, eng.commit_index),) and fx.notes == ()


def test_reads_during_a_confirmation_round_share_the_next_one():
    eng = _leader_with_blocks(1)
    eng.step(ReadRequest(1))
    fx = eng.step(ReadRequest(2))
    fx3 = eng.step(ReadRequest(3))
    assert fx.send == fx3.send == () and fx.reads == fx3.reads == ()  # no round each
    fx = recv(eng, 2, AppendEntriesResponse(1, 2, True, 0, read_context=1))
    # Round 1 answers read 1 and at once starts round 2 for reads 2 and 3 together.
    assert fx.reads == (ReadReady(1, eng.commit_index),)
    beats = sends_of(fx, AppendEntries)
    assert {to for to, m in beats if m.read_context == 2} == {1, 2}
    fx = recv(eng, 1, AppendEntriesResponse(1, 1, True, 0, read_context=2))
    assert fx.reads == (ReadReady(2, eng.commit_index), ReadReady(3, eng.commit_index))


def test_reads_beyond_the_bound_are_refused():
    eng = _leader_with_blocks(1, pending_messages_max=2)
    eng.step(ReadRequest(1))
    assert eng.step(ReadRequest(2)).notes == ()
    assert eng.step(ReadRequest(3)) == Effects(notes=(Rejected(
        RejectReason.OVER_LIMIT, None, "read 3: too many reads"),))


def test_a_read_on_five_nodes_needs_two_distinct_followers():
    eng = engine(nodes=5)
    elect(eng)
    ack(eng, 1, 1)
    ack(eng, 2, 1)  # the no-op entry of the term commits
    eng.step(ReadRequest(4))
    assert recv(eng, 3, AppendEntriesResponse(eng.term, 3, True, 1, read_context=1,
                                              match_term=eng.term)).reads == ()
    assert recv(eng, 3, AppendEntriesResponse(eng.term, 3, True, 1, read_context=1,
                                              match_term=eng.term)).reads == ()  # again
    fx = recv(eng, 4, AppendEntriesResponse(eng.term, 4, True, 1, read_context=1,
                                            match_term=eng.term))
    assert fx.reads == (ReadReady(4, eng.commit_index),)


def test_read_index_waits_for_the_first_commit_of_the_term():
    eng = engine()
    elect(eng)
    fx = eng.step(ReadRequest(5))
    assert fx.send == () and fx.notes == () and fx.reads == ()
    fx = ack(eng, 1, 1)  # the no-op commits; now the read round starts
    assert any(m.read_context == 1 for _, m in sends_of(fx, AppendEntries))
    fx = recv(eng, 1, AppendEntriesResponse(1, 1, True, 1, read_context=1, match_term=1))
    assert fx.reads == (ReadReady(5, 1),)


def test_read_refused_by_a_follower_and_failed_on_step_down():
    assert engine(node=1).step(ReadRequest(9)) == Effects(notes=(Rejected(
        RejectReason.NOT_LEADER, None, "read 9: not the leader; leader=None"),))
    eng = _leader_with_blocks(1)
    eng.step(ReadRequest(3))
    fx = recv(eng, 1, AppendEntriesResponse(5, 1, False, 0))
    assert Note("read_failed", "3:stepped down", view=5) in fx.notes


def test_a_leader_elected_again_after_stepping_down_serves_reads():
    eng = _leader_with_blocks(1)
    eng.step(ReadRequest(3))
    recv(eng, 1, AppendEntriesResponse(5, 1, False, 0))  # a newer term: steps down
    elect(eng)
    ack(eng, 1, eng.log.last_index)
    fx = eng.step(ReadRequest(4))
    assert fx.notes == () and {to for to, m in sends_of(fx, AppendEntries)} == {1, 2}


def test_transfer_brings_target_up_to_date_then_sends_timeout_now():
    eng = engine()
    elect(eng)
    fx = eng.step(TransferLeadership(2))
    assert sends_of(fx, TimeoutNow) == []  # target 2 has not acknowledged entry 1 yet
    assert eng.step(Propose((b"a",), 1)).notes[0].reason == RejectReason.NOT_LEADER
    fx = ack(eng, 2, 1)
    assert sends_of(fx, TimeoutNow) == [(2, TimeoutNow(1, 0))]


def test_transfer_to_an_up_to_date_follower_is_immediate_and_aborts_on_timeout():
    eng = engine()
    elect(eng)
    ack(eng, 1, 1)
    assert sends_of(eng.step(TransferLeadership(1)), TimeoutNow) == [(1, TimeoutNow(1, 0))]
    notes = [n for _ in range(10) for n in eng.step(Tick()).notes]
    assert any(n.kind == "transfer_aborted" for n in notes) and eng.transfer_target is None


def test_timeout_now_campaigns_at_once_and_voters_ignore_their_lease():
    target = engine(node=2)
    recv(target, 0, append(1, 0, 0, 0, chain([1], proposer=0)))
    fx = recv(target, 0, TimeoutNow(1, 0))
    (request,) = {m for _, m in sends_of(fx, RequestVote)}
    assert request == RequestVote(2, 2, 1, 1, pre_vote=False, leader_transfer=True)
    voter = engine(node=1)
    recv(voter, 0, append(1, 0, 0, 0, chain([1], proposer=0)))
    out = recv(voter, 2, request)
    assert out.send[0].message.granted and voter.term == 2
