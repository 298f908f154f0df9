"""Catch-up (block sync), shared by the daemon and the simulator.

A node that is behind asks a peer for committed blocks with their certificates. It trusts
no peer: each block must extend the chain it already has (height and parent hash), carry
a tx root that matches its transactions, and come with a certificate that the engine's own
rule (`Engine.check_certificate`) accepts. The first block that fails ends the batch.

How a node learns it is behind without waiting for traffic: every node tells its peers
its committed height (`SyncStatus`) when a connection opens and every
`status_interval_ticks`. A node whose own height has not moved for a whole interval
while peers report more fetches blocks until it is level (CometBFT's blocksync does the
same with its status requests). Under byzantine faults a single peer's claim is not
enough: the node believes the (f+1)-th highest reported height, which at least one
honest node has reached; a liar can only make it ask for blocks that fail the
certificate check. One request is in flight at a time, retried on another peer after
`request_timeout_ticks`.

Whom to ask: every pick that goes to a crashed peer costs a whole request timeout, so
the round-robin leaves out, while any other candidate is left, peers not heard from
(any message) for two status intervals - live peers send at least a status that often -
peers that let a request time out until they answer one, and peers of the engine's
choice that reported a height below the target while others reported it. Found by a
PBFT swarm (seed 143500037600461): with two replicas crashed, a lagging honest replica
that every commit needed asked each crashed one in turn, 2 s apiece, and 47 % of the
offered transactions committed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from consensus import canonical
from consensus.api import EngineConfig
from consensus.types import GENESIS_HASH, Block, Certificate, NodeId

SYNC_BLOCKS_MAX = 64  # per response: bounds the message size and the work per request


@canonical.register("sync.committed_block.v1")
@dataclass(frozen=True, slots=True)
class CommittedBlock:
    block: Block
    certificate: Certificate
    state_root: bytes  # the server's root after applying it; checked against our own


@canonical.register("sync.request.v1")
@dataclass(frozen=True, slots=True)
class SyncRequest:
    from_height: int
    max_blocks: int
    requester: int


@canonical.register("sync.response.v1")
@dataclass(frozen=True, slots=True)
class SyncResponse:
    blocks: tuple[CommittedBlock, ...]
    tip_height: int
    responder: int


def blocks_to_serve(request: SyncRequest) -> int:
    """How many blocks one answer carries: what was asked, never past SYNC_BLOCKS_MAX."""
    return max(0, min(request.max_blocks, SYNC_BLOCKS_MAX))


def accept_synced_blocks(engine_cls: type, config: EngineConfig, height: int,
                         block_hash: bytes, response: SyncResponse) -> list[CommittedBlock]:
    """The prefix of `response.blocks` that safely extends (height, block_hash)."""
    accepted: list[CommittedBlock] = []
    for item in response.blocks:
        block = item.block
        if block.height <= height and not accepted:
            continue  # we committed it meanwhile: the answer was asked for from further back
        expected_parent = block_hash if height else GENESIS_HASH
        if block.height != height + 1 or block.header.parent_hash != expected_parent:
            break
        if block.header.chain_id != config.chain_id or not block.tx_root_matches():
            break
        if item.certificate.block_hash != block.block_hash:
            break
        if not engine_cls.check_certificate(config, block, item.certificate):
            break
        accepted.append(item)
        height, block_hash = block.height, block.block_hash
    return accepted


@canonical.register("tx.batch.v1")
@dataclass(frozen=True, slots=True)
class TransactionBatch:
    """Admitted transactions a node forwards to the node it believes will propose them."""
    txs: tuple[bytes, ...]
    origin: int


@canonical.register("sync.status.v1")
@dataclass(frozen=True, slots=True)
class SyncStatus:
    """A node's committed height, told to peers on connect and at a steady interval."""
    height: int
    block_hash: bytes  # GENESIS_HASH at height 0
    node: int


