"""Replica state of the PBFT engine: what is durable and what is only in memory.

Theory of operation
-------------------
Castro & Liskov (TOCS 2002 §4.1, §5.3 "proactive recovery" aside) keep a message log,
the current view, the last stable checkpoint and the water marks. Here the log is split
by what it is used for:

* `slots[n]` - the current view's log entry for sequence n: the accepted PRE-PREPARE,
  the PREPAREs that match the view, and whether this replica holds the prepared
  predicate for it (§4.2);
* `commits[n]` - the latest COMMIT of each replica for n, of any view up to the current
  one: committed-local needs 2f + 1 matching (view, n, d) (§4.2);
* `prepared_certs[n]` - the prepared certificate of the highest view this replica
  prepared n in: the P component of its VIEW-CHANGE (§4.4);
* `checkpoints[n]` - CHECKPOINT messages above the stable checkpoint (§4.3).

Durable records (`Persist` ops, written before any message that depends on them is
sent), so that a restarted replica neither contradicts itself nor forgets a vote:

  pbft/view          ViewRecord: view, whether a view change is under way
  pbft/stable        StableCheckpoint: the low water mark and its 2f+1 proof
  pbft/pp/<n>        the PRE-PREPARE accepted for n in the current view (SignedMessage)
                     or, on the primary, the one it is about to sign (PrePrepare)
  pbft/prepared/<n>  PreparedCertificate: prepared predicate held (COMMIT sent)
  pbft/view_change   ViewChange this replica sent for its target view
  pbft/new_view      NewViewPlan / NewView this replica built as a new primary
  pbft/read_epoch    the read barrier's epoch, raised by the first read of each life

Committed blocks need no record of their own: the driver writes the ledger's block in the
same durable transaction as the persist ops, and `Restore` says how far it got.
Everything at or below the stable checkpoint is deleted when the checkpoint moves, so
memory and storage stay bounded by the water mark window (§4.3).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from consensus import canonical
from consensus.api import EngineConfig
from consensus.pbft.certificates import quorum_of
from consensus.pbft.messages import (
    NewView,
    PreparedCertificate,
    PrePrepare,
    ReadQuery,
    ViewChange,
    primary_of,
)
from consensus.read_barrier import ReadBarrier
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Block, Certificate, NodeId, SignedMessage

KEY_VIEW = "pbft/view"
KEY_STABLE = "pbft/stable"
KEY_VIEW_CHANGE = "pbft/view_change"
KEY_NEW_VIEW = "pbft/new_view"
KEY_READ_EPOCH = "pbft/read_epoch"  # the read barrier's epoch (consensus/read_barrier.py)
PREFIX_PRE_PREPARE = "pbft/pp/"
PREFIX_PREPARED = "pbft/prepared/"
VIEW_TIMEOUT_DOUBLINGS_MAX = 4  # the view timeout grows to at most 16 x its base


def pre_prepare_key(sequence: int) -> str:
    return f"{PREFIX_PRE_PREPARE}{sequence:016d}"


def prepared_key(sequence: int) -> str:
    return f"{PREFIX_PREPARED}{sequence:016d}"


@canonical.register("pbft.view_record.v1")
@dataclass(frozen=True, slots=True)
class ViewRecord:
    view: int
    view_changing: bool
    failed_view_changes: int  # consecutive views that did not commit: the timer doubles


@canonical.register("pbft.stable_checkpoint.v1")
@dataclass(frozen=True, slots=True)
class StableCheckpoint:
    sequence: int
    block_hash: bytes
    state_root: bytes
    proof: tuple[SignedMessage, ...]  # 2f + 1 matching CHECKPOINTs; empty at genesis


GENESIS_CHECKPOINT = StableCheckpoint(0, GENESIS_HASH, EMPTY_ROOT, ())


@canonical.register("pbft.new_view_plan.v1")
@dataclass(frozen=True, slots=True)
class NewViewPlan:
    """What a new primary decided from 2f + 1 VIEW-CHANGEs, before its pre-prepares are
    signed: persisted so that a restart re-sends the very same messages."""
    view: int
    view_changes: tuple[SignedMessage, ...]
    pre_prepares: tuple[PrePrepare, ...]


@dataclass(slots=True)
class Slot:
    """The current view's log entry for one sequence number."""
    pre_prepare: SignedMessage | None = None
    prepares: dict[NodeId, SignedMessage] = field(default_factory=dict)
    prepared: bool = False
    # Replica ticks when this replica accepted the pre-prepare (so sent its PREPARE) and
    # took prepared (so sent its COMMIT): a STATUS is answered only with messages old
    # enough not to be merely in flight (status.py).
    accepted_tick: int = 0
    prepared_tick: int = 0

    @property
    def message(self) -> PrePrepare | None:
        return self.pre_prepare.message if self.pre_prepare else None  # type: ignore[return-value]


