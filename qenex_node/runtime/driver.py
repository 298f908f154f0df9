"""The runtime driver: one task that steps the engine and carries out its Effects.

Order (ARCHITECTURE.md §1), for every input:
  1. persist  - engine records and the ledger's writes for committed blocks, in ONE synced
                LMDB write transaction on the storage thread;
  2. send     - sign each message through the double-sign guard (on a worker thread:
                ML-DSA signing releases the GIL) and hand it to the mesh; a broadcast's
                own copy is fed back to the engine as `Receive(self, msg, signature)`;
  3. publish  - answer waiting clients, publish events, clean the mempool, feed `Applied`;
  4. catch up - ask a peer for blocks when the engine says it is behind.
Only then is the next input taken. Inputs made here (own copies, `Applied`, `Synced`)
run before anything from the input channel, exactly like the simulator's driver.

Anything that breaks this order is a bug and stops the node (fail loudly, restart from
disk); bad input from peers or clients never does.
"""
from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
import trio

from consensus.api import (
    Applied,
    CatchUp,
    Effects,
    Engine,
    Note,
    Persist,
    Propose,
    Receive,
    Rejected,
    RejectReason,
    Send,
    Synced,
)
from consensus.types import Block, Certificate
from qenex_node.core.mempool import Mempool
from qenex_node.core.sync import SYNC_BLOCKS_MAX, CommittedBlock, SyncRequest, TransactionBatch
from qenex_node.runtime.metrics import NodeMetrics

INPUT_QUEUE_MAX = 4_096  # inputs waiting for the driver; producers block beyond it
LOCAL_INPUTS_MAX = 100_000  # own copies + feedback within one burst; more is a bug


class Storage(Protocol):
    def write_step(self, persist: Sequence[Persist],
                   blocks: Sequence[tuple[Block, Certificate]]) -> list[Any]:
        """Apply `blocks` to the ledger and write them with the engine records in one
        synced transaction; return one applied result per block (AppliedBlock-like)."""
        ...


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
class SyncedBlocks:
    """Verified blocks from a peer, to be applied and persisted by the driver."""
    blocks: tuple[CommittedBlock, ...]


Listener = Callable[[CommittedBlock, Any], None]


