"""Raft replication rules: Figure 2 AppendEntries receiver rules 1-5, leader rules
(§5.3, §5.4.2 / thesis §3.6.2), flow control, certificates, persistence and restart."""
from __future__ import annotations

from dataclasses import replace

from consensus.api import Persist, Propose, RejectReason, Restore, Send, Tick
from consensus.raft import RaftEngine
from consensus.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    HardState,
    entry_key,
)
from tests.engines.test_raft_support import (
    ack,
    append,
    chain,
    config,
    elect,
    engine,
    hashes_of,
    recv,
    sends_of,
)


def test_follower_rejects_a_missing_prev_with_its_last_index_as_hint():
    eng = engine(node=1)
    fx = recv(eng, 0, append(1, 0, 5, 1))
    assert fx.send == (Send(0, AppendEntriesResponse(1, 1, False, 5, 0, 0)),)
    assert fx.persist == (Persist("raft/hard_state", HardState(1, None)),)


def test_fast_back_off_hint_skips_a_divergent_term():
    eng = engine(node=1)
    recv(eng, 0, append(3, 0, 0, 0, chain([1, 2, 2, 2])))
    fx = recv(eng, 0, append(3, 0, 4, 3))  # leader's entry 4 is of term 3
    (msg,) = [m for _, m in sends_of(fx, AppendEntriesResponse)]
    assert (msg.success, msg.reject_hint_index, msg.reject_hint_term) == (False, 4, 2)
    # The leader, whose log is [1, 1, 1, 3], maps hint (4, term 2) to index 3: probe there.
    leader = engine()
    elect(leader)
    assert leader.log.find_conflict_by_term(4, 2) == 1


def test_follower_deletes_a_conflicting_suffix_and_persists_new_entries():
    eng = engine(node=1)
    old = chain([1, 1, 1])
    recv(eng, 0, append(1, 0, 0, 0, old))
    new = chain([1, 2], proposer=2)
    fx = recv(eng, 2, append(2, 2, 1, 1, (new[1],)))
    assert fx.persist[-3:] == (Persist(entry_key(2), None), Persist(entry_key(3), None),
                               Persist(entry_key(2), new[1]))
    assert eng.log.last_index == 2 and eng.log.term_at(2) == 2
    (msg,) = [m for _, m in sends_of(fx, AppendEntriesResponse)]
    assert msg.success and msg.match_index == 2 and msg.match_term == 2


def test_stale_append_does_not_truncate_matching_entries():
    eng = engine(node=1)
    entries = chain([1, 1, 1])
    recv(eng, 0, append(1, 0, 0, 0, entries))
    fx = recv(eng, 0, append(1, 0, 0, 0, entries[:1]))  # reordered older append
    assert fx.persist == () and eng.log.last_index == 3


def test_follower_commits_min_of_leader_commit_and_last_new_with_a_certificate():
    eng = engine(node=1)
    entries = chain([1, 1, 1])
    recv(eng, 0, append(1, 0, 0, 0, entries))
    named = hashes_of(entries)  # the leader names the block at each committed height
    fx = recv(eng, 0, append(1, 0, 1, 1, (), commit=3, hashes=named))  # prev = 1
    assert [c.block.height for c in fx.commit] == [1]
    fx = recv(eng, 0, append(1, 0, 3, 1, (), commit=3, hashes=named))
    assert [c.block.height for c in fx.commit] == [2, 3]
    for c in fx.commit:
        assert RaftEngine.check_certificate(eng.config, c.block, c.certificate)
    assert eng.status().committed_height == 3


def test_leader_streams_at_most_inflight_blocks_max_appends_per_follower():
    eng = engine(inflight_blocks_max=2, batch_bytes_max=3)
    elect(eng)
    ack(eng, 1, 1)  # probe -> replicate
    fx_all = [eng.step(Propose((b"tx%d" % i,), 5000 + i)) for i in range(4)]
    to_1 = [m for fx in fx_all for to, m in sends_of(fx, AppendEntries) if to == 1 and m.entries]
    assert [m.entries[0].index for m in to_1] == [2, 3]  # two in flight, then paused
    fx = ack(eng, 1, 2)
    assert [m.entries[0].index for to, m in sends_of(fx, AppendEntries)
            if to == 1 and m.entries] == [4]


def test_probe_mode_sends_one_append_until_answered():
    eng = engine()
    elect(eng)  # follower 2 is in probe with one append outstanding
    fx = eng.step(Propose((b"a",), 5000))
    assert [to for to, m in sends_of(fx, AppendEntries)] == []


