"""The runtime driver: one task that feeds the replica core and carries out its plans.

What to do and in which order is decided by the pure core (`qenex_node.core.replica` and
`qenex_node.core.plan`); this module only does the I/O, the same way the simulator's
driver does it with simulated I/O (a conformance test compares the two):
  1. write   - engine records and the blocks to commit in ONE synced LMDB write
               transaction, on a worker thread;
  2. send    - sign each message through the double-sign guard (on a worker thread:
               ML-DSA signing releases the GIL) and hand it to the mesh; answer sync
               requests from storage;
  3. done    - give the results back to the core, publish committed blocks to clients;
  4. next    - the core's local inputs (own copies, Applied, Synced) before anything new.
Certificate checks of sync answers run on a worker thread before their blocks are planned;
admission of forwarded transactions runs beside the driver (it only touches the mempool).

Anything that breaks this order is a bug and stops the node (fail loudly, restart from
disk); bad input from peers or clients never does.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
import trio

from consensus.api import Note, Persist, ReadReady, Rejected, Restore, Tick
from consensus.types import NodeId
from ledger.receipts import AppliedBlock, TxCheck
from qenex_node.core.mempool import AddResult
from qenex_node.core.plan import Outbound, Plan
from qenex_node.core.reads import ReadFailure
from qenex_node.core.replica import Replica
from qenex_node.core.sync import (
    SYNC_RESPONSE_BYTES_MAX,
    CommittedBlock,
    SyncRequest,
    SyncResponse,
    blocks_to_serve,
    sync_response,
)
from qenex_node.runtime.metrics import NodeMetrics

INPUT_QUEUE_MAX = 4_096  # inputs waiting for the driver; producers block beyond it
ADMISSION_TASKS_MAX = 8  # forwarded batches being checked at once; more are refused
VERIFY_THREADS_MAX = 2  # ML-DSA verify releases the GIL: two cores, two verifiers


class Storage(Protocol):
    def write_step(self, persist: Sequence[Persist],
                   blocks: Sequence[tuple[Any, Any]]) -> list[AppliedBlock]: ...

    def committed_range(self, from_height: int, count: int) -> list[CommittedBlock]: ...

    def admission_check(self, tx: bytes) -> tuple[TxCheck, int | None]: ...

    @property
    def height(self) -> int: ...


class Signer(Protocol):
    def sign(self, message: object) -> bytes: ...


class Outbox(Protocol):
    def send(self, peer: int, message: object, signature: bytes) -> bool: ...

    def broadcast(self, message: object, signature: bytes) -> int: ...


@dataclass(frozen=True, slots=True)
class ProposeNow:
    """Ticker: a block interval has passed; cut a batch if anything waits."""
    now_ms: int


@dataclass(frozen=True, slots=True)
class PeerMessage:
    """A peer's message whose envelope signature has been verified."""
    sender: NodeId
    message: object
    signature: bytes


@dataclass(frozen=True, slots=True)
class PeerConnected:
    peer: NodeId


@dataclass(slots=True)
class AdminTransfer:
    """Operator input: hand leadership to `to`; `refusal` is filled, then `done` set."""
    to: NodeId
    done: trio.Event
    refusal: Rejected | None = None


@dataclass(slots=True)
class ClientRead:
    """A client's linearizable read: `index` (serve once applied >= it) or `failure` is
    filled, then `done` set. `request_id` is unique per driver (the backend counts)."""
    request_id: int
    done: trio.Event
    index: int | None = None
    failure: ReadFailure | None = None


Listener = Callable[[CommittedBlock | None, Any], None]


