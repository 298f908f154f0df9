"""PBFT's certificate checks (consensus/pbft/certificates.py), one rule per test: what a
commit certificate, a prepared certificate and a checkpoint proof must hold to be
believed. Catch-up, view changes and the read barrier all trust these answers, so each
forgery below is one a byzantine peer could send. n = 7, f = 2, quorum 5."""
from __future__ import annotations

import dataclasses

import pytest

from consensus.pbft import messages as pbft
from consensus.pbft.certificates import (
    COMMIT_CERTIFICATE_KIND,
    block_problem,
    check_checkpoint_proof,
    check_commit_certificate,
    check_prepared_certificate,
    signed_ok,
)
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Certificate, SignedMessage
from tests.engines.test_read_barrier import (
    checkpoint_proof,
    config,
    forged,
    pp_at,
    prepared_proof,
    signed,
)

CONFIG = config()
QUORUM_VOTERS = (0, 1, 2, 4, 5)


def commit_certificate(pp: pbft.PrePrepare, voters: tuple[int, ...] = QUORUM_VOTERS,
                       height: int | None = None, block_hash: bytes | None = None
                       ) -> Certificate:
    votes = tuple(signed(v, pbft.Commit(pp.view, pp.sequence, pp.digest, v)) for v in voters)
    return Certificate(COMMIT_CERTIFICATE_KIND, pp.sequence if height is None else height,
                       pp.digest if block_hash is None else block_hash, votes)


# ------------------------------------------------------------------ commit certificates
def test_a_commit_certificate_proves_its_block():
    pp = pp_at(3)
    assert check_commit_certificate(CONFIG, pp.block, commit_certificate(pp))


@pytest.mark.parametrize("case", ["another height", "another block", "repeated signer",
                                  "not a commit", "too few", "two views", "another kind"])
def test_a_forged_commit_certificate_is_refused(case):
    pp = pp_at(3)
    cert = commit_certificate(pp)
    if case == "another height":
        cert = dataclasses.replace(cert, height=4)
    elif case == "another block":
        cert = dataclasses.replace(cert, block_hash=b"\x09" * 32)
    elif case == "repeated signer":  # a quorum of distinct signers, and one again
        cert = dataclasses.replace(cert, votes=cert.votes + (cert.votes[0],))
    elif case == "not a commit":
        cert = dataclasses.replace(cert, votes=cert.votes[:4] + (
            signed(5, pbft.Prepare(0, 3, pp.digest, 5)),))
    elif case == "too few":
        cert = commit_certificate(pp, voters=(0, 1, 2, 4))
    elif case == "two views":
        other = signed(5, pbft.Commit(1, 3, pp.digest, 5))
        cert = dataclasses.replace(cert, votes=cert.votes[:4] + (other,))
    else:
        cert = dataclasses.replace(cert, kind="raft.leader")
    assert not check_commit_certificate(CONFIG, pp.block, cert)


def test_a_commit_certificate_for_another_block_of_the_same_height_is_refused():
    """The catch-up rule: the certificate must name the block it is shipped with."""
    pp, other = pp_at(3), pp_at(3, parent=b"\x07" * 32)
    assert not check_commit_certificate(CONFIG, other.block, commit_certificate(pp))


# ------------------------------------------------------------------ prepared certificates
def prepared(pp: pbft.PrePrepare, backups: tuple[int, ...] = (1, 2, 4, 5),
             **kwargs: object) -> pbft.PreparedCertificate:
    proof = prepared_proof(pp, backups, **kwargs)  # type: ignore[arg-type]
    return pbft.PreparedCertificate(proof[0], proof[1:])


def test_a_prepared_certificate_is_a_primarys_pre_prepare_and_2f_prepares():
    pp = pp_at(2)
    assert check_prepared_certificate(CONFIG, prepared(pp)) == pp


@pytest.mark.parametrize("case", ["repeated backup", "the primary prepares",
                                  "pre-prepare from a backup", "pre-prepare is a prepare",
                                  "another digest", "one prepare short",
                                  "unsigned pre-prepare"])
def test_a_forged_prepared_certificate_is_refused(case):
    pp = pp_at(2)
    cert = prepared(pp)
    if case == "repeated backup":  # 2f distinct backups, and one again
        cert = dataclasses.replace(cert, prepares=cert.prepares + (cert.prepares[0],))
    elif case == "the primary prepares":
        cert = dataclasses.replace(cert, prepares=cert.prepares[:3] + (
            signed(0, pbft.Prepare(0, 2, pp.digest, 0)),))
    elif case == "pre-prepare from a backup":
        cert = dataclasses.replace(cert, pre_prepare=signed(1, pp))
    elif case == "pre-prepare is a prepare":
        cert = dataclasses.replace(cert, pre_prepare=signed(0, pbft.Prepare(0, 2, pp.digest, 0)))
    elif case == "another digest":
        cert = dataclasses.replace(cert, prepares=cert.prepares[:3] + (
            signed(5, pbft.Prepare(0, 2, b"\x08" * 32, 5)),))
    elif case == "one prepare short":
        cert = prepared(pp, backups=(1, 2, 4))
    else:
        cert = dataclasses.replace(cert, pre_prepare=pp)
    assert check_prepared_certificate(CONFIG, cert) is None


