"""The engine contract: every consensus engine is a pure, sans-IO state machine.

    effects = engine.step(input)

Inputs are `Tick`, `Receive`, `Propose`, `Restore`, two feedback inputs the driver
gives after carrying out a commit or a catch-up (`Applied`, `Synced`), and two requests
from clients or operators (`ReadRequest`, `TransferLeadership`). An engine never
reads a clock, a socket, a disk or the global RNG: time arrives as ticks, randomness from
named streams `config.rng("election")` split off the config's seed, durable state through
`Restore`, and messages already
signature-checked by the driver.

The driver carries out `Effects` in this order, and only then feeds the next input:
  1. persist  - write `persist` ops (and the ledger's block write) in one synced transaction;
  2. send     - sign each outbound message (through the double-sign guard) and send it.
                A broadcast goes to every validator *including the sender*: the driver
                hands the sender's own signed copy back as `Receive(self, msg, signature)`,
                so an engine counts its own vote exactly like anyone else's and holds its
                signature for the certificates it builds;
  3. commit   - apply committed blocks to the ledger in height order, answer clients, then
                feed `Applied(height, block_hash, state_root)` back;
  4. catch_up - fetch the blocks named by `CatchUp` from peers, check their certificates,
                apply them, then feed `Synced(height, block_hash, state_root)`;
  5. reads    - each `ReadReady(request_id, index)` answers a `ReadRequest`: serve it
                once the ledger has applied `index` (which may lie above what this node
                has applied: with a BFT read barrier, above what it has committed).

How each protocol maps onto this contract
-----------------------------------------
PBFT (Castro & Liskov 1999/2002). One block per sequence number. The primary of view v
turns `Propose` into PRE-PREPARE(v, n, digest, block); PREPARE and COMMIT votes arrive as
`Receive`; the prepared certificate (pre-prepare + 2f matching prepares) and the commit
certificate (2f + 1 commits) are tuples of `SignedMessage`, and the commit certificate is
the `Certificate` attached to `Commit`. View change: the view-change timer counts `Tick`s;
VIEW-CHANGE carries the stable checkpoint proof and prepared certificates as signed
messages, and a replica checks a NEW-VIEW by re-deriving it from the 2f + 1 view changes
it contains, checking their signatures through `config.verifier`. Checkpoints carry the
state root each replica learns from `Applied`. Durable: view, own votes, prepared and
committed positions, stable checkpoint. A replica behind the stable checkpoint emits
`CatchUp`. Lost messages are recovered by STATUS and retransmission (TOCS 2002 §5.2).
Backups check a proposed header's timestamp and state root. `ReadRequest` runs the BFT
read barrier (consensus/read_barrier.py) on any replica: 2f + 1 replicas answer their
highest height backed by a commit, prepared or stable-checkpoint certificate, and the
maximum is the read index. PBFT refuses `TransferLeadership`.

Raft (Ongaro & Ousterhout 2014, thesis). Blocks are log entries and log index = block
height (a new leader's no-op entry is an empty block); `Propose` on the leader appends an
entry of the current term. `Tick` drives randomised election timeouts (seeded
RNG) and heartbeats; pre-vote and check-quorum are internal roles. Term, vote and log
entries are `persist` ops that the driver writes before sending the reply that depends on
them (thesis §3.8). An entry commits when a majority stores it and it is of the current
term. The `Certificate` is, on the leader, the majority's signed acks of that term, each
naming the block's hash among the entries it vouches for; on a follower, the leader's
signed AppendEntries naming the block's hash among the heights it announces committed.
Every counted signature covers the block hash, so a certificate proves which block was
committed, not only the height (Raft trusts its nodes: not proof against a lying leader).
`ReadRequest` runs ReadIndex on the leader (answered in `Effects.reads`); followers refuse
it with NOT_LEADER so the driver forwards it. `TransferLeadership` is thesis §3.10.
A follower behind the leader's compacted log emits `CatchUp` (the ledger's blocks are the
snapshot), then `Synced` tells it where its log now starts.

HotStuff (Yin et al. 2019) in its 2-chain form, Jolteon / DiemBFT v4 (Gelashvili et al.
2022). The leader of round r turns `Propose` into a PROPOSAL extending its highest QC;
each replica sends its VOTE (naming the block and its parent, with their rounds) to the
leader of round r + 1 only, which aggregates 2f + 1 into a QC (a tuple of signed votes).
A block is final when its child of the next round is certified; `Commit` carries that
QC, whose votes name the committed block's hash. The pacemaker counts `Tick`s per round;
2f + 1 signed TIMEOUTs (broadcast inside a NEW-VIEW with the sender's highest QC) form a
TC that ends the round. Durable: the safety data (last voted round, preferred round,
highest timeout round, last vote and timeout), the highest QC and TC, the own proposal.
`ReadRequest` runs the BFT read barrier on any replica: 2f + 1 replicas answer the height
their highest QC certifies, with the QC; leaders keep proposing (empty blocks if need
be) until a read's index is final. Leaders rotate every round, so `TransferLeadership`
is refused.

Tendermint (Buchman, Kwon & Milosevic 2018). Height/round/step live in the engine; each
step's timeout counts `Tick`s (growing with the round). PROPOSAL, PREVOTE and PRECOMMIT
arrive as `Receive`; the lock (locked value and round) and valid value are durable;
+2/3 precommits form the `Certificate` of `Commit`. Two signed votes from one validator
for one (height, round, step) with different block ids are evidence, reported in `notes`.
`ReadRequest` runs the BFT read barrier on any validator: validators holding +2/3 of the
voting power answer their height when they hold a polka (+2/3 prevotes) there, else
their last commit. `TransferLeadership` is refused (proposers rotate by priority).

Notes (`Note`, `Rejected`) never change what the driver does: they feed logs and metrics.
"""
from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from consensus import canonical
from consensus.types import Block, Certificate, NodeId, ValidatorSet


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class Tick:
    """One unit of time has passed (the driver decides how long a tick is)."""


