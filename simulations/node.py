"""One simulated node: the simulator's driver for a pure engine.

It carries out Effects in the order ARCHITECTURE.md §1 fixes:
  1. persist engine records AND the ledger's block writes (one atomic durable write);
  2. sign (double-sign guard = the run's equivocation checker) and send;
  3. publish commits (mempool cleanup, metrics) and feed `Applied`;
  4. request catch-up.
Inputs produced locally (self-delivered broadcasts, `Applied`, `Synced`) queue behind the
current step, so the engine never sees an input before the previous Effects are done.
A crash drops everything volatile: engine, app, mempool, queued inputs.
"""
from __future__ import annotations

import collections
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from consensus import canonical
from consensus.api import (
    Applied,
    CatchUp,
    Commit,
    EngineConfig,
    Note,
    Propose,
    Receive,
    Rejected,
    RejectReason,
    Restore,
    Send,
    Synced,
    Tick,
    create_engine,
    sign_position,
)
from consensus.types import GENESIS_HASH
from crypto.simulated import SimulatedSigner
from qenex_node.core.mempool import Mempool, MempoolLimits
from qenex_node.core.sync import (
    SYNC_BLOCKS_MAX,
    CommittedBlock,
    SyncRequest,
    SyncResponse,
    accept_synced_blocks,
    serve_sync,
)
from simulations.scenario import ByzantineContext, Crash

if TYPE_CHECKING:
    from simulations.runner import Simulation


@dataclass(slots=True)
class DurableState:
    """What survives a crash: the engine's records and the committed chain."""
    records: dict[str, bytes] = field(default_factory=dict)  # key -> canonical bytes
    chain: list[CommittedBlock] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ForwardTxs:
    """Sim-level: a non-proposer hands pending transactions to the node it thinks leads."""
    txs: tuple[bytes, ...]