class Driver:
    def __init__(self, *, replica: Replica, storage: Storage, signer: Signer, outbox: Outbox,
                 metrics: NodeMetrics, log: structlog.BoundLogger,
                 sync_response_bytes_max: int = SYNC_RESPONSE_BYTES_MAX) -> None:
        self.replica = replica
        self.sync_response_bytes_max = sync_response_bytes_max
        self.storage = storage
        self.signer = signer
        self.outbox = outbox
        self.metrics = metrics
        self.log = log
        self.send_inputs, self._receive_inputs = trio.open_memory_channel[object](INPUT_QUEUE_MAX)
        self.listeners: list[Listener] = []
        self._verify_limit = trio.CapacityLimiter(VERIFY_THREADS_MAX)
        self._admission_tasks = 0
        self._admissions_idle = trio.Event()
        self._last_view = -1
        self._last_leader: int | None = None
        self._reads: dict[int, ClientRead] = {}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            async for event in self._receive_inputs:
                await self.process(event)

    async def process(self, event: object) -> None:
        """One outside input, then every local input it causes."""
        plan: Plan | None = self._plan_for(event)
        if isinstance(event, AdminTransfer):
            event.refusal = next((n for n in plan.notes if isinstance(n, Rejected)), None)
            event.done.set()
        while plan is not None:
            await self.carry_out(plan)
            plan = self.replica.next_plan()

    def _plan_for(self, event: object) -> Plan:
        replica = self.replica
        if isinstance(event, Tick):
            return replica.tick()
        if isinstance(event, ProposeNow):
            return replica.propose(event.now_ms)
        if isinstance(event, PeerMessage):
            return replica.receive(event.sender, event.message, event.signature)
        if isinstance(event, PeerConnected):
            return replica.peer_connected(event.peer)
        if isinstance(event, Restore):
            return replica.restore(event)
        if isinstance(event, AdminTransfer):
            return replica.transfer_leadership(event.to)
        if isinstance(event, ClientRead):
            self._reads[event.request_id] = event
            return replica.read(event.request_id)
        raise TypeError(f"the driver has no input {type(event).__name__}")

    # ------------------------------------------------------------ carrying out a plan
    async def carry_out(self, plan: Plan) -> None:
        started = time.perf_counter()
        applied = await self._write(plan)  # 1. durable before anything leaves
        signatures = [await self._sign(out.message) for out in plan.sends]  # 2.
        for out, signature in zip(plan.sends, signatures):
            self._transmit(out, signature)
        for request in plan.serve:
            await self._serve_sync(request)
        committed = self.replica.done(plan, applied, signatures)  # 3.
        for item, result in zip(committed, applied):
            self._announce(item, result)
        self._answer_reads(plan.reads, plan.read_failures)  # 4.
        self._observe(plan.notes)
        self.metrics.step_seconds.observe(time.perf_counter() - started)
        for response in plan.check_sync:
            await self._check_sync(response)
        for peer, txs in plan.admit:
            self._start_admission(peer, txs)

    async def _write(self, plan: Plan) -> list[AppliedBlock]:
        if not plan.needs_write():
            return []
        blocks = [(commit.block, commit.certificate) for commit in plan.blocks]
        return await trio.to_thread.run_sync(self.storage.write_step, plan.persist, blocks)

    async def _sign(self, message: object) -> bytes:
        return await trio.to_thread.run_sync(self.signer.sign, message)

    def _transmit(self, out: Outbound, signature: bytes) -> None:
        self.metrics.messages.labels("out").inc()
        if out.to is None:
            self.outbox.broadcast(out.message, signature)
        elif out.to != self.replica.node_id and not self.outbox.send(out.to, out.message,
                                                                     signature):
            self.metrics.rejected.labels("outbound", "PEER_QUEUE_FULL").inc()

    async def _serve_sync(self, request: SyncRequest) -> None:
        chain = await trio.to_thread.run_sync(self.storage.committed_range,
                                              request.from_height, blocks_to_serve(request))
        response = sync_response(request, chain, self.storage.height, self.replica.node_id,
                                 self.sync_response_bytes_max)
        self._transmit(Outbound(request.requester, response), await self._sign(response))

    async def _check_sync(self, response: SyncResponse) -> None:
        height, tip = self.replica.chain_tip()
        accepted = await trio.to_thread.run_sync(self.replica.check_sync, response, height,
                                                 tip, limiter=self._verify_limit)
        plan: Plan | None = self.replica.on_synced_blocks(response, accepted)
        while plan is not None:
            await self.carry_out(plan)
            plan = self.replica.next_plan()
        if accepted:
            self.log.info("caught_up", height=self.replica.height, blocks=len(accepted))

    def _start_admission(self, peer: NodeId, txs: tuple[bytes, ...]) -> None:
        if self._admission_tasks >= ADMISSION_TASKS_MAX:
            # The origin keeps them "proposed" and forwards them again after its timeout.
            self.metrics.rejected.labels("peer", "ADMISSION_BUSY").inc()
            return
        self._admission_tasks += 1
        self._admissions_idle = trio.Event()
        self._nursery.start_soon(self._admit_forwarded, peer, txs)

    async def _admit_forwarded(self, peer: NodeId, txs: tuple[bytes, ...]) -> None:
        """One batch in its order (a sender's nonces stay in sequence), off the driver."""
        try:
            for tx in txs:
                check, nonce = await trio.to_thread.run_sync(self.storage.admission_check, tx)
                result = self.replica.admit(tx, check, nonce)
                if result not in (AddResult.ADDED, AddResult.HELD, AddResult.DUPLICATE):
                    self.metrics.rejected.labels("peer", f"FORWARDED_{result}").inc()
        finally:
            self._admission_tasks -= 1
            if self._admission_tasks == 0:
                self._admissions_idle.set()

    async def wait_admissions(self) -> None:
        """Until no forwarded batch is being admitted (tests replay inputs one by one)."""
        if self._admission_tasks:
            await self._admissions_idle.wait()

    # ------------------------------------------------------------ reads
    def reads_waiting(self) -> int:
        return len(self._reads)

    def forget_read(self, request_id: int) -> None:
        """The client stopped waiting (deadline): no answer is kept for it."""
        self._reads.pop(request_id, None)
        self.replica.forget_read(request_id)

    def _answer_reads(self, ready: tuple[ReadReady, ...],
                      failures: tuple[ReadFailure, ...]) -> None:
        for point in ready:
            read = self._reads.pop(point.request_id, None)
            if read is not None:
                read.index = point.index
                read.done.set()
        for failure in failures:
            read = self._reads.pop(failure.request_id, None)
            if read is not None:
                read.failure = failure
                read.done.set()

    # ------------------------------------------------------------ publishing
    def _announce(self, item: CommittedBlock, result: AppliedBlock) -> None:
        """A block is durable: update gauges, wake clients and event streams."""
        self.metrics.height.set(item.block.height)
        self.metrics.mempool_txs.set(len(self.replica.mempool))
        for listener in self.listeners:
            listener(item, result)

    def _observe(self, notes: tuple[Note | Rejected, ...]) -> None:
        for note in notes:
            if isinstance(note, Rejected):
                self.metrics.rejected.labels("peer", note.reason.name).inc()
                self.log.debug("rejected", reason=note.reason.name, sender=note.sender,
                               detail=note.detail)
            elif note.kind in ("view_change", "election"):
                self.metrics.view_changes.inc()
                self.log.info(note.kind, detail=note.detail, view=note.view)
            elif note.kind == "evidence":  # one committed piece of equivocation evidence
                self.metrics.evidence.labels(str(note.leader)).inc()
                self.log.warning("evidence", detail=note.detail, validator=note.leader,
                                 height=note.view)
        status = self.replica.engine.status()
        if status.view != self._last_view or status.leader != self._last_leader:
            self._last_view, self._last_leader = status.view, status.leader
            self.metrics.view.set(status.view)
            self.metrics.leader.set(-1 if status.leader is None else status.leader)
            self.metrics.is_leader.set(1 if status.leader == self.replica.node_id else 0)
            self.log.info("leader", view=status.view, leader=status.leader, role=status.role)
            for listener in self.listeners:
                listener(None, status)
