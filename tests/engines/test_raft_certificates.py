"""Raft commit certificates bind the block (issue 11; thesis §3.6.2): every signature a
certificate counts names the block hash at its height, so catch-up (core/sync.py) can
trust no peer. Leader form: acks vouching `match_hashes`; follower form: the leader's
AppendEntries naming `commit_hashes`."""
from __future__ import annotations

from dataclasses import replace

from consensus.api import Propose, Rejected, RejectReason, Tick
from consensus.raft import RaftEngine
from consensus.raft.messages import AppendEntries, AppendEntriesResponse
from consensus.types import GENESIS_HASH, Certificate, SignedMessage, make_block
from qenex_node.core.sync import CommittedBlock, SyncResponse, accept_synced_blocks
from tests.engines.test_raft_support import (
    CHAIN,
    ack,
    append,
    chain,
    elect,
    engine,
    hashes_of,
    recv,
    sends_of,
    sign,
)


def leader_commit_of_two():
    """A 3-node leader that committed blocks 1 (no-op) and 2 on follower 1's ack."""
    eng = engine()
    elect(eng)
    eng.step(Propose((b"a",), 7000))
    commits = ack(eng, 1, 2).commit
    assert [c.block.height for c in commits] == [1, 2]
    return eng, commits


def follower_commit_of_three():
    eng = engine(node=1)
    entries = chain([1, 1, 1])
    recv(eng, 0, append(1, 0, 0, 0, entries))
    commits = recv(eng, 0, append(1, 0, 3, 1, (), commit=3, hashes=hashes_of(entries))).commit
    assert [c.block.height for c in commits] == [1, 2, 3]
    return eng, entries, commits


def twin_of(block):
    """Another block at the same height and parent: what a lying peer would serve."""
    header = block.header
    return make_block(CHAIN, header.height, header.parent_hash, (b"forged",),
                      header.proposer, header.timestamp_ms)


# ------------------------------------------------------------------ leader form
def test_leader_certificate_acks_name_the_block_hash() -> None:
    eng, commits = leader_commit_of_two()
    for c in commits:
        (vote,) = c.certificate.votes
        assert vote.message.match_hash_at(c.block.height) == c.block.block_hash
        assert RaftEngine.check_certificate(eng.config, c.block, c.certificate)


def test_leader_certificate_relabelled_for_another_block_is_refused() -> None:
    """Same signed acks, certificate and block swapped for a twin: no ack names it."""
    eng, commits = leader_commit_of_two()
    real = commits[1]
    twin = twin_of(real.block)
    forged = replace(real.certificate, block_hash=twin.block_hash)
    assert not RaftEngine.check_certificate(eng.config, twin, forged)


def test_ack_signed_over_another_hash_is_refused() -> None:
    eng, commits = leader_commit_of_two()
    real = commits[1]
    twin = twin_of(real.block)
    lying = AppendEntriesResponse(1, 1, True, 2, match_term=1,
                                  match_hashes=(twin.block_hash,), commit_index=0)
    certificate = Certificate("raft.leader", 2, twin.block_hash,
                              (SignedMessage(1, lying, sign(1, lying)),))
    assert RaftEngine.check_certificate(eng.config, twin, certificate)  # signed: binds
    assert not RaftEngine.check_certificate(eng.config, real.block, replace(
        certificate, block_hash=real.block.block_hash))


def test_ack_without_hashes_certifies_nothing() -> None:
    """The old form: an ack with match_index >= height but no hash."""
    eng, commits = leader_commit_of_two()
    bare = AppendEntriesResponse(1, 1, True, 2, match_term=1)
    c = commits[1]
    certificate = replace(c.certificate, votes=(SignedMessage(1, bare, sign(1, bare)),))
    assert not RaftEngine.check_certificate(eng.config, c.block, certificate)


# ------------------------------------------------------------------ follower form
def test_follower_certificate_is_the_append_naming_the_hashes() -> None:
    eng, _entries, commits = follower_commit_of_three()
    for c in commits:
        (vote,) = c.certificate.votes
        assert vote.message.commit_hash_at(c.block.height) == c.block.block_hash
        assert RaftEngine.check_certificate(eng.config, c.block, c.certificate)


def test_heartbeat_without_hashes_proves_nothing() -> None:
    """Before: any signed AppendEntries with leader_commit >= h certified any block."""
    eng, entries, _ = follower_commit_of_three()
    beat = append(1, 0, 3, 1, (), commit=3)
    twin = twin_of(entries[1].block)
    certificate = Certificate("raft.leader", 2, twin.block_hash,
                              (SignedMessage(0, beat, sign(0, beat)),))
    assert not RaftEngine.check_certificate(eng.config, twin, certificate)
    real = replace(certificate, block_hash=entries[1].block.block_hash)
    assert not RaftEngine.check_certificate(eng.config, entries[1].block, real)


def test_follower_certificate_relabelled_for_another_block_is_refused() -> None:
    eng, _entries, commits = follower_commit_of_three()
    twin = twin_of(commits[1].block)
    forged = replace(commits[1].certificate, block_hash=twin.block_hash)
    assert not RaftEngine.check_certificate(eng.config, twin, forged)