@dataclass(frozen=True, slots=True)
class Receive:
    """A message from `sender`, whose signature the driver has already verified."""
    sender: NodeId
    message: object
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class Propose:
    """A batch of transactions (encoded envelopes) for this node to order if it may.

    Engines that are not currently the proposer refuse it with a `Rejected` note
    (NOT_LEADER) so the driver can forward the batch; nothing is silently dropped.
    """
    txs: tuple[bytes, ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Restore:
    """Start-up: the durable records this engine persisted before, key -> value."""
    records: tuple[tuple[str, object], ...] = ()
    committed_height: int = 0  # last height the ledger has applied
    committed_hash: bytes = b""  # its block hash (b"" at genesis)
    state_root: bytes = b""


@dataclass(frozen=True, slots=True)
class Applied:
    """Feedback after commit: the ledger applied `height`, giving `state_root`."""
    height: int
    block_hash: bytes
    state_root: bytes


@dataclass(frozen=True, slots=True)
class Synced:
    """Feedback after catch-up: the ledger now holds every block up to `height`."""
    height: int
    block_hash: bytes
    state_root: bytes


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A client wants a linearizable read; `request_id` names it in the answer.

    Answered by `Effects.reads` (`ReadReady`) once the engine knows an index whose
    application makes the read linearizable - Raft by ReadIndex on the leader (thesis
    §6.4); PBFT, HotStuff and Tendermint by the BFT read barrier on any replica
    (consensus/read_barrier.py: the highest certified height among 2f + 1 answers) - or
    refused with a `Rejected` note (NOT_LEADER on a Raft follower, OVER_LIMIT when too
    many reads wait) so the driver can forward or retry. A read may also never be
    answered (a round whose answers do not arrive): the driver's read deadline answers
    the client BEHIND.
    """
    request_id: int


@dataclass(frozen=True, slots=True)
class TransferLeadership:
    """Operator request: hand leadership to validator `to` (Raft thesis §3.10)."""
    to: NodeId


Input = (Tick | Receive | Propose | Restore | Applied | Synced | ReadRequest
         | TransferLeadership)


# ---------------------------------------------------------------- effects
@dataclass(frozen=True, slots=True)
class Persist:
    """Set (value is not None) or delete (value is None) one durable engine record."""
    key: str
    value: object | None


@dataclass(frozen=True, slots=True)
class Send:
    """An unsigned message; `to=None` broadcasts to every validator including this one."""
    to: NodeId | None
    message: object


@dataclass(frozen=True, slots=True)
class Commit:
    """A block whose place in the order is final, with the proof of it."""
    block: Block
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class CatchUp:
    """Fetch committed blocks up to `target_height` from `peers` (with certificates)."""
    target_height: int
    peers: tuple[NodeId, ...]


class RejectReason(enum.IntEnum):
    MALFORMED = 1  # fields out of range or inconsistent
    WRONG_CHAIN = 2
    UNKNOWN_SENDER = 3
    BAD_SIGNATURE = 4  # a certificate or embedded vote did not verify
    STALE = 5  # below the low water mark, old view/term/round
    FUTURE = 6  # too far ahead (above the high water mark); may be buffered
    DUPLICATE = 7
    CONFLICT = 8  # contradicts what this node accepted (equivocation evidence)
    NOT_LEADER = 9  # a proposal here, or a request that only the leader serves
    WRONG_LEADER = 10  # a proposal from a node that is not the leader
    INVALID_BLOCK = 11  # bad parent, tx root or height
    OVER_LIMIT = 12  # batch, message or buffer limit
    QUORUM_MISSING = 13  # certificate without enough distinct valid votes
    UNSUPPORTED = 14  # an input this engine does not serve (e.g. a leader hand-over in PBFT)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    sender: NodeId | None
    detail: str


@dataclass(frozen=True, slots=True)
class Note:
    """Something an operator wants in a log line or a metric (leader change, view change)."""
    kind: str  # e.g. "leader", "view_change", "evidence", "checkpoint"
    detail: str
    view: int = 0
    leader: NodeId | None = None


@dataclass(frozen=True, slots=True)
class ReadReady:
    """The read `request_id`, begun before the step that produced this, is linearizable
    once the driver's ledger has applied `index`: serve it from state at >= index."""
    request_id: int
    index: int


@dataclass(frozen=True, slots=True)
class Effects:
    persist: tuple[Persist, ...] = ()
    send: tuple[Send, ...] = ()
    commit: tuple[Commit, ...] = ()
    catch_up: tuple[CatchUp, ...] = ()
    notes: tuple[Note | Rejected, ...] = ()
    reads: tuple[ReadReady, ...] = ()

    def is_empty(self) -> bool:
        return not (self.persist or self.send or self.commit or self.catch_up or self.notes
                    or self.reads)


EMPTY_EFFECTS = Effects()


@dataclass(slots=True)
class EffectsBuilder:
    """Mutable accumulator an engine fills during one `step`, then freezes."""
    persist: list[Persist] = field(default_factory=list)
    send: list[Send] = field(default_factory=list)
    commit: list[Commit] = field(default_factory=list)
    catch_up: list[CatchUp] = field(default_factory=list)
    notes: list[Note | Rejected] = field(default_factory=list)
    reads: list[ReadReady] = field(default_factory=list)

    def reject(self, reason: RejectReason, sender: NodeId | None, detail: str) -> None:
        self.notes.append(Rejected(reason, sender, detail))

    def build(self) -> Effects:
        return Effects(tuple(self.persist), tuple(self.send), tuple(self.commit),
                       tuple(self.catch_up), tuple(self.notes), tuple(self.reads))


# ---------------------------------------------------------------- config
@runtime_checkable
class Verifier(Protocol):
    """Checks a validator's signature over `signing_bytes(chain_id, message)`."""

    def verify(self, sender: NodeId, message: object, signature: bytes) -> bool: ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    node_id: NodeId
    validators: ValidatorSet
    chain_id: str
    verifier: Verifier
    seed: int = 0
    fault_tolerance: int | None = None  # f; None derives it from n and the protocol
    # Timeouts, in ticks (the driver's tick is `tick_ms`, default 10 ms).
    tick_ms: int = 10
    election_timeout_ticks: int = 100  # Raft: lower bound; randomised in [T, 2T)
    heartbeat_ticks: int = 10  # Raft heartbeat; PBFT status period, >= view timeout / 4
    view_timeout_ticks: int = 200  # PBFT view change / HotStuff pacemaker / Tendermint base
    round_timeout_delta_ticks: int = 50  # Tendermint: added per round
    # Limits.
    batch_txs_max: int = 2_000
    batch_bytes_max: int = 4 * 1024 * 1024
    inflight_blocks_max: int = 8  # pipelining depth (PBFT window, Raft in-flight appends)
    checkpoint_interval_blocks: int = 16  # PBFT checkpoint period K; Raft snapshot period
    log_window_blocks: int = 64  # PBFT water mark window L (high = low + L)
    pending_messages_max: int = 10_000  # buffered future messages, per engine
    # PBFT: how far a proposed header's timestamp may lie ahead of this replica's own
    # estimate of the time (latest `Propose` timestamp plus ticks since), in ms.
    timestamp_skew_max_ms: int = 2_000
    # Tendermint (Buchman et al. 2018 Algorithm 1; CometBFT's [consensus] names), in ticks:
    # the timeout of round r is base + r x delta.
    timeout_propose_ticks: int = 100
    timeout_propose_delta_ticks: int = 20
    timeout_prevote_ticks: int = 50
    timeout_prevote_delta_ticks: int = 20
    timeout_precommit_ticks: int = 50
    timeout_precommit_delta_ticks: int = 20
    timeout_commit_ticks: int = 10  # wait after a decision before the next height starts
    # Tendermint evidence of equivocation (CometBFT [evidence] params).
    evidence_age_blocks_max: int = 10_000  # older evidence is refused
    evidence_per_block_max: int = 16
    evidence_bytes_per_block_max: int = 1024 * 1024

    def rng(self, stream: str) -> random.Random:
        """An independent deterministic stream split off `seed` (never the global RNG)."""
        return random.Random(canonical.digest((self.seed, self.node_id, stream)))


@dataclass(frozen=True, slots=True)
class EngineStatus:
    algorithm: str
    role: str  # "leader"/"primary", "follower"/"backup", "candidate", ...
    view: int  # PBFT view, Raft term, HotStuff view, Tendermint round
    leader: NodeId | None
    committed_height: int
    # Where client batches go while `leader` is None, if somewhere else than nowhere: a
    # PBFT replica changing view alone forwards to the primary f + 1 others still follow
    # (TOCS 2002 §4.1: the client's request reaches every replica). Only for forwarding:
    # the node's epoch, catch-up and reported leader still see no leader.
    forward_to: NodeId | None = None


class Engine(Protocol):
    name: ClassVar[str]
    # True when the engine tolerates byzantine validators (n >= 3f + 1).
    byzantine_tolerant: ClassVar[bool]

    def step(self, event: Input) -> Effects: ...

    def status(self) -> EngineStatus: ...

    @classmethod
    def check_certificate(cls, config: EngineConfig, block: Block,
                          certificate: Certificate) -> bool:
        """True when `certificate` proves `block` final under this engine's rules.

        Used by catch-up: a node fetching blocks from peers trusts none of them.
        """
        ...


def sign_position(message: object) -> tuple[object, ...] | None:
    """Where a signed message sits in its protocol, for the double-sign guard and the
    simulator's equivocation checker: two different messages with one position are
    equivocation. Messages define `sign_position()` returning e.g.
    ("pbft.prepare", view, sequence) or ("tendermint.prevote", height, round); messages
    that may legitimately differ at one position (Raft heartbeats) return None.
    """
    method = getattr(message, "sign_position", None)
    return method() if method is not None else None


EngineFactory = Callable[[EngineConfig], Engine]

_REGISTRY: dict[str, EngineFactory] = {}


def register_engine(name: str, factory: EngineFactory) -> None:
    if name in _REGISTRY:
        raise ValueError(f"engine {name!r} registered twice")
    _REGISTRY[name] = factory


def _load_builtin_engines() -> None:
    # Importing an engine package registers it; only engines that exist are importable.
    import importlib
    for module in ("consensus.pbft", "consensus.raft", "consensus.hotstuff",
                   "consensus.tendermint"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def engine_names() -> tuple[str, ...]:
    _load_builtin_engines()
    return tuple(sorted(_REGISTRY))


def engine_class(name: str) -> type:
    """The registered engine class: the one place its facts (name, fault model) live."""
    _load_builtin_engines()
    factory = _REGISTRY.get(name.lower())
    if not isinstance(factory, type):
        raise KeyError(f"unknown consensus algorithm {name!r}; available: "
                       f"{', '.join(sorted(_REGISTRY)) or 'none'}")
    return factory


def is_byzantine_tolerant(name: str) -> bool:
    return bool(engine_class(name).byzantine_tolerant)


def max_faulty(name: str, nodes: int) -> int:
    """The most faulty validators engine `name` survives with `nodes` validators:
    n >= 3f + 1 for byzantine-tolerant engines, a strict majority for crash-fault ones."""
    from consensus.types import max_faulty_bft, max_faulty_cft

    return max_faulty_bft(nodes) if is_byzantine_tolerant(name) else max_faulty_cft(nodes)


def create_engine(name: str, config: EngineConfig) -> Engine:
    _load_builtin_engines()
    factory = _REGISTRY.get(name.lower())
    if factory is None:
        raise KeyError(f"unknown consensus algorithm {name!r}; available: "
                       f"{', '.join(sorted(_REGISTRY)) or 'none'}")
    return factory(config)
