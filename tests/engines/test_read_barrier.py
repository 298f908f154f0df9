"""Tier (a): the BFT read barrier (consensus/read_barrier.py) in PBFT, HotStuff and
Tendermint - one test per rule, exact Effects. n = 7, f = 2, quorum 2f + 1 = 5 (by
voting power for Tendermint); the replica under test is 3, a backup / non-leader in all
three engines at the start.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from consensus import api
from consensus.api import (
    EngineConfig,
    Persist,
    ReadReady,
    ReadRequest,
    Receive,
    Rejected,
    RejectReason,
    Restore,
    Send,
    Tick,
    create_engine,
)
from consensus.hotstuff import messages as hotstuff
from consensus.hotstuff.state import KEY_PROPOSAL
from consensus.pbft import messages as pbft
from consensus.read_barrier import NONCE_COUNTER_BITS, read_query_retry_ticks
from consensus.tendermint import messages as tendermint
from consensus.tendermint.messages import NIL, VoteStep
from consensus.tendermint.state import KEY_STATE, DurableState, Step
from consensus.types import (
    EMPTY_ROOT,
    GENESIS_HASH,
    Block,
    SignedMessage,
    Validator,
    ValidatorSet,
    make_block,
    signing_bytes,
)

CHAIN = "test-chain"
NODES = 7
ME = 3
QUORUM = 5


class HmacVerifier:
    def verify(self, sender: int, message: object, signature: bytes) -> bool:
        return 0 <= sender < NODES and hmac.compare_digest(sign(sender, message), signature)


def sign(sender: int, message: object) -> bytes:
    return hmac.new(bytes([sender]) * 32, signing_bytes(CHAIN, message), hashlib.sha256).digest()


def signed(sender: int, message: object) -> SignedMessage:
    return SignedMessage(sender, message, sign(sender, message))


def forged(sender: int, message: object) -> SignedMessage:
    return SignedMessage(sender, message, b"\x00" * 32)


def config(node: int = ME, powers: tuple[int, ...] = (1,) * NODES,
           **overrides: object) -> EngineConfig:
    validators = ValidatorSet(tuple(Validator(i, bytes([i]), p) for i, p in enumerate(powers)))
    base: dict[str, object] = {"node_id": node, "validators": validators, "chain_id": CHAIN,
                               "verifier": HmacVerifier(), "heartbeat_ticks": 4,
                               "view_timeout_ticks": 1_000, "timeout_propose_ticks": 1_000}
    base.update(overrides)
    return EngineConfig(**base)  # type: ignore[arg-type]


def receive(eng: api.Engine, sender: int, message: object) -> api.Effects:
    return eng.step(Receive(sender, message, sign(sender, message)))


@dataclass(frozen=True)
class Protocol:
    name: str
    query: type
    answer: type
    epoch_key: str  # the durable record of the read barrier's epoch


PBFT = Protocol("pbft", pbft.ReadQuery, pbft.ReadAnswer, "pbft/read_epoch")
HOTSTUFF = Protocol("hotstuff", hotstuff.ReadQuery, hotstuff.ReadAnswer, "hotstuff/read_epoch")
TENDERMINT = Protocol("tendermint", tendermint.ReadQuery, tendermint.ReadAnswer,
                      "tendermint.read_epoch")


def protocols() -> list[Protocol]:
    return [PBFT, HOTSTUFF, TENDERMINT]


def engine(protocol: Protocol, node: int = ME, **overrides: object) -> api.Engine:
    return create_engine(protocol.name, config(node, **overrides))


def first_nonce(epoch: int = 1) -> int:
    return (epoch << NONCE_COUNTER_BITS) + 1


def ask(protocol: Protocol, eng: api.Engine, request_id: int, nonce: int,
        epoch: int = 1) -> None:
    """The first read of a life: exactly one ReadQuery broadcast, no read yet, and the
    epoch raised durably before the query leaves."""
    assert eng.step(ReadRequest(request_id)) == api.Effects(
        persist=(Persist(protocol.epoch_key, epoch),),
        send=(Send(None, protocol.query(nonce)),))


def answer_all(protocol: Protocol, eng: api.Engine, nonce: int, senders: range | tuple[int, ...],
               height: int = 0) -> list[api.Effects]:
    return [receive(eng, s, protocol.answer(nonce, height, ())) for s in senders]


# ------------------------------------------------------------------ the round, any engine
@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_a_read_broadcasts_one_query_and_waits(protocol: Protocol) -> None:
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    assert eng.step(Tick()) == api.Effects()  # no read before any answer


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_the_read_is_ready_at_the_quorum_th_distinct_answer(protocol: Protocol) -> None:
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    for effects in answer_all(protocol, eng, nonce, range(QUORUM - 1)):
        assert effects == api.Effects()
    # The same sender again does not count, however often it answers.
    assert answer_all(protocol, eng, nonce, (0, 0, 1)) == [api.Effects()] * 3
    assert receive(eng, 6, protocol.answer(nonce, 0, ())) == api.Effects(
        reads=(ReadReady(7, 0),))
    # The round is over: its late answers change nothing.
    assert receive(eng, 5, protocol.answer(nonce, 0, ())) == api.Effects()


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_answers_with_another_nonce_are_ignored(protocol: Protocol) -> None:
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    for stale in (nonce - 1, nonce + 1, 0):
        assert answer_all(protocol, eng, stale, range(NODES)) == [api.Effects()] * NODES
    effects = answer_all(protocol, eng, nonce, range(QUORUM))
    assert effects[-1] == api.Effects(reads=(ReadReady(7, 0),))


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_a_restarted_replica_ignores_answers_to_its_previous_life(protocol: Protocol) -> None:
    """The seeded RNG repeats after a restart; the durable epoch does not."""
    eng = engine(protocol)
    eng.step(Restore(records=((protocol.epoch_key, 4),)))
    nonce = first_nonce(epoch=5)
    ask(protocol, eng, 7, nonce, epoch=5)
    previous_life = first_nonce(epoch=4)
    assert answer_all(protocol, eng, previous_life, range(NODES)) == [api.Effects()] * NODES
    effects = answer_all(protocol, eng, nonce, range(QUORUM))
    assert effects[-1] == api.Effects(reads=(ReadReady(7, 0),))


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_a_read_during_a_round_waits_for_the_next_round(protocol: Protocol) -> None:
    """Answers to a query sent before the read began may predate what it must see."""
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 1, nonce)
    for request_id in (2, 3):  # both wait, and will share one round
        assert eng.step(ReadRequest(request_id)) == api.Effects()
    effects = answer_all(protocol, eng, nonce, range(QUORUM))
    assert effects[-1] == api.Effects(send=(Send(None, protocol.query(nonce + 1)),),
                                      reads=(ReadReady(1, 0),))
    effects = answer_all(protocol, eng, nonce + 1, range(QUORUM))
    assert effects[-1] == api.Effects(reads=(ReadReady(2, 0), ReadReady(3, 0)))


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_the_query_is_asked_again_of_the_silent_replicas(protocol: Protocol) -> None:
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    answer_all(protocol, eng, nonce, (0, 3, 5))
    retry = read_query_retry_ticks(config())
    assert retry == 4
    for _ in range(retry - 1):
        assert eng.step(Tick()).send == ()
    assert eng.step(Tick()).send == tuple(Send(n, protocol.query(nonce)) for n in (1, 2, 4, 6))
    assert all(eng.step(Tick()).send == () for _ in range(retry - 1))


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_a_proof_longer_than_the_validator_set_is_refused(protocol: Protocol) -> None:
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    proof = tuple(signed(v % NODES, protocol.query(v)) for v in range(NODES + 1))
    assert receive(eng, 2, protocol.answer(nonce, 0, proof)) == api.Effects(notes=(Rejected(
        RejectReason.OVER_LIMIT, 2, "read answer proof over the validators"),))


NOT_A_CERTIFICATE = {"pbft": "not a commit, prepared or checkpoint certificate",
                     "hotstuff": "not the votes of a QC",
                     "tendermint": "not a polka or a commit"}


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
@pytest.mark.parametrize("length", [1, 2])
def test_a_proof_of_messages_that_are_no_votes_is_malformed(protocol: Protocol,
                                                            length: int) -> None:
    eng = engine(protocol)
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    proof = tuple(signed(v, protocol.query(v)) for v in range(length))
    assert receive(eng, 2, protocol.answer(nonce, 3, proof)) == api.Effects(notes=(Rejected(
        RejectReason.MALFORMED, 2, f"read answer 3: {NOT_A_CERTIFICATE[protocol.name]}"),))


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_too_many_waiting_reads_are_refused(protocol: Protocol) -> None:
    eng = engine(protocol, pending_messages_max=3)
    nonce = first_nonce()
    ask(protocol, eng, 1, nonce)
    assert eng.step(ReadRequest(2)) == api.Effects()
    assert eng.step(ReadRequest(3)) == api.Effects()
    assert eng.step(ReadRequest(4)) == api.Effects(notes=(Rejected(
        RejectReason.OVER_LIMIT, None, "read 4: too many reads"),))


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_a_read_after_a_finished_round_starts_the_next_one(protocol: Protocol) -> None:
    eng = engine(protocol)
    eng.step(Restore())  # a first life: no epoch on record
    nonce = first_nonce()
    ask(protocol, eng, 7, nonce)
    assert answer_all(protocol, eng, nonce, range(QUORUM))[-1].reads == (ReadReady(7, 0),)
    assert eng.step(ReadRequest(8)) == api.Effects(send=(Send(None, protocol.query(nonce + 1)),))
    assert answer_all(protocol, eng, nonce + 1, range(QUORUM))[-1] == api.Effects(
        reads=(ReadReady(8, 0),))


def test_the_retry_waits_at_least_two_ticks() -> None:
    assert read_query_retry_ticks(config(heartbeat_ticks=1)) == 2
    assert read_query_retry_ticks(config(heartbeat_ticks=7)) == 7


# ------------------------------------------------------------------ PBFT
def test_pbft_index_is_never_below_the_own_committed_height() -> None:
    eng, pp = prepared_replica()
    for v in (0, 1, 2, 4, 5):
        receive(eng, v, pbft.Commit(0, 1, pp.digest, v))
    nonce = first_nonce()
    ask(PBFT, eng, 7, nonce)
    effects = answer_all(PBFT, eng, nonce, (0, 1, 2, 4, 5), height=0)  # all lag behind
    assert effects[-1] == api.Effects(reads=(ReadReady(7, 1),))


def pp_at(height: int, parent: bytes = GENESIS_HASH, view: int = 0) -> pbft.PrePrepare:
    block = make_block(CHAIN, height, parent, (b"tx",), view % NODES, 1_000 + height)
    return pbft.PrePrepare(view, height, block.block_hash, block)


def prepared_proof(pp: pbft.PrePrepare, backups: tuple[int, ...] = (1, 2, 4, 5),
                   sign_with: Callable[[int, object], SignedMessage] = signed
                   ) -> tuple[SignedMessage, ...]:
    return (signed(pp.view % NODES, pp), *(sign_with(b, pbft.Prepare(pp.view, pp.sequence,
                                                                      pp.digest, b))
                                           for b in backups))


def prepared_replica() -> tuple[api.Engine, pbft.PrePrepare]:
    """Replica 3 prepared sequence 1 (pre-prepare + 2f = 4 prepares), committed nothing."""
    eng = engine(PBFT)
    pp = pp_at(1)
    receive(eng, 0, pp)
    for backup in (1, 2, 4, 5):
        receive(eng, backup, pbft.Prepare(0, 1, pp.digest, backup))
    return eng, pp


def test_pbft_answers_its_prepared_height_before_it_commits() -> None:
    """f + 1 honest replicas prepared any acknowledged block; maybe none committed it."""
    eng, pp = prepared_replica()
    assert eng.status().committed_height == 0
    assert receive(eng, 6, pbft.ReadQuery(41)) == api.Effects(
        send=(Send(6, pbft.ReadAnswer(41, 1, prepared_proof(pp))),))


def test_pbft_answers_its_commit_certificate_once_committed() -> None:
    eng, pp = prepared_replica()
    commits = [pbft.Commit(0, 1, pp.digest, v) for v in (0, 1, 2, 4, 5)]
    for vote in commits:
        receive(eng, vote.replica, vote)
    assert eng.status().committed_height == 1
    proof = tuple(signed(v.replica, v) for v in commits)
    assert receive(eng, 6, pbft.ReadQuery(42)) == api.Effects(
        send=(Send(6, pbft.ReadAnswer(42, 1, proof)),))


def test_pbft_fresh_replica_answers_height_0_with_no_proof() -> None:
    assert receive(engine(PBFT), 2, pbft.ReadQuery(5)) == api.Effects(
        send=(Send(2, pbft.ReadAnswer(5, 0, ())),))


def test_pbft_answers_up_to_the_own_committed_height_need_no_proof() -> None:
    """They cannot raise the index; the index is never below what this replica knows."""
    eng, pp = prepared_replica()
    for v in (0, 1, 2, 4, 5):
        receive(eng, v, pbft.Commit(0, 1, pp.digest, v))
    assert eng.status().committed_height == 1
    nonce = first_nonce()
    ask(PBFT, eng, 7, nonce)
    effects = [receive(eng, s, pbft.ReadAnswer(nonce, h, ()))
               for s, h in ((0, 1), (1, 0), (2, 0), (4, 1), (5, 0))]
    assert effects == [api.Effects()] * 4 + [api.Effects(reads=(ReadReady(7, 1),))]


def test_pbft_read_index_is_the_highest_proven_answer() -> None:
    eng = engine(PBFT)
    nonce = first_nonce()
    ask(PBFT, eng, 7, nonce)
    answer_all(PBFT, eng, nonce, (0, 1, 2, 4))
    assert receive(eng, 5, pbft.ReadAnswer(nonce, 1, prepared_proof(pp_at(1)))) == \
        api.Effects(reads=(ReadReady(7, 1),))


def checkpoint_proof(sequence: int, voters: tuple[int, ...] = (0, 1, 2, 4, 5),
                     sign_with: Callable[[int, object], SignedMessage] = signed
                     ) -> tuple[SignedMessage, ...]:
    return tuple(sign_with(v, pbft.Checkpoint(sequence, b"\x05" * 32, b"\x06" * 32, v))
                 for v in voters)


def test_pbft_answer_backed_by_a_stable_checkpoint_counts() -> None:
    eng = engine(PBFT)
    nonce = first_nonce()
    ask(PBFT, eng, 7, nonce)
    answer_all(PBFT, eng, nonce, (0, 1, 2, 4))
    assert receive(eng, 5, pbft.ReadAnswer(nonce, 16, checkpoint_proof(16))) == \
        api.Effects(reads=(ReadReady(7, 16),))


@pytest.mark.parametrize("case", [
    ("too few", checkpoint_proof(16, voters=(0, 1, 2, 4)), RejectReason.QUORUM_MISSING,
     "4 signers are not a quorum"),
    ("bad signature", checkpoint_proof(16, sign_with=lambda v, m: forged(v, m) if v == 2
                                       else signed(v, m)),
     RejectReason.BAD_SIGNATURE, "bad signature of 2"),
    ("another sequence", checkpoint_proof(15), RejectReason.MALFORMED,
     "a vote names another block, height or round"),
    ("names another replica", tuple(signed(v, pbft.Checkpoint(16, b"\x05" * 32, b"\x06" * 32,
                                                               (v + 1) % NODES))
                                    for v in (0, 1, 2, 4, 5)),
     RejectReason.MALFORMED, "a vote names another block, height or round"),
], ids=lambda c: c[0])
def test_pbft_forged_checkpoint_proof_is_refused(case) -> None:  # type: ignore[no-untyped-def]
    _, proof, reason, detail = case
    eng = engine(PBFT)
    nonce = first_nonce()
    ask(PBFT, eng, 7, nonce)
    assert receive(eng, 6, pbft.ReadAnswer(nonce, 16, proof)) == api.Effects(notes=(
        Rejected(reason, 6, f"read answer 16: {detail}"),))


def pbft_forgeries() -> list[tuple[str, tuple[SignedMessage, ...], RejectReason, str]]:
    pp = pp_at(9)
    commits = [pbft.Commit(0, 9, pp.digest, v) for v in (0, 1, 2, 4, 5)]
    return [
        ("bad signature", prepared_proof(pp, sign_with=lambda b, m: forged(b, m) if b == 4
                                         else signed(b, m)),
         RejectReason.BAD_SIGNATURE, "bad signature of 4"),
        ("too few signers", prepared_proof(pp, backups=(1, 2, 4)),
         RejectReason.QUORUM_MISSING, "4 signers are not a quorum"),
        ("another height", prepared_proof(pp_at(8)),
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("another block", tuple(signed(c.replica, c) for c in commits[:4])
         + (signed(5, pbft.Commit(0, 9, b"\x66" * 32, 5)),),
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("unknown signer", prepared_proof(pp, backups=(1, 2, 4, 99)),
         RejectReason.MALFORMED, "a repeated or unknown signer"),
        ("repeated signer", tuple(signed(c.replica, c) for c in commits[:4])
         + (signed(2, commits[2]),),
         RejectReason.MALFORMED, "a repeated or unknown signer"),
        ("no proof", (), RejectReason.QUORUM_MISSING,
         "no proof for a height not committed here"),
    ]


@pytest.mark.parametrize("case", pbft_forgeries(), ids=lambda c: c[0])
def test_pbft_forged_proof_is_refused_and_not_counted(case) -> None:  # type: ignore[no-untyped-def]
    _, proof, reason, detail = case
    eng = engine(PBFT)
    nonce = first_nonce()
    ask(PBFT, eng, 7, nonce)
    answer_all(PBFT, eng, nonce, (0, 1, 2, 4))
    assert receive(eng, 6, pbft.ReadAnswer(nonce, 9, proof)) == api.Effects(notes=(
        Rejected(reason, 6, f"read answer 9: {detail}"),))
    # Refused for this round: even a valid answer from it now does not count.
    assert receive(eng, 6, pbft.ReadAnswer(nonce, 0, ())) == api.Effects()
    assert receive(eng, 5, pbft.ReadAnswer(nonce, 0, ())) == api.Effects(
        reads=(ReadReady(7, 0),))  # not inflated to 9


# ------------------------------------------------------------------ HotStuff
def hs_block(height: int, parent: bytes, proposer: int, txs: tuple[bytes, ...] = ()) -> Block:
    return make_block(CHAIN, height, parent, txs, proposer, 1_000)


def hs_qc(round_number: int, block: Block, parent_round: int,
          voters: tuple[int, ...] = (0, 1, 2, 4, 5),
          sign_with: Callable[[int, object], SignedMessage] = signed
          ) -> hotstuff.QuorumCertificate:
    parent = block.header.parent_hash
    votes = tuple(sign_with(v, hotstuff.Vote(round_number, block.height, block.block_hash,
                                             parent_round, parent, v)) for v in voters)
    return hotstuff.QuorumCertificate(round_number, block.height, block.block_hash,
                                      parent_round, parent, votes)


class HsChain:
    """B1 (round 1, with a transaction) <- B2 (round 2, empty); leader of r is r mod 7."""

    def __init__(self) -> None:
        self.b1 = hs_block(1, GENESIS_HASH, 1, (b"tx",))
        self.qc1 = hs_qc(1, self.b1, 0)
        self.b2 = hs_block(2, self.b1.block_hash, 2)
        self.qc2 = hs_qc(2, self.b2, 1)

    def proposals_to(self, eng: api.Engine) -> None:
        receive(eng, 1, hotstuff.Proposal(1, self.b1, hotstuff.GENESIS_QC, None))
        receive(eng, 2, hotstuff.Proposal(2, self.b2, self.qc1, None))


def test_hotstuff_answers_the_height_its_highest_qc_certifies() -> None:
    """f + 1 honest voters for a final block's child hold its QC or a higher one."""
    eng = engine(HOTSTUFF)
    chain = HsChain()
    chain.proposals_to(eng)
    assert eng.status().committed_height == 0
    assert receive(eng, 6, hotstuff.ReadQuery(41)) == api.Effects(
        send=(Send(6, hotstuff.ReadAnswer(41, 1, chain.qc1.votes)),))


