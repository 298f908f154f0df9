"""PBFT wire messages (Castro & Liskov, OSDI 1999 §4; TOCS 2002 §4).

Theory of operation
-------------------
Each dataclass mirrors one message of the PBFT section of proto/qenex/v1/consensus.proto
(`PbftPrePrepare` <-> `PrePrepare`, ...), field for field, so the generic codec can map
them by name. The digest `d` of the paper is the block hash: one block (batch) per
sequence number, and the sequence number is the block height.

Every message a replica signs names its place in the protocol through `sign_position`:
the double-sign guard and the simulator's equivocation checker refuse two different
messages at one position. The positions are exactly the paper's "a replica accepts /
sends at most one ... for a given view and sequence number" rules (§4.2, TOCS §4.3):
one PRE-PREPARE and one PREPARE and one COMMIT per (view, sequence), one CHECKPOINT per
sequence, one VIEW-CHANGE and one NEW-VIEW per view. STATUS (TOCS 2002 §5.2) binds
nothing and has no position; the retransmissions it triggers are the very same message
objects sent before, so they sign the same bytes at the same position. The read
barrier's READ-QUERY and READ-ANSWER bind nothing either and have no position.

Signed sub-messages (inside certificates, VIEW-CHANGE and NEW-VIEW) are
`consensus.types.SignedMessage`; the engine checks their signatures itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus import canonical
from consensus.types import Block, NodeId, SignedMessage


def primary_of(view: int, nodes: int) -> NodeId:
    """The primary of view v is replica v mod |R| (§4.1)."""
    return view % nodes


@canonical.register("pbft.pre_prepare.v1")
@dataclass(frozen=True, slots=True)
class PrePrepare:
    """<PRE-PREPARE, v, n, d> with the block piggybacked (§4.2)."""
    view: int
    sequence: int
    digest: bytes
    block: Block

    def sign_position(self) -> tuple[object, ...]:
        return ("pbft.pre_prepare", self.view, self.sequence)


@canonical.register("pbft.prepare.v1")
@dataclass(frozen=True, slots=True)
class Prepare:
    """<PREPARE, v, n, d, i> (§4.2)."""
    view: int
    sequence: int
    digest: bytes
    replica: NodeId

    def sign_position(self) -> tuple[object, ...]:
        return ("pbft.prepare", self.view, self.sequence)


@canonical.register("pbft.commit.v1")
@dataclass(frozen=True, slots=True)
class Commit:
    """<COMMIT, v, n, D(m), i> (§4.2). Not to be confused with `consensus.api.Commit`."""
    view: int
    sequence: int
    digest: bytes
    replica: NodeId

    def sign_position(self) -> tuple[object, ...]:
        return ("pbft.commit", self.view, self.sequence)


@canonical.register("pbft.checkpoint.v1")
@dataclass(frozen=True, slots=True)
class Checkpoint:
    """<CHECKPOINT, n, d, i> (§4.3); d is the state root, plus the block hash at n so a
    stable checkpoint also fixes the chain tip that later blocks must extend."""
    sequence: int
    state_root: bytes
    block_hash: bytes
    replica: NodeId

    def sign_position(self) -> tuple[object, ...]:
        return ("pbft.checkpoint", self.sequence)


@canonical.register("pbft.prepared_certificate.v1")
@dataclass(frozen=True, slots=True)
class PreparedCertificate:
    """P_m: a signed PRE-PREPARE and 2f signed matching PREPAREs from distinct backups
    (§4.4). Never signed itself: it travels inside a VIEW-CHANGE."""
    pre_prepare: SignedMessage
    prepares: tuple[SignedMessage, ...]

    @property
    def message(self) -> PrePrepare:
        return self.pre_prepare.message  # type: ignore[return-value]


@canonical.register("pbft.view_change.v1")
@dataclass(frozen=True, slots=True)
class ViewChange:
    """<VIEW-CHANGE, v+1, n, C, P, i> (§4.4)."""
    new_view: int
    stable_sequence: int
    checkpoint_proof: tuple[SignedMessage, ...]
    prepared: tuple[PreparedCertificate, ...]
    replica: NodeId

    def sign_position(self) -> tuple[object, ...]:
        return ("pbft.view_change", self.new_view)


@canonical.register("pbft.new_view.v1")
@dataclass(frozen=True, slots=True)
class NewView:
    """<NEW-VIEW, v+1, V, O> (§4.4): V the 2f+1 view changes, O the signed
    pre-prepares for (min-s, max-s] (re-proposals and null blocks)."""
    view: int
    view_changes: tuple[SignedMessage, ...]
    pre_prepares: tuple[SignedMessage, ...]

    def sign_position(self) -> tuple[object, ...]:
        return ("pbft.new_view", self.view)


@canonical.register("pbft.slot_status.v1")
@dataclass(frozen=True, slots=True)
class SlotStatus:
    """What a replica holds for one sequence of its current view: whether it has the
    PRE-PREPARE, and whose PREPAREs and COMMITs (validator ids, ascending)."""
    sequence: int
    pre_prepare: bool
    prepares: tuple[NodeId, ...]
    commits: tuple[NodeId, ...]


@canonical.register("pbft.status.v1")
@dataclass(frozen=True, slots=True)
class Status:
    """<STATUS, v, h, le, i> of TOCS 2002 §5.2: a stalled replica's view, low water mark,
    last committed sequence and, per uncommitted sequence, what it holds; peers answer
    with the messages of their own it lacks. Not binding: it may differ at every send."""
    view: int
    view_changing: bool
    committed_height: int
    low_water_mark: int
    slots: tuple[SlotStatus, ...]
    replica: NodeId

    def sign_position(self) -> None:
        return None


@canonical.register("pbft.read_query.v1")
@dataclass(frozen=True, slots=True)
class ReadQuery:
    """Round `nonce` of the read barrier (consensus/read_barrier.py): "what height do
    you hold a certificate for?" Binds nothing."""
    nonce: int

    def sign_position(self) -> None:
        return None


@canonical.register("pbft.read_answer.v1")
@dataclass(frozen=True, slots=True)
class ReadAnswer:
    """The answer to ReadQuery(nonce): the highest height this replica holds a quorum
    certificate for (pbft/read_barrier.py) and its signed votes - a commit certificate,
    a prepared certificate (PRE-PREPARE first) or a stable checkpoint proof; empty when
    it cannot prove its committed height (after a restart). Binds nothing."""
    nonce: int
    height: int
    proof: tuple[SignedMessage, ...]

    def sign_position(self) -> None:
        return None


PBFT_MESSAGES = (PrePrepare, Prepare, Commit, Checkpoint, ViewChange, NewView, Status,
                 ReadQuery, ReadAnswer)
