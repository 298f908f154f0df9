"""The runtime's answer to the gRPC service (`NodeBackend`), in trio.

Submissions are admitted here (stateless checks + signature on a worker thread, then the
replica core's bounded mempool); a client that asked to wait parks on a per-transaction
event that the driver's commit listener sets. Reads go to LMDB on a worker thread (LMDB
read transactions are safe across threads) or to the ledger under the storage lock.

Built from explicit collaborators (storage, replica, metrics, two callables for liveness),
never from the whole runtime, so nothing here can reach around the driver.
"""
from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from consensus.api import EngineStatus
from consensus.types import merkle_proof
from ledger.account import encode_account
from ledger.receipts import TxOutcome
from ledger.state_tree import PROOF_SCHEME
from qenex_node.api.backend import (
    DEFAULT_READ,
    LINEARIZABLE,
    AccountRead,
    BackendRefusal,
    EvidencePageView,
    NodeEvent,
    NodeStatusView,
    ReadOptions,
    StateProofView,
    SubmitResult,
    TransactionRecord,
)
from qenex_node.api.evidence import evidence_view
from qenex_node.core.mempool import AddResult
from qenex_node.core.reads import READ_RETRY_MS, RETRYABLE_READ_REFUSALS
from qenex_node.core.replica import Replica
from qenex_node.core.sync import CommittedBlock
from qenex_node.runtime.driver import AdminTransfer, ClientRead
from qenex_node.runtime.metrics import NodeMetrics
from qenex_node.runtime.storage import LedgerStorage

WAITERS_MAX = 50_000  # clients parked on wait_for_commit; more is refused, never queued
SUBSCRIBERS_MAX = 256
SUBSCRIBER_QUEUE_MAX = 1_024  # events buffered per WatchEvents stream before it is ended
WAIT_TIMEOUT_MS_DEFAULT = 30_000
VERSION = "0.1.0"
CERTIFYING_SEARCH_BLOCKS = 16  # how far past a state's height to look for a header naming it
READ_TIMEOUT_MS_DEFAULT = 5_000  # a read waits this long for its height, then BEHIND
READS_WAITING_MAX = 10_000  # reads waiting for a read point or a height; more: OVERLOADED


@dataclass(slots=True)
class _Waiter:
    event: trio.Event = field(default_factory=trio.Event)
    submitted_s: float = field(default_factory=time.perf_counter)
    result: SubmitResult | None = None


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: int
    chain_id: str
    algorithm: str


