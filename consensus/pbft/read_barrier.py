"""PBFT's half of the read barrier (consensus/read_barrier.py): what a replica answers,
and how an answer's proof is checked (Castro & Liskov 1999 §4.2-4.3).

Theory of operation
-------------------
A replica answers READ-QUERY with its highest quorum-backed height, the greatest of

* its committed height, with the commit certificate (2f + 1 COMMITs) it built;
* the highest sequence it holds a prepared certificate for (PRE-PREPARE + 2f PREPAREs);
* its stable checkpoint, with the 2f + 1 CHECKPOINTs that made it stable.

Why prepared and not only committed: a block acknowledged to a client at height H was
committed at *one* replica from 2f + 1 COMMITs (committed-local, §4.2). Each COMMIT
sender had prepared H first, so at least f + 1 honest replicas hold a prepared
certificate for H - but maybe none of them has committed H yet (their COMMITs from the
others may still be in flight). Any 2f + 1 answers include one of those f + 1, so the
maximum is >= H. They keep that certificate until their stable checkpoint passes H
(garbage collection, §4.3), and the checkpoint proof then backs a height >= H; a view
change keeps it too (a prepared certificate of a later view for the same sequence
replaces it). Prepared certificates and the stable checkpoint are durable, so this
holds across restarts; the commit certificate is only in memory, and a restarted
replica whose committed height is above everything it can prove answers that height
with no proof (only replicas that already know it committed can use that answer).

Cost: a prepared certificate carries its PRE-PREPARE, so its block - answers under load
are as large as a proposal. A lighter proof (2f PREPAREs without the PRE-PREPARE bound a
liar's height as well: f + 1 of their senders are honest and accepted a pre-prepare
there) would need its own check; not done yet.

Proofs are checked with certificates.py (the same code that checks VIEW-CHANGEs and
catch-up): signatures, distinct signers, 2f + 1, one (view, sequence, digest).
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason, Send
from consensus.pbft.certificates import (
    COMMIT_CERTIFICATE_KIND,
    check_checkpoint_proof,
    check_commit_votes,
    check_prepared_certificate,
    quorum_of,
)
from consensus.pbft.messages import (
    Checkpoint,
    Commit,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ReadAnswer,
    ReadQuery,
    primary_of,
)
from consensus.pbft.state import Replica
from consensus.read_barrier import (
    ProofProblem,
    first_message,
    not_a_certificate,
    proof_problem,
)
from consensus.types import Certificate, NodeId, SignedMessage


def quorum_backed(r: Replica) -> tuple[int, tuple[SignedMessage, ...]]:
    """(height, proof): the highest height this replica holds a certificate for; on a
    tie the smaller proof (a checkpoint or commit certificate carries no block)."""
    candidates: list[tuple[int, tuple[SignedMessage, ...]]] = [(0, ())]
    if r.stable.sequence > 0:
        candidates.append((r.stable.sequence, r.stable.proof))
    if r.commit_certificate is not None:
        candidates.append((r.commit_certificate.height, r.commit_certificate.votes))
    if r.prepared_certs:
        top = max(r.prepared_certs)
        cert = r.prepared_certs[top]
        candidates.append((top, (cert.pre_prepare, *cert.prepares)))
    height, proof = max(candidates, key=lambda c: c[0])
    if r.committed_height > height:
        return r.committed_height, ()  # committed before a restart: nothing to show
    return height, proof


def on_read_query(r: Replica, fx: EffectsBuilder, sender: NodeId, query: ReadQuery,
                  signature: bytes) -> None:
    height, proof = quorum_backed(r)
    fx.send.append(Send(sender, ReadAnswer(query.nonce, height, proof)))


def on_read_answer(r: Replica, fx: EffectsBuilder, sender: NodeId, answer: ReadAnswer,
                   signature: bytes) -> None:
    r.read_barrier.on_answer(fx, sender, answer, r.committed_height,
                             lambda: answer_problem(r, answer))


def answer_problem(r: Replica, answer: ReadAnswer) -> ProofProblem:
    """Why `answer.proof` does not back `answer.height`, or None."""
    proof, height = answer.proof, answer.height
    first = first_message(proof)
    quorum = quorum_of(r.config)

    def is_quorum(signers: object) -> bool:
        return len(signers) >= quorum  # type: ignore[arg-type]

    if isinstance(first, Commit):
        certificate = Certificate(COMMIT_CERTIFICATE_KIND, height, first.digest, proof)
        if check_commit_votes(r.config, certificate):
            return None
        return refusal(proof_problem(r.config, proof, lambda s: isinstance(
            s.message, Commit) and (s.message.view, s.message.sequence, s.message.digest)
            == (first.view, height, first.digest) and signed_ok_shape(s), is_quorum))
    if isinstance(first, PrePrepare):
        cert = PreparedCertificate(proof[0], proof[1:])
        if first.sequence == height and check_prepared_certificate(r.config, cert):
            return None
        return refusal(proof_problem(r.config, proof, lambda s: prepared_shape(
            r, s, first, height), is_quorum))
    if isinstance(first, Checkpoint):
        if check_checkpoint_proof(r.config, height, proof) is not None:
            return None
        return refusal(proof_problem(r.config, proof, lambda s: isinstance(
            s.message, Checkpoint) and (s.message.sequence, s.message.state_root,
                                        s.message.block_hash)
            == (height, first.state_root, first.block_hash) and signed_ok_shape(s),
            is_quorum))
    return not_a_certificate(proof, "a commit, prepared or checkpoint certificate")


def signed_ok_shape(signed: SignedMessage) -> bool:
    """The vote names its signer (the part of `signed_ok` that is not the signature)."""
    return getattr(signed.message, "replica", signed.sender) == signed.sender


def prepared_shape(r: Replica, signed: SignedMessage, pp: PrePrepare, height: int) -> bool:
    """A PRE-PREPARE for `height` from its view's primary, or a PREPARE matching it from
    a backup."""
    primary = primary_of(pp.view, r.nodes)
    message = signed.message
    if isinstance(message, PrePrepare):
        return message is pp and signed.sender == primary and pp.sequence == height
    return isinstance(message, Prepare) and signed.sender != primary \
        and (message.view, message.sequence, message.digest) == (pp.view, height, pp.digest) \
        and signed_ok_shape(signed)


def refusal(problem: ProofProblem) -> ProofProblem:
    """The engine's check refused the proof: if each vote matches and verifies, what
    failed is a rule of that check (a PBFT view or block rule)."""
    return problem or (RejectReason.MALFORMED, "the certificate check refused the proof")

