"""Linearizable reads by ReadIndex (thesis §6.4).

Theory of operation: `ReadRequest(request_id)` on the leader records the current commit
index as the read index, then confirms it is still the leader by a heartbeat round that
carries a fresh `read_context`; followers echo the context in their responses. When a
majority (counting the leader) has echoed a context >= the read's, no newer leader can
have existed when the read was taken, so state at >= read index reflects every commit
acknowledged before the read. The engine then emits `ReadReady(request_id, read_index)`
in `Effects.reads`; the driver serves the read once its ledger has applied read_index.
A leader that has not yet committed an entry of its own term does not know the commit
index (§6.4 step 1); reads wait until its no-op commits. Reads queued on a leader that
steps down get Note(kind="read_failed", detail="<request_id>:<why>") so the client can
retry.

A follower refuses a read with NOT_LEADER naming the leader, as it refuses proposals:
the driver forwards the read to the leader (one round trip, like a proposal). Serving it
on the follower after asking the leader for its read index (thesis §6.4, "followers")
would save the leader the read's work but not the round trip; not done yet.
Reads waiting at once are bounded by `pending_messages_max`. One confirmation round runs
at a time; reads that arrive during it are batched onto the next (etcd batches the same
way), so concurrent reads do not each cost a heartbeat broadcast and its n - 1 answers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from consensus.api import Note, ReadReady, ReadRequest, RejectReason
from consensus.raft.election import LEADER
from consensus.types import NodeId


@dataclass(slots=True)
class PendingRead:
    request_id: int
    context: int = 0  # 0 until the leader knows its commit index
    index: int = 0
    acks: set[NodeId] = field(default_factory=set)


class ReadIndexMixin:
    def on_read_request(self, event: ReadRequest) -> None:
        """Ask for a linearizable read point; answered by a `ReadReady`."""
        request_id = event.request_id
        if self.role != LEADER:
            self.fx.reject(RejectReason.NOT_LEADER, None,
                           f"read {request_id}: not the leader; leader={self.leader_id}")
        elif len(self.reads) >= self.config.pending_messages_max:
            self.fx.reject(RejectReason.OVER_LIMIT, None, f"read {request_id}: too many reads")
        else:
            self.reads.append(PendingRead(request_id))
            self.start_waiting_reads()

    def start_waiting_reads(self) -> None:
        if self.role != LEADER or self.log.term_at(self.commit_index) != self.term:
            return
        if any(r.context for r in self.reads):
            # One confirmation round at a time: reads arriving meanwhile share the next
            # one, so N concurrent reads cost about two heartbeat rounds, not N.
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
            self.fx.reads.append(ReadReady(read.request_id, read.index))
        self.start_waiting_reads()  # a no-op unless a round just ended with reads waiting

    def abort_reads(self, why: str) -> None:
        for read in self.reads:
            self.fx.notes.append(Note("read_failed", f"{read.request_id}:{why}",
                                      view=self.term))
        self.reads = []
