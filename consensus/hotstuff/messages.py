"""HotStuff wire messages, in the 2-chain form of Jolteon / DiemBFT v4.

Theory of operation
-------------------
Gelashvili et al., "Jolteon and Ditto" (FC 2022) §3 and the DiemBFT v4 report (2021)
§4 keep chained HotStuff's linear happy path - a leader broadcasts one PROPOSAL, every
replica sends one VOTE to the *next* leader, which aggregates 2f + 1 votes into a quorum
certificate (QC) - and replace the three-chain commit by two chains plus timeout
certificates (TC): a round whose leader fails ends when 2f + 1 replicas broadcast a
TIMEOUT naming the round of their highest QC.

Each dataclass mirrors one message of the HotStuff section of
proto/qenex/v1/consensus.proto (`Vote` <-> `HotStuffVote`, ...), field for field, so the
generic codec maps them by name. Rounds are HotStuff's own clock and are separate from
block heights: a block header has no round; the proposal and the votes carry it.

What a vote names. Following DiemBFT v4's VoteInfo (id, round, parent id, parent round),
a vote names the proposed block *and its parent* with their rounds. So a QC alone says
"2f + 1 replicas accepted block C of round r', whose parent is B certified in round r";
when r' = r + 1 that QC is a proof that B is final (the 2-chain rule), which is what
`Commit` carries and what a third party checks (certificates.py).

Signatures. A TIMEOUT is signed on its own and small (round, high QC round, voter), as in
DiemBFT v4's TimeoutInfo: a TC holds 2f + 1 of them, not 2f + 1 QCs, so it stays linear in
n (about 200 KB at n = 64 with ML-DSA-87) instead of quadratic. The replica's high QC
travels beside it in a NEW-VIEW (DiemBFT's TimeoutMsg with its sync info), whose own
envelope signature only authenticates the channel: everything inside is self-certifying.

Sign positions (double-sign guard streams, monotonic): one proposal, one vote and one
timeout per round. The read barrier's READ-QUERY and READ-ANSWER bind nothing and have
none.
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus import canonical
from consensus.types import GENESIS_HASH, Block, NodeId, SignedMessage


def leader_of(round_number: int, nodes: int) -> NodeId:
    """Round-robin leader rotation over the validator set (Jolteon §3, DiemBFT v4 §5)."""
    return round_number % nodes


@canonical.register("hotstuff.vote.v1")
@dataclass(frozen=True, slots=True)
class Vote:
    """A vote for block `block_hash` of `round`, whose parent is `parent_hash` certified
    in `parent_round` (the QC the proposal carried). Sent to the leader of round + 1."""
    round: int
    height: int
    block_hash: bytes
    parent_round: int
    parent_hash: bytes
    voter: NodeId

    def sign_position(self) -> tuple[object, ...]:
        return ("hotstuff.vote", self.round)


@canonical.register("hotstuff.quorum_certificate.v1")
@dataclass(frozen=True, slots=True)
class QuorumCertificate:
    """2f + 1 signed votes with the same vote data (all fields but `voter`)."""
    round: int
    height: int
    block_hash: bytes
    parent_round: int
    parent_hash: bytes
    votes: tuple[SignedMessage, ...]

    def vote_of(self, voter: NodeId) -> Vote:
        return Vote(self.round, self.height, self.block_hash, self.parent_round,
                    self.parent_hash, voter)

    def commits_parent(self) -> bool:
        """The 2-chain rule: a certified block whose parent is certified one round
        earlier makes that parent final (Jolteon §3, DiemBFT v4 §4 'consecutive')."""
        return self.round == self.parent_round + 1 and self.height > 1

    def commits_height(self) -> int:
        """The height this QC makes final, or -1 when it makes nothing final itself."""
        return self.height - 1 if self.commits_parent() else -1


# The genesis block is certified by definition, in round 0 (DiemBFT v4 §4, 'genesis QC').
GENESIS_QC = QuorumCertificate(0, 0, GENESIS_HASH, 0, GENESIS_HASH, ())


@canonical.register("hotstuff.timeout.v1")
@dataclass(frozen=True, slots=True)
class Timeout:
    """'I give up on `round`; my highest QC is of `high_qc_round`' (DiemBFT v4 TimeoutInfo)."""
    round: int
    high_qc_round: int
    voter: NodeId

    def sign_position(self) -> tuple[object, ...]:
        return ("hotstuff.timeout", self.round)


@canonical.register("hotstuff.timeout_certificate.v1")
@dataclass(frozen=True, slots=True)
class TimeoutCertificate:
    """2f + 1 signed timeouts of one round from distinct replicas."""
    round: int
    timeouts: tuple[SignedMessage, ...]

    def high_qc_round(self) -> int:
        """max of the timeouts' high QC rounds: a proposal justified by this TC must
        extend a QC at least this high (Jolteon §3 'safe to extend')."""
        return max((s.message.high_qc_round for s in self.timeouts  # type: ignore[attr-defined]
                    if isinstance(s.message, Timeout)), default=0)


@canonical.register("hotstuff.proposal.v1")
@dataclass(frozen=True, slots=True)
class Proposal:
    """The leader of `round` proposes `block`, extending the block `justify` certifies.
    `last_round_tc` is the TC of round - 1 when `justify` is not of round - 1."""
    round: int
    block: Block
    justify: QuorumCertificate
    last_round_tc: TimeoutCertificate | None

    def sign_position(self) -> tuple[object, ...]:
        return ("hotstuff.proposal", self.round)


@canonical.register("hotstuff.new_view.v1")
@dataclass(frozen=True, slots=True)
class NewView:
    """A timeout with the sender's highest QC and the TC that ended the previous round
    (DiemBFT v4 TimeoutMsg). With `timeout` None it is sync info only: sent to a replica
    that is rounds behind. No sign position: its contents are self-certifying."""
    timeout: SignedMessage | None
    high_qc: QuorumCertificate
    last_round_tc: TimeoutCertificate | None


@canonical.register("hotstuff.batch.v2")
@dataclass(frozen=True, slots=True)
class Batch:
    """Transactions handed engine to engine to the replica that proposes next (voting.py
    explains why the driver's mempool forwarding is not enough with rotating leaders).
    `hops` counts forwards, so a batch chasing a moving leader stops after a few.
    `absent_through_height`: the sender knows none of `txs` is in a committed block at or
    below this height, so a receiver that saw every block above it can tell whether one
    became final meanwhile (voting.vouch; v2 added it)."""
    txs: tuple[bytes, ...]
    hops: int
    absent_through_height: int = 0


@canonical.register("hotstuff.block_request.v1")
@dataclass(frozen=True, slots=True)
class BlockRequest:
    """Send me block `block_hash` and up to count - 1 of its ancestors (retrieval.py)."""
    block_hash: bytes
    count: int


@canonical.register("hotstuff.block_response.v1")
@dataclass(frozen=True, slots=True)
class BlockResponse:
    """Blocks from the requested one down, each with the QC its proposal carried
    (`justifies[i]` certifies the parent of `blocks[i]`). Self-certifying: the requester
    checks hashes against what it is missing and the QCs' signatures."""
    blocks: tuple[Block, ...]
    justifies: tuple[QuorumCertificate, ...]


@canonical.register("hotstuff.read_query.v1")
@dataclass(frozen=True, slots=True)
class ReadQuery:
    """Round `nonce` of the read barrier (consensus/read_barrier.py): "what height do
    you hold a certificate for?" Binds nothing."""
    nonce: int

    def sign_position(self) -> None:
        return None


@canonical.register("hotstuff.read_answer.v1")
@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """The answer to ReadQuery(nonce): the highest height this replica holds a quorum
    certificate for (hotstuff/read_barrier.py) and the signed votes of the QC
    certifying the block at that height; empty when it cannot
    prove its committed height (after a restart or a catch-up). Binds nothing."""
    nonce: int
    height: int
    proof: tuple[SignedMessage, ...]

    def sign_position(self) -> None:
        return None


HOTSTUFF_MESSAGES = (Proposal, Vote, Timeout, NewView, Batch, BlockRequest, BlockResponse,
                     ReadQuery, ReadAnswer)
