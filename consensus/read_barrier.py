"""The BFT read barrier: a linearizable read index learned from 2f + 1 replicas, each
backing its answer with a quorum certificate (PBFT, HotStuff, Tendermint).

Theory of operation
-------------------
A read is linearizable when it reflects every block acknowledged to a client before the
read began (ARCHITECTURE.md §5). A byzantine-tolerant engine has no leader to ask (Raft's
ReadIndex, thesis §6.4, trusts one), so it asks everyone:

1. `ReadRequest(id)` queues the read. If no round is in flight one starts: the nonce is
   incremented and `ReadQuery(nonce)` broadcast (the driver loops it back, so this
   replica answers itself too). A read that arrives while a round is in flight waits
   for the *next* round: answers to a query sent before the read began may predate a
   block acknowledged between the query and the read. All reads waiting when a round
   starts share it, so a burst of reads costs one round trip.
2. Each replica answers `ReadAnswer(nonce, height, proof)` point to point: its highest
   *quorum-backed* height, with the signed votes that back it. What counts as backed is
   the engine's own rule (see each engine's `read_barrier.py`); in all three the
   argument is the same: a block B acknowledged at height H was committed by 2f + 1
   votes, so at least f + 1 *honest* replicas hold a certificate for a height >= H
   (PBFT: a prepared certificate; HotStuff: QC(B) or higher; Tendermint: a polka or the
   commit). Any 2f + 1 answers from distinct replicas share one of them, so the maximum
   of 2f + 1 answers is >= H. Refused answers are not counted, so the honest replica in
   the intersection is one whose answer counted (2f + 1 counted answers come from the
   3f + 1 minus the refused ones, and the f + 1 honest holders minus the refused ones
   still meet them).
3. The proof only bounds what a byzantine replica can claim: without it f liars could
   name a height that is never committed and stall every read. An answer at or below
   the height this replica already knows as committed cannot raise the index, so its
   proof is not checked (that also lets a replica that restarted, and so holds no
   certificate for its committed height, answer honestly with an empty proof). A bad
   proof is refused with the engine's reason (BAD_SIGNATURE, QUORUM_MISSING,
   MALFORMED) and its sender is not counted, nor heard again, in this round: a liar
   costs one proof check per round.
4. With 2f + 1 distinct counted answers (by voting power for Tendermint),
   index = max(answers, own committed height), and every read of the round gets
   `ReadReady(id, index)` in request order; queued reads then start the next round.

Liveness: a round whose answers were lost asks again, point to point, the replicas that
have not answered, every `read_query_retry_ticks`; the driver's read deadline answers
the client BEHIND if a round never completes (no read fails in silence). Answers carry
the nonce of their round and an answer to another round is dropped. A restarted replica
must not count late answers to the rounds of its previous life, and the seeded RNG would
draw the same numbers again, so nonces start at `epoch << NONCE_COUNTER_BITS`, where the
epoch is a durable counter raised by the first round of each life (persisted in the same
Effects as that round's query, so before it leaves). Bounded: reads waiting at most
`pending_messages_max`, answers per round at most one per validator.

Answers are not votes: they bind nothing, may differ at every send, and have no sign
position (like PBFT's STATUS).

Changed from the first design: a retry asks only the silent replicas, point to point,
instead of broadcasting the query again - those that answered would only send the same
answer (under load a PBFT answer carries a block). Not bounded yet: how often one peer
may ask. Every query is answered; a byzantine replica can make honest ones send answers
as fast as it sends queries (a rate per sender, like STATUS's half period, would bound
it, at the price of honest rounds that follow each other within one tick).
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from consensus.api import EffectsBuilder, EngineConfig, Persist, ReadReady, RejectReason, Send
from consensus.types import NodeId, SignedMessage

NONCE_COUNTER_BITS = 40  # rounds per life before nonces reach the next epoch's

class ReadAnswerLike(Protocol):
    """Each engine's ReadAnswer (same fields; one class per engine for the wire codec)."""
    nonce: int
    height: int
    proof: tuple[SignedMessage, ...]


# Why an answer's proof does not hold, or None: (reason, detail).
ProofProblem = tuple[RejectReason, str] | None


def first_message(proof: tuple[SignedMessage, ...]) -> object | None:
    """The message the first signed vote of a proof carries: what kind of certificate
    the proof claims to be (None for an empty or malformed proof)."""
    return proof[0].message if proof and isinstance(proof[0], SignedMessage) else None


def not_a_certificate(proof: tuple[SignedMessage, ...], kinds: str) -> ProofProblem:
    """The refusal of a proof of none of the engine's certificate `kinds`."""
    if not proof:
        return RejectReason.QUORUM_MISSING, "no proof for a height not committed here"
    return RejectReason.MALFORMED, f"not {kinds}"


