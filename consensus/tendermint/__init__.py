"""Tendermint (Buchman, Kwon & Milosevic 2018) as a pure sans-IO engine."""
from consensus.api import register_engine
from consensus.tendermint.engine import TendermintEngine
from consensus.tendermint.evidence import evidence_in_block
from consensus.tendermint.messages import (
           DuplicateVoteEvidence,
           Proposal,
           Vote,
           Votes,
           VoteStep,
)

register_engine("tendermint", TendermintEngine)

__all__ = [
           "DuplicateVoteEvidence",
           "Proposal",
           "TendermintEngine",
           "Vote",
           "VoteStep",
           "Votes",
           "evidence_in_block",
]
