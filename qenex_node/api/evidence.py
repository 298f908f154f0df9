"""Committed evidence as clients see it: GetEvidence's limits and the flat view of a piece.

The evidence index (ledger/storage/evidence.py) keeps each piece's canonical bytes; a
query answer also shows what those bytes say (who, where, which two blocks, the two
signatures), so a client can act on it without decoding our canonical encoding. The raw
bytes travel too: they are what the chain committed and what a piece's id hashes.
"""
from __future__ import annotations

from typing import TypeGuard

from consensus import canonical
from consensus.tendermint.messages import DuplicateVoteEvidence, Vote
from qenex_node.api.backend import EvidenceView

EVIDENCE_LIMIT_DEFAULT = 100  # pieces per page when the request says 0
EVIDENCE_LIMIT_MAX = 1_000  # more is refused (BAD_REQUEST), never silently capped


def evidence_view(height: int, index: int, validator: int, data: bytes) -> EvidenceView:
    """The view of one indexed piece. Bytes that are not a piece of evidence mean the
    index is broken (it holds only what an engine found in a committed block): a bug."""
    piece = canonical.decode(data)
    if not _is_piece_against(piece, validator):
        raise ValueError(f"evidence index entry {height}/{index} is not a piece against "
                         f"validator {validator}")
    vote = piece.vote
    return EvidenceView(height=height, index=index, validator=validator,
                        evidence_height=vote.height, round=vote.round, vote_type=vote.step.name,
                        block_a=vote.block_hash,
                        block_b=piece.vote_b.message.block_hash,  # type: ignore[attr-defined]
                        signature_a=piece.vote_a.signature, signature_b=piece.vote_b.signature,
                        evidence=data)


def _is_piece_against(piece: object, validator: int) -> TypeGuard[DuplicateVoteEvidence]:
    return (isinstance(piece, DuplicateVoteEvidence) and piece.validator == validator
            and isinstance(piece.vote_a.message, Vote) and isinstance(piece.vote_b.message, Vote))
