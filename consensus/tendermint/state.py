"""A Tendermint validator's state: Algorithm 1's variables plus bounded message stores.

Theory of operation
-------------------
Algorithm 1 (Buchman et al. 2018) keeps h_p, round_p, step_p, decision_p, lockedValue_p,
lockedRound_p, validValue_p and validRound_p. The first seven that matter for safety -
height, round, step, lock and valid value - are one durable record (`DurableState`,
KEY_STATE) written with every change, in the same Effects as the vote that depends on it:
the driver persists before it signs (api.py), so a restarted validator resumes with its
lock. Its own last proposal, prevote and precommit are durable too (KEY_OWN): asked to
sign at a position it already signed, it re-sends that message and never another
(`own_vote`), which is the double-sign guard's rule in the engine. The read barrier's
epoch is durable too (KEY_READ_EPOCH, consensus/read_barrier.py).

Messages of the current height are kept per round, bounded by ROUNDS_AHEAD_MAX; messages
for the next height wait in `future` (bounded by `pending_messages_max`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from consensus import canonical
from consensus.api import EngineConfig
from consensus.read_barrier import ReadBarrier
from consensus.tendermint.messages import NO_ROUND, Proposal, ReadQuery, Vote, VoteStep
from consensus.tendermint.proposer import ProposerSchedule
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Block, NodeId, SignedMessage, max_faulty_bft

KEY_STATE = "tendermint.state"
KEY_OWN = "tendermint.own"
KEY_READ_EPOCH = "tendermint.read_epoch"  # the read barrier's epoch (read_barrier.py)
ROUNDS_AHEAD_MAX = 64  # rounds above ours whose messages we keep (rule 55 needs them)
BATCH_HEIGHTS_AHEAD = 2  # a validator queues batches for proposals this many heights ahead
QUEUED_TXS_MAX = 50_000  # transactions waiting for this validator's proposals
COMMITTED_TXS_REMEMBERED_MAX = 100_000  # so a re-forwarded committed tx is not re-proposed
CONFLICTING_VOTES_MAX = 4  # other votes kept per validator and position
PROGRESS_STEPS_MAX = 64  # rule firings evaluated per input (each moves step or round)


@canonical.register("tendermint.step.v1")
class Step(enum.IntEnum):
    NEW_HEIGHT = 0  # decided the last height; waiting timeout_commit (CometBFT)
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@canonical.register("tendermint.durable_state.v1")
@dataclass(frozen=True, slots=True)
class DurableState:
    height: int
    round: int
    step: Step
    locked_round: int
    locked_block: Block | None
    valid_round: int
    valid_block: Block | None


@canonical.register("tendermint.own_messages.v1")
@dataclass(frozen=True, slots=True)
class OwnMessages:
    """The last proposal, prevote and precommit this validator signed."""
    proposal: Proposal | None
    prevote: Vote | None
    precommit: Vote | None


def quorum_powers(config: EngineConfig) -> tuple[int, int]:
    """(power of 2f + 1, power of f + 1). Equal powers: bft_quorum(n, f) and f + 1."""
    powers = [v.power for v in config.validators.validators]
    total = sum(powers)
    if all(p == 1 for p in powers):
        faults = config.fault_tolerance if config.fault_tolerance is not None else \
            max_faulty_bft(total)
        return total - faults, faults + 1
    faults = max_faulty_bft(total)  # by power: f of the total, one definition
    return total - faults, faults + 1


@dataclass(slots=True)
class Replica:
    config: EngineConfig
    me: NodeId = 0
    schedule: ProposerSchedule = None  # type: ignore[assignment]
    quorum: int = 0
    skip: int = 0
    # Algorithm 1's variables.
    height: int = 1
    round: int = 0
    step: Step = Step.NEW_HEIGHT
    locked_round: int = NO_ROUND
    locked_block: Block | None = None
    valid_round: int = NO_ROUND
    valid_block: Block | None = None
    own: OwnMessages = OwnMessages(None, None, None)
    # Messages of this height: round -> proposal, (round, step) -> validator -> vote.
    proposals: dict[int, tuple[Proposal, SignedMessage]] = field(default_factory=dict)
    votes: dict[tuple[int, VoteStep], dict[NodeId, SignedMessage]] = field(default_factory=dict)
    # Other votes of an equivocating validator at one position: (round, step) ->
    # validator -> block id -> vote. Counted for their block too (see votes_for).
    conflicting: dict[tuple[int, VoteStep], dict[NodeId, dict[bytes, SignedMessage]]] = \
        field(default_factory=dict)
    round_senders: dict[int, set[NodeId]] = field(default_factory=dict)
    fired: set[tuple[str, int]] = field(default_factory=set)  # "for the first time" rules
    future: list[tuple[NodeId, object, bytes]] = field(default_factory=list)
    # Timers: kind -> (deadline tick, height, round).
    now_ticks: int = 0
    timers: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    resend_at_ticks: int = 0
    # The committed chain as this engine knows it.
    committed_height: int = 0
    committed_hash: bytes = GENESIS_HASH
    committed_timestamp_ms: int = 0
    applied_height: int = 0
    applied_root: bytes = EMPTY_ROOT
    last_timestamp_ms: int = 0
    last_commit: dict[NodeId, SignedMessage] = field(default_factory=dict)  # of height - 1
    last_commit_round: int = NO_ROUND
    # Idle (create_empty_blocks = false): timeout_commit passed with nothing to order.
    idle: bool = False
    work_seen: bool = False  # transactions offered, or a message of this height seen
    # Proposers whose round ended without their proposal, until heard from again.
    suspects: set[NodeId] = field(default_factory=set)
    helped: set[NodeId] = field(default_factory=set)  # sent our last commit this height
    # Transactions for our proposals (kept until committed; see batches.py).
    committed_txs: dict[bytes, None] = field(default_factory=dict)
    queued_txs: dict[bytes, None] = field(default_factory=dict)  # insertion-ordered
    valid_cache: dict[bytes, str | None] = field(default_factory=dict)  # this height
    # Evidence (evidence.py): id -> piece; committed ids -> height committed.
    pending_evidence: dict[bytes, object] = field(default_factory=dict)
    committed_evidence: dict[bytes, int] = field(default_factory=dict)
    committed_evidence_count: int = 0
    # Catch-up: validator -> highest height seen from it.
    peer_heights: dict[NodeId, int] = field(default_factory=dict)
    catch_up_target: int = 0
    catch_up_wait_ticks: int = 0
    behind_since_ticks: int = -1  # when a validator was first seen at a higher height
    missing_since_ticks: int = -1  # when 2f + 1 precommits named a block we do not have
    read_barrier: ReadBarrier = field(init=False)  # read_barrier.py

    def __post_init__(self) -> None:
        self.me = self.config.node_id
        self.schedule = ProposerSchedule(self.config.validators)
        self.quorum, self.skip = quorum_powers(self.config)
        # A read round ends at +2/3 of the power, not at a count of validators.
        self.read_barrier = ReadBarrier(self.config, ReadQuery,
                                        lambda senders: self.power(senders) >= self.quorum,
                                        KEY_READ_EPOCH)

    # ------------------------------------------------------------ queries
    def proposer(self, height: int | None = None, round_number: int | None = None) -> NodeId:
        return self.schedule.proposer(self.height if height is None else height,
                                      self.round if round_number is None else round_number)

    def power(self, voters: object) -> int:
        validators = self.config.validators.validators
        return sum(validators[v].power for v in voters)  # type: ignore[attr-defined]

    def votes_for(self, round_number: int, step: VoteStep, block_hash: bytes | None) -> int:
        """Power of the validators with a vote of (round, step) naming `block_hash` (None:
        any). A validator that signed two votes counts for both blocks: it did sign each,
        and two quorums still share an honest validator, who signs only one (so this is
        as safe as Algorithm 1's count, and lets a laggard use the vote the others used)."""
        votes = self.votes.get((round_number, step), {})
        if block_hash is None:
            return self.power(votes)
        extra = self.conflicting.get((round_number, step), {})
        return self.power(v for v, s in votes.items() if s.message.block_hash == block_hash
                          or block_hash in extra.get(v, ()))

    def signed_vote(self, round_number: int, step: VoteStep, validator: NodeId,
                    block_hash: bytes) -> SignedMessage | None:
        first = self.votes.get((round_number, step), {}).get(validator)
        if first is not None and first.message.block_hash == block_hash:
            return first
        return self.conflicting.get((round_number, step), {}).get(validator, {}).get(block_hash)

    def durable(self) -> DurableState:
        return DurableState(self.height, self.round, self.step, self.locked_round,
                            self.locked_block, self.valid_round, self.valid_block)

    def next_proposer(self) -> NodeId:
        """Where the driver forwards a batch (`status().leader`): the first proposer of
        a coming height not suspected of having crashed. Not this height's: the batch
        reaches that validator's mempool and its engine one block interval later, when
        the next height's proposer is usually still to propose, this height's not."""
        if self.step == Step.NEW_HEIGHT and self.idle and self.proposer() not in self.suspects:
            return self.proposer()  # it starts the height as soon as it gets them
        for ahead in range(1, self.config.validators.size + 1):
            proposer = self.proposer(self.height + ahead, 0)
            if proposer not in self.suspects:
                return proposer
        return self.proposer(self.height + 1, 0)

    def takes_batches(self) -> bool:
        """This validator proposes soon: the round under way before it proposed, or
        the first round of one of the next BATCH_HEIGHTS_AHEAD heights."""
        if self.proposer() == self.me and self.round not in self.proposals:
            return True
        return any(self.proposer(self.height + ahead, 0) == self.me
                   for ahead in range(1, BATCH_HEIGHTS_AHEAD + 1))