SYNC_RESPONSE_BYTES_MAX = 6 * 1024 * 1024  # default answer budget; drivers pass their own


def sync_response(request: SyncRequest, chain: list[CommittedBlock], tip_height: int,
                  responder: int, bytes_max: int = SYNC_RESPONSE_BYTES_MAX) -> SyncResponse:
    """The answer to `request` from blocks a driver read from its storage.

    Split by size as well as count: 64 full blocks would not fit one frame, so an answer
    carries whole blocks while they fit `bytes_max` (always at least one; the node's
    start-up check makes sure one full block with its certificate fits a frame). The
    requester asks again from where the answer ended.
    """
    blocks: list[CommittedBlock] = []
    size = 0
    for item in chain[:blocks_to_serve(request)]:
        item_bytes = len(canonical.encode(item))
        if blocks and size + item_bytes > bytes_max:
            break
        blocks.append(item)
        size += item_bytes
    return SyncResponse(tuple(blocks), tip_height, responder)


@dataclass(frozen=True, slots=True)
class SyncLimits:
    status_interval_ticks: int = 100  # 1 s at 10 ms ticks
    request_timeout_ticks: int = 200  # an unanswered request is retried on another peer
    # Whole intervals without progress before fetching on our own. Short stalls are the
    # engine's business (a view change, a lost vote it retransmits); stepping in with
    # blocks in the middle of a view change only disturbs it. An idle, restarted node is
    # stalled for good, so it still catches up within a few seconds.
    stall_intervals: int = 3
    # While the node commits, consensus traffic itself tells peers how far it is; the
    # status (n^2 messages per interval) then goes out only every few intervals.
    busy_status_every_intervals: int = 5


DEFAULT_SYNC_LIMITS = SyncLimits()