def test_hotstuff_idle_leader_proposes_until_a_read_index_is_final() -> None:
    """Idle: the last QC certifies an empty block nobody will extend - a read waiting for
    it would wait for ever, so a query makes the leader extend it."""
    eng = engine(HOTSTUFF)  # replica 3 leads round 3 and collects the votes of round 2
    chain = HsChain()
    chain.proposals_to(eng)
    for v in (0, 1, 2, 4, 5):
        effects = receive(eng, v, chain.qc2.vote_of(v))
    assert eng.status().committed_height == 1  # QC2 makes B1 final; nothing to order
    assert effects.send == (Send(None, hotstuff.NewView(None, chain.qc2, None)),)
    assert eng.step(Tick()) == api.Effects()  # idle: no round timer
    b3 = make_block(CHAIN, 3, chain.b2.block_hash, (), ME, 1_000, 0, EMPTY_ROOT)
    proposal = hotstuff.Proposal(3, b3, chain.qc2, None)
    assert receive(eng, 6, hotstuff.ReadQuery(41)) == api.Effects(
        persist=(Persist(KEY_PROPOSAL, proposal),),
        send=(Send(6, hotstuff.ReadAnswer(41, 2, chain.qc2.votes)), Send(None, proposal)))


def test_hotstuff_read_index_is_the_highest_proven_answer() -> None:
    eng = engine(HOTSTUFF)
    nonce = first_nonce()
    ask(HOTSTUFF, eng, 7, nonce)
    answer_all(HOTSTUFF, eng, nonce, (0, 1, 2, 4))
    qc = HsChain().qc2
    assert receive(eng, 5, hotstuff.ReadAnswer(nonce, 2, qc.votes)) == \
        api.Effects(reads=(ReadReady(7, 2),))


