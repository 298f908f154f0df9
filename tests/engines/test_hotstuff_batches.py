"""Tier (a): HotStuff rules on batches handed engine to engine (issue: liveness fixes).

A transaction reaches a leader more than once (its own turn and a handed-on copy, a
batch re-handed after RESEND_ROUNDS, the driver's mempool re-offering it), and replicas
often learn of commits by catch-up, which never shows them the transactions. A leader
must never order one twice: it leaves out what the chain it extends already carries and
what is final, and a batch whose absence it cannot check is dropped. Equivocators
(twins) get the short round timeout. n = 4, f = 1 (hotstuff_helpers).
"""
from __future__ import annotations

from consensus import api
from consensus.api import Persist, Rejected, RejectReason, Send, Synced
from consensus.hotstuff.messages import Batch, Proposal
from consensus.hotstuff.state import KEY_PROPOSAL
from consensus.types import EMPTY_ROOT, GENESIS_HASH
from tests.engines.hotstuff_helpers import Chain, block_at, engine, receive
from tests.engines.test_hotstuff_rules import vote_of


def test_leader_leaves_out_transactions_the_chain_it_extends_already_carries() -> None:
    """B1 (uncommitted) carries "a"; a batch ("a", "b") handed to the next leader must
    become a block with "b" only - B2 extends B1, and once both are final "a" would be
    ordered twice (2-chain commit of the branch, Jolteon §3)."""
    chain = Chain(txs=(b"a",))
    eng = engine(2)
    receive(eng, 1, chain.p1)
    assert receive(eng, 1, Batch((b"a", b"b"), 1)) == api.Effects()
    for voter in (0, 1):
        receive(eng, voter, vote_of(1, chain.b1, 0, voter))
    effects = receive(eng, 3, vote_of(1, chain.b1, 0, 3))
    qc = effects.persist[0].value
    proposal = Proposal(2, block_at(2, chain.b1.block_hash, 2, (b"b",)), qc, None)
    assert effects.persist[1:] == (Persist(KEY_PROPOSAL, proposal),)
    assert effects.send == (Send(None, proposal),)


def test_transactions_seen_final_are_dropped_from_a_handed_batch() -> None:
    """B1 with "a" is final here (QC of B2 carried by P3); a batch with "a" handed on
    later keeps only what is not final."""
    chain = Chain(txs=(b"a",))
    eng = engine(0)
    for proposal, sender in ((chain.p1, 1), (chain.p2, 2), (chain.p3, 3)):
        receive(eng, sender, proposal)
    assert eng.status().committed_height == 1 and eng.status().leader == 0
    assert receive(eng, 1, Batch((b"a",), 1, 0)) == api.Effects()
    assert eng.replica.queued == []  # before: [((b"a",), ...)], proposed again
    assert receive(eng, 1, Batch((b"a", b"c"), 1, 0)) == api.Effects()
    assert eng.replica.queued == [((b"c",), 1)]


def test_batch_older_than_a_catch_up_is_dropped_and_a_newer_one_handed_on() -> None:
    """After catch-up to 5 the replica never saw blocks 1..5: a batch known absent only
    through 3 cannot be checked and is dropped (its origin's mempool offers it again); one
    known absent through 5 goes on, and says so."""
    eng = engine(2)
    eng.step(Synced(5, b"\x05" * 32, EMPTY_ROOT))
    effects = receive(eng, 3, Batch((b"a",), 1, 3))
    assert effects == api.Effects(notes=(Rejected(
        RejectReason.STALE, 3, "batch older than the transactions known final"),))
    assert eng.status().leader == 1
    effects = receive(eng, 3, Batch((b"a",), 1, 5))
    assert effects == api.Effects(send=(Send(1, Batch((b"a",), 2, 5)),))


def test_own_batch_is_handed_on_as_absent_through_the_committed_tip() -> None:
    """The driver's mempool holds nothing its ledger committed: absent through our tip."""
    eng = engine(2)
    eng.step(Synced(5, b"\x05" * 32, EMPTY_ROOT))
    effects = eng.step(api.Propose((b"tx",), 1_000))
    assert effects == api.Effects(send=(Send(1, Batch((b"tx",), 1, 5)),))


def test_equivocating_leader_gets_the_short_timeout_and_no_batches() -> None:
    """Two signed proposals for round 1 prove replica 1 byzantine (a twin): its rounds get
    a quarter of the base timeout, without back-off, and batches skip it."""
    eng = engine(0)
    chain = Chain()
    receive(eng, 1, chain.p1)
    assert eng.replica.round_timeout_ticks() == 10
    other = Proposal(1, block_at(1, GENESIS_HASH, 1, (b"other",)), chain.p1.justify, None)
    effects = receive(eng, 1, other)
    assert effects == api.Effects(notes=(Rejected(RejectReason.CONFLICT, 1,
                                                  "second proposal for round 1"),))
    assert eng.replica.equivocators == {1}
    assert eng.replica.round_timeout_ticks() == 10 // 4
    # Replica 0 voted in round 1: the next proposer is replica 2, which is trusted.
    assert eng.step(api.Propose((b"tx",), 1_000)).send == (Send(2, Batch((b"tx",), 1, 0)),)


def test_catch_up_remembers_the_transactions_of_fetched_blocks_held_here() -> None:
    """Blocks 1 and 2 arrived as proposals, their commit came by catch-up: their
    transactions are final here all the same, so a batch known absent only through
    height 0 is still checked (and "a" left out) rather than dropped."""
    chain = Chain(txs=(b"a",))
    eng = engine(0)
    receive(eng, 1, chain.p1)
    receive(eng, 2, chain.p2)
    eng.step(Synced(2, chain.b2.block_hash, EMPTY_ROOT))
    assert eng.status().committed_height == 2 and eng.replica.final_from == 1
    assert eng.status().leader == 3
    effects = receive(eng, 1, Batch((b"a", b"c"), 1, 0))
    assert effects == api.Effects(send=(Send(3, Batch((b"c",), 2, 2)),))