def test_a_block_carried_into_a_later_view_keeps_its_first_proposer():
    """NEW-VIEW re-proposes prepared blocks: view 1's primary (1) pre-prepares a block
    node 0 proposed in view 0. Only a fresh proposal must come from the view's primary."""
    block = pp_at(2).block  # proposed by node 0
    pp = pbft.PrePrepare(1, 2, block.block_hash, block)
    prepares = tuple(signed(b, pbft.Prepare(1, 2, block.block_hash, b)) for b in (0, 2, 4, 5))
    cert = pbft.PreparedCertificate(signed(1, pp), prepares)
    assert check_prepared_certificate(CONFIG, cert) == pp


# ------------------------------------------------------------------ checkpoints
def test_a_checkpoint_proof_names_the_block_and_root_2f_plus_1_vouch_for():
    assert check_checkpoint_proof(CONFIG, 16, checkpoint_proof(16)) == (b"\x06" * 32,
                                                                          b"\x05" * 32)
    assert check_checkpoint_proof(CONFIG, 0, ()) == (GENESIS_HASH, EMPTY_ROOT)


@pytest.mark.parametrize("case", ["repeated sender", "a proof for sequence 0", "empty",
                                  "not checkpoints", "too few", "bad signature", "one"])
def test_a_forged_checkpoint_proof_is_refused(case):
    sequence, proof = 16, checkpoint_proof(16)
    if case == "repeated sender":  # a quorum of distinct senders, and one again
        proof = proof + (proof[0],)
    elif case == "a proof for sequence 0":
        sequence = 0
    elif case == "empty":
        proof = ()
    elif case == "not checkpoints":
        proof = (signed(0, pbft.Prepare(0, 16, b"\x06" * 32, 0)),) + proof[1:]
    elif case == "too few":
        proof = proof[:4]
    elif case == "bad signature":
        proof = proof[:4] + (forged(5, proof[4].message),)
    else:
        proof = proof[:1]
    assert check_checkpoint_proof(CONFIG, sequence, proof) is None


# ------------------------------------------------------------------ signatures and blocks
def test_a_signature_of_a_non_validator_or_of_the_wrong_kind_is_not_ok():
    vote = pbft.Prepare(0, 1, b"\x01" * 32, 9)
    assert not signed_ok(CONFIG, SignedMessage(9, vote, b""), pbft.Prepare)
    assert not signed_ok(CONFIG, signed(1, pbft.Prepare(0, 1, b"\x01" * 32, 1)), pbft.Commit)
    assert signed_ok(CONFIG, signed(1, pbft.Prepare(0, 1, b"\x01" * 32, 1)), pbft.Prepare)


def test_a_proposed_block_must_match_its_pre_prepare_and_the_limits():
    pp = pp_at(2)
    assert block_problem(CONFIG, 0, 2, pp.digest, pp.block) is None
    assert block_problem(CONFIG, 0, 2, b"\x02" * 32, pp.block) == "digest is not the block hash"
    assert block_problem(CONFIG, 1, 2, pp.digest, pp.block) == \
        "block proposer is not the primary of the view"
    assert block_problem(CONFIG, 1, 2, pp.digest, pp.block, fresh=False) is None
    small = dataclasses.replace(CONFIG, batch_txs_max=1)
    assert block_problem(small, 0, 2, pp.digest, pp.block) is None  # exactly at the limit
    tight = dataclasses.replace(CONFIG, batch_bytes_max=pp.block.payload_bytes())
    assert block_problem(tight, 0, 2, pp.digest, pp.block) is None
    over = dataclasses.replace(CONFIG, batch_bytes_max=pp.block.payload_bytes() - 1)
    assert block_problem(over, 0, 2, pp.digest, pp.block) == "batch over limit"
    tampered = dataclasses.replace(pp.block, txs=(b"another",))
    assert block_problem(CONFIG, 0, 2, tampered.block_hash, tampered) == \
        "tx root does not match the transactions"
    wrong_chain = dataclasses.replace(CONFIG, chain_id="other-chain")
    assert block_problem(wrong_chain, 0, 2, pp.digest, pp.block) == "wrong chain id"
