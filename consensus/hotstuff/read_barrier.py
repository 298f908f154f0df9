"""HotStuff's half of the read barrier (consensus/read_barrier.py): what a replica
answers, and how an answer's proof is checked (Jolteon §3; DiemBFT v4 §4).

Theory of operation
-------------------
A replica answers READ-QUERY with the height of the block its highest QC certifies,
and that QC's votes as the proof. Why that covers every acknowledged block: a block B
is final when its child C, of the next round, is certified (2-chain rule). At least
f + 1 honest replicas voted for C, and a replica votes for C only after checking the QC
C's proposal carries - QC(B) - so each of them holds QC(B) or a higher QC (`high_qc`
only grows, and is durable). Any certified block of a round above B's extends B
(Jolteon's safety lemma: B is final), so its height is >= height(B). Any 2f + 1 answers
include one of those f + 1 replicas, so their maximum is >= height(B).

The certified block may not be final yet, and on an idle cluster it stays so: the last
QC that makes every block with transactions final certifies an empty block, and
leaders then stop proposing (voting.try_propose). A read whose index is that block
would wait for ever. So an answer also records its height as wanted (`read_height`):
leaders keep proposing, empty blocks if need be, and the round timer runs, until that
height is final - exactly as for a block with transactions. A read on an idle cluster
thus costs one empty block (two rounds), much as Raft's ReadIndex waits for the
leader's no-op entry; a byzantine replica sending queries can make the leaders produce
empty blocks, which costs bandwidth, never safety.

Proofs are checked with certificates.check_qc (the code that checks every proposal's
QC): distinct known signers, each vote exactly the QC's vote data, 2f + 1, signatures.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason, Send
from consensus.hotstuff.certificates import check_qc, quorum_of
from consensus.hotstuff.messages import QuorumCertificate, ReadAnswer, ReadQuery, Vote
from consensus.hotstuff.state import Replica
from consensus.read_barrier import (
    ProofProblem,
    first_message,
    not_a_certificate,
    proof_problem,
)
from consensus.types import NodeId, SignedMessage


def quorum_backed(r: Replica) -> tuple[int, tuple[SignedMessage, ...]]:
    """(height, proof): the block the highest QC certifies, and the QC's votes."""
    if r.committed_height > r.high_qc.height:
        return r.committed_height, ()  # caught up past every QC held: nothing to show
    return r.high_qc.height, r.high_qc.votes


def on_read_query(r: Replica, fx: EffectsBuilder, sender: NodeId, query: ReadQuery,
                  signature: bytes) -> None:
    height, proof = quorum_backed(r)
    r.read_height = max(r.read_height, height)  # a read waits for it to become final
    fx.send.append(Send(sender, ReadAnswer(query.nonce, height, proof)))


def on_read_answer(r: Replica, fx: EffectsBuilder, sender: NodeId, answer: ReadAnswer,
                   signature: bytes) -> None:
    r.read_barrier.on_answer(fx, sender, answer, r.committed_height,
                             lambda: answer_problem(r, answer))


def answer_problem(r: Replica, answer: ReadAnswer) -> ProofProblem:
    """Why `answer.proof` is not a QC certifying a block at `answer.height`, or None."""
    proof, height = answer.proof, answer.height
    first = first_message(proof)
    if not isinstance(first, Vote):
        return not_a_certificate(proof, "the votes of a QC")
    qc = QuorumCertificate(first.round, first.height, first.block_hash, first.parent_round,
                           first.parent_hash, proof)
    if qc.height == height and check_qc(r.config, qc) is None:
        return None
    quorum = quorum_of(r.config)
    problem = proof_problem(
        r.config, proof, lambda s: s.message == qc.vote_of(s.sender) and qc.height == height,
        lambda signers: len(signers) >= quorum)
    return problem or (RejectReason.MALFORMED, "the QC check refused the proof")
