"""Leader election (Ongaro & Ousterhout 2014 §5.2, §5.4.1; thesis §3.4, §4.2.3, §9.6).

Theory of operation: a follower that hears nothing from a leader for a randomised
election timeout, drawn in ticks from [T, 2T) with the engine's seeded RNG (§5.2), first
runs a *pre-vote* (thesis §9.6): it asks "would you vote for me in term+1?" without
changing any state. Only if a majority would does it become a candidate, increment its
term and ask for real votes. A node cut off by a partition therefore keeps its term, and
when it rejoins it cannot force the healthy leader to step down.

Voters grant a pre-vote or a vote only to a candidate whose log is at least as up to date
as theirs (§5.4.1 election restriction), and at most one real vote per term (persisted
before the reply, thesis §3.8). With check-quorum, a node that heard from a leader within
the minimum election timeout (the *lease*, thesis §4.2.3) ignores vote requests, unless
the candidate was told to campaign by the leader itself (TimeoutNow, §3.10).
"""
from __future__ import annotations

from consensus.api import Note, Persist, RejectReason
from consensus.raft.messages import KEY_HARD_STATE, HardState, RequestVote, RequestVoteResponse
from consensus.types import NodeId

FOLLOWER = "follower"
PRE_CANDIDATE = "pre_candidate"
CANDIDATE = "candidate"
LEADER = "leader"


class ElectionMixin:
    # ------------------------------------------------------------ timers
    def reset_election_timer(self) -> None:
        base = self.config.election_timeout_ticks
        self.election_elapsed_ticks = 0
        self.randomized_election_timeout_ticks = base + self._rng.randrange(base)

    def in_lease(self) -> bool:
        """Heard from a live leader within the minimum election timeout (thesis §4.2.3)."""
        return (self.leader_id is not None
                and self.election_elapsed_ticks < self.config.election_timeout_ticks)

    def tick_election(self) -> None:
        self.election_elapsed_ticks += 1
        if self.election_elapsed_ticks >= self.randomized_election_timeout_ticks:
            self.become_pre_candidate()
        elif self.role in (PRE_CANDIDATE, CANDIDATE) and \
                self.election_elapsed_ticks % max(1, self.config.heartbeat_ticks) == 0:
            self.resend_vote_requests()

    def resend_vote_requests(self) -> None:
        """§5.1: servers retry RPCs that get no response in time. With exactly a
        majority up every vote is needed, and one lost RequestVote or reply cost the
        rest of the election timeout (pre-vote and vote each): a Raft swarm run (seed
        75295551953580, 3 of 7 crashed, 10 % loss) elected nobody for 6 s. The same
        request each time: a voter answers a repeat as it answered the first (its vote
        for this candidate in this term is durable), and a reply counts once per voter."""
        if self.campaign_request is None:
            return
        for peer in self.peers:
            if peer not in self.votes:
                self.send(peer, self.campaign_request)

    def persist_hard_state(self) -> None:
        self.fx.persist.append(Persist(KEY_HARD_STATE, HardState(self.term, self.voted_for)))

    # ------------------------------------------------------------ role transitions
    def become_follower(self, term: int, leader: NodeId | None) -> None:
        if term > self.term:
            self.term = term
            self.voted_for = None
            self.persist_hard_state()
        if self.role == LEADER:
            self.abort_reads("stepped down")
            self.fx.notes.append(Note("step_down", f"leader of term {self.term} steps down",
                                      view=self.term, leader=leader))
        self.role = FOLLOWER
        self.leader_id = leader
        self.votes = {}
        self.progress = {}
        self.acks = {}
        self.transfer_target = None
        self.reset_election_timer()

    def become_pre_candidate(self) -> None:
        self.role = PRE_CANDIDATE
        self.leader_id = None
        self.votes = {self.node_id: True}
        self.reset_election_timer()
        self.fx.notes.append(Note("election", f"pre-vote for term {self.term + 1}",
                                  view=self.term + 1))
        request = RequestVote(self.term + 1, self.node_id, self.log.last_index,
                              self.log.last_term, pre_vote=True)
        self.campaign_request = request
        for peer in self.peers:
            self.send(peer, request)
        self.tally_votes()

    def become_candidate(self, leader_transfer: bool = False) -> None:
        self.term += 1
        self.voted_for = self.node_id
        self.persist_hard_state()  # §3.8: the term and self-vote are durable before asking
        self.role = CANDIDATE
        self.leader_id = None
        self.votes = {self.node_id: True}
        self.reset_election_timer()
        self.fx.notes.append(Note("election", f"candidate for term {self.term}",
                                  view=self.term))
        request = RequestVote(self.term, self.node_id, self.log.last_index,
                              self.log.last_term, leader_transfer=leader_transfer)
        self.campaign_request = request
        for peer in self.peers:
            self.send(peer, request)
        self.tally_votes()

    def tally_votes(self) -> None:
        granted = sum(1 for ok in self.votes.values() if ok)
        refused = len(self.votes) - granted
        if granted >= self.quorum:
            if self.role == PRE_CANDIDATE:
                self.become_candidate()
            elif self.role == CANDIDATE:
                self.become_leader()
        elif refused >= self.quorum:
            # A majority refuses: this campaign cannot win; wait for the next timeout.
            self.become_follower(self.term, None)

    # ------------------------------------------------------------ handlers
    def on_request_vote(self, sender: NodeId, msg: RequestVote) -> None:
        up_to_date = self.log.is_up_to_date(msg.last_log_index, msg.last_log_term)
        if msg.pre_vote:
            # Not adopting the term: a pre-vote changes nothing durable (§9.6).
            lease = self.in_lease() and not msg.leader_transfer
            grant = msg.term > self.term and up_to_date and not lease
            self.send(sender, RequestVoteResponse(msg.term if grant else self.term,
                                                  self.node_id, grant, pre_vote=True))
            return
        can_vote = (self.voted_for == msg.candidate
                    or (self.voted_for is None and self.leader_id is None))
        grant = msg.term == self.term and can_vote and up_to_date
        if grant and self.voted_for is None:
            self.voted_for = msg.candidate
            self.persist_hard_state()  # before the reply that depends on it (§3.8)
        if grant:
            self.reset_election_timer()  # Figure 2: granting a vote resets the timer
        self.send(sender, RequestVoteResponse(self.term, self.node_id, grant))

    def on_request_vote_response(self, sender: NodeId, msg: RequestVoteResponse) -> None:
        if msg.pre_vote:
            expected = self.role == PRE_CANDIDATE and (not msg.granted
                                                        or msg.term == self.term + 1)
        else:
            expected = self.role == CANDIDATE and msg.term == self.term
        if not expected:
            self.fx.reject(RejectReason.STALE, sender, "vote response for no campaign")
            return
        self.votes[sender] = msg.granted
        self.tally_votes()
