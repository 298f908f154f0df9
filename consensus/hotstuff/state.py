"""Replica state of the HotStuff engine: what is durable and what is only in memory.

Theory of operation
-------------------
DiemBFT v4 §4-5 splits a replica into the block tree (blocks waiting to commit and the QCs
that certify them), the pacemaker (current round, its timer, pending timeouts) and the
safety rules (safety.py). Here:

* `blocks` - uncommitted blocks by hash, `justify` - the QC each block's proposal
  carried (the QC of its parent), `qcs` - a QC certifying each block: together the block
  tree from the committed tip, pruned at every commit (only heights above it are kept);
* `round`, `high_qc`, `high_tc` - the pacemaker: round = max(high QC round, high TC
  round) + 1 (Jolteon §3 'round advancement'), the timer in ticks, `failed_rounds`;
* `votes` / `timeouts` - what the next leader and every replica collect, per round,
  inside a bounded window of rounds;
* `queued` / `offered` / `suspects` - batches waiting for this replica's proposal, its own
  clients' batches handed on and not final yet, and replicas that failed a round
  (voting.py explains the forwarding rules).

Durable records (`Persist`, written before any message that depends on them is sent):

  hotstuff/safety    SafetyData: last voted round, preferred round, highest timeout
                     round, the last vote and timeout (re-sent unchanged after a restart)
  hotstuff/proposal  this leader's latest Proposal, written before it is signed
  hotstuff/high_qc   the highest QC known (timeouts must carry it; restores the round)
  hotstuff/high_tc   the highest TC known (restores the round after a timeout)
  hotstuff/read_epoch  the read barrier's epoch, raised by the first read of each life

Committed blocks need no record: the driver writes them with the records, and `Restore`
reports how far the ledger got.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consensus.api import EngineConfig
from consensus.hotstuff.messages import (
    GENESIS_QC,
    Proposal,
    QuorumCertificate,
    ReadQuery,
    TimeoutCertificate,
    leader_of,
)
from consensus.hotstuff.safety import SafetyData
from consensus.read_barrier import ReadBarrier
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Block, NodeId, SignedMessage, max_faulty_bft

KEY_SAFETY = "hotstuff/safety"
KEY_PROPOSAL = "hotstuff/proposal"
KEY_HIGH_QC = "hotstuff/high_qc"
KEY_HIGH_TC = "hotstuff/high_tc"
KEY_READ_EPOCH = "hotstuff/read_epoch"  # the read barrier's epoch (read_barrier.py)

ROUNDS_AHEAD_MAX = 32  # votes, timeouts and proposals accepted up to round + this
BLOCKS_MAX = 1_024  # uncommitted blocks held; a flood beyond it is refused
TIMEOUT_DOUBLINGS_MAX = 6  # round timeout grows to at most 64 x the base
SUSPECT_TIMEOUT_DIVISOR = 4  # rounds led or collected by a suspect: a quarter of the base
QUEUED_BATCHES_MAX = 64  # batches waiting for this replica's next proposal
BATCH_HOPS_MAX = 2  # forwards of one batch before a replica keeps it for its own turn
OFFERED_BATCHES_MAX = 64  # own batches handed on and kept until they commit
RESEND_ROUNDS = 8  # rounds after which an own batch not yet final is handed on again
# Transactions this replica saw become final, remembered so a re-handed or re-offered
# batch cannot order one twice (voting.vouch). Past the bound the oldest are forgotten and
# `final_from` rises: batches older than what is remembered are then dropped, and the
# driver's mempool (which never offers a committed transaction again) offers them anew.
FINAL_TXS_MAX = 50_000


def tx_key(tx: bytes) -> bytes:
    """A fixed-size key for a transaction: `final_txs` holds keys, not whole envelopes."""
    return hashlib.sha256(tx).digest()


@dataclass(slots=True)
class Replica:
    config: EngineConfig
    safety: SafetyData = field(default_factory=SafetyData)
    # Pacemaker.
    round: int = 1
    high_qc: QuorumCertificate = GENESIS_QC
    high_tc: TimeoutCertificate | None = None
    failed_rounds: int = 0  # rounds ended by a TC since the last QC: the timer doubles
    round_ticks: int = 0
    timed_out_view: object | None = None  # the NewView sent for `round` (retransmitted)
    # Block tree.
    committed_height: int = 0
    committed_hash: bytes = GENESIS_HASH
    applied_height: int = 0
    applied_root: bytes = EMPTY_ROOT
    last_timestamp_ms: int = 0
    blocks: dict[bytes, Block] = field(default_factory=dict)
    justify: dict[bytes, QuorumCertificate] = field(default_factory=dict)
    qcs: dict[bytes, QuorumCertificate] = field(default_factory=dict)
    commit_qc: QuorumCertificate | None = None  # highest QC that commits its parent
    commit_source: NodeId | None = None  # who showed it to us (likely holds the blocks)
    commit_wait_ticks: int = 0  # how long commit_qc has waited for missing blocks
    tx_height: int = 0  # highest height of a block with transactions seen in a proposal
    # Highest height a read barrier answer named (read_barrier.py): like tx_height, the
    # leaders propose (empty blocks if need be) until it is final, or the read waits.
    read_height: int = 0
    # Per-round collections, bounded to [round - 1, round + ROUNDS_AHEAD_MAX].
    proposals: dict[int, bytes] = field(default_factory=dict)  # round -> block hash
    votes: dict[int, dict[NodeId, SignedMessage]] = field(default_factory=dict)
    timeouts: dict[int, dict[NodeId, SignedMessage]] = field(default_factory=dict)
    # Leader.
    my_proposal: Proposal | None = None
    announced_round: int = 0  # round of the last QC broadcast as sync info
    # For our next proposal: (txs, height through which they are known absent).
    queued: list[tuple[tuple[bytes, ...], int]] = field(default_factory=list)
    queued_round: int = 0  # round in which the last batch was queued here
    # (round handed on, txs, height through which they are known absent).
    offered: list[tuple[int, tuple[bytes, ...], int]] = field(default_factory=list)
    helped: dict[NodeId, int] = field(default_factory=dict)  # laggard -> round we synced it
    suspects: set[NodeId] = field(default_factory=set)  # silent at the last TC, not heard since
    # Replicas that signed two different proposals or votes for one round: proven
    # byzantine, so never cleared (at most one entry per validator).
    equivocators: set[NodeId] = field(default_factory=set)
    # Keys of recently final transactions -> their height (insertion-ordered, at most
    # FINAL_TXS_MAX), complete for every committed height >= final_from: heights below it
    # were committed by catch-up or before a restart, whose transactions we never saw.
    final_txs: dict[bytes, int] = field(default_factory=dict)
    final_from: int = 1
    # Block retrieval and catch-up.
    retrievals: int = 0  # block requests sent: rotates the peer asked
    served: dict[NodeId, int] = field(default_factory=dict)  # peer -> round we answered it
    catch_up_target: int = 0
    catch_up_wait_ticks: int = 0
    catch_up_peers: tuple[NodeId, ...] = ()
    read_barrier: ReadBarrier = field(init=False)

    def __post_init__(self) -> None:
        self.read_barrier = ReadBarrier(self.config, ReadQuery,
                                        lambda senders: len(senders) >= self.quorum,
                                        KEY_READ_EPOCH)

    # ------------------------------------------------------------ arithmetic
    @property
    def me(self) -> NodeId:
        return self.config.node_id

    @property
    def nodes(self) -> int:
        return self.config.validators.size

    @property
    def faults(self) -> int:
        if self.config.fault_tolerance is not None:
            return self.config.fault_tolerance
        return max_faulty_bft(self.nodes)

    @property
    def quorum(self) -> int:
        """2f + 1 (n - f in general: any two quorums share an honest replica)."""
        return self.nodes - self.faults

    def leader(self, round_number: int | None = None) -> NodeId:
        return leader_of(self.round if round_number is None else round_number, self.nodes)

    def wanted_height(self) -> int:
        """The height the leaders work to make final even with nothing to order: the
        highest block with transactions, or the index a read may wait for."""
        return max(self.tx_height, self.read_height)

    def my_round_open(self) -> bool:
        """This replica has not proposed in the current round yet."""
        return self.my_proposal is None or self.my_proposal.round < self.round

    def next_proposer(self) -> NodeId:
        """Who proposes next: this round's leader until this replica has voted (or
        timed out) in the round, then the next round's leader, which collects the votes."""
        if self.safety.last_voted_round >= self.round:
            return self.leader(self.round + 1)
        return self.leader(self.round)

    def distrusted(self, node: NodeId) -> bool:
        """A suspect (silent at the last TC) or a proven equivocator: its rounds get the
        short timeout and no batches are handed to it. An equivocator (two signed
        proposals or votes for one round, e.g. a twin) keeps leading and collecting
        votes every n rounds with round-robin rotation, and a split round never forms a
        QC; waiting out a doubled timeout there each time stalls the cluster for seconds
        (DiemBFT v4 §6 excludes such leaders by reputation; this only shortens their
        rounds, which affects liveness, never safety)."""
        return node in self.suspects or node in self.equivocators

    def round_timeout_ticks(self) -> int:
        """Doubles with every round that ended in a TC, back to the base after a QC
        (DiemBFT v4 §5 'round_timer', exponential back-off). A round whose leader or vote
        collector is a suspect - a replica that sent no timeout to the last TC and has not
        been heard from since - gets a quarter of the base and no
        back-off: the doubling waits out slow networks, not crashed replicas, whose turn
        comes back every n rounds with round-robin rotation. Timeouts only affect
        liveness, so a wrong suspicion costs at most one short round."""
        if self.distrusted(self.leader()) or self.distrusted(self.leader(self.round + 1)):
            return max(1, self.config.view_timeout_ticks // SUSPECT_TIMEOUT_DIVISOR)
        return self.config.view_timeout_ticks << min(self.failed_rounds, TIMEOUT_DOUBLINGS_MAX)
