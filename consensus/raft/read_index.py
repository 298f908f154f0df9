"""Linearizable reads by ReadIndex (thesis §6.4).

Theory of operation: `request_read(read_id)` on the leader records the current commit
index as the read index, then confirms it is still the leader by a heartbeat round that
carries a fresh `read_context`; followers echo the context in their responses. When a
majority (counting the leader) has echoed a context >= the read's, no newer leader can
have existed when the read was taken, so state at >= read index reflects every commit
acknowledged before the read. The engine then emits Note(kind="read_ready",
detail="<read_id>:<read_index>"); the driver serves the read once its ledger has applied
read_index. A leader that has not yet committed an entry of its own term does not know
the commit index (§6.4 step 1); reads wait until its no-op commits. Reads queued on a
leader that steps down get Note(kind="read_failed") so the client can retry.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from consensus.api import Effects, EffectsBuilder, Note, RejectReason
from consensus.raft.election import LEADER
from consensus.types import NodeId


@dataclass(slots=True)
class PendingRead:
    read_id: str
    context: int = 0  # 0 until the leader knows its commit index
    index: int = 0
    acks: set[NodeId] = field(default_factory=set)


class ReadIndexMixin:
    def request_read(self, read_id: str) -> Effects:
        """Ask for a linearizable read point; answered by a `read_ready` note."""
        self.fx = EffectsBuilder()
        if self.role != LEADER:
            self.fx.reject(RejectReason.NOT_LEADER, None,
                           f"read {read_id}: not the leader; leader={self.leader_id}")
        elif len(self.reads) >= self.config.pending_messages_max:
            self.fx.reject(RejectReason.OVER_LIMIT, None, f"read {read_id}: too many reads")
        else:
            self.reads.append(PendingRead(str(read_id)))
            self.start_waiting_reads()
        return self.fx.build()

    def start_waiting_reads(self) -> None:
        if self.role != LEADER or self.log.term_at(self.commit_index) != self.term:
            return
        waiting = [r for r in self.reads if r.context == 0]
        if not waiting:
            return
        self.read_context_latest += 1
        for read in waiting:
            read.context = self.read_context_latest
            read.index = self.commit_index
            read.acks = {self.node_id}
        self.broadcast_heartbeat()
        self.release_reads()

    def on_read_ack(self, sender: NodeId, context: int) -> None:
        for read in self.reads:
            if read.context and read.context <= context:
                read.acks.add(sender)
        self.release_reads()

    def release_reads(self) -> None:
        while self.reads and self.reads[0].context and \
                len(self.reads[0].acks) >= self.quorum:
            read = self.reads.pop(0)
            self.fx.notes.append(Note("read_ready", f"{read.read_id}:{read.index}",
                                      view=self.term, leader=self.node_id))

    def abort_reads(self, why: str) -> None:
        for read in self.reads:
            self.fx.notes.append(Note("read_failed", f"{read.read_id}:{why}", view=self.term))
        self.reads = []
