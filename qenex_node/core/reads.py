"""Linearizable reads in the replica core: which engine read answers which client read.

A client read becomes an engine `ReadRequest`; the engine answers with
`ReadReady(request_id, index)` once serving state at >= index is linearizable (Raft
ReadIndex on the leader, thesis §6.4; the BFT engines' read barrier, a height learned from
2f + 1 replicas and backed by certificates). The driver then serves the read once its
ledger has applied `index` - or refuses it with BEHIND at the client's deadline.

The core owns the engine's request ids, so two kinds of read share one id space:
  * local reads   - a client of this node; answered in `Plan.reads` / `Plan.read_failures`
                    under the driver's own request id;
  * remote reads  - a Raft follower's `ReadIndexRequest`: a follower cannot know the commit
                    index, so it asks the leader (thesis §6.4, "followers"), then serves
                    from its own state once it has applied the leader's index. The leader
                    answers with `ReadIndexAnswer` (or a refusal reason).
Raft trusts its nodes (crash faults), so the leader's index is taken as given; the BFT
engines never refuse a read with NOT_LEADER, so no read is forwarded across a byzantine
boundary.

Everything is bounded: `READS_PENDING_MAX` reads wait at once; past it, a read fails at
once with OVER_LIMIT. A driver that gives up on a read (client deadline) calls `forget`.
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus import canonical
from consensus.api import Effects, Note, ReadReady, Rejected
from consensus.types import NodeId

READS_PENDING_MAX = 10_000  # reads waiting for an engine answer, local and remote
READ_RETRY_MS = 25  # a driver asks again this long after a refusal that passes by itself
# Refusals that pass by themselves: an election (no leader yet), a leader that stepped
# down, a full read queue. Others (an engine without reads) are final. Both drivers ask.
RETRYABLE_READ_REFUSALS = frozenset({"NOT_LEADER", "ABORTED", "OVER_LIMIT"})


@canonical.register("sync.read_index_request.v1")
@dataclass(frozen=True, slots=True)
class ReadIndexRequest:
    """A follower asks the leader for a linearizable read index (Raft thesis §6.4)."""
    request_id: int  # the follower's own id; echoed in the answer
    origin: int  # the follower's validator index (must be the envelope's signer)


@canonical.register("sync.read_index_answer.v1")
@dataclass(frozen=True, slots=True)
class ReadIndexAnswer:
    """The leader's answer: serve at >= `index`, or `refused` names why it cannot."""
    request_id: int
    index: int
    responder: int
    refused: str = ""  # "" when `index` is valid, else a RejectReason name


@dataclass(frozen=True, slots=True)
class ReadFailure:
    """A local read the engine (or the leader it was sent to) could not serve."""
    request_id: int
    reason: str  # RejectReason name, e.g. NOT_LEADER, OVER_LIMIT, UNSUPPORTED, ABORTED
    detail: str


@dataclass(frozen=True, slots=True)
class _Local:
    request_id: int


@dataclass(frozen=True, slots=True)
class _Remote:
    origin: NodeId
    request_id: int


@dataclass(slots=True)
class ReadOutcome:
    """What one engine step's read answers mean for the driver and the peers."""
    ready: list[ReadReady]
    failed: list[ReadFailure]
    answers: list[tuple[NodeId, ReadIndexAnswer]]


