"""Builders for evidence-index tests: real Tendermint DuplicateVoteEvidence, signed with the
simulator's deterministic signer, carried in blocks the way a proposer includes it."""
from __future__ import annotations

from consensus.tendermint import TendermintEngine
from consensus.tendermint.evidence import evidence_entry, make_evidence
from consensus.tendermint.messages import DuplicateVoteEvidence, Vote, VoteStep
from consensus.types import Block, SignedMessage
from crypto.simulated import SimulatedSigner
from ledger.ledger import Ledger
from tests.unit.ledger_helpers import CHAIN, next_block

SEED = 11


def piece(validator: int, height: int, round_: int = 0,
          step: VoteStep = VoteStep.PRECOMMIT) -> DuplicateVoteEvidence:
    """`validator` signed two different blocks at (height, round_, step)."""
    signer = SimulatedSigner(SEED, validator, CHAIN)
    votes = [Vote(height, round_, step, bytes([tag]) * 32, validator) for tag in (0xB0, 0xA0)]
    return make_evidence(*(SignedMessage(validator, v, signer.sign(v)) for v in votes))


def block_with(ledger: Ledger, pieces: list[DuplicateVoteEvidence],
               txs: tuple[bytes, ...] = ()) -> Block:
    """The next block of `ledger`, carrying `txs` then the pieces as tagged entries."""
    return next_block(ledger, list(txs) + [evidence_entry(p) for p in pieces])


evidence_in_block = TendermintEngine.evidence_in_block
