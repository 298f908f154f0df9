"""The Tendermint engine (Buchman, Kwon & Milosevic, "The latest gossip on BFT
consensus", 2018, Algorithm 1; CometBFT where the paper is silent), routing each input to
its protocol phase.

Theory of operation
-------------------
`TendermintEngine.step` is the whole validator: a pure function of its state and one
input, returning Effects the driver carries out in order (persist, sign+send, commit,
catch up). Phases live in their own modules:
  voting.py     receiving proposals, votes and evidence; equivocation detection
  rounds.py     StartRound, the upon-rules of the PROPOSE/PREVOTE/PRECOMMIT steps, timeouts
  decision.py   deciding a height (line 49), commit certificates, catch-up, restart
  proposals.py  getValue() and valid(v); transactions handed on to the next proposer
  proposer.py   CometBFT's weighted round-robin proposer priorities
  evidence.py   DuplicateVoteEvidence: verify, de-duplicate, include, commit
  timeouts.py   timeout schedule in ticks (base + round x delta)
  read_barrier.py  answering READ-QUERY, checking READ-ANSWER proofs (the BFT read
                barrier of consensus/read_barrier.py, weighted by voting power)
After every input the rules are evaluated until none fires; then the durable state
(height, round, step, lock, valid value), if it changed, is persisted in the same Effects
as the votes it led to - before any of them leaves. Bad input never raises: it becomes a
`Rejected` note.
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
    Persist,
    Propose,
    ReadRequest,
    Receive,
    RejectReason,
    Restore,
    Synced,
    Tick,
    TransferLeadership,
)
from consensus.tendermint.decision import (
    check_commit_certificate,
    fetch_decided_block,
    on_applied,
    on_restore,
    on_synced,
    on_tick_catch_up,
    request_catch_up,
)
from consensus.tendermint.evidence import evidence_in_block
from consensus.tendermint.messages import (
    DuplicateVoteEvidence,
    Proposal,
    ReadAnswer,
    ReadQuery,
    Vote,
    Votes,
)
from consensus.tendermint.proposals import on_propose
from consensus.tendermint.read_barrier import on_read_answer, on_read_query
from consensus.tendermint.rounds import on_tick_timers, progress
from consensus.tendermint.state import KEY_STATE, Replica, Step
from consensus.tendermint.voting import on_evidence, on_proposal, on_vote, on_votes
from consensus.types import Block, Certificate

_HANDLERS = {
    Proposal: on_proposal,
    Vote: on_vote,
    DuplicateVoteEvidence: on_evidence,
    Votes: on_votes,
    ReadQuery: on_read_query,
    ReadAnswer: on_read_answer,
}


class TendermintEngine:
    name: ClassVar[str] = "tendermint"
    byzantine_tolerant: ClassVar[bool] = True

    def __init__(self, config: EngineConfig) -> None:
        self._replica = Replica(config)
        self._persisted = self._replica.durable()

    @property
    def replica(self) -> Replica:
        """Read-only view for tests and the simulator's reports."""
        return self._replica

    def committed_evidence(self) -> int:
        """Pieces of evidence this validator saw committed in blocks it decided."""
        return self._replica.committed_evidence_count

    def step(self, event: Input) -> Effects:
        fx = EffectsBuilder()
        r = self._replica
        if isinstance(event, Receive):
            self._receive(fx, event.sender, event.message, event.signature)
        elif isinstance(event, Tick):
            on_tick_timers(r, fx)
            on_tick_catch_up(r)
            r.read_barrier.on_tick(fx)
        elif isinstance(event, Propose):
            on_propose(r, fx, event)
        elif isinstance(event, Applied):
            on_applied(r, event)
        elif isinstance(event, Synced):
            on_synced(r, fx, event)
        elif isinstance(event, Restore):
            on_restore(r, fx, event)
            r.read_barrier.restore(dict(event.records))
        elif isinstance(event, ReadRequest):
            r.read_barrier.request(fx, event.request_id)
        elif isinstance(event, TransferLeadership):
            # Proposers rotate by priority every height: no leadership to hand over.
            fx.reject(RejectReason.UNSUPPORTED, None, "tendermint does not serve "
                      "TransferLeadership")
        else:
            fx.reject(RejectReason.MALFORMED, None, f"unknown input {type(event).__name__}")
        progress(r, fx)
        fetch_decided_block(r, fx)
        request_catch_up(r, fx)
        durable = r.durable()
        if durable != self._persisted:
            self._persisted = durable
            fx.persist.append(Persist(KEY_STATE, durable))
        return fx.build()

    def _receive(self, fx: EffectsBuilder, sender: int, message: object,
                 signature: bytes) -> None:
        if sender not in self._replica.config.validators:
            fx.reject(RejectReason.UNKNOWN_SENDER, sender, "not a validator")
            return
        handler = _HANDLERS.get(type(message))
        if handler is None:
            fx.reject(RejectReason.MALFORMED, sender, f"not a Tendermint message: "
                      f"{type(message).__name__}")
            return
        self._replica.suspects.discard(sender)  # alive after all
        handler(self._replica, fx, sender, message, signature)  # type: ignore[operator]

    def status(self) -> EngineStatus:
        r = self._replica
        leader = r.next_proposer()
        role = "proposer" if r.proposer() == r.me and r.step != Step.NEW_HEIGHT else "validator"
        return EngineStatus("tendermint", role, r.round, leader, r.committed_height)

    @classmethod
    def evidence_in_block(cls, block: Block) -> tuple[DuplicateVoteEvidence, ...]:
        """The evidence a committed block carries (for the simulator's summary, the
        daemon's evidence index behind GetEvidence, metrics): ask the engine class, as
        for certificates, instead of knowing Tendermint's entry tag."""
        return evidence_in_block(block)

    @classmethod
    def check_certificate(cls, config: EngineConfig, block: Block,
                          certificate: Certificate) -> bool:
        return check_commit_certificate(config, block, certificate)
