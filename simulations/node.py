"""One simulated node: the simulator's driver for the replica core.

What to do and in which order is decided by the pure core (`qenex_node.core.replica`),
exactly as for the daemon; this module carries the plans out with simulated I/O:
  1. write   - engine records and the blocks (applied to the app) into `SimStorage`, the
               node's durable state (one atomic write; a crash loses nothing written);
  2. send    - sign each message (the run's equivocation checker sees every honest
               signature) and put it on the simulated network; answer sync requests;
  3. done    - hand results back to the core (mempool cleanup, feedback inputs);
  4. reads   - a read point (`Plan.reads`) is served once this node has applied it;
               refused reads are asked again until the client's deadline;
  5. next    - the core's local inputs before the next event.
Crash points inside a step ("after_persist", "mid_send") cut a plan short the way a real
crash would. A crash drops everything volatile: engine, app, mempool, queued inputs.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from consensus.api import EngineConfig, Persist, Restore, Send, create_engine, sign_position
from crypto.simulated import SimulatedSigner
from ledger.receipts import AppliedBlock
from qenex_node.core.mempool import Mempool, MempoolLimits
from qenex_node.core.plan import EMPTY_PLAN, Outbound, Plan
from qenex_node.core.reads import (
    READ_RETRY_MS,
    RETRYABLE_READ_REFUSALS,
    ReadIndexAnswer,
    ReadIndexRequest,
)
from qenex_node.core.replica import Replica, ReplicaInvariantError
from qenex_node.core.sync import (
    CommittedBlock,
    SyncRequest,
    SyncResponse,
    SyncStatus,
    TransactionBatch,
    blocks_to_serve,
    sync_response,
)
from simulations.byzantine import Delivery, as_delivery
from simulations.scenario import ByzantineContext, ClockFault, Crash


class SimulationHost(Protocol):
    """What a node needs from the simulation it lives in (simulations.runner.Simulation)."""
    scenario: Any
    world: Any
    network: Any
    verifier: Any
    byzantine: dict[int, Any]

    def make_app(self) -> Any: ...

    def byzantine_rng(self, node: int) -> Any: ...

    def record_commit(self, node: int, item: CommittedBlock, applied: AppliedBlock) -> None: ...

    def record_notes(self, node: int, notes: tuple[Any, ...]) -> None: ...

    def record_read(self, node: int, read_id: int, floor: int, served_height: int) -> None: ...

    def check_equivocation(self, node: int, position: object, data: bytes) -> None: ...

    def note_byzantine_signature(self, node: int, position: object, data: bytes) -> None: ...

    def account_message(self, src: int, dst: int, size: int, data: bytes,
                        core: bool = False) -> None: ...

    def deliver(self, src: int, dst: int, payload: object, signature: bytes) -> None: ...

    def count(self, name: str, amount: int = 1) -> None: ...

    def violation(self, name: str, detail: str) -> None: ...

    def trace(self, item: object) -> None: ...

    def restart_later(self, node: SimNode, delay_ms: int) -> None: ...

    torn_rng: Any

MEMPOOL_PROPOSAL_TIMEOUT_MS = 3_000
CORE_MESSAGES = (SyncStatus, SyncRequest, SyncResponse, TransactionBatch, ReadIndexRequest,
                 ReadIndexAnswer)


@dataclass(slots=True)
class _SimRead:
    """A client read at this node: its floor (for the checker) and deadline."""
    floor: int
    deadline_ms: int
    index: int | None = None  # the read point, once the engine gave it


@dataclass(slots=True)
class SimStorage:
    """What survives a crash: the engine's records and the committed chain. The app is
    volatile and rebuilt from the chain on start, like the ledger from LMDB."""
    make_app: Callable[[], Any]
    on_commit: Callable[[CommittedBlock, AppliedBlock], None]
    # key -> value. Values are frozen dataclasses and tuples (immutable), so keeping the
    # objects is what keeping their bytes would be, without encoding every write; the
    # conformance test runs the runtime driver, which does encode, on the same records.
    records: dict[str, object] = field(default_factory=dict)
    chain: list[CommittedBlock] = field(default_factory=list)
    app: Any = None

    def reopen(self) -> None:
        self.app = self.make_app()
        for item in self.chain:
            self.app.apply_block(item.block)

    @property
    def height(self) -> int:
        return len(self.chain)

    def restore_input(self) -> Restore:
        records = tuple(sorted(self.records.items()))
        tip = self.chain[-1] if self.chain else None
        return Restore(records, len(self.chain), tip.block.block_hash if tip else b"",
                       self.app.state_root)

    def write_step(self, persist: Sequence[Persist],
                   blocks: Sequence[tuple[Any, Any]]) -> list[AppliedBlock]:
        for op in persist:
            if op.value is None:
                self.records.pop(op.key, None)
            else:
                self.records[op.key] = op.value
        results = []
        for block, certificate in blocks:
            applied = self.app.apply_block(block)
            item = CommittedBlock(block, certificate, applied.state_root)
            self.chain.append(item)
            self.on_commit(item, applied)
            results.append(applied)
        return results

    def committed_range(self, from_height: int, count: int) -> list[CommittedBlock]:
        start = max(from_height, 1) - 1
        return self.chain[start:start + count]

    def admission_check(self, tx: bytes) -> tuple[Any, int | None]:
        """The runtime's storage shape, so the runtime driver can run on this storage."""
        return self.app.check_tx(tx), None