def hotstuff_forgeries() -> list[tuple[str, tuple[SignedMessage, ...], RejectReason, str]]:
    chain = HsChain()
    b9 = hs_block(9, b"\x55" * 32, 3)
    good = hs_qc(9, b9, 8)
    other = hs_qc(9, hs_block(9, b"\x56" * 32, 3), 8)
    return [
        ("bad signature", hs_qc(9, b9, 8, sign_with=lambda v, m: forged(v, m) if v == 4
                                else signed(v, m)).votes,
         RejectReason.BAD_SIGNATURE, "bad signature of 4"),
        ("too few signers", hs_qc(9, b9, 8, voters=(0, 1, 2, 4)).votes,
         RejectReason.QUORUM_MISSING, "4 signers are not a quorum"),
        ("another height", chain.qc2.votes,
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("another block", good.votes[:4] + other.votes[4:],
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("repeated signer", good.votes[:4] + good.votes[3:4],
         RejectReason.MALFORMED, "a repeated or unknown signer"),
        ("no proof", (), RejectReason.QUORUM_MISSING,
         "no proof for a height not committed here"),
    ]


@pytest.mark.parametrize("case", hotstuff_forgeries(), ids=lambda c: c[0])
def test_hotstuff_forged_proof_is_refused_and_not_counted(case) -> None:  # type: ignore[no-untyped-def]
    _, proof, reason, detail = case
    eng = engine(HOTSTUFF)
    nonce = first_nonce()
    ask(HOTSTUFF, eng, 7, nonce)
    answer_all(HOTSTUFF, eng, nonce, (0, 1, 2, 4))
    assert receive(eng, 6, hotstuff.ReadAnswer(nonce, 9, proof)) == api.Effects(notes=(
        Rejected(reason, 6, f"read answer 9: {detail}"),))
    assert receive(eng, 5, hotstuff.ReadAnswer(nonce, 0, ())) == api.Effects(
        reads=(ReadReady(7, 0),))  # not inflated to 9


# ------------------------------------------------------------------ Tendermint
V = make_block(CHAIN, 1, GENESIS_HASH, (b"v",), 0, 1_000, 0, EMPTY_ROOT)


def tm_vote(voter: int, step: VoteStep, block_hash: bytes = V.block_hash, height: int = 1,
            round_number: int = 0) -> tendermint.Vote:
    return tendermint.Vote(height, round_number, step, block_hash, voter)


def tm_votes(step: VoteStep, voters: tuple[int, ...] = (0, 1, 2, 4, 5), **kwargs: object
             ) -> tuple[SignedMessage, ...]:
    return tuple(signed(v, tm_vote(v, step, **kwargs)) for v in voters)  # type: ignore[arg-type]


def tm_started() -> api.Engine:
    eng = engine(TENDERMINT)
    eng.step(Restore())
    return eng


def test_tendermint_answers_its_height_when_it_holds_a_polka() -> None:
    """An honest precommitter of a decided block holds its polka until it decides."""
    eng = tm_started()
    for v in (0, 1, 2, 4, 5):
        receive(eng, v, tm_vote(v, VoteStep.PREVOTE))
    assert eng.status().committed_height == 0
    assert receive(eng, 6, tendermint.ReadQuery(41)) == api.Effects(
        send=(Send(6, tendermint.ReadAnswer(41, 1, tm_votes(VoteStep.PREVOTE))),))


def test_tendermint_answers_the_latest_rounds_polka_past_precommits_and_other_blocks() -> None:
    eng = tm_started()
    other = b"\x0b" * 32
    for v in (0, 1, 2, 4, 5):
        receive(eng, v, tm_vote(v, VoteStep.PREVOTE))  # round 0: a polka for V
    for v in (0, 1):
        receive(eng, v, tm_vote(v, VoteStep.PREVOTE, block_hash=other, round_number=2))
    for v in (0, 1, 2, 4, 5):
        receive(eng, v, tm_vote(v, VoteStep.PREVOTE, round_number=1))  # round 1: V again
    for v in (0, 1):  # precommits sort after prevotes: they must not end the search
        receive(eng, v, tm_vote(v, VoteStep.PRECOMMIT, round_number=2))
    effects = receive(eng, 6, tendermint.ReadQuery(42))
    assert effects.send == (Send(6, tendermint.ReadAnswer(
        42, 1, tm_votes(VoteStep.PREVOTE, round_number=1))),)


def test_tendermint_answers_its_commit_once_decided() -> None:
    eng = tm_started()
    receive(eng, 0, tendermint.Proposal(1, 0, V, -1, 0, ()))
    for v in (0, 1, 2, 4, 5):
        receive(eng, v, tm_vote(v, VoteStep.PRECOMMIT))
    assert eng.status().committed_height == 1
    assert receive(eng, 6, tendermint.ReadQuery(42)) == api.Effects(
        send=(Send(6, tendermint.ReadAnswer(42, 1, tm_votes(VoteStep.PRECOMMIT))),))


def test_tendermint_locked_after_a_restart_answers_its_height_unproven() -> None:
    """Its polka was only in memory, but the durable lock says H may be decided."""
    eng = engine(TENDERMINT)
    eng.step(Restore(records=((KEY_STATE, DurableState(1, 0, Step.PRECOMMIT, 0, V, 0, V)),)))
    assert receive(eng, 6, tendermint.ReadQuery(43)) == api.Effects(
        send=(Send(6, tendermint.ReadAnswer(43, 1, ())),))


def test_tendermint_read_index_is_the_highest_proven_answer() -> None:
    eng = engine(TENDERMINT)
    nonce = first_nonce()
    ask(TENDERMINT, eng, 7, nonce)
    answer_all(TENDERMINT, eng, nonce, (0, 1, 2, 4))
    assert receive(eng, 5, tendermint.ReadAnswer(nonce, 1, tm_votes(VoteStep.PREVOTE))) == \
        api.Effects(reads=(ReadReady(7, 1),))


def test_tendermint_round_ends_at_two_thirds_of_the_power() -> None:
    """Powers 4,1,1,1,1,1,1: f = 3 of 10, quorum 7 - four answers with validator 0."""
    eng = create_engine("tendermint", config(powers=(4, 1, 1, 1, 1, 1, 1)))
    nonce = first_nonce()
    ask(TENDERMINT, eng, 7, nonce)
    assert answer_all(TENDERMINT, eng, nonce, (1, 2, 4, 5, 6)) == [api.Effects()] * 5
    assert receive(eng, 0, tendermint.ReadAnswer(nonce, 0, ())) == api.Effects(
        reads=(ReadReady(7, 0),))


def test_tendermint_weighted_proof_needs_two_thirds_of_the_power() -> None:
    """Five validators of power 1 are not a polka when validator 0 holds 4 of 10."""
    eng = create_engine("tendermint", config(powers=(4, 1, 1, 1, 1, 1, 1)))
    nonce = first_nonce()
    ask(TENDERMINT, eng, 7, nonce)
    proof = tm_votes(VoteStep.PREVOTE, voters=(1, 2, 4, 5, 6))
    assert receive(eng, 3, tendermint.ReadAnswer(nonce, 1, proof)) == api.Effects(notes=(
        Rejected(RejectReason.QUORUM_MISSING, 3, "read answer 1: 5 signers are not a quorum"),))
    proof = tm_votes(VoteStep.PREVOTE, voters=(0, 1, 2, 4))
    for sender in (0, 1, 2):
        assert receive(eng, sender, tendermint.ReadAnswer(nonce, 1, proof)) == api.Effects()
    assert receive(eng, 4, tendermint.ReadAnswer(nonce, 0, ())) == api.Effects(
        reads=(ReadReady(7, 1),))


def tendermint_forgeries() -> list[tuple[str, tuple[SignedMessage, ...], RejectReason, str]]:
    prevotes = tm_votes(VoteStep.PREVOTE, height=9)
    other = signed(5, tm_vote(5, VoteStep.PREVOTE, b"\x66" * 32, height=9))
    late = signed(5, tm_vote(5, VoteStep.PREVOTE, height=9, round_number=1))
    return [
        ("bad signature", prevotes[:3] + (forged(4, prevotes[3].message),) + prevotes[4:],
         RejectReason.BAD_SIGNATURE, "bad signature of 4"),
        ("too few signers", prevotes[:4],
         RejectReason.QUORUM_MISSING, "4 signers are not a quorum"),
        ("another height", tm_votes(VoteStep.PRECOMMIT),
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("another block", prevotes[:4] + (other,),
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("another round", prevotes[:4] + (late,),
         RejectReason.MALFORMED, "a vote names another block, height or round"),
        ("repeated signer", prevotes[:4] + prevotes[3:4],
         RejectReason.MALFORMED, "a repeated or unknown signer"),
        ("nil", tm_votes(VoteStep.PREVOTE, block_hash=NIL, height=9),
         RejectReason.MALFORMED, "votes for nil back no block"),
        ("no proof", (), RejectReason.QUORUM_MISSING,
         "no proof for a height not committed here"),
    ]


@pytest.mark.parametrize("case", tendermint_forgeries(), ids=lambda c: c[0])
def test_tendermint_forged_proof_is_refused_and_not_counted(case) -> None:  # type: ignore[no-untyped-def]
    _, proof, reason, detail = case
    eng = engine(TENDERMINT)
    nonce = first_nonce()
    ask(TENDERMINT, eng, 7, nonce)
    answer_all(TENDERMINT, eng, nonce, (0, 1, 2, 4))
    assert receive(eng, 6, tendermint.ReadAnswer(nonce, 9, proof)) == api.Effects(notes=(
        Rejected(reason, 6, f"read answer 9: {detail}"),))
    assert receive(eng, 5, tendermint.ReadAnswer(nonce, 0, ())) == api.Effects(
        reads=(ReadReady(7, 0),))  # not inflated to 9


# ------------------------------------------------------------------ seven engines
class Cluster:
    """Seven engines of one protocol on a lossless, in-order network: each broadcast
    reaches every validator including its sender; commits are applied at once."""

    def __init__(self, protocol: Protocol) -> None:
        self.engines = [engine(protocol, node) for node in range(NODES)]
        self.inbox: list[tuple[int, int, object]] = []  # (to, sender, message)
        self.committed = [0] * NODES
        self.reads: list[ReadReady] = []
        for node in range(NODES):
            self.step(node, Restore())

    def step(self, node: int, event: object) -> None:
        effects = self.engines[node].step(event)  # type: ignore[arg-type]
        for send in effects.send:
            for to in range(NODES) if send.to is None else (send.to,):
                self.inbox.append((to, node, send.message))
        if node == ME:
            self.reads.extend(effects.reads)
        for commit in effects.commit:
            self.committed[node] = commit.block.height
            self.step(node, api.Applied(commit.block.height, commit.block.block_hash,
                                        EMPTY_ROOT))

    def run(self, until: Callable[[], bool], ticks_max: int = 2_000) -> None:
        for _ in range(ticks_max):
            while self.inbox and not until():
                to, sender, message = self.inbox.pop(0)
                self.step(to, Receive(sender, message, sign(sender, message)))
            if until():
                return
            for node in range(NODES):
                self.step(node, Tick())
        raise AssertionError("the cluster did not get there")


@pytest.mark.parametrize("protocol", protocols(), ids=lambda p: p.name)
def test_seven_engines_serve_a_read_at_or_above_every_acknowledged_block(
        protocol: Protocol) -> None:
    cluster = Cluster(protocol)
    for node in range(NODES):
        cluster.step(node, api.Propose((b"tx-1",), 1_000))
    cluster.run(lambda: max(cluster.committed) >= 1)
    acknowledged = max(cluster.committed)  # some node answered its client
    cluster.step(ME, ReadRequest(1))
    cluster.run(lambda: bool(cluster.reads))
    [ready] = cluster.reads
    assert ready.request_id == 1 and ready.index >= acknowledged
    # The index becomes applied here, even on a now idle cluster (HotStuff: read_height).
    cluster.run(lambda: cluster.committed[ME] >= ready.index)