class RuntimeBackend:
    def __init__(self, *, identity: NodeIdentity, storage: LedgerStorage, replica: Replica,
                 metrics: NodeMetrics, peers_connected: Callable[[], int],
                 is_ready: Callable[[], bool],
                 driver_inputs: trio.MemorySendChannel[object] | None = None,
                 forget_read: Callable[[int], None] | None = None) -> None:
        self.driver_inputs = driver_inputs
        self.forget_read = forget_read or replica.forget_read
        self.identity = identity
        self.storage = storage
        self.replica = replica
        self.metrics = metrics
        self.peers_connected = peers_connected
        self.is_ready = is_ready
        self._waiters: dict[bytes, list[_Waiter]] = {}
        self._waiter_count = 0
        self._subscribers: set[trio.MemorySendChannel[NodeEvent]] = set()
        self._lagged: set[trio.MemorySendChannel[NodeEvent]] = set()  # ended for falling behind
        self._read_ids = itertools.count(1)
        self._reads_waiting = 0
        self._height_waiters: list[tuple[int, int, trio.Event]] = []  # heap by height

    # ------------------------------------------------------------ driver listener
    def on_driver_event(self, item: CommittedBlock | None, result: Any) -> None:
        if item is None:
            self._on_leader(result)
            return
        block = item.block
        ok = sum(1 for o in result.outcomes if o.success)
        self.metrics.committed_txs.labels("success").inc(ok)
        self.metrics.committed_txs.labels("refused").inc(len(result.outcomes) - ok)
        self._broadcast(NodeEvent("block_committed", height=block.height,
                                  block_hash=block.block_hash, state_root=item.state_root,
                                  tx_count=len(block.txs),
                                  timestamp_ms=block.header.timestamp_ms))
        for outcome in result.outcomes:
            self._resolve(block.height, outcome)
        self._release_heights(block.height)

    def _resolve(self, height: int, outcome: TxOutcome) -> None:
        if self._subscribers:
            self._broadcast(NodeEvent("transaction_committed", height=height,
                                      tx_id=outcome.tx_id, outcome=outcome))
        waiters = self._waiters.pop(outcome.tx_id, None)
        if not waiters:
            return
        for waiter in waiters:
            waiter.result = SubmitResult(outcome.tx_id, "COMMITTED", height=height,
                                         outcome=outcome)
            self.metrics.commit_latency.observe(time.perf_counter() - waiter.submitted_s)
            waiter.event.set()
        self._waiter_count -= len(waiters)

    def _on_leader(self, status: EngineStatus) -> None:
        self._broadcast(NodeEvent("leader_changed", view=status.view, leader=status.leader))

    def _broadcast(self, event: NodeEvent) -> None:
        for channel in list(self._subscribers):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                self._subscribers.discard(channel)
                self._lagged.add(channel)
                channel.close()  # the reader drains, then gets WATCH_LAGGED (see watch)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.discard(channel)

    # ------------------------------------------------------------ NodeBackend
    async def submit(self, tx: bytes, wait_for_commit: bool, timeout_ms: int) -> SubmitResult:
        check, committed_nonce = await trio.to_thread.run_sync(self.storage.admission_check, tx)
        if not check.ok:
            self.metrics.rejected.labels("client", check.reason).inc()
            return SubmitResult(check.tx_id, "REJECTED", check.reason, check.detail)
        added = self.replica.admit(tx, check, committed_nonce)
        if added == AddResult.FULL:
            self.metrics.rejected.labels("client", "MEMPOOL_FULL").inc()
            return SubmitResult(check.tx_id, "REJECTED", "MEMPOOL_FULL",
                                "the mempool is full; retry with back-off")
        if added == AddResult.NONCE_TOO_LOW:
            committed = await self._committed_result(check.tx_id)
            if committed is not None:  # a resubmission of what committed: not an error
                return committed if wait_for_commit else SubmitResult(
                    check.tx_id, "DUPLICATE", "DUPLICATE", "already committed")
            self.metrics.rejected.labels("client", "NONCE_TOO_LOW").inc()
            return SubmitResult(check.tx_id, "REJECTED", "NONCE_TOO_LOW",
                                f"nonce {check.nonce} is used already; the next is "
                                f"{committed_nonce + 1}" if committed_nonce is not None
                                else "nonce used already")
        if added == AddResult.NONCE_GAP:
            self.metrics.rejected.labels("client", "NONCE_GAP").inc()
            return SubmitResult(check.tx_id, "REJECTED", "NONCE_GAP",
                                "too many transactions of this sender wait for an earlier "
                                "nonce; send the missing nonce first")
        self.metrics.mempool_txs.set(len(self.replica.mempool))
        if added == AddResult.DUPLICATE and not wait_for_commit:
            return SubmitResult(check.tx_id, "DUPLICATE", "DUPLICATE", "already pending")
        if not wait_for_commit:
            return SubmitResult(check.tx_id, "ACCEPTED")
        return await self._wait(check.tx_id, timeout_ms or WAIT_TIMEOUT_MS_DEFAULT)

    async def _wait(self, tx_id: bytes, timeout_ms: int) -> SubmitResult:
        committed = await self._committed_result(tx_id)
        if committed is not None:
            return committed
        if self._waiter_count >= WAITERS_MAX:
            return SubmitResult(tx_id, "REJECTED", "OVERLOADED",
                                "too many clients waiting for commits; retry without waiting")
        waiter = _Waiter()
        self._waiters.setdefault(tx_id, []).append(waiter)
        self._waiter_count += 1
        with trio.move_on_after(timeout_ms / 1000):
            await waiter.event.wait()
        if waiter.result is not None:
            return waiter.result
        waiters = self._waiters.get(tx_id, [])
        if waiter in waiters:
            waiters.remove(waiter)
            self._waiter_count -= 1
            if not waiters:
                self._waiters.pop(tx_id, None)
        return SubmitResult(tx_id, "REJECTED", "TIMEOUT", f"not committed within {timeout_ms} "
                            "ms; it stays admitted and may still commit")

    async def _committed_result(self, tx_id: bytes) -> SubmitResult | None:
        record = await trio.to_thread.run_sync(self.storage.store.transaction, tx_id)
        if record is None or not record.success:
            return None
        outcome = TxOutcome(tx_id, record.index, record.success, record.reason)
        return SubmitResult(tx_id, "COMMITTED", height=record.height, outcome=outcome)

    # ------------------------------------------------------------ reads
    async def _read_floor(self, read: ReadOptions) -> int:
        """The height a read must be served at or above, once this node has applied it.

        linearizable: the engine's read point (Raft ReadIndex; the BFT read barrier);
        min_height: the client's own floor (read-your-writes). Refused with BEHIND when the
        ledger does not get there by the deadline, TIMEOUT when no read point was learned.
        """
        started_s = time.perf_counter()
        deadline = trio.current_time() + (read.timeout_ms or READ_TIMEOUT_MS_DEFAULT) / 1000
        floor = read.min_height
        try:
            if read.consistency == LINEARIZABLE:
                floor = max(floor, await self._read_point(deadline))
            await self._wait_applied(floor, deadline)
        except BackendRefusal as refusal:
            self.metrics.reads.labels(read.consistency, refusal.reason).inc()
            raise
        self.metrics.reads.labels(read.consistency, "ok").inc()
        self.metrics.read_wait.labels(read.consistency).observe(time.perf_counter() - started_s)
        return floor

    async def _read_point(self, deadline: float) -> int:
        if self.driver_inputs is None:
            raise BackendRefusal("NOT_SUPPORTED", "no driver to ask for a read point")
        while True:
            request = ClientRead(next(self._read_ids), trio.Event())
            await self._await_read(request, deadline)
            if request.index is not None:
                return request.index
            failure = request.failure
            assert failure is not None, "a read is answered with an index or a failure"
            if failure.reason not in RETRYABLE_READ_REFUSALS:
                reason = "NOT_SUPPORTED" if failure.reason == "UNSUPPORTED" else failure.reason
                raise BackendRefusal(reason, f"linearizable read refused: {failure.detail}; "
                                     "read with consistency=local instead")
            if trio.current_time() + READ_RETRY_MS / 1000 >= deadline:
                raise BackendRefusal("TIMEOUT", f"no read point before the deadline "
                                     f"(last: {failure.reason}: {failure.detail})")
            await trio.sleep(READ_RETRY_MS / 1000)

    async def _await_read(self, request: ClientRead, deadline: float) -> None:
        assert self.driver_inputs is not None
        if self._reads_waiting >= READS_WAITING_MAX:
            raise BackendRefusal("OVERLOADED", "too many reads waiting; retry with back-off")
        self._reads_waiting += 1
        try:
            with trio.move_on_at(deadline):
                await self.driver_inputs.send(request)
                await request.done.wait()
        finally:
            self._reads_waiting -= 1
        if not request.done.is_set():
            self.forget_read(request.request_id)
            raise BackendRefusal("TIMEOUT", "no linearizable read point before the deadline "
                                 "(no quorum reachable?); retry, or read with "
                                 "consistency=local")

    async def _wait_applied(self, height: int, deadline: float) -> None:
        if self.storage.height >= height:
            return
        if self._reads_waiting >= READS_WAITING_MAX:
            raise BackendRefusal("OVERLOADED", "too many reads waiting; retry with back-off")
        event = trio.Event()
        entry = (height, id(event), event)
        heapq.heappush(self._height_waiters, entry)
        self._reads_waiting += 1
        try:
            with trio.move_on_at(deadline):
                await event.wait()
        finally:
            self._reads_waiting -= 1
        if not event.is_set():
            self._height_waiters.remove(entry)
            heapq.heapify(self._height_waiters)
            raise BackendRefusal("BEHIND", f"this node has applied height "
                                 f"{self.storage.height}; the read needs height {height}")

    def _release_heights(self, height: int) -> None:
        while self._height_waiters and self._height_waiters[0][0] <= height:
            heapq.heappop(self._height_waiters)[2].set()

    async def get_transaction(self, tx_id: bytes, read_options: ReadOptions = DEFAULT_READ
                              ) -> tuple[TransactionRecord | None, int]:
        await self._read_floor(read_options)

        def read() -> tuple[TransactionRecord | None, int]:
            served_at = self.storage.height  # before the lookup: it saw at least this
            record = self.storage.store.transaction(tx_id)
            if record is None:
                return None, served_at
            stored = self.storage.store.block(record.height)
            if stored is None or stored.certificate is None:
                return None, served_at
            txs = stored.block.txs
            return TransactionRecord(
                tx=record.tx, height=record.height,
                outcome=TxOutcome(tx_id, record.index, record.success, record.reason),
                header=stored.block.header, certificate=stored.certificate,
                proof_index=record.index, proof_count=len(txs),
                proof_path=merkle_proof(txs, record.index)), served_at

        return await trio.to_thread.run_sync(read)

    async def get_account(self, address: bytes, prove: bool,
                          read_options: ReadOptions = DEFAULT_READ) -> AccountRead:
        await self._read_floor(read_options)

        def read() -> AccountRead:
            with self.storage.lock:  # account, height, root and proof from one state
                ledger = self.storage.ledger
                account = ledger.account(address)
                height, root = ledger.height, ledger.state_root
                if not prove:
                    return AccountRead(account, None, height, root)
                proof = ledger.prove_account(address)
            leaf = encode_account(account) if account is not None else b""
            header, certificate = self._certifying_header(height, root)
            return AccountRead(account, StateProofView(height, root, leaf, proof, PROOF_SCHEME,
                                                       header, certificate), height, root)

        return await trio.to_thread.run_sync(read)

    def _certifying_header(self, height: int, root: bytes) -> tuple[object | None, object | None]:
        """A committed header that names (height, root) as its state: headers carry the
        state their proposer had applied, usually the block just before."""
        store = self.storage.store
        for candidate in range(height + 1, min(height + CERTIFYING_SEARCH_BLOCKS, store.height) + 1):
            stored = store.block(candidate)
            if stored is None:
                break
            header = stored.block.header
            if header.state_height == height and header.state_root == root:
                return header, stored.certificate
        return None, None

    async def get_block(self, height: int | None, block_hash: bytes | None,
                        read_options: ReadOptions = DEFAULT_READ
                        ) -> tuple[CommittedBlock | None, int]:
        await self._read_floor(read_options)

        def read() -> tuple[CommittedBlock | None, int]:
            store = self.storage.store
            served_at = self.storage.height
            if height is None and block_hash is not None:
                stored = store.block_by_hash(block_hash)
                target = stored.block.height if stored is not None else None
            else:
                target = height
            return (self.storage.committed(target) if target else None), served_at

        return await trio.to_thread.run_sync(read)

    async def get_evidence(self, from_height: int, to_height: int, validator: int | None,
                           limit: int) -> EvidencePageView:
        def read() -> EvidencePageView:
            store = self.storage.store
            page = store.evidence(from_height, to_height or store.height, validator=validator,
                                  limit=limit)
            return EvidencePageView(tuple(evidence_view(r.height, r.index, r.validator,
                                                        r.evidence) for r in page.records),
                                    page.next_height)

        return await trio.to_thread.run_sync(read)

    async def transfer_leadership(self, to: int) -> int | None:
        if self.driver_inputs is None:
            raise BackendRefusal("NOT_SUPPORTED", "no driver to hand the request to")
        request = AdminTransfer(to, trio.Event())
        await self.driver_inputs.send(request)
        await request.done.wait()
        if request.refusal is not None:
            reason = request.refusal.reason.name
            raise BackendRefusal("NOT_SUPPORTED" if reason == "UNSUPPORTED" else reason,
                                 request.refusal.detail)
        return self.replica.engine.status().leader

    async def status(self) -> NodeStatusView:
        return self.status_now()

    def status_now(self) -> NodeStatusView:
        engine = self.replica.engine.status()
        store = self.storage.store
        return NodeStatusView(
            node_id=self.identity.node_id, chain_id=self.identity.chain_id,
            algorithm=self.identity.algorithm, height=store.height,
            state_root=store.state_root, block_hash=store.block_hash, view=engine.view,
            leader=engine.leader, role=engine.role, peers_connected=self.peers_connected(),
            mempool_txs=len(self.replica.mempool), version=VERSION, ready=self.is_ready())

    async def watch(self, from_height: int) -> AsyncIterator[NodeEvent]:
        if len(self._subscribers) >= SUBSCRIBERS_MAX:
            raise BackendRefusal("OVERLOADED", "too many event subscribers")
        send, receive = trio.open_memory_channel[NodeEvent](SUBSCRIBER_QUEUE_MAX)
        self._subscribers.add(send)
        try:
            replayed = from_height - 1 if from_height else 0
            if from_height:
                for event in await trio.to_thread.run_sync(self._replay, from_height):
                    replayed = event.height
                    yield event
            async with receive:
                async for event in receive:
                    if event.height and event.height <= replayed and \
                            event.kind != "leader_changed":
                        continue  # already replayed from storage
                    yield event
            if send in self._lagged:
                # The protocol's promise (api/backend.py): a watcher that fell behind is
                # ended with an error it can act on (resume by height), not a clean end.
                raise BackendRefusal("WATCH_LAGGED", f"more than {SUBSCRIBER_QUEUE_MAX} "
                                     "events behind; reconnect with from_height")
        finally:
            self._subscribers.discard(send)
            self._lagged.discard(send)
            send.close()

    def _replay(self, from_height: int) -> list[NodeEvent]:
        store = self.storage.store
        events = []
        for height in range(from_height, min(store.height, from_height + 1_000) + 1):
            stored = store.block(height)
            if stored is None:
                break
            block = stored.block
            events.append(NodeEvent("block_committed", height=height,
                                    block_hash=block.block_hash, state_root=stored.state_root,
                                    tx_count=len(block.txs),
                                    timestamp_ms=block.header.timestamp_ms))
        return events