class Recorder(Protocol):
    """Sees one node's inputs and what its driver did (the conformance test uses it)."""

    def on_input(self, kind: str, *args: object) -> None: ...

    def on_write(self, persist: tuple[Persist, ...], blocks: list[tuple[Any, Any]]) -> None: ...

    def on_send(self, to: int | None, message: object) -> None: ...


class SimNode:
    def __init__(self, sim: SimulationHost, node_id: int, config: EngineConfig,
                 clock: ClockFault | None = None) -> None:
        self.sim = sim
        self.node_id = node_id
        self.config = config
        self.clock = clock or ClockFault(node_id)
        self.ticks_per_block = max(sim.scenario.block_time_ms // sim.scenario.tick_ms, 1)
        self._ticks = 0
        self.byzantine = sim.byzantine.get(node_id)
        self.signer = SimulatedSigner(sim.scenario.seed, node_id, config.chain_id)
        self.storage = SimStorage(sim.make_app, self._on_commit)
        self.up = False
        self.crash_point: str | None = None
        self.recorder: Recorder | None = None
        self.start()

    @property
    def height(self) -> int:
        return self.storage.height

    @property
    def engine(self) -> Any:
        return self.replica.engine

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.storage.reopen()
        mempool = Mempool(MempoolLimits(proposal_timeout_ms=MEMPOOL_PROPOSAL_TIMEOUT_MS))
        self.replica = Replica(engine=create_engine(self.sim.scenario.algorithm, self.config),
                               config=self.config, mempool=mempool)
        self.up = True
        self.crash_point = None
        self._reads: dict[int, _SimRead] = {}  # volatile: a crash loses its clients' reads
        self._run(lambda: self.replica.restore(self.storage.restore_input()))

    def crash(self) -> None:
        self.up = False
        self.sim.trace(("crash", self.node_id))

    def arm_crash(self, fault: Crash) -> None:
        """Crash now, or at the named point inside this node's next plan."""
        if fault.point == "between_steps":
            self.crash()
        else:
            self.crash_point = fault.point

    # ------------------------------------------------------------ inputs
    def on_packet(self, sender: int, payload: object, signature: bytes) -> None:
        if not self.up:
            return
        if sender in self.sim.byzantine and not self.sim.verifier.verify(
                sender, payload, signature):
            # Honest senders' HMACs are right by construction; only byzantine ones are
            # checked, which keeps big runs fast without weakening what the engine sees.
            self.sim.count("rejected_bad_signature")
            return
        if self.recorder is not None:
            self.recorder.on_input("packet", sender, payload, signature)
        self._run(lambda: self.replica.receive(sender, payload, signature))

    def submit(self, tx: bytes) -> str:
        """A client's transaction arrives at this node."""
        if self.recorder is not None:
            self.recorder.on_input("admit", tx)
        return self.admit(tx)

    def read(self, read_id: int, floor: int, deadline_ms: int) -> None:
        """A client's linearizable read arrives at this node."""
        self._reads[read_id] = _SimRead(floor, deadline_ms)
        self.sim.world.at(deadline_ms * 1_000, self._expire_read, read_id)
        self._ask_read_point(read_id)

    def _expire_read(self, read_id: int) -> None:
        """The client's deadline: it is told TIMEOUT/BEHIND; the node drops the read."""
        if self.up and self._reads.pop(read_id, None) is not None:
            self.sim.count("reads_timeout")
            self.replica.forget_read(read_id)

    def _ask_read_point(self, read_id: int) -> None:
        if self.up and read_id in self._reads:
            if self.recorder is not None:
                self.recorder.on_input("read", read_id)
            self._run(lambda: self.replica.read(read_id))

    def _answer_reads(self, plan: Plan) -> None:
        """Read points become reads served once applied; refusals are asked again."""
        for ready in plan.reads:
            read = self._reads.get(ready.request_id)
            if read is not None:
                read.index = ready.index
        for failure in plan.read_failures:
            read = self._reads.get(failure.request_id)
            if read is None:
                continue
            retry_ms = self.sim.world.now_ms + READ_RETRY_MS
            if retry_ms >= read.deadline_ms or failure.reason not in RETRYABLE_READ_REFUSALS:
                del self._reads[failure.request_id]
                self.sim.count(f"reads_refused_{failure.reason.lower()}")
            else:
                self.sim.world.at(retry_ms * 1_000, self._ask_read_point, failure.request_id)
        self._serve_reads()

    def _serve_reads(self) -> None:
        height = self.storage.height
        for read_id in [r for r, read in self._reads.items()
                        if read.index is not None and read.index <= height]:
            read = self._reads.pop(read_id)
            if self.sim.world.now_ms > read.deadline_ms:
                self.sim.count("reads_behind")  # the client was told BEHIND long ago
            else:
                self.sim.record_read(self.node_id, read_id, read.floor, height)

    def admit(self, tx: bytes) -> str:
        check = self.storage.app.check_tx(tx)
        if not check.ok:
            self.sim.count("rejected_tx")
        return self.replica.admit(tx, check)

    def clock_ms(self) -> int:
        """This node's wall clock: virtual time plus its skew (drift shows in its ticks)."""
        return self.sim.world.now_ms + self.clock.skew_ms

    def on_tick(self) -> None:
        if not self.up:
            return
        self._ticks += 1
        now_ms = self.clock_ms()
        if self.recorder is not None:
            self.recorder.on_input("tick", now_ms)
        self._run(self.replica.tick)
        if self.up and self._ticks % self.ticks_per_block == 0:
            if self.recorder is not None:
                self.recorder.on_input("propose", now_ms)
            self._run(lambda: self.replica.propose(now_ms))

    # ------------------------------------------------------------ the driver
    def _run(self, first: Callable[[], Plan]) -> None:
        """One input, then every local input it causes, each plan carried out in order."""
        try:
            plan: Plan | None = first()
            while plan is not None and self.up:
                self._carry_out(plan)
                plan = self.replica.next_plan() if self.up else None
        except ReplicaInvariantError as exc:
            self.sim.violation("commit_order", f"node {self.node_id}: {exc}")
            self.crash()

    def _carry_out(self, plan: Plan) -> None:
        if plan is EMPTY_PLAN:
            self.replica.done(plan, [], [])
            return
        if plan.needs_write() and self._write_is_lost():
            return
        blocks = [(commit.block, commit.certificate) for commit in plan.blocks]
        if self.recorder is not None:
            self.recorder.on_write(plan.persist, blocks)
            for out in plan.sends:
                if out.to != self.node_id:
                    self.recorder.on_send(out.to, out.message)
        applied = self.storage.write_step(plan.persist, blocks)  # 1. durable
        if self.crash_point == "after_persist":
            self.crash()
            return
        signatures = []
        for index, out in enumerate(plan.sends):  # 2. sign and send
            if self.crash_point == "mid_send" and index == len(plan.sends) // 2:
                self.crash()
                return
            signatures.append(self._sign_and_send(out))
        for request in plan.serve:
            self._serve_sync(request)
        self.replica.done(plan, applied, signatures)  # 3. feedback
        self.sim.record_notes(self.node_id, plan.notes)
        if self._reads:
            self._answer_reads(plan)  # 4. reads
        for response in plan.check_sync:
            accepted = self.replica.check_sync(response, *self.replica.chain_tip())
            self._run(lambda: self.replica.on_synced_blocks(response, accepted))  # noqa: B023
            if accepted:
                self.sim.count("synced_blocks", len(accepted))
        for _, txs in plan.admit:
            for tx in txs:
                self.admit(tx)

    def _write_is_lost(self) -> bool:
        """A crash in the middle of a write: storage is atomic (LMDB, checksummed), so the
        whole write is lost and nothing of this plan leaves the node."""
        if self.crash_point == "mid_write":
            self.sim.count("lost_writes")
            self.crash()
            return True
        sc = self.sim.scenario
        chance = sc.torn_write_probability
        if chance and (sc.torn_write_until_ms is None
                       or self.sim.world.now_ms < sc.torn_write_until_ms) \
                and self.sim.torn_rng.random() < chance:
            self.sim.count("torn_writes")
            self.crash()
            self.sim.restart_later(self, sc.torn_write_restart_ms)
            return True
        return False

    def _on_commit(self, item: CommittedBlock, applied: AppliedBlock) -> None:
        self.sim.record_commit(self.node_id, item, applied)

    def _sign_and_send(self, out: Outbound) -> bytes:
        """Sign `out` and put it on the network; the signature of the engine's own
        message is returned for the core's loopback copy."""
        own_data, own_signature = self._sign(out.message)
        size_extra = self.sim.scenario.network.signature_bytes
        if self.byzantine is None:
            targets = [out.to] if out.to is not None else range(self.sim.scenario.nodes)
            for dst in targets:
                if dst != self.node_id:
                    self._send_packet(dst, out.message, own_signature,
                                      len(own_data) + size_extra, own_data)
            return own_signature
        for item, signature, data in self._byzantine_deliveries(out, own_data, own_signature):
            if item.dst != self.node_id:
                self._send_packet(item.dst, item.message, signature, len(data) + size_extra,
                                  data, item.delay_ms)
        return own_signature

    def _byzantine_deliveries(self, out: Outbound, own_data: bytes, own_signature: bytes
                              ) -> list[tuple[Delivery, bytes, bytes]]:
        ctx = ByzantineContext(self.node_id, self.sim.scenario.nodes, self.config.chain_id,
                               self.sim.world.now_ms, self.sim.byzantine_rng(self.node_id))
        signed: dict[int, tuple[bytes, bytes]] = {id(out.message): (own_data, own_signature)}
        deliveries = []
        for raw in self.byzantine(ctx, Send(out.to, out.message)):
            item = as_delivery(raw)
            if id(item.message) not in signed:
                signed[id(item.message)] = self._sign(item.message)
            data, signature = signed[id(item.message)]
            if item.signature is not None:
                signature = item.signature  # a byzantine behaviour forging a bad signature
                self.sim.count("byzantine_forged_signatures")
            if item.message is not out.message:
                self.sim.count("byzantine_altered_messages")
            if item.delay_ms:
                self.sim.count("byzantine_delayed")
            if item.replayed:
                self.sim.count("byzantine_replayed")
            deliveries.append((item, signature, data))
        return deliveries

    def _sign(self, message: object) -> tuple[bytes, bytes]:
        data, signature = self.signer.signed(message)
        position = sign_position(message)
        if position is not None:
            if self.byzantine is None:
                self.sim.check_equivocation(self.node_id, position, data)
            else:
                self.sim.note_byzantine_signature(self.node_id, position, data)
        return data, signature

    def _send_packet(self, dst: int, payload: object, signature: bytes, size: int,
                     data: bytes, hold_ms: int = 0) -> None:
        self.sim.account_message(self.node_id, dst, size, data,
                                 isinstance(payload, CORE_MESSAGES))
        for delay_us in self.sim.network.deliveries_us(self.node_id, dst):
            self.sim.world.after(delay_us + hold_ms * 1_000, self.sim.deliver, self.node_id,
                                 dst, payload, signature)

    def _serve_sync(self, request: SyncRequest) -> None:
        chain = self.storage.committed_range(request.from_height, blocks_to_serve(request))
        response = sync_response(request, chain, self.storage.height, self.node_id)
        if self.recorder is not None:
            self.recorder.on_send(request.requester, response)
        self._sign_and_send(Outbound(request.requester, response))
