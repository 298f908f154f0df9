"""Tendermint wire messages (Buchman, Kwon & Milosevic, "The latest gossip on BFT
consensus", 2018, Algorithm 1: PROPOSAL, PREVOTE, PRECOMMIT).

Theory of operation
-------------------
Algorithm 1 exchanges three kinds of message per (height, round): the proposer's
⟨PROPOSAL, h, r, v, vr⟩ (vr is the valid round, the proof-of-lock round, -1 when the
value is new) and every validator's ⟨PREVOTE, h, r, id(v)⟩ and ⟨PRECOMMIT, h, r, id(v)⟩,
where id(v) may be nil (here: b"").

Each dataclass mirrors one message of the Tendermint section of
proto/qenex/v1/consensus.proto (`Vote` <-> `TendermintVote`, ...) field for field, so the
generic codec maps them by name.

Beyond the paper, as in CometBFT:
* a proposal carries `last_commit`, the precommits its proposer collected for the
  previous height (CometBFT's `Block.LastCommit`, kept beside the block because signatures
  never enter a block hash). Everyone learns those signed precommits: a validator that
  missed them decides the previous height, and one that holds a different precommit of
  the same signer has evidence of equivocation (evidence.py);
* `DuplicateVoteEvidence` is CometBFT's evidence type of the same name: two signed votes
  of one validator for one (height, round, type) naming different block ids;
* `Votes` relays signed votes: the last commit to a validator seen voting at a decided
  height, and the proof-of-lock prevotes of our valid round while a later round stalls
  (without them a validator that lost those prevotes refuses a re-proposal, line 28).

Sign positions (the double-sign guard's streams): one proposal, one prevote and one
precommit per (height, round). Evidence and Votes carry others' signed votes and
have none; nor have the read barrier's READ-QUERY and READ-ANSWER, which bind nothing.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from consensus import canonical
from consensus.types import Block, NodeId, SignedMessage

NIL = b""  # id(nil): a vote for no block
NO_ROUND = -1  # lockedRound / validRound / pol_round before anything was locked


@canonical.register("tendermint.vote_step.v1")
class VoteStep(enum.IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


@canonical.register("tendermint.vote.v1")
@dataclass(frozen=True, slots=True)
class Vote:
    """⟨PREVOTE|PRECOMMIT, h, r, id(v)⟩ of `validator`; block_hash NIL for nil."""
    height: int
    round: int
    step: VoteStep
    block_hash: bytes
    validator: NodeId

    def sign_position(self) -> tuple[object, ...]:
        name = "tendermint.prevote" if self.step == VoteStep.PREVOTE else "tendermint.precommit"
        return (name, self.height, self.round)


@canonical.register("tendermint.proposal.v1")
@dataclass(frozen=True, slots=True)
class Proposal:
    """⟨PROPOSAL, h, r, v, vr⟩ from `proposer`; `last_commit` holds signed precommits
    of height - 1 (any block or nil), sorted by validator."""
    height: int
    round: int
    block: Block
    pol_round: int
    proposer: NodeId
    last_commit: tuple[SignedMessage, ...]

    def sign_position(self) -> tuple[object, ...]:
        return ("tendermint.proposal", self.height, self.round)


@canonical.register("tendermint.duplicate_vote_evidence.v1")
@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two signed votes of one validator at one (height, round, step), different block
    ids; `vote_a` is the one with the smaller block id, so one piece has one form."""
    vote_a: SignedMessage
    vote_b: SignedMessage

    @property
    def vote(self) -> Vote:
        return self.vote_a.message  # type: ignore[return-value]

    @property
    def validator(self) -> NodeId:
        return self.vote_a.sender

    @property
    def height(self) -> int:
        return self.vote.height


@canonical.register("tendermint.votes.v1")
@dataclass(frozen=True, slots=True)
class Votes:
    """Signed votes of (height, round) a validator holds, relayed (CometBFT's vote
    gossip): the last commit, to a validator still voting at a decided height; the
    prevotes of our valid round (its POL), while a later round is stalled. Self-
    certifying: each vote is checked on arrival."""
    height: int
    round: int
    votes: tuple[SignedMessage, ...]


@canonical.register("tendermint.read_query.v1")
@dataclass(frozen=True, slots=True)
class ReadQuery:
    """Round `nonce` of the read barrier (consensus/read_barrier.py): "what height do
    you hold a certificate for?" Binds nothing."""
    nonce: int

    def sign_position(self) -> None:
        return None


@canonical.register("tendermint.read_answer.v1")
@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """The answer to ReadQuery(nonce): the highest height this replica holds a quorum
    certificate for (tendermint/read_barrier.py) and its signed votes: the
    precommits of its last commit, or the prevotes of a polka at its height; empty when it cannot
    prove its committed height (after a restart or a catch-up). Binds nothing."""
    nonce: int
    height: int
    proof: tuple[SignedMessage, ...]

    def sign_position(self) -> None:
        return None


TENDERMINT_MESSAGES = (Proposal, Vote, DuplicateVoteEvidence, Votes, ReadQuery, ReadAnswer)