class CatchUpTracker:
    """Decides when to fetch blocks and from whom; pure, driven by the replica core.

    `faults` is how many reported heights to distrust: f for byzantine-tolerant engines,
    0 for crash-fault ones (their peers do not lie).
    """

    def __init__(self, node_id: NodeId, nodes: int, faults: int,
                 limits: SyncLimits = DEFAULT_SYNC_LIMITS) -> None:
        self.node_id = node_id
        self.peers = tuple(p for p in range(nodes) if p != node_id)
        self.faults = faults
        self.limits = limits
        self.peer_heights: dict[NodeId, int] = {}
        self.target = 0  # height we were told (or the engine said) to reach
        self.preferred: tuple[NodeId, ...] = ()
        self.inflight_ticks = 0  # > 0 while a request is outstanding
        self._ticks = 0
        self._height_at_last_status = -1
        self._stalled_intervals = 0
        self._intervals = 0
        self._rotation = 0
        self.asked: NodeId | None = None  # who the request in flight went to
        self.unresponsive: set[NodeId] = set()  # let a request time out, no answer since
        self._heard_tick: dict[NodeId, int] = {}  # last message from each peer
        self._empty: set[NodeId] = set()  # answered without blocks since our last progress

    # ------------------------------------------------------------ inputs
    def on_status(self, status: SyncStatus, height: int) -> SyncRequest | None:
        if status.node not in self.peers:
            return None
        self.peer_heights[status.node] = max(status.height, 0)
        trusted = self.trusted_height()
        if trusted > height and trusted > self.target:
            self.target = trusted
        return None  # statuses only set the target; the stall check decides (on_tick)

    def on_engine_request(self, target: int, peers: tuple[NodeId, ...],
                          height: int) -> SyncRequest | None:
        """The engine says it is behind (PBFT below a stable checkpoint, Raft snapshot)."""
        self.target = max(self.target, target)
        self.preferred = tuple(p for p in peers if p in self.peers) or self.preferred
        if self.inflight_ticks > 0 or target <= height:
            return None
        return self._request(height)

    def on_tick(self, height: int, engine_settled: Callable[[], bool] = lambda: True
                ) -> tuple[bool, SyncRequest | None]:
        """(broadcast our status now?, request to send). `engine_settled` says the engine
        is not between leaders (no view change or election under way)."""
        self._ticks += 1
        if self.inflight_ticks > 0:
            self.inflight_ticks -= 1
            if self.inflight_ticks == 0 and self.asked is not None:
                self.unresponsive.add(self.asked)
            if self.inflight_ticks == 0 and self.target > height:
                return False, self._request(height)  # unanswered: ask someone else
        if self._ticks % self.limits.status_interval_ticks:
            return False, None
        if height == self._height_at_last_status:
            self._stalled_intervals += 1
        else:
            self._stalled_intervals = 0
        self._height_at_last_status = height
        self._intervals += 1
        broadcast = (self._stalled_intervals > 0 or self._intervals == 1
                     or self._intervals % self.limits.busy_status_every_intervals == 0)
        if (self._stalled_intervals >= self.limits.stall_intervals and self.target > height
                and self.inflight_ticks == 0 and engine_settled()):
            return broadcast, self._request(height)
        return broadcast, None

    def on_response(self, response: SyncResponse, accepted_to: int) -> SyncRequest | None:
        """After a response was checked (and its good prefix applied up to `accepted_to`)."""
        self.heard_from(response.responder)
        self.unresponsive.discard(response.responder)
        if response.responder in self.peers:
            self.peer_heights[response.responder] = max(
                self.peer_heights.get(response.responder, 0), accepted_to)
        self.inflight_ticks = 0
        if accepted_to < self.target and accepted_to > self._height_at_last_status:
            self._empty.clear()
            return self._request(accepted_to)  # progress: keep fetching from here
        if accepted_to < self.target and not response.blocks \
                and accepted_to == self._height_at_last_status:
            # That peer is as far behind as we are. Ask one not yet asked at once -
            # each peer at most once until we progress, so this cannot loop - rather
            # than wait for the engine or a stall: a lagging replica may be needed by
            # every commit (exactly 2f + 1 honest), and its peers' heights are stale.
            self._empty.add(response.responder)
            if any(self._askable(p) and p not in self._empty for p in self.peers):
                return self._request(accepted_to)
        return None

    # ------------------------------------------------------------ decisions
    def trusted_height(self) -> int:
        heights = sorted(self.peer_heights.values(), reverse=True)
        return heights[self.faults] if len(heights) > self.faults else 0

    def _request(self, height: int) -> SyncRequest:
        self.inflight_ticks = self.limits.request_timeout_ticks
        self._height_at_last_status = height
        return SyncRequest(height + 1, SYNC_BLOCKS_MAX, self.node_id)

    def heard_from(self, peer: NodeId) -> None:
        """Any message from `peer` (the driver verified its signature): it is up."""
        self._heard_tick[peer] = self._ticks

    def pick_peer(self) -> NodeId:
        """Round-robin over the engine's choice, then the peers known to be ahead; see
        the module note for whom it leaves out."""
        ahead = [p for p in self.peers if self.peer_heights.get(p, 0) >= self.target]
        preferred = [p for p in self.preferred
                     if not (ahead and self.peer_heights.get(p, self.target) < self.target)]
        candidates = preferred + [p for p in ahead if p not in preferred] or list(self.peers)
        usable = [p for p in candidates if self._askable(p) and p not in self._empty] \
            or [p for p in self.peers if self._askable(p) and p not in self._empty] \
            or [p for p in candidates if self._askable(p)] \
            or [p for p in self.peers if self._askable(p)]
        if not usable:  # everyone failed us once: start over rather than ask nobody
            self.unresponsive.clear()
            usable = candidates
        self._rotation += 1
        self.asked = usable[self._rotation % len(usable)]
        return self.asked

    def _askable(self, peer: NodeId) -> bool:
        silent_ticks = self._ticks - self._heard_tick.get(peer, 0)
        return peer not in self.unresponsive and \
            silent_ticks <= 2 * self.limits.status_interval_ticks
