"""Tendermint (Buchman, Kwon & Milosevic 2018) as a pure sans-IO engine."""
from consensus.api import register_engine
from consensus.tendermint.engine import TendermintEngine
from consensus.tendermint.evidence import evidence_in_block
from consensus.tendermint.messages import Batch, DuplicateVoteEvidence, Proposal, Vote, VoteStep

register_engine("tendermint", TendermintEngine)

__all__ = ["Batch", "DuplicateVoteEvidence", "Proposal", "TendermintEngine", "Vote",
           "VoteStep", "evidence_in_block"]