class SimNode:
    def __init__(self, sim: Simulation, node_id: int, config: EngineConfig) -> None:
        self.sim = sim
        self.node_id = node_id
        self.config = config
        self.byzantine = sim.byzantine.get(node_id)
        self.signer = SimulatedSigner(sim.scenario.seed, node_id, config.chain_id)
        self.durable = DurableState()
        self.up = False
        self.crash_point: str | None = None
        self._inbox: collections.deque[object] = collections.deque()
        self._draining = False
        self.engine_cls: type | None = None
        self.start()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.engine = create_engine(self.sim.scenario.algorithm, self.config)
        self.engine_cls = type(self.engine)
        self.app = self.sim.make_app()
        for item in self.durable.chain:
            self.app.apply_block(item.block)
        self.mempool = Mempool(MempoolLimits(proposal_timeout_ms=3_000))
        self._inbox.clear()
        self.up = True
        self.crash_point = None
        records = tuple((key, canonical.decode(value))
                        for key, value in sorted(self.durable.records.items()))
        tip = self.durable.chain[-1] if self.durable.chain else None
        self.feed(Restore(records, len(self.durable.chain),
                          tip.block.block_hash if tip else b"", self.app.state_root))

    def crash(self) -> None:
        self.up = False
        self._inbox.clear()
        self.sim.trace(("crash", self.node_id))

    def arm_crash(self, fault: Crash) -> None:
        """Crash now, or at the named point inside this node's next step."""
        if fault.point == "between_steps":
            self.crash()
        else:
            self.crash_point = fault.point

    # ------------------------------------------------------------ inputs
    def feed(self, event: object) -> None:
        if not self.up:
            return
        self._inbox.append(event)
        if self._draining:
            return
        self._draining = True
        try:
            while self._inbox and self.up:
                self._step(self._inbox.popleft())
        finally:
            self._draining = False

    def on_packet(self, sender: int, payload: object, signature: bytes) -> None:
        if not self.up:
            return
        if isinstance(payload, SyncRequest):
            self._serve_sync(payload)
        elif isinstance(payload, SyncResponse):
            self._on_sync_response(payload)
        elif isinstance(payload, ForwardTxs):
            for tx in payload.txs:
                self.admit(tx)
        elif sender in self.sim.byzantine and not self.sim.verifier.verify(
                sender, payload, signature):
            # Honest senders' HMACs are right by construction; only byzantine ones are
            # checked, which keeps big runs fast without weakening what the engine sees.
            self.sim.count("rejected_bad_signature")
        else:
            self.feed(Receive(sender, payload, signature))

    def admit(self, tx: bytes) -> str:
        check = self.app.check_tx(tx)
        if not check.ok:
            self.sim.count("rejected_tx")
            return check.reason
        return self.mempool.add(check.tx_id, tx)

    def on_tick(self) -> None:
        if not self.up:
            return
        now_ms = self.sim.world.now_ms
        self.feed(Tick())
        if self.up and now_ms % self.sim.scenario.block_time_ms < self.sim.scenario.tick_ms:
            self._propose(now_ms)

    def _propose(self, now_ms: int) -> None:
        self.mempool.requeue_stale(now_ms)
        if not self.mempool.pending_count:
            return
        batch = self.mempool.cut_batch(self.config.batch_txs_max, self.config.batch_bytes_max,
                                       now_ms)
        effects_notes = self._step(Propose(batch, now_ms))
        refused = [n for n in effects_notes if isinstance(n, Rejected)]
        if not refused:
            return
        if refused[0].reason == RejectReason.NOT_LEADER:
            leader = self.engine.status().leader
            if leader is not None and leader != self.node_id:
                self._send_packet(leader, ForwardTxs(batch), b"", len(b"".join(batch)))
                return  # stays "proposed": requeued and re-forwarded if it never commits
        self.mempool.return_batch([self.app.check_tx(tx).tx_id for tx in batch])

    # ------------------------------------------------------------ the driver
    def _step(self, event: object) -> tuple[Note | Rejected, ...]:
        effects = self.engine.step(event)  # type: ignore[arg-type]
        # 1. persist engine records and the ledger's block writes together.
        for op in effects.persist:
            if op.value is None:
                self.durable.records.pop(op.key, None)
            else:
                self.durable.records[op.key] = canonical.encode(op.value)
        applied = [self._apply_commit(commit) for commit in effects.commit]
        if self.crash_point == "after_persist":
            self.crash()
            return effects.notes
        # 2. sign and send.
        for index, send in enumerate(effects.send):
            if self.crash_point == "mid_send" and index == len(effects.send) // 2:
                self.crash()
                return effects.notes
            self._sign_and_send(send)
        # 3. publish commits, then feed Applied back.
        for item in applied:
            if item is not None:
                self._publish(item)
        # 4. catch up.
        for request in effects.catch_up:
            self._request_sync(request)
        self.sim.record_notes(self.node_id, effects.notes)
        return effects.notes

    def _apply_commit(self, commit: Commit) -> CommittedBlock | None:
        block = commit.block
        if block.height != len(self.durable.chain) + 1:
            self.sim.violation("commit_order", f"node {self.node_id} committed height "
                               f"{block.height} after {len(self.durable.chain)}")
            return None
        applied = self.app.apply_block(block)
        item = CommittedBlock(block, commit.certificate, applied.state_root)
        self.durable.chain.append(item)
        self.sim.record_commit(self.node_id, item, applied)
        return item

    def _publish(self, item: CommittedBlock) -> None:
        self.mempool.remove_committed([hashlib.sha256(tx).digest() for tx in item.block.txs])
        self.feed(Applied(item.block.height, item.block.block_hash, item.state_root))

    def _sign_and_send(self, send: Send) -> None:
        targets = [send.to] if send.to is not None else list(range(self.sim.scenario.nodes))
        if self.byzantine is not None:
            ctx = ByzantineContext(self.node_id, self.sim.scenario.nodes, self.config.chain_id,
                                   self.sim.world.now_ms, self.sim.byzantine_rng(self.node_id))
            pairs = self.byzantine(ctx, send)
        else:
            pairs = [(dst, send.message) for dst in targets]
        signed: dict[int, tuple[bytes, bytes]] = {}
        for pair in pairs:
            dst, message = pair[0], pair[1]
            key = id(message)
            if key not in signed:
                signed[key] = self._sign(message)
            data, signature = signed[key]
            if len(pair) > 2:
                signature = pair[2]  # a byzantine behaviour forging a bad signature
            size = len(data) + self.sim.scenario.network.signature_bytes
            if dst == self.node_id:
                self.feed(Receive(self.node_id, message, signature))
            else:
                self._send_packet(dst, message, signature, size, data)

    def _sign(self, message: object) -> tuple[bytes, bytes]:
        data, signature = self.signer.signed(message)
        position = sign_position(message)
        if position is not None and self.byzantine is None:
            self.sim.check_equivocation(self.node_id, position, data)
        return data, signature

    def _send_packet(self, dst: int, payload: object, signature: bytes, size: int,
                     data: bytes = b"") -> None:
        self.sim.account_message(self.node_id, dst, size, data)
        for delay_us in self.sim.network.deliveries_us(self.node_id, dst):
            self.sim.world.after(delay_us, self.sim.deliver, self.node_id, dst, payload,
                                 signature)

    # ------------------------------------------------------------ catch-up
    def _request_sync(self, request: CatchUp) -> None:
        peers = [p for p in request.peers if p != self.node_id] or \
            [p for p in range(self.sim.scenario.nodes) if p != self.node_id]
        peer = peers[self.sim.sync_rng.randrange(len(peers))]
        ask = SyncRequest(len(self.durable.chain) + 1, SYNC_BLOCKS_MAX, self.node_id)
        self._send_packet(peer, ask, b"", 64)

    def _serve_sync(self, request: SyncRequest) -> None:
        response = serve_sync(request, self.durable.chain, self.node_id)
        size = sum(len(canonical.encode(b.block)) for b in response.blocks) + 64
        self._send_packet(request.requester, response, b"", size)

    def _on_sync_response(self, response: SyncResponse) -> None:
        tip = self.durable.chain[-1].block.block_hash if self.durable.chain else GENESIS_HASH
        accepted = accept_synced_blocks(self.engine_cls, self.config, len(self.durable.chain),
                                        tip, response)
        if not accepted:
            return
        for item in accepted:
            self._apply_commit(Commit(item.block, item.certificate))
            self.mempool.remove_committed(
                [hashlib.sha256(tx).digest() for tx in item.block.txs])
        last = accepted[-1]
        self.sim.count("synced_blocks", len(accepted))
        self.feed(Synced(last.block.height, last.block.block_hash, self.app.state_root))
