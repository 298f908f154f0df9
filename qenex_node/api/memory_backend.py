"""A single-node, in-memory `NodeBackend`: the real mempool and the real ledger, with
blocks cut on request (`commit_pending`) or every `block_time_ms` (`run`).

It is the dev backend (one process, no consensus, no disk) and what the API tests run
against. "Consensus" here is the node's own say-so: each block gets a certificate of kind
"memory.single" with no votes. Headers follow the real rule that a header carries the
state root after the previous height, so an account proof for the tip state becomes
certified by the next block's header.

Everything runs on the trio thread; nothing blocks. Limits: the mempool's own, the
number of commit waiters (`waiters_max`), per-watcher queues (`watch_events_max`,
after which the watcher is ended with WATCH_LAGGED) and the number of blocks kept
(`blocks_max`; the dev chain refuses further blocks rather than growing without bound).
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import trio

from consensus.types import EMPTY_ROOT, GENESIS_HASH, Certificate, make_block, merkle_proof
from ledger.account import encode_account
from ledger.ledger import Ledger
from ledger.state_tree import PROOF_SCHEME
from qenex_node.api.backend import (
    DEFAULT_READ,
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
from qenex_node.core.app import TxOutcome
from qenex_node.core.mempool import AddResult, Mempool, MempoolLimits
from qenex_node.core.sync import CommittedBlock

CERTIFICATE_KIND = "memory.single"
VERSION = "qenex-memory-backend/1"


@dataclass(frozen=True, slots=True)
class MemoryLimits:
    batch_txs_max: int = 1_000
    batch_bytes_max: int = 4 * 1024 * 1024
    waiters_max: int = 10_000
    watch_events_max: int = 1_024
    blocks_max: int = 1_000_000
    nonce_ahead_max: int = 64  # how far past the account's nonce a sender may queue
    read_timeout_ms_default: int = 5_000  # a read below its min_height waits this long


@dataclass(slots=True)
class _Watcher:
    send: trio.MemorySendChannel
    lagged: bool = False


@dataclass(slots=True)
class _Waiter:
    event: trio.Event = field(default_factory=trio.Event)
    result: tuple[int, TxOutcome] | None = None


class InMemoryBackend:
    def __init__(self, ledger: Ledger, *, node_id: int = 0, mempool: Mempool | None = None,
                 limits: MemoryLimits = MemoryLimits(),
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.ledger = ledger
        self.chain_id = ledger.chain_id
        self.node_id = node_id
        self.mempool = mempool or Mempool(MempoolLimits())
        self.limits = limits
        self.ready = True
        self._clock_ms = clock_ms
        self._chain: list[CommittedBlock] = []  # index 0 holds height 1
        self._by_hash: dict[bytes, int] = {}  # block hash -> height
        self._outcomes: list[tuple[TxOutcome, ...]] = []  # receipts, beside _chain
        self._tx_index: dict[bytes, tuple[int, int]] = {}  # tx id -> (height, index)
        self._waiters: dict[bytes, _Waiter] = {}
        self._watchers: list[_Watcher] = []
        self._applied = trio.Event()  # set (and replaced) whenever a block is applied

    # ------------------------------------------------------------ submit
    async def submit(self, tx: bytes, wait_for_commit: bool, timeout_ms: int) -> SubmitResult:
        self._require_ready()
        check = self.ledger.check_tx(tx)
        if not check.ok:
            return SubmitResult(check.tx_id, "REJECTED", check.reason, check.detail)
        if check.tx_id in self._tx_index:
            if wait_for_commit:
                return self._committed_result(check.tx_id)
            return SubmitResult(check.tx_id, "DUPLICATE", detail="already committed")
        refusal = self._check_nonce(check.sender, check.nonce)
        if refusal is not None:
            return SubmitResult(check.tx_id, "REJECTED", *refusal)
        added = self.mempool.add(check.tx_id, tx)
        if added == AddResult.FULL:
            return SubmitResult(check.tx_id, "REJECTED", "MEMPOOL_FULL",
                                f"{len(self.mempool)} transactions waiting")
        if not wait_for_commit:
            status = "DUPLICATE" if added == AddResult.DUPLICATE else "ACCEPTED"
            return SubmitResult(check.tx_id, status)
        return await self._wait_commit(check.tx_id, timeout_ms)

    def _require_ready(self) -> None:
        if not self.ready:
            raise BackendRefusal("NOT_READY", "node is not ready")

    def _check_nonce(self, sender: bytes, nonce: int) -> tuple[str, str] | None:
        account = self.ledger.account(sender)
        if account is None:
            return None  # create_account (nonce 1) or a tx that will fail UNKNOWN_ACCOUNT
        if nonce <= account.nonce:
            return "NONCE_TOO_LOW", f"nonce {nonce}, account is at {account.nonce}"
        if nonce > account.nonce + self.limits.nonce_ahead_max:
            return "NONCE_TOO_HIGH", (f"nonce {nonce} is more than "
                                      f"{self.limits.nonce_ahead_max} past {account.nonce}")
        return None

    async def _wait_commit(self, tx_id: bytes, timeout_ms: int) -> SubmitResult:
        waiter = self._waiters.get(tx_id)
        if waiter is None:
            if len(self._waiters) >= self.limits.waiters_max:
                return SubmitResult(tx_id, "REJECTED", "WAITERS_FULL",
                                    "admitted, but too many callers are waiting for commits")
            waiter = self._waiters[tx_id] = _Waiter()
        with trio.move_on_after(max(timeout_ms, 1) / 1000):
            await waiter.event.wait()
        if waiter.result is None:
            return SubmitResult(tx_id, "REJECTED", "TIMEOUT",
                                f"not committed within {timeout_ms} ms; it stays admitted")
        return self._committed_result(tx_id)

    def _committed_result(self, tx_id: bytes) -> SubmitResult:
        height, index = self._tx_index[tx_id]
        outcome = self._applied_outcome(height, index)
        return SubmitResult(tx_id, "COMMITTED", height=height, outcome=outcome)

    # ------------------------------------------------------------ commit
    async def commit_pending(self, *, allow_empty: bool = False) -> CommittedBlock | None:
        """Cut a batch from the mempool, apply it as the next block, answer waiters and
        publish events. None when there was nothing to commit (and not `allow_empty`)."""
        now_ms = self._clock_ms()
        txs = self.mempool.cut_batch(self.limits.batch_txs_max, self.limits.batch_bytes_max,
                                     now_ms)
        if not txs and not allow_empty:
            return None
        if len(self._chain) >= self.limits.blocks_max:
            self.mempool.return_batch([self.ledger.check_tx(tx).tx_id for tx in txs])
            raise BackendRefusal("CHAIN_FULL", f"dev chain holds {self.limits.blocks_max} blocks")
        item, outcomes = self._apply(txs, now_ms)
        self.mempool.remove_committed([o.tx_id for o in outcomes])
        self._resolve_waiters(item.block.height, outcomes)
        self._publish(self._events_for(item, outcomes))
        return item

    def _apply(self, txs: tuple[bytes, ...], now_ms: int) -> tuple[CommittedBlock, tuple]:
        height = self.ledger.height
        parent = self._chain[-1].block.block_hash if self._chain else GENESIS_HASH
        block = make_block(self.chain_id, height + 1, parent, txs, self.node_id, now_ms,
                           state_height=height, state_root=self.ledger.state_root)
        applied = self.ledger.apply(block).applied
        certificate = Certificate(CERTIFICATE_KIND, block.height, block.block_hash, ())
        item = CommittedBlock(block, certificate, applied.state_root)
        self._chain.append(item)
        self._applied.set()
        self._applied = trio.Event()
        self._by_hash[block.block_hash] = block.height
        self._outcomes.append(applied.outcomes)
        for outcome in applied.outcomes:
            # A tx id refused as malformed has no id (b""); it is not findable by id.
            if outcome.tx_id and outcome.tx_id not in self._tx_index:
                self._tx_index[outcome.tx_id] = (block.height, outcome.index)
        return item, applied.outcomes

    def _applied_outcome(self, height: int, index: int) -> TxOutcome:
        return self._outcomes[height - 1][index]

    def _resolve_waiters(self, height: int, outcomes: tuple[TxOutcome, ...]) -> None:
        for outcome in outcomes:
            waiter = self._waiters.pop(outcome.tx_id, None)
            if waiter is not None:
                waiter.result = (height, outcome)
                waiter.event.set()

    async def run(self, block_time_ms: int, *,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Commit whatever is pending every `block_time_ms` until cancelled."""
        task_status.started()
        while True:
            await trio.sleep(block_time_ms / 1000)
            await self.commit_pending()

    # ------------------------------------------------------------ events
    def _events_for(self, item: CommittedBlock, outcomes: tuple[TxOutcome, ...]) -> list[NodeEvent]:
        block = item.block
        events = [NodeEvent("block_committed", height=block.height, block_hash=block.block_hash,
                            state_root=item.state_root, tx_count=len(block.txs),
                            timestamp_ms=block.header.timestamp_ms)]
        events.extend(NodeEvent("transaction_committed", height=block.height,
                                tx_id=o.tx_id, outcome=o) for o in outcomes)
        return events

    def _publish(self, events: list[NodeEvent]) -> None:
        for watcher in list(self._watchers):
            for event in events:
                try:
                    watcher.send.send_nowait(event)
                except trio.WouldBlock:
                    # Too slow: end this watcher rather than buffer without bound.
                    watcher.lagged = True
                    self._watchers.remove(watcher)
                    watcher.send.close()
                    break
                except trio.BrokenResourceError:
                    self._watchers.remove(watcher)  # its reader is gone
                    break

    async def watch(self, from_height: int) -> AsyncIterator[NodeEvent]:
        send, receive = trio.open_memory_channel(self.limits.watch_events_max)
        watcher = _Watcher(send)
        # Snapshot the replay range and register in the same step (no await between), so
        # the replay and the live events neither overlap nor leave a gap.
        start = max(from_height, 1) if from_height else len(self._chain) + 1
        replay = self._chain[start - 1:]
        self._watchers.append(watcher)
        try:
            for item in replay:
                for event in self._events_for(item, self._outcomes[item.block.height - 1]):
                    yield event
            async with receive:
                async for event in receive:
                    if event.height >= start:  # from_height may name a future block
                        yield event
            if watcher.lagged:
                raise BackendRefusal("WATCH_LAGGED", f"more than {self.limits.watch_events_max} "
                                     "events behind; reconnect with from_height")
        finally:
            if watcher in self._watchers:
                self._watchers.remove(watcher)
            send.close()

    # ------------------------------------------------------------ queries
    # ------------------------------------------------------------ reads
    async def _read_floor(self, read: ReadOptions) -> int:
        """One node orders everything, so its applied state is linearizable; only a
        client's min_height can make a read wait (then BEHIND at the deadline)."""
        timeout_ms = read.timeout_ms or self.limits.read_timeout_ms_default
        with trio.move_on_after(timeout_ms / 1000):
            while self.ledger.height < read.min_height:
                await self._applied.wait()
        if self.ledger.height < read.min_height:
            raise BackendRefusal("BEHIND", f"this node has applied height "
                                 f"{self.ledger.height}; the read needs height "
                                 f"{read.min_height}")
        return self.ledger.height

    async def get_transaction(self, tx_id: bytes, read: ReadOptions = DEFAULT_READ
                              ) -> tuple[TransactionRecord | None, int]:
        served_at = await self._read_floor(read)
        where = self._tx_index.get(tx_id)
        if where is None:
            return None, served_at
        height, index = where
        item = self._chain[height - 1]
        txs = item.block.txs
        return TransactionRecord(tx=txs[index], height=height,
                                 outcome=self._applied_outcome(height, index),
                                 header=item.block.header, certificate=item.certificate,
                                 proof_index=index, proof_count=len(txs),
                                 proof_path=merkle_proof(txs, index)), served_at

    async def get_account(self, address: bytes, prove: bool,
                          read: ReadOptions = DEFAULT_READ) -> AccountRead:
        await self._read_floor(read)
        account = self.ledger.account(address)
        height, root = self.ledger.height, self.ledger.state_root
        if not prove:
            return AccountRead(account, None, height, root)
        certified = self._chain[height] if height < len(self._chain) else None
        proof = StateProofView(
            height=height, state_root=root,
            leaf=encode_account(account) if account is not None else b"",
            proof=self.ledger.prove_account(address), scheme=PROOF_SCHEME,
            header=certified.block.header if certified else None,
            certificate=certified.certificate if certified else None)
        return AccountRead(account, proof, height, root)

    async def get_block(self, height: int | None, block_hash: bytes | None,
                        read: ReadOptions = DEFAULT_READ) -> tuple[CommittedBlock | None, int]:
        served_at = await self._read_floor(read)
        if height is None and block_hash is not None:
            height = self._by_hash.get(block_hash)
        if height is None or not 1 <= height <= len(self._chain):
            return None, served_at
        return self._chain[height - 1], served_at

    async def get_evidence(self, from_height: int, to_height: int, validator: int | None,
                           limit: int) -> EvidencePageView:
        # One node and no consensus: nobody can equivocate, so no evidence is ever committed.
        return EvidencePageView((), 0)

    async def transfer_leadership(self, to: int) -> int | None:
        raise BackendRefusal("NOT_SUPPORTED", "a single in-memory node has no leader to hand on")

    async def status(self) -> NodeStatusView:
        tip = self._chain[-1].block.block_hash if self._chain else GENESIS_HASH
        return NodeStatusView(
            node_id=self.node_id, chain_id=self.chain_id, algorithm="memory",
            height=self.ledger.height, state_root=self.ledger.state_root or EMPTY_ROOT,
            block_hash=tip, view=0, leader=self.node_id, role="leader", peers_connected=0,
            mempool_txs=len(self.mempool), version=VERSION, ready=self.ready)
