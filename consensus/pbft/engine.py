"""The PBFT engine: routes each input to its protocol phase (Castro & Liskov, OSDI 1999;
TOCS 2002).

Theory of operation
-------------------
`PbftEngine.step` is the whole replica: a pure function of its state and one input,
returning Effects the driver carries out in order (persist, sign+send, commit, catch up).
Phases live in their own modules:
  normal_case.py   PRE-PREPARE / PREPARE / COMMIT, in-order commit        (§4.2)
  checkpoint.py    CHECKPOINT, water marks, garbage collection, catch-up  (§4.3, TOCS §5.3.2)
  view_change.py   timer, VIEW-CHANGE, NEW-VIEW                          (§4.4, §4.5.2)
  status.py        STATUS and retransmission of lost messages            (TOCS §5.2)
  recovery.py      rebuilding from durable records at start-up
  certificates.py  checking signed sub-messages and commit certificates
  read_barrier.py  answering READ-QUERY, checking READ-ANSWER proofs (the BFT read
                   barrier of consensus/read_barrier.py)
Every refused input becomes a `Rejected` note with its reason; nothing raises on bad
input from a peer.
"""
from __future__ import annotations

from typing import ClassVar

from consensus.api import (
    Applied,
    Effects,
    EffectsBuilder,
    EngineConfig,
    EngineStatus,
    Input,
    Propose,
    ReadRequest,
    Receive,
    RejectReason,
    Restore,
    Synced,
    Tick,
    TransferLeadership,
)
from consensus.pbft.certificates import check_commit_certificate
from consensus.pbft.checkpoint import on_applied, on_checkpoint, on_synced, on_tick_catch_up
from consensus.pbft.header import tick_time
from consensus.pbft.inbox import take_pending
from consensus.pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    ReadAnswer,
    ReadQuery,
    Status,
    ViewChange,
)
from consensus.pbft.normal_case import on_commit, on_pre_prepare, on_prepare, on_propose
from consensus.pbft.read_barrier import on_read_answer, on_read_query
from consensus.pbft.recovery import on_restore
from consensus.pbft.state import Replica
from consensus.pbft.status import on_status, on_tick_status
from consensus.pbft.view_change import (
    followed_primary,
    note_older_view,
    on_new_view,
    on_tick_view,
    on_view_change,
)
from consensus.types import Block, Certificate

_HANDLERS = {
    PrePrepare: on_pre_prepare,
    Prepare: on_prepare,
    Commit: on_commit,
    Checkpoint: on_checkpoint,
    ViewChange: on_view_change,
    NewView: on_new_view,
    Status: on_status,
    ReadQuery: on_read_query,
    ReadAnswer: on_read_answer,
}


class PbftEngine:
    name: ClassVar[str] = "pbft"
    byzantine_tolerant: ClassVar[bool] = True

    def __init__(self, config: EngineConfig) -> None:
        self._replica = Replica(config)

    @property
    def replica(self) -> Replica:
        """Read-only view for tests and the simulator's reports."""
        return self._replica

    def step(self, event: Input) -> Effects:
        fx = EffectsBuilder()
        r = self._replica
        if isinstance(event, Receive):
            self._receive(fx, event.sender, event.message, event.signature)
        elif isinstance(event, Tick):
            tick_time(r)
            on_tick_view(r, fx)
            on_tick_catch_up(r, fx)
            on_tick_status(r, fx)
            r.read_barrier.on_tick(fx)
        elif isinstance(event, Propose):
            on_propose(r, fx, event)
        elif isinstance(event, Applied):
            on_applied(r, fx, event)
        elif isinstance(event, Synced):
            on_synced(r, fx, event)
        elif isinstance(event, Restore):
            on_restore(r, fx, event)
            r.read_barrier.restore(dict(event.records))
        elif isinstance(event, ReadRequest):
            r.read_barrier.request(fx, event.request_id)
        elif isinstance(event, TransferLeadership):
            fx.reject(RejectReason.UNSUPPORTED, None,
                      "pbft changes primaries by view change only")
        else:
            fx.reject(RejectReason.MALFORMED, None, f"unknown input {type(event).__name__}")
        if r.replay_needed:
            # A view was installed or the water marks moved: early messages get another go.
            r.replay_needed = False
            for sender, message, signature in take_pending(r):
                self._receive(fx, sender, message, signature)
        return fx.build()

    def _receive(self, fx: EffectsBuilder, sender: int, message: object,
                 signature: bytes) -> None:
        if sender not in self._replica.config.validators:
            fx.reject(RejectReason.UNKNOWN_SENDER, sender, "not a validator")
            return
        handler = _HANDLERS.get(type(message))
        if handler is None:
            fx.reject(RejectReason.MALFORMED, sender, f"not a PBFT message: "
                      f"{type(message).__name__}")
            return
        if isinstance(message, (PrePrepare, Prepare, Commit)):
            note_older_view(self._replica, sender, message.view)
        handler(self._replica, fx, sender, message, signature)  # type: ignore[operator]

    def status(self) -> EngineStatus:
        r = self._replica
        if r.view_changing:
            # No leader until the new view is installed. (Naming the primary others still
            # follow as the leader kept real 7-process clusters changing view after
            # restarts: the core fetched blocks and kept proposals as if the engine were
            # settled.) Only the clients' batches go there: else a replica that changed
            # view alone holds every transaction submitted to it until the others change
            # view too, and closed-loop clients pile up on it - measured on 7 processes
            # with 2 such replicas, commits fell to a few per second.
            return EngineStatus("pbft", "view_change", r.view, None, r.committed_height,
                                forward_to=followed_primary(r))
        role = "primary" if r.primary() == r.me else "backup"
        return EngineStatus("pbft", role, r.view, r.primary(), r.committed_height)

    @classmethod
    def check_certificate(cls, config: EngineConfig, block: Block,
                          certificate: Certificate) -> bool:
        return check_commit_certificate(config, block, certificate)