class ReadRouter:
    def __init__(self, node_id: NodeId) -> None:
        self.node_id = node_id
        self._next_id = 0
        self._engine_reads: dict[int, _Local | _Remote] = {}
        # A local read sent on to the leader: its answer must come from that leader.
        self._forwarded: dict[int, NodeId] = {}  # request id -> leader asked

    def __len__(self) -> int:
        return len(self._engine_reads) + len(self._forwarded)

    def forwarded_count(self) -> int:
        return len(self._forwarded)

    def full(self) -> bool:
        return len(self) >= READS_PENDING_MAX

    def start_local(self, request_id: int) -> int:
        """The engine id for a read of this node's client."""
        return self._start(_Local(request_id))

    def start_remote(self, origin: NodeId, request_id: int) -> int:
        """The engine id for a follower's read this leader serves."""
        return self._start(_Remote(origin, request_id))

    def _start(self, owner: _Local | _Remote) -> int:
        self._next_id += 1
        self._engine_reads[self._next_id] = owner
        return self._next_id

    def forward(self, engine_id: int, leader: NodeId) -> ReadIndexRequest:
        """The engine refused `engine_id` with NOT_LEADER: ask `leader` instead."""
        owner = self._engine_reads.pop(engine_id)
        assert isinstance(owner, _Local), "only a client's read is forwarded"
        self._forwarded[owner.request_id] = leader
        return ReadIndexRequest(owner.request_id, self.node_id)

    def redirect(self, leader: NodeId | None) -> list[ReadFailure]:
        """Reads forwarded to a node that is no longer the leader will not be answered
        (it may have crashed): fail them now so the driver asks again, at the new one."""
        if not self._forwarded or all(to == leader for to in self._forwarded.values()):
            return []
        stale = [rid for rid, to in self._forwarded.items() if to != leader]
        for request_id in stale:
            del self._forwarded[request_id]
        return [ReadFailure(rid, "NOT_LEADER", f"the leader changed to {leader}")
                for rid in stale]

    def forget(self, request_id: int) -> None:
        """The driver gave up on a local read: drop what is kept for it."""
        self._forwarded.pop(request_id, None)
        for engine_id, owner in list(self._engine_reads.items()):
            if isinstance(owner, _Local) and owner.request_id == request_id:
                del self._engine_reads[engine_id]

    def on_answer(self, sender: NodeId, answer: ReadIndexAnswer
                  ) -> ReadReady | ReadFailure | None:
        """The leader's answer to a forwarded read (None: unknown, late, or not its)."""
        if self._forwarded.get(answer.request_id) != sender:
            return None
        del self._forwarded[answer.request_id]
        if answer.refused:
            return ReadFailure(answer.request_id, answer.refused,
                               f"leader {sender} refused the read")
        return ReadReady(answer.request_id, answer.index)

    def take(self, effects: Effects) -> ReadOutcome:
        """Map one step's `reads` and read notes back to their owners."""
        outcome = ReadOutcome([], [], [])
        for ready in effects.reads:
            owner = self._engine_reads.pop(ready.request_id, None)
            if isinstance(owner, _Local):
                outcome.ready.append(ReadReady(owner.request_id, ready.index))
            elif isinstance(owner, _Remote):
                outcome.answers.append((owner.origin, ReadIndexAnswer(
                    owner.request_id, ready.index, self.node_id)))
        for note in effects.notes:
            engine_id, reason = _failed_read(note)
            if engine_id is not None and engine_id in self._engine_reads:
                self._fail(outcome, engine_id, reason, note.detail)
        return outcome

    def refuse(self, outcome: ReadOutcome, engine_id: int, reason: str, detail: str) -> None:
        """The engine refused the read it was just given (and it is not forwarded)."""
        if engine_id in self._engine_reads:
            self._fail(outcome, engine_id, reason, detail)

    def _fail(self, outcome: ReadOutcome, engine_id: int, reason: str, detail: str) -> None:
        owner = self._engine_reads.pop(engine_id)
        if isinstance(owner, _Local):
            outcome.failed.append(ReadFailure(owner.request_id, reason, detail))
        else:
            outcome.answers.append((owner.origin, ReadIndexAnswer(
                owner.request_id, 0, self.node_id, refused=reason)))


def _failed_read(note: Note | Rejected) -> tuple[int | None, str]:
    """(engine read id, reason) of an engine's "read_failed" note ("<id>:<why>", as the
    engine contract documents it), else (None, "")."""
    if isinstance(note, Note) and note.kind == "read_failed":
        return int(note.detail.split(":", 1)[0]), "ABORTED"  # not a number: an engine bug
    return None, ""


def refusal_of(effects: Effects) -> Rejected | None:
    """The refusal an engine gave the Propose or ReadRequest it could not take (the first
    Rejected of that step's notes)."""
    return next((n for n in effects.notes if isinstance(n, Rejected)), None)

