"""The replica core: mempool + engine + catch-up, pure, shared by both drivers.

Everything the daemon and the simulator must do the same way is decided here, once:
cutting batches and forwarding them to the proposer, routing peer messages (sync requests
and answers, forwarded batches, status, engine messages), when and from whom to catch up,
the transaction id, and the effect plan (`qenex_node.core.plan`: what to write, sign,
send and commit, in which order). A driver only carries plans out with its own I/O:

    plan = replica.tick()                 # or propose / receive / peer_connected / ...
    while plan is not None:
        applied = storage.write_step(plan.persist, plan.blocks)        # 1. durable
        signatures = [sign(out.message) for out in plan.sends]         # 2. sign + send
        ... send them; answer plan.serve from storage ...
        committed = replica.done(plan, applied, signatures)            # 3. feedback
        ... publish `committed` to clients ...
        plan = replica.next_plan()                                     # 4. local inputs

Every produced plan must be `done` before the next is asked for: the core refuses to
run ahead of what the driver made durable (a driver bug fails loudly here).
"""
from __future__ import annotations

import collections
from collections.abc import Iterable

from consensus.api import (
    Applied,
    Commit,
    Effects,
    Engine,
    EngineConfig,
    Input,
    Note,
    Propose,
    ReadRequest,
    Receive,
    Rejected,
    RejectReason,
    Restore,
    Synced,
    Tick,
    TransferLeadership,
)
from consensus.types import GENESIS_HASH, NodeId, max_faulty_bft
from ledger.receipts import AppliedBlock, TxCheck
from qenex_node.core.app import tx_id
from qenex_node.core.inflight import InFlightBlocks
from qenex_node.core.mempool import AddResult, Mempool
from qenex_node.core.plan import EMPTY_PLAN, Outbound, Plan
from qenex_node.core.reads import (
    ReadFailure,
    ReadIndexAnswer,
    ReadIndexRequest,
    ReadOutcome,
    ReadRouter,
    refusal_of,
)
from qenex_node.core.sync import (
    DEFAULT_SYNC_LIMITS,
    CatchUpTracker,
    CommittedBlock,
    SyncLimits,
    SyncRequest,
    SyncResponse,
    SyncStatus,
    TransactionBatch,
    accept_synced_blocks,
)

TICK = Tick()  # immutable: one instance serves every tick
LOCAL_INPUTS_MAX = 100_000  # feedback inputs queued within one burst; more is a bug
COMMITTED_IDS_MAX = 50_000  # recently committed tx ids refused at admission (re-forwards)


class ReplicaInvariantError(RuntimeError):
    """The engine or a driver broke the contract (e.g. a commit out of height order)."""


def faults_to_distrust(engine: Engine, config: EngineConfig) -> int:
    """How many peers may lie about their height: f for byzantine-tolerant engines."""
    if not type(engine).byzantine_tolerant:
        return 0
    n = config.validators.size
    return config.fault_tolerance if config.fault_tolerance is not None else max_faulty_bft(n)