def proof_problem(config: EngineConfig, proof: tuple[SignedMessage, ...],
                  matches: Callable[[SignedMessage], bool],
                  is_quorum: Callable[[Collection[NodeId]], bool]) -> ProofProblem:
    """Why a proof fails, as the reason a metric counts: MALFORMED (a repeated or unknown
    signer, a vote naming another block, height or round - PBFT: sequence or view),
    QUORUM_MISSING (too few distinct signers, or too little power), BAD_SIGNATURE; None
    when each vote `matches` and verifies.

    Engines run their own certificate check first and call this only for a proof it
    refused (so an honest answer's signatures are verified once), and refuse as
    MALFORMED a proof that passes here but not there (e.g. a PBFT view rule)."""
    signers: set[NodeId] = set()
    for signed in proof:
        if not isinstance(signed, SignedMessage) or signed.sender not in config.validators \
                or signed.sender in signers:
            return RejectReason.MALFORMED, "a repeated or unknown signer"
        if not matches(signed):
            return RejectReason.MALFORMED, "a vote names another block, height or round"
        signers.add(signed.sender)
    if not is_quorum(signers):
        return RejectReason.QUORUM_MISSING, f"{len(signers)} signers are not a quorum"
    for signed in proof:
        if not config.verifier.verify(signed.sender, signed.message, signed.signature):
            return RejectReason.BAD_SIGNATURE, f"bad signature of {signed.sender}"
    return None


def read_query_retry_ticks(config: EngineConfig) -> int:
    """How long a round waits before asking again those that have not answered: the
    heartbeat, at least 2 ticks - a read's round trip is one message delay each way,
    and the repeat goes only to the silent replicas, so it stays cheap."""
    return max(2, config.heartbeat_ticks)


@dataclass(slots=True)
class ReadBarrier:
    """The protocol-independent half: reads, rounds, counting answers. The engine glue
    builds queries and answers and checks proofs; it calls `restore` (at start-up),
    `request`, `on_answer` and `on_tick`."""
    config: EngineConfig
    make_query: Callable[[int], object]  # nonce -> the engine's ReadQuery
    # Whether these answering replicas form a quorum (2f + 1, or +2/3 of the power).
    is_quorum: Callable[[Collection[NodeId]], bool]
    epoch_key: str  # the engine's durable record of the epoch
    restored_epoch: int = 0  # the epoch of the previous life (0: none)
    epoch: int = 0  # this life's, once its first round started
    nonce: int = 0
    in_flight: bool = False
    round_reads: list[int] = field(default_factory=list)  # reads the round will answer
    waiting: list[int] = field(default_factory=list)  # reads for the next round
    answers: dict[NodeId, int] = field(default_factory=dict)  # sender -> height
    # Senders whose answer was refused this round: a liar gets one proof check per round.
    refused: set[NodeId] = field(default_factory=set)
    retry_ticks: int = 0

    def restore(self, records: dict[str, object]) -> None:
        """Start-up: remember the last life's epoch; this life's is taken lazily, so a
        life that serves no read writes nothing."""
        epoch = records.get(self.epoch_key)
        self.restored_epoch = epoch if isinstance(epoch, int) else 0
        self.epoch = 0

    def request(self, fx: EffectsBuilder, request_id: int) -> None:
        if len(self.round_reads) + len(self.waiting) >= self.config.pending_messages_max:
            fx.reject(RejectReason.OVER_LIMIT, None, f"read {request_id}: too many reads")
            return
        self.waiting.append(request_id)
        if not self.in_flight:
            self.start_round(fx)

    def start_round(self, fx: EffectsBuilder) -> None:
        if self.epoch == 0:
            self.epoch = self.restored_epoch + 1
            fx.persist.append(Persist(self.epoch_key, self.epoch))
            self.nonce = self.epoch << NONCE_COUNTER_BITS
        self.nonce += 1
        self.in_flight = True
        self.round_reads, self.waiting = self.waiting, []
        self.answers = {}
        self.refused = set()
        self.retry_ticks = 0
        fx.send.append(Send(None, self.make_query(self.nonce)))

    def on_answer(self, fx: EffectsBuilder, sender: NodeId, answer: ReadAnswerLike,
                  committed_height: int, check_proof: Callable[[], ProofProblem]) -> None:
        """Count one answer; `check_proof` runs only when the answer could raise the
        index above `committed_height`, the height this replica knows as final. A proof
        longer than the validator set is refused before anything looks at it."""
        if len(answer.proof) > self.config.validators.size:
            fx.reject(RejectReason.OVER_LIMIT, sender, "read answer proof over the validators")
            return
        nonce, height = answer.nonce, answer.height
        if not self.in_flight or nonce != self.nonce or sender in self.answers \
                or sender in self.refused:
            return  # a late answer to a finished round, or a repeat: nothing to learn
        if height > committed_height:
            problem = check_proof()
            if problem is not None:
                self.refused.add(sender)
                fx.reject(problem[0], sender, f"read answer {height}: {problem[1]}")
                return
        self.answers[sender] = height
        if self.is_quorum(self.answers.keys()):
            self.finish_round(fx, committed_height)

    def finish_round(self, fx: EffectsBuilder, committed_height: int) -> None:
        index = max(committed_height, *self.answers.values())
        fx.reads.extend(ReadReady(request_id, index) for request_id in self.round_reads)
        self.round_reads = []
        self.answers = {}
        self.refused = set()
        self.in_flight = False
        if self.waiting:
            self.start_round(fx)

    def on_tick(self, fx: EffectsBuilder) -> None:
        """Ask again, point to point, the replicas whose answers are still missing."""
        if not self.in_flight:
            return
        self.retry_ticks += 1
        if self.retry_ticks < read_query_retry_ticks(self.config):
            return
        self.retry_ticks = 0
        query = self.make_query(self.nonce)
        for node in self.config.validators.node_ids:
            if node not in self.answers and node not in self.refused:
                fx.send.append(Send(node, query))