def test_catch_up_refuses_a_forged_block_hash() -> None:
    """core/sync.py trusts no peer: a served block whose certificate's signatures name
    another block is refused, the true one accepted."""
    eng, _entries, commits = follower_commit_of_three()
    cfg = eng.config
    good = [CommittedBlock(c.block, c.certificate, b"\x00" * 32) for c in commits]
    assert len(accept_synced_blocks(RaftEngine, cfg, 0, GENESIS_HASH,
                                    SyncResponse(tuple(good), 3, 1))) == 3
    twin = make_block(CHAIN, 1, GENESIS_HASH, (b"forged",), 1, 1001)
    forged = CommittedBlock(twin, replace(commits[0].certificate, block_hash=twin.block_hash),
                            b"\x00" * 32)
    assert accept_synced_blocks(RaftEngine, cfg, 0, GENESIS_HASH,
                                SyncResponse((forged, *good[1:]), 3, 1)) == []


# ------------------------------------------------------------------ the rules that feed them
def test_follower_commits_only_heights_the_leader_names() -> None:
    eng = engine(node=1)
    entries = chain([1, 1, 1])
    recv(eng, 0, append(1, 0, 0, 0, entries))
    tail_only = (entries[2].block.block_hash,)  # names 3, not 1 and 2
    fx = recv(eng, 0, append(1, 0, 3, 1, (), commit=3, hashes=tail_only))
    assert fx.commit == ()
    (reply,) = [m for _, m in sends_of(fx, AppendEntriesResponse)]
    assert reply.commit_index == 0


def test_follower_refuses_to_commit_a_hash_it_does_not_hold() -> None:
    eng = engine(node=1)
    entries = chain([1, 1])
    recv(eng, 0, append(1, 0, 0, 0, entries))
    wrong = (entries[0].block.block_hash, b"\x07" * 32)
    fx = recv(eng, 0, append(1, 0, 2, 1, (), commit=2, hashes=wrong))
    assert [c.block.height for c in fx.commit] == [1]
    assert Rejected(RejectReason.CONFLICT, 0,
                    "leader names another block at committed index 2") in fx.notes


def test_follower_ack_vouches_from_the_commit_index_to_its_match() -> None:
    eng = engine(node=1)
    entries = chain([1, 1, 1])
    recv(eng, 0, append(1, 0, 0, 0, entries[:1]))
    fx = recv(eng, 0, append(1, 0, 1, 1, entries[1:], commit=0))
    (reply,) = [m for _, m in sends_of(fx, AppendEntriesResponse)]
    assert (reply.match_index, reply.match_hashes) == (3, hashes_of(entries))


def test_leader_names_hashes_from_what_the_follower_confirmed() -> None:
    eng, _ = leader_commit_of_two()
    fx = ack(eng, 1, 2)  # follower 1 now reports commit_index 2
    eng.step(Propose((b"b",), 7001))
    fx = ack(eng, 1, 3)
    beats = [m for to, m in sends_of(fx, AppendEntries) if to == 1]
    assert beats and all(m.leader_commit == 3 and m.commit_hashes == (eng.log.hash_at(3),)
                         for m in beats)
    fresh = [m for to, m in sends_of(fx, AppendEntries) if to == 2]
    assert all(m.commit_hashes == tuple(eng.log.hash_at(i) for i in
                                        range(1, m.leader_commit + 1)) for m in fresh)


def test_leader_holds_the_announced_commit_back_to_one_window() -> None:
    """A follower that confirmed no commit is told at most one window of hashes."""
    eng = engine(log_window_blocks=2)
    elect(eng)
    eng.step(Propose((b"a",), 7000))
    ack(eng, 1, 2)
    eng.step(Propose((b"b",), 7001))
    eng.step(Propose((b"c",), 7002))
    ack(eng, 1, 4)
    assert eng.commit_index == 4
    hashes = tuple(eng.log.hash_at(i) for i in (3, 4))
    recv(eng, 2, AppendEntriesResponse(1, 2, True, 4, match_term=1, match_hashes=hashes,
                                       commit_index=0))
    beats = [m for _ in range(2) for to, m in sends_of(eng.step(Tick()), AppendEntries)
             if to == 2]
    assert [(m.leader_commit, m.commit_hashes) for m in beats] == [
        (2, (eng.log.hash_at(1), eng.log.hash_at(2)))]


def test_malformed_hash_lists_are_refused() -> None:
    eng = engine(node=1)
    short = append(1, 0, 0, 0, (), commit=0, hashes=(b"\x01" * 31,))
    assert recv(eng, 0, short).notes == (Rejected(
        RejectReason.MALFORMED, 0, "commit hashes too many or not 32 bytes"),)
    leader = engine()
    elect(leader)
    many = AppendEntriesResponse(1, 1, True, 1, match_term=1,
                                 match_hashes=(b"\x01" * 32,) * 200)
    assert recv(leader, 1, many).notes == (Rejected(
        RejectReason.MALFORMED, 1, "match hashes too many or not 32 bytes"),)
