"""HotStuff wire messages: every one round-trips through the codec exactly, and the
largest honest ones fit the frame limit at n = 64 with ML-DSA-87 signatures (4,627 B).

At n = 64 (f = 21) a QC or TC holds 43 signatures, about 200 KB each; a proposal after a
failed round carries a QC, a TC and a full batch (batch_bytes_max = 4 MiB); a NEW-VIEW a
signed timeout, a QC and a TC; a commit certificate one QC in the common case.
"""
from __future__ import annotations

import dataclasses

import pytest

from consensus.api import EngineConfig
from consensus.hotstuff.messages import (
    GENESIS_QC,
    Batch,
    BlockRequest,
    BlockResponse,
    NewView,
    Proposal,
    QuorumCertificate,
    ReadAnswer,
    ReadQuery,
    Timeout,
    TimeoutCertificate,
    Vote,
)
from consensus.types import GENESIS_HASH, Certificate, SignedMessage, make_block, signing_bytes
from qenex_node.config import NodeConfig
from qenex_node.transport import codec

CHAIN = "qenex-test"
NODES = 64
QUORUM = NODES - (NODES - 1) // 3  # 43
ML_DSA_87_SIGNATURE_BYTES = 4_627
FRAME_BYTES_MAX = next(f.default for f in dataclasses.fields(NodeConfig)
                       if f.name == "frame_bytes_max")
SIG = b"\x5a" * ML_DSA_87_SIGNATURE_BYTES


def big_qc(round_number: int = 9, height: int = 5) -> QuorumCertificate:
    votes = tuple(SignedMessage(v, Vote(round_number, height, b"\x01" * 32, round_number - 1,
                                        b"\x02" * 32, v), SIG) for v in range(QUORUM))
    return QuorumCertificate(round_number, height, b"\x01" * 32, round_number - 1,
                             b"\x02" * 32, votes)


def big_tc(round_number: int = 10) -> TimeoutCertificate:
    return TimeoutCertificate(round_number, tuple(
        SignedMessage(v, Timeout(round_number, 9, v), SIG) for v in range(QUORUM)))


def full_block():  # type: ignore[no-untyped-def]
    config = EngineConfig(node_id=0, validators=None, chain_id=CHAIN,  # type: ignore[arg-type]
                          verifier=None)  # type: ignore[arg-type]
    tx_bytes = config.batch_bytes_max // config.batch_txs_max
    txs = tuple(i.to_bytes(4, "big") * (tx_bytes // 4) for i in range(config.batch_txs_max))
    return make_block(CHAIN, 6, b"\x01" * 32, txs, 11, 1_700_000_000_000)


def examples() -> list[object]:
    block = make_block(CHAIN, 1, GENESIS_HASH, (b"tx-1", b"tx-2"), 1, 1_000)
    vote = Vote(1, 1, block.block_hash, 0, GENESIS_HASH, 2)
    qc = QuorumCertificate(1, 1, block.block_hash, 0, GENESIS_HASH,
                           (SignedMessage(2, vote, b"sig"),))
    timeout = Timeout(3, 1, 2)
    tc = TimeoutCertificate(3, (SignedMessage(2, timeout, b"sig"),))
    return [
        Proposal(1, block, GENESIS_QC, None),
        Proposal(4, block, qc, tc),
        vote,
        timeout,
        NewView(SignedMessage(2, timeout, b"sig"), qc, tc),
        NewView(None, qc, None),
        Batch((b"tx-1", b""), 1, 7),
        BlockRequest(block.block_hash, 8),
        BlockResponse((block,), (GENESIS_QC,)),
        ReadQuery(2**48 + 1),
        ReadAnswer(2**48 + 1, 1, qc.votes),
        ReadAnswer(9, 0, ()),
    ]


@pytest.mark.parametrize("message", examples(), ids=lambda m: type(m).__name__)
def test_every_hotstuff_message_round_trips(message: object) -> None:
    wire = codec.encode_envelope(CHAIN, 3, message, b"signature")
    envelope = codec.decode_envelope(wire, CHAIN, NODES)
    assert envelope == codec.Envelope(3, message, b"signature")
    assert signing_bytes(CHAIN, envelope.message) == signing_bytes(CHAIN, message)


def frame_bytes(message: object) -> int:
    return len(codec.encode_envelope(CHAIN, 0, message, SIG))


def test_a_qc_at_n_64_is_about_200_kb_and_every_message_fits_a_frame() -> None:
    qc, tc = big_qc(), big_tc()
    assert 190_000 < frame_bytes(NewView(None, qc, None)) < 220_000
    proposal = Proposal(10 + 1, full_block(), qc, tc)
    new_view = NewView(SignedMessage(0, Timeout(11, 9, 0), SIG), qc, tc)
    read_answer = ReadAnswer(1, 5, qc.votes)  # the read barrier's proof is one QC
    for message in (proposal, new_view, qc.votes[0].message, Batch(full_block().txs, 1),
                    read_answer):
        assert frame_bytes(message) <= FRAME_BYTES_MAX, type(message).__name__
    assert frame_bytes(proposal) > 4 * 1024 * 1024  # the batch really is full size


def test_commit_certificate_at_n_64_is_one_qc() -> None:
    qc = big_qc()
    certificate = Certificate("hotstuff.qc", 4, b"\x02" * 32, qc.votes)
    out = codec._proto_class("Certificate")()
    codec.fill_proto(out, certificate)
    assert len(out.SerializeToString()) < 220_000
