"""Leadership transfer (thesis §3.10).

Theory of operation: the operator gives the leader `TransferLeadership(target)`. The
leader stops accepting proposals (so the target can catch up with a fixed log), brings
the target's log up to its own through normal replication, then sends TimeoutNow. The
target campaigns at once, skipping pre-vote, with `leader_transfer=True` so voters ignore
their leader lease; its log is as up to date as anyone's, so it normally wins. If the
transfer does not finish within one election timeout the leader aborts it and accepts
proposals again.
"""
from __future__ import annotations

from consensus.api import Note, RejectReason, TransferLeadership
from consensus.raft.election import LEADER
from consensus.raft.messages import TimeoutNow
from consensus.types import NodeId


class TransferMixin:
    def on_transfer_leadership(self, event: TransferLeadership) -> None:
        """Operator request: hand leadership to `event.to` (no-op if it already leads)."""
        target = event.to
        if self.role != LEADER:
            self.fx.reject(RejectReason.NOT_LEADER, None,
                           f"transfer: not the leader; leader={self.leader_id}")
        elif target not in self.config.validators:
            self.fx.reject(RejectReason.UNKNOWN_SENDER, None, f"transfer: no node {target}")
        elif target == self.node_id:
            self.fx.notes.append(Note("transfer", "target is already the leader",
                                      view=self.term, leader=self.node_id))
        elif self.transfer_target != target:
            self.transfer_target = target
            self.transfer_elapsed_ticks = 0
            self.fx.notes.append(Note("transfer", f"transferring to {target}",
                                      view=self.term, leader=self.node_id))
            if not self.maybe_send_timeout_now(target):
                self.fill_pipeline(target)

    def maybe_send_timeout_now(self, peer: NodeId) -> bool:
        if self.transfer_target != peer or self.progress[peer].match != self.log.last_index:
            return False
        self.send(peer, TimeoutNow(self.term, self.node_id))
        return True

    def tick_transfer(self) -> None:
        if self.transfer_target is None:
            return
        self.transfer_elapsed_ticks += 1
        if self.transfer_elapsed_ticks >= self.config.election_timeout_ticks:
            self.fx.notes.append(Note("transfer_aborted", f"to {self.transfer_target}",
                                      view=self.term, leader=self.node_id))
            self.transfer_target = None

    def on_timeout_now(self, sender: NodeId, msg: TimeoutNow) -> None:
        if self.role == LEADER:
            self.fx.reject(RejectReason.CONFLICT, sender, "TimeoutNow to a leader")
            return
        self.become_candidate(leader_transfer=True)