class Driver:
    def __init__(self, *, node_id: int, nodes: int, engine: Engine, storage: Storage,
                 signer: Signer, outbox: Outbox, mempool: Mempool, metrics: NodeMetrics,
                 batch_txs_max: int, batch_bytes_max: int, tx_id: Callable[[bytes], bytes],
                 log: structlog.BoundLogger) -> None:
        self.node_id = node_id
        self.nodes = nodes
        self.engine = engine
        self.storage = storage
        self.signer = signer
        self.outbox = outbox
        self.mempool = mempool
        self.metrics = metrics
        self.batch_txs_max = batch_txs_max
        self.batch_bytes_max = batch_bytes_max
        self.tx_id = tx_id
        self.log = log
        self.send_inputs, self._receive_inputs = trio.open_memory_channel[object](INPUT_QUEUE_MAX)
        self._local: collections.deque[object] = collections.deque()
        self.listeners: list[Listener] = []
        self.ledger_lock = threading.Lock()  # queries read the ledger while we apply
        self._last_view = -1
        self._last_leader: int | None = None
        self._sync_attempt = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for event in self._receive_inputs:
            await self.process(event)

    async def process(self, event: object) -> None:
        self._local.append(event)
        while self._local:
            if len(self._local) > LOCAL_INPUTS_MAX:
                raise RuntimeError("engine feedback loop: local inputs exceed the bound")
            await self._dispatch(self._local.popleft())

    async def _dispatch(self, event: object) -> None:
        if isinstance(event, ProposeNow):
            await self._propose(event.now_ms)
        elif isinstance(event, SyncedBlocks):
            await self._apply_synced(event.blocks)
        else:
            await self.step(event)

    # ------------------------------------------------------------ the four steps
    async def step(self, event: object) -> Effects:
        started = time.perf_counter()
        effects = self.engine.step(event)  # type: ignore[arg-type]
        applied = await self._persist(effects)
        signatures: dict[object, bytes] = {}
        for send in effects.send:
            await self._sign_and_send(send, signatures)
        for commit, result in zip(effects.commit, applied):
            self._publish(CommittedBlock(commit.block, commit.certificate, result.state_root),
                          result)
        for request in effects.catch_up:
            await self._request_sync(request)
        self._observe(effects.notes)
        self.metrics.step_seconds.observe(time.perf_counter() - started)
        return effects

    async def _persist(self, effects: Effects) -> list[Any]:
        if not effects.persist and not effects.commit:
            return []
        blocks = [(c.block, c.certificate) for c in effects.commit]

        def write() -> list[Any]:
            with self.ledger_lock:
                return self.storage.write_step(effects.persist, blocks)

        return await trio.to_thread.run_sync(write)

    async def _sign_and_send(self, send: Send, signatures: dict[object, bytes]) -> None:
        # Engines often send one equal message to several peers (Raft appends to followers
        # that are in step): sign it once per step. ML-DSA takes ~1.4 ms a signature.
        signature = signatures.get(send.message)
        if signature is None:
            signature = await trio.to_thread.run_sync(self.signer.sign, send.message)
            signatures[send.message] = signature
        self.metrics.messages.labels("out").inc()
        if send.to is None:
            self.outbox.broadcast(send.message, signature)
            self._local.append(Receive(self.node_id, send.message, signature))
        elif send.to == self.node_id:
            self._local.append(Receive(self.node_id, send.message, signature))
        else:
            self.outbox.send(send.to, send.message, signature)

    def _publish(self, item: CommittedBlock, result: Any) -> None:
        self._announce(item, result)
        block = item.block
        self._local.append(Applied(block.height, block.block_hash, item.state_root))

    def _announce(self, item: CommittedBlock, result: Any) -> None:
        """A block is durable: clean the mempool, update gauges, wake clients and events."""
        self.mempool.remove_committed([self.tx_id(tx) for tx in item.block.txs])
        self.metrics.height.set(item.block.height)
        self.metrics.mempool_txs.set(len(self.mempool))
        for listener in self.listeners:
            listener(item, result)

    # ------------------------------------------------------------ proposals
    async def _propose(self, now_ms: int) -> None:
        self.mempool.requeue_stale(now_ms)
        if not self.mempool.pending_count:
            return
        batch = self.mempool.cut_batch(self.batch_txs_max, self.batch_bytes_max, now_ms)
        effects = await self.step(Propose(batch, now_ms))
        refused = [n for n in effects.notes if isinstance(n, Rejected)]
        if not refused:
            return
        leader = self.engine.status().leader
        if refused[0].reason == RejectReason.NOT_LEADER and leader not in (None, self.node_id):
            # Hand them to the proposer; they stay "proposed" here and come back to
            # pending if no block with them commits in time (leader crash, view change).
            await self._send_direct(leader, TransactionBatch(batch, self.node_id))
            return
        self.mempool.return_batch([self.tx_id(tx) for tx in batch])

    async def _send_direct(self, peer: int, message: object) -> None:
        signature = await trio.to_thread.run_sync(self.signer.sign, message)
        self.outbox.send(peer, message, signature)

    # ------------------------------------------------------------ catch-up
    async def _request_sync(self, request: CatchUp) -> None:
        peers = [p for p in request.peers if p != self.node_id] or \
            [p for p in range(self.nodes) if p != self.node_id]
        self._sync_attempt += 1
        peer = peers[self._sync_attempt % len(peers)]
        height = self.engine.status().committed_height
        await self._send_direct(peer, SyncRequest(height + 1, SYNC_BLOCKS_MAX, self.node_id))

    async def _apply_synced(self, blocks: tuple[CommittedBlock, ...]) -> None:
        height = self.engine.status().committed_height
        fresh = tuple(b for b in blocks if b.block.height > height)
        if not fresh or fresh[0].block.height != height + 1:
            return  # already applied meanwhile, or no longer contiguous: ask again later
        pairs = [(b.block, b.certificate) for b in fresh]

        def write() -> list[Any]:
            with self.ledger_lock:
                return self.storage.write_step((), pairs)

        results = await trio.to_thread.run_sync(write)
        for item, result in zip(fresh, results):
            self._announce(CommittedBlock(item.block, item.certificate, result.state_root),
                           result)
        last = fresh[-1].block
        self.log.info("caught_up", height=last.height, blocks=len(fresh))
        self._local.append(Synced(last.height, last.block_hash, results[-1].state_root))

    # ------------------------------------------------------------ notes
    def _observe(self, notes: tuple[Note | Rejected, ...]) -> None:
        for note in notes:
            if isinstance(note, Rejected):
                self.metrics.rejected.labels("peer", note.reason.name).inc()
                self.log.debug("rejected", reason=note.reason.name, sender=note.sender,
                               detail=note.detail)
            elif note.kind in ("view_change", "election"):
                self.metrics.view_changes.inc()
                self.log.info(note.kind, detail=note.detail, view=note.view)
        status = self.engine.status()
        if status.view != self._last_view or status.leader != self._last_leader:
            self._last_view, self._last_leader = status.view, status.leader
            self.metrics.view.set(status.view)
            self.metrics.leader.set(-1 if status.leader is None else status.leader)
            self.metrics.is_leader.set(1 if status.leader == self.node_id else 0)
            self.log.info("leader", view=status.view, leader=status.leader, role=status.role)
            for listener in self.listeners:
                listener(None, status)

