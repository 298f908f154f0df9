"""Log replication and commitment (Ongaro & Ousterhout 2014 §5.3, §5.4.2; thesis §3.5,
§3.6.2, §10.2.1 pipelining; flow control after etcd-io/raft's Progress).

Theory of operation: the leader keeps a `Progress` per follower. In PROBE it sends one
AppendEntries at a time and waits for the answer, walking `next` back on rejections with
the fast back-off hint (thesis §5.3: the follower names the largest index whose term is
not newer than the leader's prev term, so one round trip skips a whole divergent term).
After the first success it switches to REPLICATE: it streams batches of entries without
waiting, at most `inflight_blocks_max` unacknowledged AppendEntries per follower. A lost
batch shows up as a rejection (the next batch does not match) or as a heartbeat ack that
does not advance, and the follower drops back to PROBE. SNAPSHOT means the entries it
needs were compacted: see snapshot.py.

An entry is committed when a majority stores it *and* it is of the leader's current term
(§5.4.2, thesis §3.6.2); earlier entries commit with it. Each newly committed block is
emitted once, in log order, with a `raft.leader` certificate (certificate.py).

Followers apply Figure 2's receiver rules: reject if prev does not match, delete a
conflicting suffix, append new entries, then commit min(leader_commit, last new index).
New entries are `persist` ops of the same Effects as the ack, so they are durable first.
"""
from __future__ import annotations

from collections import deque

from consensus.api import Commit, Note, Propose, RejectReason
from consensus.raft.election import FOLLOWER, LEADER
from consensus.raft.messages import AppendEntries, AppendEntriesResponse, Entry
from consensus.types import EMPTY_ROOT, NodeId, SignedMessage, make_block

PROBE = "probe"
REPLICATE = "replicate"
SNAPSHOT = "snapshot"


class Progress:
    """The leader's view of one follower (etcd-io/raft tracker.Progress, rewritten)."""
    __slots__ = (
        "commit_known",
        "inflight",
        "match",
        "next",
        "probe_sent",
        "recent_active",
        "snapshot_elapsed_ticks",
        "snapshot_index",
        "state",
    )

    def __init__(self, next_index: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = PROBE
        self.probe_sent = False
        self.inflight: deque[int] = deque()  # last index of each unacknowledged batch
        self.recent_active = False
        self.snapshot_index = 0
        self.snapshot_elapsed_ticks = 0
        self.commit_known = 0  # the follower's commit index, as its acks reported it

    def become_probe(self) -> None:
        self.state = PROBE
        self.next = self.match + 1
        self.probe_sent = False
        self.inflight.clear()

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.next = self.match + 1
        self.inflight.clear()

    def maybe_decrease(self, rejected: int, probe_hint: int) -> bool:
        """Apply a rejection of prev index `rejected`; False when it is stale."""
        if self.state == REPLICATE:
            if rejected <= self.match:
                return False
            self.become_probe()
            return True
        if self.state == SNAPSHOT or self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, probe_hint + 1), self.match + 1)
        self.probe_sent = False
        return True


