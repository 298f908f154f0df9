"""The HotStuff engine - Jolteon / DiemBFT v4, 2-chain commit with timeout certificates -
routing each input to its protocol phase (Gelashvili et al., FC 2022; DiemBFT v4, 2021;
after Yin et al., PODC 2019).

Theory of operation
-------------------
`HotStuffEngine.step` is the whole replica: a pure function of its state and one input,
returning Effects the driver carries out in order (persist, sign+send, commit, catch up).
Phases live in their own modules:
  voting.py        PROPOSAL, VOTE to the next leader, QC formation        (Jolteon §3)
  chain.py         block tree, 2-chain commit rule, catch-up requests     (DiemBFT v4 §4)
  pacemaker.py     round timer, TIMEOUT / NEW-VIEW, TC, round advance     (DiemBFT v4 §5)
  safety.py        the safety rules: the only code deciding what is signed (Diem LSR)
  certificates.py  checking QCs and TCs; building and checking commit certificates
  retrieval.py     fetching certified blocks that are not final yet from peers
  recovery.py      restart from durable safety data, ledger feedback, catch-up
  read_barrier.py  answering READ-QUERY, checking READ-ANSWER proofs (the BFT read
                   barrier of consensus/read_barrier.py)
Every refused input becomes a `Rejected` note with its reason; nothing raises on bad
input from a peer. After every input a leader that may propose does (voting.try_propose),
so a round entered through a QC, a TC or a catch-up starts at once.
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
from consensus.hotstuff.certificates import check_commit_certificate
from consensus.hotstuff.messages import (
    Batch,
    BlockRequest,
    BlockResponse,
    NewView,
    Proposal,
    ReadAnswer,
    ReadQuery,
    Timeout,
    Vote,
)
from consensus.hotstuff.pacemaker import on_new_view, on_tick_round, on_timeout
from consensus.hotstuff.read_barrier import on_read_answer, on_read_query
from consensus.hotstuff.recovery import on_applied, on_restore, on_synced, on_tick_catch_up
from consensus.hotstuff.retrieval import on_block_request, on_block_response, on_tick_commit
from consensus.hotstuff.state import Replica
from consensus.hotstuff.voting import (
    forward_queued,
    on_batch,
    on_proposal,
    on_propose,
    on_vote,
    try_propose,
)
from consensus.types import Block, Certificate

_HANDLERS = {
    Proposal: on_proposal,
    Vote: on_vote,
    Timeout: on_timeout,
    NewView: on_new_view,
    Batch: on_batch,
    BlockRequest: on_block_request,
    BlockResponse: on_block_response,
    ReadQuery: on_read_query,
    ReadAnswer: on_read_answer,
}


class HotStuffEngine:
    name: ClassVar[str] = "hotstuff"
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
            on_tick_round(r, fx)
            on_tick_commit(r, fx)
            on_tick_catch_up(r, fx)
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
            # Leaders rotate every round: there is no leadership to hand over.
            fx.reject(RejectReason.UNSUPPORTED, None, "hotstuff does not serve "
                      "TransferLeadership")
        else:
            fx.reject(RejectReason.MALFORMED, None, f"unknown input {type(event).__name__}")
        try_propose(r, fx)
        forward_queued(r, fx)
        return fx.build()

    def _receive(self, fx: EffectsBuilder, sender: int, message: object,
                 signature: bytes) -> None:
        if sender not in self._replica.config.validators:
            fx.reject(RejectReason.UNKNOWN_SENDER, sender, "not a validator")
            return
        handler = _HANDLERS.get(type(message))
        if handler is None:
            fx.reject(RejectReason.MALFORMED, sender, f"not a HotStuff message: "
                      f"{type(message).__name__}")
            return
        self._replica.suspects.discard(sender)  # alive after all (pacemaker.observe_tc)
        handler(self._replica, fx, sender, message, signature)  # type: ignore[operator]

    def status(self) -> EngineStatus:
        r = self._replica
        leader = r.next_proposer()
        role = "leader" if leader == r.me else "replica"
        return EngineStatus("hotstuff", role, r.round, leader, r.committed_height)

    @classmethod
    def check_certificate(cls, config: EngineConfig, block: Block,
                          certificate: Certificate) -> bool:
        return check_commit_certificate(config, block, certificate)
