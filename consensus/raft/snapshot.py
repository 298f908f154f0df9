"""Snapshots and log compaction (Ongaro & Ousterhout 2014 §7; thesis §5.1-§5.3).

Theory of operation: the ledger's applied blocks *are* the state machine's snapshot, so
the engine never copies state. When `Applied` shows the ledger `2K` entries past the log
offset (K = `checkpoint_interval_blocks`), the log is compacted up to `applied - K`,
keeping a tail of K entries so a follower that is only a little behind is still served
from the log. A follower whose next entry was compacted is sent InstallSnapshot naming the
leader's applied height, its term, hash and state root. The follower persists the pending
snapshot, emits `CatchUp(height, peers=(leader,))`; the driver fetches the blocks with
their certificates, checks and applies them, and feeds `Synced`. The follower then resets
its log to start after the snapshot (keeping a suffix that agrees, §5.3) and answers
InstallSnapshotResponse so the leader probes from there.
"""
from __future__ import annotations

from consensus.api import Applied, CatchUp, Note, Persist, RejectReason, Synced
from consensus.raft.election import FOLLOWER, LEADER
from consensus.raft.messages import (
    KEY_PENDING_SNAPSHOT,
    InstallSnapshot,
    InstallSnapshotResponse,
    LogOffset,
)
from consensus.raft.replication import SNAPSHOT
from consensus.types import EMPTY_ROOT, NodeId


class SnapshotMixin:
    # ------------------------------------------------------------ leader
    def send_snapshot(self, peer: NodeId) -> None:
        pr = self.progress[peer]
        index = self.applied_index
        term = self.log.term_at(index)
        if term is None:
            raise AssertionError(f"raft: applied height {index} is behind the log offset")
        pr.state = SNAPSHOT
        pr.snapshot_index = index
        pr.snapshot_elapsed_ticks = 0
        pr.inflight.clear()
        self.send(peer, InstallSnapshot(self.term, self.node_id, index, term,
                                        self.applied_hash, self.applied_root or EMPTY_ROOT))

    def tick_snapshots(self) -> None:
        # An InstallSnapshot or its answer may be lost; ask again after two timeouts.
        for peer in self.peers:
            pr = self.progress[peer]
            if pr.state == SNAPSHOT:
                pr.snapshot_elapsed_ticks += 1
                if pr.snapshot_elapsed_ticks >= 2 * self.config.election_timeout_ticks:
                    self.send_snapshot(peer)

    def on_install_snapshot_response(self, sender: NodeId,
                                     msg: InstallSnapshotResponse) -> None:
        if self.role != LEADER:
            self.fx.reject(RejectReason.STALE, sender, "snapshot response while not leader")
            return
        pr = self.progress[sender]
        pr.recent_active = True
        pr.match = max(pr.match, msg.match_index)
        pr.become_probe()
        self.fill_pipeline(sender)

    # ------------------------------------------------------------ follower
    def on_install_snapshot(self, sender: NodeId, msg: InstallSnapshot) -> None:
        if self.role != FOLLOWER:
            self.become_follower(msg.term, sender)
        self.leader_id = sender
        self.election_elapsed_ticks = 0
        if msg.last_included_index <= self.emitted_index:
            # The ledger already holds it: just tell the leader where to probe from.
            self.send(sender, InstallSnapshotResponse(self.term, self.node_id,
                                                      msg.last_included_index))
            return
        pending = self.pending_snapshot
        if pending is not None and self.catch_up_active and \
                pending.last_included_index == msg.last_included_index:
            return  # the catch-up for this very snapshot is already under way
        self.pending_snapshot = msg
        self.catch_up_active = True
        # Durable before the catch-up, so a crash after the ledger caught up still knows
        # the snapshot's term (needed for the election restriction).
        self.fx.persist.append(Persist(KEY_PENDING_SNAPSHOT, msg))
        self.fx.catch_up.append(CatchUp(msg.last_included_index, (sender,)))
        self.fx.notes.append(Note("snapshot", f"catching up to {msg.last_included_index}",
                                  view=self.term, leader=sender))

    def on_synced(self, event: Synced) -> None:
        self.catch_up_active = False
        if event.height > self.applied_index:
            self.applied_index = event.height
            self.applied_hash = event.block_hash
            self.applied_root = event.state_root
        self.emitted_index = max(self.emitted_index, event.height)
        self.commit_index = max(self.commit_index, event.height)
        pending = self.pending_snapshot
        if pending is None or event.height < pending.last_included_index:
            return
        self.install_pending_snapshot()
        if self.leader_id is not None and self.leader_id != self.node_id:
            self.send(self.leader_id, InstallSnapshotResponse(
                self.term, self.node_id, pending.last_included_index))

    def install_pending_snapshot(self) -> None:
        pending = self.pending_snapshot
        assert pending is not None
        offset = LogOffset(pending.last_included_index, pending.last_included_term,
                           pending.last_included_hash, 0)
        if offset.index > self.log.offset.index:
            self.fx.persist.extend(self.log.reset_to(offset))
        self.fx.persist.append(Persist(KEY_PENDING_SNAPSHOT, None))
        self.pending_snapshot = None

    # ------------------------------------------------------------ every node
    def on_applied(self, event: Applied) -> None:
        if event.height <= self.applied_index:
            return
        self.applied_index = event.height
        self.applied_hash = event.block_hash
        self.applied_root = event.state_root
        keep_blocks = self.config.checkpoint_interval_blocks
        if self.applied_index - self.log.offset.index >= 2 * keep_blocks:
            target = self.applied_index - keep_blocks
            self.fx.persist.extend(self.log.compact_to(target))
            self.fx.notes.append(Note("compaction", f"log compacted to {target}",
                                      view=self.term, leader=self.leader_id))