@dataclass(slots=True)
class Replica:
    """All of one replica's state; the phase modules read and change it."""
    config: EngineConfig
    view: int = 0
    view_changing: bool = False
    failed_view_changes: int = 0
    # The highest sequence the NEW-VIEW of this view re-proposed (max-s): committing one
    # of those is not yet progress of the new view (view_timeout_ticks).
    reproposed_top: int = 0
    stable: StableCheckpoint = GENESIS_CHECKPOINT
    committed_height: int = 0
    committed_hash: bytes = GENESIS_HASH
    committed_hashes: dict[int, bytes] = field(default_factory=dict)  # above stable only
    # The certificate of the last block this replica committed itself (None after a
    # restart or a catch-up): a read answer's proof (read_barrier.py).
    commit_certificate: Certificate | None = None
    applied_height: int = 0
    applied_root: bytes = EMPTY_ROOT
    # Root per recently applied height (None: skipped by state transfer), for header.py.
    applied_roots: dict[int, bytes | None] = field(default_factory=lambda: {0: EMPTY_ROOT})
    last_timestamp_ms: int = 0  # latest header timestamp accepted or proposed
    # The replica's estimate of the time (header.py): latest Propose timestamp + ticks.
    clock_ms: int = 0
    clock_from_propose: bool = False
    clock_known: bool = False  # anchored on committed timestamps (no Propose seen)
    committed_timestamp_ms: int | None = None  # of the block at committed_height
    state_wait_height: int = 0  # a buffered pre-prepare waits until this is applied
    # Primary: the highest sequence assigned in this view, and its block hash.
    assigned_sequence: int = 0
    own_unsigned: dict[int, PrePrepare] = field(default_factory=dict)
    slots: dict[int, Slot] = field(default_factory=dict)
    commits: dict[int, dict[NodeId, SignedMessage]] = field(default_factory=dict)
    blocks: dict[int, dict[bytes, Block]] = field(default_factory=dict)
    prepared_certs: dict[int, PreparedCertificate] = field(default_factory=dict)
    checkpoints: dict[int, dict[NodeId, SignedMessage]] = field(default_factory=dict)
    # View change.
    view_changes: dict[NodeId, SignedMessage] = field(default_factory=dict)  # latest each
    my_view_change: ViewChange | None = None
    new_view_plan: NewViewPlan | None = None
    plan_signed: dict[int, SignedMessage] = field(default_factory=dict)
    new_view_sent: NewView | None = None
    # While changing view: replica -> the older view whose normal-case messages it still
    # sends (view_change.note_older_view); at most one entry per validator.
    older_views: dict[NodeId, int] = field(default_factory=dict)
    # Timers, in ticks.
    timer_ticks: int = 0
    progress_seen: int = 0  # highest sequence seen final by 2f + 1 COMMITs (view timer)
    request_waiting: bool = False
    view_change_timer_on: bool = False
    resend_ticks: int = 0
    ticks: int = 0  # ticks since start: the replica's only clock
    # Retransmission (status.py, TOCS 2002 §5.2).
    status_ticks: int = 0  # ticks stalled while waiting for something
    checkpoint_wait_ticks: int = 0  # ticks since an applied checkpoint is not yet stable
    status_answered: dict[NodeId, int] = field(default_factory=dict)  # sender -> tick
    # Highest committed height each replica's STATUS named (one entry per validator):
    # whom a catch-up retry asks (checkpoint.on_tick_catch_up).
    peer_committed: dict[NodeId, int] = field(default_factory=dict)
    # Buffered future messages: (sender, message, signature), bounded per sender.
    pending: list[tuple[NodeId, object, bytes]] = field(default_factory=list)
    pending_per_sender: dict[NodeId, int] = field(default_factory=dict)
    # State transfer.
    catch_up_target: int = 0
    catch_up_wait_ticks: int = 0
    catch_up_peers: tuple[NodeId, ...] = ()
    stalled_ticks: int = 0
    replay_needed: bool = False
    read_barrier: ReadBarrier = field(init=False)

    def __post_init__(self) -> None:
        quorum = quorum_of(self.config)
        self.read_barrier = ReadBarrier(self.config, ReadQuery,
                                        lambda senders: len(senders) >= quorum,
                                        KEY_READ_EPOCH)

    # ------------------------------------------------------------ arithmetic
    @property
    def me(self) -> NodeId:
        return self.config.node_id

    @property
    def nodes(self) -> int:
        return self.config.validators.size

    @property
    def quorum(self) -> int:
        """2f + 1 (n - f in general, so any two quorums share an honest replica); the same
        number the certificate checks use (`quorum_of`, from `types.bft_quorum`)."""
        return quorum_of(self.config)

    @property
    def faults(self) -> int:
        """f, derived from the quorum so the f + 1 and 2f + 1 thresholds cannot drift."""
        return self.nodes - self.quorum

    @property
    def low_water_mark(self) -> int:
        return self.stable.sequence

    @property
    def high_water_mark(self) -> int:
        return self.stable.sequence + self.config.log_window_blocks

    def primary(self, view: int | None = None) -> NodeId:
        return primary_of(self.view if view is None else view, self.nodes)

    def is_primary(self) -> bool:
        return not self.view_changing and self.primary() == self.me

    def known_hash(self, sequence: int) -> bytes | None:
        """The block hash this replica has fixed at `sequence`: committed, stable, or
        prepared in the current view (the parent that block `sequence + 1` must name)."""
        if sequence == self.committed_height:
            return self.committed_hash
        if sequence == self.stable.sequence:
            return self.stable.block_hash
        if sequence in self.committed_hashes:
            return self.committed_hashes[sequence]
        slot = self.slots.get(sequence)
        if slot is not None and slot.prepared and slot.message is not None:
            return slot.message.digest
        return None

    def view_timeout_ticks(self) -> int:
        """The view-change timer doubles with each view that failed to commit (§4.5.2),
        up to VIEW_TIMEOUT_DOUBLINGS_MAX times: doubling lets the timeout outgrow an
        unknown message delay after GST, the cap keeps a run of failed views (lost
        messages, silent primaries) from freezing the cluster for minutes. It resets when
        a request commits that the new view did not merely re-propose (`mark_committed`;
        §4.5.2: "before it executes a request in the new view that it had not executed
        previously"): re-proposals commit in every view that installs, so resetting on
        them kept the timer at its base on 7 loaded real processes whose commit latency
        had outgrown it, and the cluster changed view every few seconds.

        The first failure does not double: the timer that expired in view v ran for T,
        and §4.5.2 waits T again for the NEW-VIEW of v + 1 - only if that fails too does
        it wait 2T for v + 2. Doubling at once cost a swarm run (pbft seed
        58540576180550) 2 + 4 s with the primaries of views 0 and 1 both crashed, more
        than the 5 s liveness window, where the paper's rule takes 2 + 2 s."""
        doublings = min(max(self.failed_view_changes - 1, 0), VIEW_TIMEOUT_DOUBLINGS_MAX)
        return self.config.view_timeout_ticks << doublings