def test_rejection_in_replicate_falls_back_to_probe_after_match():
    eng = engine()
    elect(eng)
    ack(eng, 1, 1)  # replicate, match 1
    for i in range(3):
        eng.step(Propose((b"x%d" % i,), 5000 + i))
    assert eng.progress[1].next == 5
    fx = recv(eng, 1, AppendEntriesResponse(1, 1, False, 3, 1, 1))  # lost batch
    assert eng.progress[1].state == "probe"
    (msg,) = [m for to, m in sends_of(fx, AppendEntries) if to == 1]
    assert msg.prev_log_index == 1 and [e.index for e in msg.entries] == [2, 3, 4]
    stale = recv(eng, 1, AppendEntriesResponse(1, 1, False, 3, 1, 1))
    assert stale.send == ()  # a second copy of the same rejection is ignored


def test_leader_does_not_commit_an_old_term_entry_by_counting_replicas():
    eng = engine(node=0)
    recv(eng, 1, append(1, 1, 0, 0, chain([1])))  # entry 1 of term 1 from leader 1
    eng.election_elapsed_ticks = 10
    eng.become_pre_candidate(); eng.become_candidate()
    fx = recv(eng, 2, __import__("consensus.raft.messages", fromlist=["x"])
              .RequestVoteResponse(2, 2, True))
    assert eng.role == "leader" and eng.term == 2 and eng.log.last_index == 2
    fx = ack(eng, 2, 1)  # a majority stores entry 1 (term 1): not enough (§3.6.2)
    assert fx.commit == () and eng.commit_index == 0
    fx = ack(eng, 2, 2)  # the no-op of term 2 reaches a majority: 1 and 2 commit
    assert [c.block.height for c in fx.commit] == [1, 2]
    for c in fx.commit:
        assert RaftEngine.check_certificate(eng.config, c.block, c.certificate)


def test_blocks_commit_in_order_exactly_once():
    eng = engine()
    elect(eng)
    heights = []
    for i in range(3):
        eng.step(Propose((b"t%d" % i,), 6000 + i))
    for m in (1, 3, 2, 4, 4):
        heights += [c.block.height for c in ack(eng, 1, m).commit]
    assert heights == [1, 2, 3, 4]


def test_blocks_link_by_parent_hash_and_carry_the_applied_state():
    eng = engine()
    elect(eng)
    eng.step(Propose((b"a",), 7000))
    first, second = eng.log.entry(1).block, eng.log.entry(2).block
    assert second.header.parent_hash == first.block_hash and second.height == 2
    assert second.header.timestamp_ms == 7000 and second.header.proposer == 0


def test_proposals_are_refused_by_followers_and_over_limit():
    eng = engine(node=1)
    fx = eng.step(Propose((b"a",), 1))
    assert fx.notes[0].reason == RejectReason.NOT_LEADER
    leader = engine(batch_txs_max=1)
    elect(leader)
    assert leader.step(Propose((b"a", b"b"), 1)).notes[0].reason == RejectReason.OVER_LIMIT


def test_certificate_check_refuses_tampering():
    eng = engine()
    elect(eng)
    eng.step(Propose((b"a",), 7000))
    (commit,) = [c for c in ack(eng, 1, 2).commit if c.block.height == 2]
    cfg = eng.config
    assert RaftEngine.check_certificate(cfg, commit.block, commit.certificate)
    other = eng.log.entry(1).block
    assert not RaftEngine.check_certificate(cfg, other, commit.certificate)
    forged = replace(commit.certificate.votes[0], signature=b"x" * 32)
    bad = replace(commit.certificate, votes=(forged,))
    assert not RaftEngine.check_certificate(cfg, commit.block, bad)
    assert not RaftEngine.check_certificate(cfg, commit.block,
                                            replace(commit.certificate, votes=()))


def test_restart_restores_term_vote_and_log_from_persisted_records():
    eng = engine(node=1)
    records = {}
    for fx in (recv(eng, 0, append(2, 0, 0, 0, chain([1, 2]), commit=1)),):
        for op in fx.persist:
            records[op.key] = op.value
    records["raft/hard_state"] = HardState(2, 0)
    fresh = RaftEngine(config(node=1))
    fresh.step(Restore(tuple(sorted(records.items())), 1, eng.log.hash_at(1), b""))
    assert (fresh.term, fresh.voted_for, fresh.log.last_index, fresh.log.last_term) == \
        (2, 0, 2, 2)
    assert fresh.status().committed_height == 1 and fresh.role == "follower"


def test_leader_sends_heartbeats_every_heartbeat_ticks():
    eng = engine()
    elect(eng)
    fx = eng.step(Tick())
    fx = eng.step(Tick()) if not fx.send else fx
    beats = sends_of(fx, AppendEntries)
    assert sorted(to for to, _ in beats) == [1, 2] and all(not m.entries for _, m in beats)