class Replica:
    def __init__(self, *, engine: Engine, config: EngineConfig, mempool: Mempool,
                 sync_limits: SyncLimits = DEFAULT_SYNC_LIMITS) -> None:
        self.engine = engine
        self.engine_cls = type(engine)
        self.config = config
        self.node_id = config.node_id
        self.nodes = config.validators.size
        self.mempool = mempool
        self.sync = CatchUpTracker(self.node_id, self.nodes, faults_to_distrust(engine, config),
                                   sync_limits)
        self.height = 0  # the ledger's applied height, as the driver reported it
        self.tip_hash = GENESIS_HASH
        self._local: collections.deque[Input] = collections.deque()
        self._outstanding = False
        # A transaction forwarded again after its proposal timed out may reach a proposer
        # after it committed: refusing recent ids keeps it from being ordered twice.
        self._committed_ids: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.in_flight = InFlightBlocks()  # blocks that may still commit (inflight.py)
        self.reads = ReadRouter(self.node_id)  # client reads waiting for the engine

    # ------------------------------------------------------------ inputs from outside
    def restore(self, event: Restore) -> Plan:
        self._begin()
        self.height = event.committed_height
        self.tip_hash = event.committed_hash or GENESIS_HASH
        for _, record in event.records:
            # Blocks the engine kept (a Raft log tail, prepared PBFT blocks) may still
            # commit after the restart: their transactions must not be proposed again.
            self.in_flight.note(record, self.height)
        return self._engine_plan(event)

    def tick(self) -> Plan:
        self._begin()
        broadcast_status, request = self.sync.on_tick(self.height, self._engine_settled)
        extra: list[Outbound] = []
        if broadcast_status:
            extra.append(Outbound(None, self.status_message()))
        if request is not None:
            extra.append(Outbound(self.sync.pick_peer(), request))
        return self._engine_plan(TICK, extra)

    def propose(self, now_ms: int) -> Plan:
        """A block interval passed: cut a batch; forward it if another node proposes."""
        self._begin()
        epoch = self._epoch()
        self.mempool.requeue_stale(now_ms, epoch)
        if not self.mempool.pending_count:
            return self._plan(EMPTY_PLAN)
        batch = self._without_pending(self.mempool.cut_batch(
            self.config.batch_txs_max, self.config.batch_bytes_max, now_ms, epoch))
        if not batch:
            return self._plan(EMPTY_PLAN)
        effects = self.engine.step(Propose(batch, now_ms))
        refused = refusal_of(effects)
        extra = []
        if refused is not None:
            status = self.engine.status()
            leader = status.leader if status.leader is not None else status.forward_to
            if refused.reason == RejectReason.NOT_LEADER and leader not in (None,
                                                                              self.node_id):
                # They stay "proposed" here and come back to pending if no block with
                # them commits in time (lost message, leader crash), then go again.
                self.mempool.mark_forwarded([tx_id(tx) for tx in batch], epoch)
                extra.append(Outbound(leader, TransactionBatch(batch, self.node_id)))
            else:
                self.mempool.return_batch([tx_id(tx) for tx in batch])
        return self._effects_plan(effects, extra)

    def receive(self, sender: NodeId, message: object, signature: bytes) -> Plan:
        """A peer message whose envelope signature the driver verified: route it."""
        self._begin()
        self.sync.heard_from(sender)
        if isinstance(message, SyncRequest):
            if message.requester != sender:
                return self._refused(sender, "sync request names another requester")
            return self._plan(Plan(serve=(message,)))
        if isinstance(message, SyncResponse):
            if message.responder != sender:
                return self._refused(sender, "sync response names another responder")
            return self._plan(Plan(check_sync=(message,)))
        if isinstance(message, TransactionBatch):
            if message.origin != sender:
                return self._refused(sender, "forwarded batch names another origin")
            txs = message.txs[: self.config.batch_txs_max]
            return self._plan(Plan(admit=((sender, tuple(txs)),)))
        if isinstance(message, SyncStatus):
            if message.node != sender:
                return self._refused(sender, "status names another node")
            self.sync.on_status(message, self.height)
            return self._plan(EMPTY_PLAN)
        if isinstance(message, ReadIndexRequest):
            if message.origin != sender:
                return self._refused(sender, "read index request names another origin")
            if self.engine_cls.byzantine_tolerant:
                # BFT reads never trust one node's index: each node runs its own barrier,
                # so a peer asking for ours is not a protocol step (and would cost rounds).
                return self._refused(sender, "read index requests are for crash-fault "
                                             "engines")
            return self._remote_read(message)
        if isinstance(message, ReadIndexAnswer):
            if message.responder != sender:
                return self._refused(sender, "read index answer names another responder")
            return self._read_answer(sender, message)
        self.in_flight.note(message, self.height)
        return self._engine_plan(Receive(sender, message, signature))

    def peer_connected(self, peer: NodeId) -> Plan:
        """A connection opened: tell the peer our height, so either side learns it is behind."""
        self._begin()
        if peer == self.node_id or not 0 <= peer < self.nodes:
            return self._plan(EMPTY_PLAN)
        return self._plan(Plan(sends=(Outbound(peer, self.status_message()),)))

    def read(self, request_id: int) -> Plan:
        """A client's linearizable read, under the driver's `request_id`: answered in some
        plan's `reads` (serve once applied >= index) or `read_failures`."""
        self._begin()
        if self.reads.full():
            return self._plan(Plan(read_failures=(ReadFailure(
                request_id, RejectReason.OVER_LIMIT.name, "too many reads waiting"),)))
        engine_id = self.reads.start_local(request_id)
        effects = self.engine.step(ReadRequest(engine_id))
        refused = refusal_of(effects)
        if refused is None:
            return self._effects_plan(effects)
        leader = self.engine.status().leader
        if refused.reason == RejectReason.NOT_LEADER and leader not in (None, self.node_id):
            # Raft follower: the leader knows the commit index (thesis §6.4, "followers").
            forward = Outbound(leader, self.reads.forward(engine_id, leader))
            return self._effects_plan(effects, [forward])
        return self._effects_plan(effects, refused_read=(engine_id, refused))

    def forget_read(self, request_id: int) -> None:
        """The driver stopped waiting for a read (client deadline): drop its records."""
        self.reads.forget(request_id)

    def _remote_read(self, request: ReadIndexRequest) -> Plan:
        """A follower asks this node (as leader) for a read index."""
        if self.reads.full():
            answer = ReadIndexAnswer(request.request_id, 0, self.node_id,
                                     refused=RejectReason.OVER_LIMIT.name)
            return self._plan(Plan(sends=(Outbound(request.origin, answer),)))
        engine_id = self.reads.start_remote(request.origin, request.request_id)
        effects = self.engine.step(ReadRequest(engine_id))
        refused = refusal_of(effects)
        return self._effects_plan(effects, refused_read=None if refused is None
                                  else (engine_id, refused))

    def _read_answer(self, sender: NodeId, answer: ReadIndexAnswer) -> Plan:
        result = self.reads.on_answer(sender, answer)
        if isinstance(result, ReadFailure):
            return self._plan(Plan(read_failures=(result,)))
        if result is not None:
            return self._plan(Plan(reads=(result,)))
        return self._plan(EMPTY_PLAN)

    def transfer_leadership(self, to: NodeId) -> Plan:
        """Operator: hand leadership to `to` (the engine refuses if it cannot)."""
        self._begin()
        return self._engine_plan(TransferLeadership(to))

    def check_sync(self, response: SyncResponse, height: int, tip_hash: bytes
                   ) -> list[CommittedBlock]:
        """Pure and slow (certificate signatures): a driver may run it off its loop, with
        (height, tip_hash) taken from `chain_tip()` before it starts."""
        return accept_synced_blocks(self.engine_cls, self.config, height, tip_hash, response)

    def on_synced_blocks(self, response: SyncResponse,
                         accepted: list[CommittedBlock]) -> Plan:
        self._begin()
        fresh = [item for item in accepted if item.block.height > self.height]
        if not fresh or fresh[0].block.height != self.height + 1:
            # Applied meanwhile, not contiguous, or nothing acceptable. The tracker may
            # ask again at once (we moved since the request): that request must go out,
            # or the tracker waits out a whole request timeout for an answer to a
            # request nobody sent, refusing the engine's own catch-up meanwhile.
            notes: tuple[Note | Rejected, ...] = ()
            if not accepted and offers_blocks_above(response, self.height):
                notes = (Rejected(RejectReason.INVALID_BLOCK, response.responder,
                                  "sync response had no acceptable block"),)
            return self._plan(Plan(notes=notes,
                                   sends=self._next_sync(response, self.height)))
        sends = self._next_sync(response, fresh[-1].block.height)
        blocks = tuple(Commit(item.block, item.certificate) for item in fresh)
        return self._plan(Plan(blocks=blocks, synced=True, sends=sends,
                               notes=(Note("sync", f"fetched {len(fresh)} blocks to "
                                           f"{fresh[-1].block.height}"),)))

    def _next_sync(self, response: SyncResponse, accepted_to: int) -> tuple[Outbound, ...]:
        request = self.sync.on_response(response, accepted_to)
        return () if request is None else (Outbound(self.sync.pick_peer(), request),)

    def admit(self, tx: bytes, check: TxCheck, committed_nonce: int | None = None) -> str:
        """A statelessly checked transaction enters the mempool (or is refused, by name)."""
        if not check.ok:
            return check.reason
        if check.tx_id in self._committed_ids:
            return AddResult.DUPLICATE
        return self.mempool.add(check.tx_id, tx, check.sender, check.nonce, committed_nonce)

    # ------------------------------------------------------------ feedback from the driver
    def done(self, plan: Plan, applied: list[AppliedBlock],
             signatures: list[bytes]) -> list[CommittedBlock]:
        """The driver carried `plan` out: clean up and queue the feedback inputs."""
        if not self._outstanding:
            raise ReplicaInvariantError("done() without an outstanding plan")
        self._outstanding = False
        if plan is EMPTY_PLAN:
            return []
        if len(applied) != len(plan.blocks) or len(signatures) != len(plan.sends):
            raise ReplicaInvariantError("a plan was carried out only in part")
        for out, signature in zip(plan.sends, signatures):
            if out.loopback:
                self._queue(Receive(self.node_id, out.message, signature))
        committed = [self._record(commit, result) for commit, result in zip(plan.blocks, applied)]
        if committed and plan.synced:
            last = committed[-1]
            self._queue(Synced(last.block.height, last.block.block_hash, last.state_root))
        else:
            for item in committed:
                self._queue(Applied(item.block.height, item.block.block_hash, item.state_root))
        return committed

    def next_plan(self) -> Plan | None:
        """The next local input (own copies, Applied, Synced) as a plan, if any waits."""
        self._begin()
        if not self._local:
            return None
        return self._engine_plan(self._local.popleft())

    # ------------------------------------------------------------ queries
    # ------------------------------------------------------------ blocks in flight
    def _without_pending(self, batch: tuple[bytes, ...]) -> tuple[bytes, ...]:
        """The batch minus what a block in flight already carries; those wait (marked as
        handed on) until that block commits, or come back if it never does."""
        if not self.in_flight:
            return batch
        carried = self.in_flight.carried()
        kept = tuple(tx for tx in batch if tx_id(tx) not in carried)
        if len(kept) != len(batch):
            self.mempool.mark_forwarded([tx_id(tx) for tx in batch if tx_id(tx) in carried],
                                        self._epoch())
        return kept

    def _engine_settled(self) -> bool:
        return self.engine.status().leader is not None

    def _epoch(self) -> tuple[int, NodeId | None]:
        """View/term and leader: a node's own proposals live as long as its epoch."""
        status = self.engine.status()
        return status.view, status.leader

    def chain_tip(self) -> tuple[int, bytes]:
        return self.height, self.tip_hash

    def status_message(self) -> SyncStatus:
        return SyncStatus(self.height, self.tip_hash, self.node_id)

    # ------------------------------------------------------------ plan building
    def _engine_plan(self, event: Input, extra: Iterable[Outbound] = ()) -> Plan:
        return self._effects_plan(self.engine.step(event), extra)

    def _effects_plan(self, effects: Effects, extra: Iterable[Outbound] = (),
                      refused_read: tuple[int, Rejected] | None = None) -> Plan:
        if not extra and effects.is_empty():
            return self._plan(EMPTY_PLAN)  # most ticks: nothing to do, nothing to build
        reads = self._read_outcome(effects, refused_read)
        for op in effects.persist:  # our own proposals and log entries, not only peers'
            self.in_flight.note(op.value, self.height)
        for send in effects.send:
            self.in_flight.note(send.message, self.height)
        sends = [self._outbound(send.to, send.message) for send in effects.send]
        sends.extend(extra)
        if reads is not None:
            sends.extend(Outbound(origin, answer) for origin, answer in reads.answers)
        for request in effects.catch_up:
            sync = self.sync.on_engine_request(request.target_height, request.peers,
                                               self.height)
            if sync is not None:
                sends.append(Outbound(self.sync.pick_peer(), sync))
        return self._plan(Plan(persist=effects.persist, blocks=self._new_blocks(effects),
                               sends=tuple(sends), notes=effects.notes,
                               reads=() if reads is None else tuple(reads.ready),
                               read_failures=() if reads is None else tuple(reads.failed)))

    def _read_outcome(self, effects: Effects, refused_read: tuple[int, Rejected] | None
                      ) -> ReadOutcome | None:
        """What the step means for waiting reads; None (no work on this hot path) while
        no read waits: an engine answers only reads it was given."""
        if not len(self.reads):
            return None
        reads = self.reads.take(effects)
        if refused_read is not None:
            engine_id, refused = refused_read
            self.reads.refuse(reads, engine_id, refused.reason.name, refused.detail)
        if self.reads.forwarded_count():
            reads.failed.extend(self.reads.redirect(self.engine.status().leader))
        return reads

    def _outbound(self, to: NodeId | None, message: object) -> Outbound:
        if to is None or to == self.node_id:
            return Outbound(to, message, loopback=True)
        return Outbound(to, message)

    def _new_blocks(self, effects: Effects) -> tuple[Commit, ...]:
        """The engine's commits past what the ledger holds; catch-up may have got there
        first (then the engine's block must be the one we applied)."""
        blocks = []
        height, tip = self.height, self.tip_hash
        for commit in effects.commit:
            block = commit.block
            if block.height <= height:
                if block.height == height and block.block_hash != tip:
                    raise ReplicaInvariantError(f"engine committed {block.block_hash.hex()[:12]}"
                                                f" at {height}, the ledger holds {tip.hex()[:12]}")
                continue
            if block.height != height + 1:
                raise ReplicaInvariantError(f"engine committed height {block.height} after "
                                            f"{height}")
            blocks.append(commit)
            height, tip = block.height, block.block_hash
        return tuple(blocks)

    def _begin(self) -> None:
        if self._outstanding:
            raise ReplicaInvariantError("a new input before the last plan was done")

    def _plan(self, plan: Plan) -> Plan:
        self._outstanding = True
        return plan

    def _refused(self, sender: NodeId, detail: str) -> Plan:
        return self._plan(Plan(notes=(Rejected(RejectReason.MALFORMED, sender, detail),)))

    def _queue(self, event: Input) -> None:
        if len(self._local) >= LOCAL_INPUTS_MAX:
            raise ReplicaInvariantError("engine feedback loop: local inputs exceed the bound")
        self._local.append(event)

    def _record(self, commit: Commit, result: AppliedBlock) -> CommittedBlock:
        block = commit.block
        if result.height != block.height or result.block_hash != block.block_hash:
            raise ReplicaInvariantError(f"storage applied {result.height}, plan said "
                                        f"{block.height}")
        ids = [tx_id(tx) for tx in block.txs]
        self.mempool.remove_committed(ids)
        self.mempool.note_committed(result.nonces)
        for ident in ids:
            self._committed_ids[ident] = None
        while len(self._committed_ids) > COMMITTED_IDS_MAX:
            self._committed_ids.popitem(last=False)
        self.height, self.tip_hash = block.height, block.block_hash
        dead = self.in_flight.final(block, ids)
        if dead:  # proposals that lost this height: their transactions go again at once
            self.mempool.return_batch(sorted(dead))
        return CommittedBlock(block, commit.certificate, result.state_root)


def offers_blocks_above(response: SyncResponse, height: int) -> bool:
    """The answer claims blocks we lack: if none of them was acceptable, it is refused.
    (Blocks we committed meanwhile are only late, not wrong.)"""
    if response.blocks:
        return response.blocks[-1].block.height > height
    return response.tip_height > height