class ReplicationMixin:
    # ------------------------------------------------------------ leader
    def become_leader(self) -> None:
        self.role = LEADER
        self.leader_id = self.node_id
        self.votes = {}
        self.acks = {}
        self.election_elapsed_ticks = 0
        self.heartbeat_elapsed_ticks = 0
        self.progress = {p: Progress(self.log.last_index + 1) for p in self.peers}
        self.fx.notes.append(Note("leader", f"leader of term {self.term}", view=self.term,
                                  leader=self.node_id))
        # Thesis §6.4: a no-op entry of the new term lets the leader learn which earlier
        # entries are committed. Here it is an empty block, so log index == block height.
        self.append_block((), self.log.timestamp_at_last())

    def on_propose(self, event: Propose) -> None:
        cfg = self.config
        if self.role != LEADER or self.transfer_target is not None:
            why = "leader transfer in progress" if self.role == LEADER else "not the leader"
            self.fx.reject(RejectReason.NOT_LEADER, None, f"{why}; leader={self.leader_id}")
            return
        if len(event.txs) > cfg.batch_txs_max or \
                sum(len(tx) for tx in event.txs) > cfg.batch_bytes_max:
            self.fx.reject(RejectReason.OVER_LIMIT, None, "batch exceeds batch limits")
            return
        if self.log.last_index - self.commit_index >= cfg.log_window_blocks:
            self.fx.reject(RejectReason.OVER_LIMIT, None, "too many uncommitted blocks")
            return
        self.append_block(tuple(event.txs), max(event.timestamp_ms,
                                                self.log.timestamp_at_last()))

    def append_block(self, txs: tuple[bytes, ...], timestamp_ms: int) -> None:
        index = self.log.last_index + 1
        parent = self.log.hash_at(self.log.last_index)
        assert parent is not None
        block = make_block(self.config.chain_id, index, parent, txs, self.node_id,
                           timestamp_ms, state_height=self.applied_index,
                           state_root=self.applied_root or EMPTY_ROOT)
        self.fx.persist.extend(self.log.append(Entry(self.term, index, block)))
        for peer in self.peers:
            self.fill_pipeline(peer)
        self.maybe_advance_commit()

    def fill_pipeline(self, peer: NodeId) -> None:
        while self.send_append(peer):
            pass

    def send_append(self, peer: NodeId) -> bool:
        """Send the next batch if flow control allows; True if another may follow."""
        pr = self.progress[peer]
        if pr.state == SNAPSHOT or (pr.state == PROBE and pr.probe_sent):
            return False
        if pr.state == REPLICATE and len(pr.inflight) >= self.config.inflight_blocks_max:
            return False
        prev = pr.next - 1
        prev_term = self.log.term_at(prev)
        if prev_term is None:  # compacted: only a snapshot can bring this follower up
            self.send_snapshot(peer)
            return False
        entries = self.log.slice(pr.next, self.config.batch_bytes_max,
                                 self.config.log_window_blocks)
        self.send(peer, self.append_message(pr, prev, prev_term, entries, self.commit_index))
        if pr.state == PROBE:
            pr.probe_sent = True
            return False
        if not entries:
            return False
        pr.next = entries[-1].index + 1
        pr.inflight.append(entries[-1].index)
        return pr.next <= self.log.last_index

    def send_heartbeat(self, peer: NodeId) -> None:
        # prev = match, so an answer proves nothing new is missing below match; the
        # commit index is capped at match (etcd: a follower may not hold more).
        pr = self.progress[peer]
        prev, prev_term = pr.match, self.log.term_at(pr.match)
        if prev_term is None:
            # What the follower lacks was compacted: it needs a snapshot, and meanwhile a
            # heartbeat at index 0 (which always matches) keeps its election timer quiet.
            if pr.state != SNAPSHOT:
                self.send_snapshot(peer)
            prev, prev_term = 0, 0
        self.send(peer, self.append_message(pr, prev, prev_term, (),
                                            min(self.commit_index, prev)))

    def append_message(self, pr: Progress, prev: int, prev_term: int,
                       entries: tuple[Entry, ...], leader_commit: int) -> AppendEntries:
        """An AppendEntries whose `commit_hashes` name the block at every height it
        announces committed that the follower has not confirmed (at most one window:
        the announced commit index is held back to fit, certificate.py)."""
        leader_commit = min(leader_commit, pr.commit_known + self.config.log_window_blocks)
        start = max(pr.commit_known, self.log.offset.index - 1)
        hashes = tuple(self.log.hash_at(i) for i in range(start + 1, leader_commit + 1))
        assert all(h is not None for h in hashes), "raft: committed entry without a hash"
        return AppendEntries(self.term, self.node_id, prev, prev_term, entries, leader_commit,
                             self.read_context_latest, hashes)  # type: ignore[arg-type]

    def broadcast_heartbeat(self) -> None:
        for peer in self.peers:
            self.send_heartbeat(peer)

    def on_append_entries_response(self, sender: NodeId, msg: AppendEntriesResponse,
                                   signature: bytes) -> None:
        if self.role != LEADER:
            self.fx.reject(RejectReason.STALE, sender, "append response while not leader")
            return
        pr = self.progress[sender]
        pr.recent_active = True
        pr.commit_known = max(pr.commit_known, msg.commit_index)
        if msg.read_context:
            self.on_read_ack(sender, msg.read_context)
        if not msg.success:
            hint = msg.reject_hint_index
            if msg.reject_hint_term > 0:
                hint = self.log.find_conflict_by_term(hint, msg.reject_hint_term)
            if pr.maybe_decrease(msg.match_index, hint):
                self.send_append(sender)
            return
        if msg.match_index > pr.match:
            pr.match = msg.match_index
            if msg.match_term == self.term:
                self.acks[sender] = SignedMessage(sender, msg, signature)
            if pr.state == PROBE:
                pr.become_replicate()
            else:
                while pr.inflight and pr.inflight[0] <= pr.match:
                    pr.inflight.popleft()
                pr.next = max(pr.next, pr.match + 1)
            self.maybe_advance_commit()
        else:
            # A heartbeat ack or a duplicate: resume a paused probe, and free one slot in
            # case an append or its ack was lost (etcd does the same).
            pr.probe_sent = False
            if pr.state == REPLICATE and len(pr.inflight) >= self.config.inflight_blocks_max:
                pr.inflight.popleft()
        if pr.match < self.log.last_index:
            if pr.state == REPLICATE and pr.next > self.log.last_index:
                # Everything is sent. Only when nothing is in flight any more can a batch
                # have been lost: then an empty append exposes the gap. Sending one on every
                # ack while the pipeline is full multiplied messages (and ML-DSA signatures)
                # by the pipeline depth on a real cluster.
                if not pr.inflight:
                    self.send_append(sender)
            else:
                self.fill_pipeline(sender)
        self.maybe_send_timeout_now(sender)

    def maybe_advance_commit(self) -> None:
        if self.role != LEADER:
            return
        matches = sorted([self.log.last_index] + [p.match for p in self.progress.values()],
                         reverse=True)
        candidate = matches[self.quorum - 1]
        # §3.6.2: count replicas only for an entry of the current term.
        if candidate <= self.commit_index or self.log.term_at(candidate) != self.term:
            return
        self.commit_index = candidate
        self.emit_commits()
        self.start_waiting_reads()
        for peer in self.peers:  # tell followers promptly rather than at the next heartbeat
            if self.progress[peer].state == REPLICATE:
                self.send_heartbeat(peer)

    def emit_commits(self) -> None:
        while self.emitted_index < self.commit_index:
            index = self.emitted_index + 1
            entry = self.log.entry(index)
            if entry is None or entry.block is None:
                raise AssertionError(f"raft: committed index {index} not in the log")
            self.fx.commit.append(Commit(entry.block, self.certificate_for(entry)))
            self.emitted_index = index

    # ------------------------------------------------------------ follower
    def on_append_entries(self, sender: NodeId, msg: AppendEntries, signature: bytes) -> None:
        if self.role == LEADER:
            raise AssertionError(f"raft: two leaders in term {self.term}")
        if self.role != FOLLOWER:
            self.become_follower(msg.term, sender)
        self.leader_id = sender
        self.election_elapsed_ticks = 0
        if not self.log.matches(msg.prev_log_index, msg.prev_log_term):
            hint = min(msg.prev_log_index, self.log.last_index)
            hint = self.log.find_conflict_by_term(hint, msg.prev_log_term)
            self.send(sender, AppendEntriesResponse(
                self.term, self.node_id, False, msg.prev_log_index, hint,
                self.log.term_at(hint) or 0, msg.read_context,
                commit_index=self.commit_index))
            return
        self.append_entries(msg.entries)
        last_new = max(msg.prev_log_index + len(msg.entries), self.log.offset.index)
        new_commit = self.certified_commit(sender, msg, min(msg.leader_commit, last_new))
        if new_commit > self.commit_index:
            self.commit_index = new_commit
            self.commit_proof = SignedMessage(sender, msg, signature)
            self.emit_commits()
        self.send(sender, AppendEntriesResponse(
            self.term, self.node_id, True, last_new, read_context=msg.read_context,
            match_term=self.log.term_at(last_new) or 0,
            match_hashes=self.vouched_hashes(msg, last_new), commit_index=self.commit_index))

    def certified_commit(self, sender: NodeId, msg: AppendEntries, new_commit: int) -> int:
        """The highest index up to `new_commit` whose every newly committed block the
        message names by hash (its certificate, certificate.py); a hash that differs
        from our entry at a matching index breaks Log Matching and commits nothing."""
        index = self.commit_index
        while index < new_commit:
            named = msg.commit_hash_at(index + 1)
            if named is None:
                break
            if named != self.log.hash_at(index + 1):
                self.fx.reject(RejectReason.CONFLICT, sender, f"leader names another "
                               f"block at committed index {index + 1}")
                break
            index += 1
        return index

    def vouched_hashes(self, msg: AppendEntries, last_new: int) -> tuple[bytes, ...]:
        """Hashes of our entries from the request's commit index (or prev, if lower) to
        last_new: after the consistency check they equal the leader's (Log Matching)."""
        start = min(msg.leader_commit, msg.prev_log_index)
        start = max(start, last_new - 2 * self.config.log_window_blocks,
                    self.log.offset.index - 1)
        hashes = [self.log.hash_at(i) for i in range(start + 1, last_new + 1)]
        while None in hashes:  # keep the run ending at last_new: positions carry meaning
            del hashes[:hashes.index(None) + 1]
        return tuple(hashes)  # type: ignore[arg-type]

    def append_entries(self, entries: tuple[Entry, ...]) -> None:
        """Figure 2 receiver rules 3-4: drop a conflicting suffix, append what is new."""
        for entry in entries:
            if entry.index <= self.log.offset.index:
                continue
            existing = self.log.term_at(entry.index)
            if existing == entry.term:
                continue
            if existing is not None:
                if entry.index <= self.emitted_index:
                    raise AssertionError(f"raft: conflict at committed index {entry.index}")
                self.fx.persist.extend(self.log.truncate_from(entry.index))
            self.fx.persist.extend(self.log.append(entry))
