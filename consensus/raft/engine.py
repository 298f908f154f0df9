"""RaftEngine: Raft as a pure, sans-IO state machine (Ongaro & Ousterhout 2014, Figure 2;
Ongaro's thesis 2014). The protocol phases live in their own modules; this one holds the
state, the input dispatch and Figure 2's "rules for all servers".

Theory of operation: every input is one `step`; handlers fill an EffectsBuilder. Term
handling follows Figure 2 (a message with a higher term makes us a follower of it) with the
two extensions etcd-io/raft also has: a pre-vote request/response never changes our term
(thesis §9.6), and a vote request inside a live leader's lease is ignored (check-quorum,
§4.2.3). Messages from a stale term are refused; a stale leader is answered so it learns
the newer term and steps down. Client and operator requests are contract inputs like any
other: `ReadRequest` (ReadIndex, read_index.py) and `TransferLeadership` (transfer.py).
"""
from __future__ import annotations

from typing import ClassVar

from consensus.api import (
    Applied,
    Effects,
    EffectsBuilder,
    EngineConfig,
    EngineStatus,
    Note,
    Propose,
    ReadRequest,
    Receive,
    RejectReason,
    Restore,
    Send,
    Synced,
    Tick,
    TransferLeadership,
)
from consensus.raft import certificate as cert
from consensus.raft.election import FOLLOWER, LEADER, ElectionMixin
from consensus.raft.log import RaftLog
from consensus.raft.messages import (
    ENTRY_KEY_PREFIX,
    KEY_HARD_STATE,
    KEY_LOG_OFFSET,
    KEY_PENDING_SNAPSHOT,
    MESSAGE_TYPES,
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    InstallSnapshot,
    InstallSnapshotResponse,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from consensus.raft.read_index import PendingRead, ReadIndexMixin
from consensus.raft.replication import Progress, ReplicationMixin
from consensus.raft.snapshot import SnapshotMixin
from consensus.raft.transfer import TransferMixin
from consensus.types import Block, Certificate, NodeId, SignedMessage, cft_quorum

_SENDER_FIELD = {RequestVote: "candidate", RequestVoteResponse: "voter",
                 AppendEntries: "leader", AppendEntriesResponse: "follower",
                 TimeoutNow: "leader", InstallSnapshot: "leader",
                 InstallSnapshotResponse: "follower"}
_FROM_LEADER = (AppendEntries, InstallSnapshot, TimeoutNow)


class RaftEngine(ElectionMixin, ReplicationMixin, SnapshotMixin, ReadIndexMixin,
                 TransferMixin):
    name: ClassVar[str] = "raft"
    byzantine_tolerant: ClassVar[bool] = False

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.peers = tuple(p for p in config.validators.node_ids if p != config.node_id)
        self.quorum = cft_quorum(config.validators.size)
        self._rng = config.rng("election")
        self.fx = EffectsBuilder()
        self.term = 0
        self.voted_for: NodeId | None = None
        self.role = FOLLOWER
        self.leader_id: NodeId | None = None
        self.log = RaftLog()
        self.commit_index = 0  # highest index known committed
        self.emitted_index = 0  # highest index handed to the driver in Effects.commit
        self.applied_index = 0
        self.applied_hash = b""
        self.applied_root = b""
        self.votes: dict[NodeId, bool] = {}
        self.campaign_request: RequestVote | None = None  # re-sent to peers yet to answer
        self.progress: dict[NodeId, Progress] = {}
        self.acks: dict[NodeId, SignedMessage] = {}  # leader: best ack per follower
        self.commit_proof: SignedMessage | None = None  # follower: leader's signed append
        self.reads: list[PendingRead] = []
        self.read_context_latest = 0
        self.transfer_target: NodeId | None = None
        self.transfer_elapsed_ticks = 0
        self.pending_snapshot: InstallSnapshot | None = None
        self.catch_up_active = False
        self.election_elapsed_ticks = 0
        self.heartbeat_elapsed_ticks = 0
        self.randomized_election_timeout_ticks = 0
        self.reset_election_timer()

    # ------------------------------------------------------------ contract
    def step(self, event: object) -> Effects:
        self.fx = EffectsBuilder()
        if isinstance(event, Tick):
            self.on_tick()
        elif isinstance(event, Receive):
            self.on_receive(event)
        elif isinstance(event, Propose):
            self.on_propose(event)
        elif isinstance(event, Applied):
            self.on_applied(event)
        elif isinstance(event, Synced):
            self.on_synced(event)
        elif isinstance(event, Restore):
            self.on_restore(event)
        elif isinstance(event, ReadRequest):
            self.on_read_request(event)
        elif isinstance(event, TransferLeadership):
            self.on_transfer_leadership(event)
        else:
            self.fx.reject(RejectReason.MALFORMED, None, f"unknown input {type(event)}")
        return self.fx.build()

    def status(self) -> EngineStatus:
        return EngineStatus("raft", self.role, self.term, self.leader_id, self.emitted_index)

    @classmethod
    def check_certificate(cls, config: EngineConfig, block: Block,
                          certificate: Certificate) -> bool:
        return cert.check_certificate(config, block, certificate)

    # ------------------------------------------------------------ helpers
    def send(self, to: NodeId, message: object) -> None:
        self.fx.send.append(Send(to, message))

    def certificate_for(self, entry: Entry) -> Certificate:
        assert entry.block is not None
        if self.role == LEADER:
            votes = cert.leader_certificate(entry, self.acks, self.quorum - 1)
        else:
            assert self.commit_proof is not None
            votes = (self.commit_proof,)
        return Certificate(cert.KIND, entry.index, entry.block.block_hash, votes)

    def on_tick(self) -> None:
        if self.role != LEADER:
            self.tick_election()
            return
        self.election_elapsed_ticks += 1
        self.heartbeat_elapsed_ticks += 1
        self.tick_transfer()
        self.tick_snapshots()
        if self.election_elapsed_ticks >= self.config.election_timeout_ticks:
            self.election_elapsed_ticks = 0
            if not self.check_quorum():
                return
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed_ticks = 0
            self.broadcast_heartbeat()

    def check_quorum(self) -> bool:
        """Thesis §6.2: a leader that did not hear from a majority in a timeout steps down."""
        active = 1 + sum(1 for pr in self.progress.values() if pr.recent_active)
        for pr in self.progress.values():
            pr.recent_active = False
        if active >= self.quorum:
            return True
        self.fx.notes.append(Note("check_quorum", f"heard from {active} of {self.quorum}",
                                  view=self.term))
        self.become_follower(self.term, None)
        return False

    # ------------------------------------------------------------ receive
    def on_receive(self, event: Receive) -> None:
        sender, msg = event.sender, event.message
        problem = self.validate(sender, msg)
        if problem is not None:
            self.fx.reject(problem[0], sender, problem[1])
            return
        if msg.term > self.term and not self.adopt_term(sender, msg):
            return
        if msg.term < self.term:
            self.on_stale(sender, msg)
            return
        if isinstance(msg, RequestVote):
            self.on_request_vote(sender, msg)
        elif isinstance(msg, RequestVoteResponse):
            self.on_request_vote_response(sender, msg)
        elif isinstance(msg, AppendEntries):
            self.on_append_entries(sender, msg, event.signature)
        elif isinstance(msg, AppendEntriesResponse):
            self.on_append_entries_response(sender, msg, event.signature)
        elif isinstance(msg, InstallSnapshot):
            self.on_install_snapshot(sender, msg)
        elif isinstance(msg, InstallSnapshotResponse):
            self.on_install_snapshot_response(sender, msg)
        else:
            self.on_timeout_now(sender, msg)

    def validate(self, sender: NodeId, msg: object) -> tuple[RejectReason, str] | None:
        if sender not in self.config.validators or sender == self.node_id:
            return RejectReason.UNKNOWN_SENDER, f"sender {sender}"
        if not isinstance(msg, MESSAGE_TYPES):
            return RejectReason.MALFORMED, f"not a raft message: {type(msg).__name__}"
        if getattr(msg, _SENDER_FIELD[type(msg)]) != sender:
            return RejectReason.MALFORMED, "message names another sender"
        if isinstance(msg, AppendEntries):
            for offset, entry in enumerate(msg.entries, start=1):
                if (entry.index != msg.prev_log_index + offset or entry.term > msg.term
                        or entry.block is None or entry.block.height != entry.index):
                    return RejectReason.MALFORMED, f"bad entry at {entry.index}"
            if len(msg.entries) > self.config.log_window_blocks:
                return RejectReason.OVER_LIMIT, "too many entries in one append"
            if not cert.hashes_well_formed(self.config, msg.commit_hashes):
                return RejectReason.MALFORMED, "commit hashes too many or not 32 bytes"
        if isinstance(msg, AppendEntriesResponse) and \
                not cert.hashes_well_formed(self.config, msg.match_hashes):
            return RejectReason.MALFORMED, "match hashes too many or not 32 bytes"
        return None

    def adopt_term(self, sender: NodeId, msg: object) -> bool:
        """Figure 2: a higher term makes us its follower; False if the message is ignored."""
        if isinstance(msg, RequestVote) and msg.pre_vote:
            return True  # answered without adopting the term (§9.6)
        if isinstance(msg, RequestVoteResponse) and msg.pre_vote and msg.granted:
            return True  # the term our pre-campaign would start
        if isinstance(msg, RequestVote) and self.in_lease() and not msg.leader_transfer:
            self.fx.reject(RejectReason.STALE, sender, "vote request inside leader lease")
            return False
        self.become_follower(msg.term, sender if isinstance(msg, _FROM_LEADER) else None)
        return True

    def on_stale(self, sender: NodeId, msg: object) -> None:
        if isinstance(msg, (AppendEntries, InstallSnapshot)):
            # Tell a deposed leader the newer term so it steps down (etcd does the same).
            self.send(sender, AppendEntriesResponse(self.term, self.node_id, False, 0))
        elif isinstance(msg, RequestVote) and msg.pre_vote:
            self.send(sender, RequestVoteResponse(self.term, self.node_id, False, True))
        self.fx.reject(RejectReason.STALE, sender,
                       f"{type(msg).__name__} of term {msg.term} < {self.term}")

    # ------------------------------------------------------------ restart
    def on_restore(self, event: Restore) -> None:
        """Rebuild from durable records after a restart; always come back as a follower."""
        entries: list[Entry] = []
        for key, value in event.records:
            if key == KEY_HARD_STATE:
                self.term, self.voted_for = value.term, value.voted_for
            elif key == KEY_LOG_OFFSET:
                self.log = RaftLog(value)
            elif key == KEY_PENDING_SNAPSHOT:
                self.pending_snapshot = value
            elif key.startswith(ENTRY_KEY_PREFIX):
                entries.append(value)
        for entry in sorted(entries, key=lambda e: e.index):
            if entry.index > self.log.last_index:
                self.log.append(entry)
        self.commit_index = self.emitted_index = event.committed_height
        self.applied_index = event.committed_height
        self.applied_hash = event.committed_hash
        self.applied_root = event.state_root
        pending = self.pending_snapshot
        if pending is not None and event.committed_height >= pending.last_included_index:
            self.install_pending_snapshot()  # crashed between catch-up and Synced
        self.role = FOLLOWER
        self.leader_id = None
        self.reset_election_timer()
