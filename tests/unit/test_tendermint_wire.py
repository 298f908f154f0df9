"""Tendermint wire messages: every one round-trips through the codec exactly (nil votes,
pol_round -1, evidence, last_commit), and the canonical bytes of a vote are pinned."""
from __future__ import annotations

import pytest

from consensus import canonical
from consensus.tendermint.evidence import evidence_entry, evidence_in_block, make_evidence
from consensus.tendermint.messages import (
    NIL,
    DuplicateVoteEvidence,
    Proposal,
    ReadAnswer,
    ReadQuery,
    Vote,
    Votes,
    VoteStep,
)
from consensus.types import GENESIS_HASH, SignedMessage, make_block, signing_bytes
from qenex_node.transport import codec

CHAIN = "qenex-test"
NODES = 7


def examples() -> list[object]:
    block = make_block(CHAIN, 2, GENESIS_HASH, (b"tx-1", b"tx-2"), 1, 1_000)
    pre_a = Vote(1, 0, VoteStep.PRECOMMIT, b"\x01" * 32, 3)
    pre_b = Vote(1, 0, VoteStep.PRECOMMIT, b"\x02" * 32, 3)
    evidence = make_evidence(SignedMessage(3, pre_b, b"sig-b"), SignedMessage(3, pre_a, b"sig-a"))
    return [
        Proposal(2, 0, block, -1, 1, ()),
        Proposal(2, 3, block, 1, 1, (SignedMessage(3, pre_a, b"sig"),
                                     SignedMessage(4, Vote(1, 0, VoteStep.PRECOMMIT, NIL, 4),
                                                   b"sig"))),
        Vote(2, 0, VoteStep.PREVOTE, block.block_hash, 5),
        Vote(2, 1, VoteStep.PREVOTE, NIL, 5),
        Vote(2, 1, VoteStep.PRECOMMIT, NIL, 6),
        evidence,
        Votes(1, 0, (SignedMessage(3, pre_a, b"sig"),
                          SignedMessage(4, Vote(1, 0, VoteStep.PRECOMMIT, NIL, 4), b"sig"))),
        ReadQuery(2**48 + 1),
        ReadAnswer(2**48 + 1, 1, (SignedMessage(3, pre_a, b"sig"),)),
        ReadAnswer(9, 0, ()),
    ]


@pytest.mark.parametrize("message", examples(), ids=lambda m: type(m).__name__)
def test_every_tendermint_message_round_trips(message: object) -> None:
    wire = codec.encode_envelope(CHAIN, 3, message, b"signature")
    envelope = codec.decode_envelope(wire, CHAIN, NODES)
    assert envelope == codec.Envelope(3, message, b"signature")
    assert signing_bytes(CHAIN, envelope.message) == signing_bytes(CHAIN, message)


def test_a_vote_has_pinned_canonical_bytes() -> None:
    vote = Vote(5, 2, VoteStep.PREVOTE, b"\xab" * 32, 3)
    assert canonical.digest(vote).hex()[:16] == GOLDEN_VOTE_DIGEST
    assert canonical.decode(canonical.encode(vote)) == vote


def test_evidence_travels_in_a_block_as_a_tagged_entry() -> None:
    evidence = examples()[5]
    assert isinstance(evidence, DuplicateVoteEvidence)
    block = make_block(CHAIN, 3, GENESIS_HASH, (b"tx", evidence_entry(evidence)), 1, 1)
    assert evidence_in_block(block) == (evidence,)
    assert evidence.vote_a.message.block_hash < evidence.vote_b.message.block_hash


GOLDEN_VOTE_DIGEST = "c52803832d412a8f"  # wire name tendermint.vote.v1; changes fork the chain


ML_DSA_87_SIGNATURE_BYTES = 4_627
BIG_NODES = 64


def test_a_full_proposal_with_a_last_commit_at_n_64_fits_a_frame() -> None:
    """A full batch (batch_bytes_max) plus 64 precommits with ML-DSA-87 signatures."""
    import dataclasses

    from consensus.api import EngineConfig
    from qenex_node.config import NodeConfig

    limits = EngineConfig(node_id=0, validators=None, chain_id=CHAIN,  # type: ignore[arg-type]
                          verifier=None)  # type: ignore[arg-type]
    frame_max = next(f.default for f in dataclasses.fields(NodeConfig)
                     if f.name == "frame_bytes_max")
    tx_bytes = limits.batch_bytes_max // limits.batch_txs_max
    txs = tuple(i.to_bytes(4, "big") * (tx_bytes // 4) for i in range(limits.batch_txs_max))
    block = make_block(CHAIN, 6, b"\x01" * 32, txs, 11, 1_700_000_000_000)
    sig = b"\x5a" * ML_DSA_87_SIGNATURE_BYTES
    last_commit = tuple(SignedMessage(v, Vote(5, 0, VoteStep.PRECOMMIT, b"\x01" * 32, v), sig)
                        for v in range(BIG_NODES))
    wire = codec.encode_envelope(CHAIN, 0, Proposal(6, 0, block, -1, 11, last_commit), sig)
    assert 4 * 1024 * 1024 < len(wire) <= frame_max
