"""Receiving PROPOSAL, PREVOTE, PRECOMMIT and evidence: checks, storage, equivocation
detection (Buchman et al. 2018 Algorithm 1 'upon' preconditions; CometBFT's vote sets).

Theory of operation
-------------------
Handlers store; rounds.progress decides. A message of our height is checked (sender,
proposer of its round, bounds) and kept per round; a message of the next height waits in
`future` (bounded) until we get there, a proposal's `last_commit` is read at once - its
precommits are of our height, and may decide it (line 49) -, and higher heights only tell
us that we are behind (decision.request_catch_up). Signatures of directly received
messages were checked by the driver; votes carried inside a proposal are checked here.

A second, different vote of one validator at one (height, round, type) is never counted:
the first one stays, and the pair becomes DuplicateVoteEvidence (evidence.py), verified
and gossiped once. Round senders feed rule 55 (f + 1 messages of a higher round).
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason, Send
from consensus.tendermint.decision import note_peer_height
from consensus.tendermint.evidence import (
    PENDING_EVIDENCE_MAX,
    evidence_id,
    evidence_problem,
    make_evidence,
)
from consensus.tendermint.messages import (
    DuplicateVoteEvidence,
    Proposal,
    Vote,
    Votes,
    VoteStep,
)
from consensus.tendermint.state import CONFLICTING_VOTES_MAX, ROUNDS_AHEAD_MAX, Replica
from consensus.types import NodeId, SignedMessage


def ingest(r: Replica, fx: EffectsBuilder, sender: NodeId, message: object,
           signature: bytes) -> None:
    if isinstance(message, Proposal):
        on_proposal(r, fx, sender, message, signature)
    elif isinstance(message, Vote):
        on_vote(r, fx, sender, message, signature)


def height_problem(r: Replica, fx: EffectsBuilder, sender: NodeId, message: object,
                   signature: bytes, height: int) -> bool:
    """True when the message is not of our height (kept for later, or refused)."""
    note_peer_height(r, sender, height)
    if height == r.height:
        r.work_seen = True  # another validator started this height
        return False
    if height == r.height + 1 and len(r.future) < r.config.pending_messages_max:
        r.future.append((sender, message, signature))
    elif height > r.height:
        fx.reject(RejectReason.FUTURE, sender, f"height {height}, ours {r.height}")
    return True


def on_proposal(r: Replica, fx: EffectsBuilder, sender: NodeId, p: Proposal,
                signature: bytes) -> None:
    if sender != p.proposer or sender != r.proposer(p.height, p.round):
        fx.reject(RejectReason.WRONG_LEADER, sender, f"({p.height}, {p.round}) is proposed "
                  f"by {r.proposer(p.height, p.round)}")
        return
    if p.height == r.height + 1 or p.height == r.height:
        read_votes(r, fx, p.height - 1, p.last_commit, (VoteStep.PRECOMMIT,))
    elif p.height == r.height - 1:
        help_laggard(r, fx, sender, None)
    if height_problem(r, fx, sender, p, signature, p.height):
        return
    if not (p.round <= r.round + ROUNDS_AHEAD_MAX and -1 <= p.pol_round < p.round) \
            or p.block.height != p.height:
        fx.reject(RejectReason.MALFORMED, sender, "proposal round, valid round or height")
        return
    seen = r.proposals.get(p.round)
    if seen is not None:
        same = seen[0] == p
        fx.reject(RejectReason.DUPLICATE if same else RejectReason.CONFLICT, sender,
                  f"second proposal for ({p.height}, {p.round})")
        return
    r.proposals[p.round] = (p, SignedMessage(sender, p, signature))
    r.round_senders.setdefault(p.round, set()).add(sender)


def on_votes(r: Replica, fx: EffectsBuilder, sender: NodeId, message: Votes,
             signature: bytes) -> None:
    if message.height == r.height - 1:
        read_votes(r, fx, message.height, message.votes, (VoteStep.PRECOMMIT,))
    elif message.height == r.height and message.round <= r.round + ROUNDS_AHEAD_MAX:
        read_votes(r, fx, message.height, message.votes,
                   (VoteStep.PREVOTE, VoteStep.PRECOMMIT))


def help_laggard(r: Replica, fx: EffectsBuilder, sender: NodeId, vote: Vote | None) -> None:
    """`sender` still votes at the height we decided (a precommit for another block, or
    any other message): send it our last commit, once per height."""
    if sender == r.me or sender in r.helped or not r.last_commit:
        return
    if vote is not None and vote.step == VoteStep.PRECOMMIT and vote.round == \
            r.last_commit_round and r.last_commit.get(sender) is not None and \
            r.last_commit[sender].message == vote:
        return
    r.helped.add(sender)
    votes = tuple(r.last_commit[v] for v in sorted(r.last_commit))
    fx.send.append(Send(sender, Votes(r.height - 1, r.last_commit_round, votes)))


def read_votes(r: Replica, fx: EffectsBuilder, height: int,
               votes: tuple[SignedMessage, ...], steps: tuple[VoteStep, ...]) -> None:
    """Relayed votes of `height` (a proposal's last_commit, a Votes message): votes of
    our height are counted once their signatures check; precommits of the height just
    decided are compared with our last commit, for evidence."""
    if len(votes) > 2 * r.config.validators.size:
        return
    for signed in votes:
        vote = signed.message if isinstance(signed, SignedMessage) else None
        if not isinstance(vote, Vote) or vote.step not in steps or vote.round < 0 \
                or vote.height != height or vote.validator != signed.sender \
                or signed.sender not in r.config.validators:
            continue
        if vote.height == r.height:
            if vote.round <= r.round + ROUNDS_AHEAD_MAX and r.signed_vote(
                    vote.round, vote.step, signed.sender, vote.block_hash) is None \
                    and r.config.verifier.verify(signed.sender, vote, signed.signature):
                add_vote(r, fx, signed)
        elif vote.round == r.last_commit_round and vote.step == VoteStep.PRECOMMIT:
            mine = r.last_commit.get(signed.sender)
            if mine is not None and mine.message != vote and r.config.verifier.verify(
                    signed.sender, vote, signed.signature):
                add_evidence(r, fx, make_evidence(mine, signed))


def on_vote(r: Replica, fx: EffectsBuilder, sender: NodeId, vote: Vote,
            signature: bytes) -> None:
    if vote.validator != sender or vote.round < 0 or vote.height < 1:
        fx.reject(RejectReason.MALFORMED, sender, "vote names another validator")
        return
    signed = SignedMessage(sender, vote, signature)
    if vote.height == r.height - 1:
        if vote.step == VoteStep.PRECOMMIT and vote.round == r.last_commit_round:
            late_precommit(r, fx, signed)
        help_laggard(r, fx, sender, vote)
        return
    if height_problem(r, fx, sender, vote, signature, vote.height):
        return
    if vote.round > r.round + ROUNDS_AHEAD_MAX:
        fx.reject(RejectReason.FUTURE, sender, f"round {vote.round}, ours {r.round}")
        return
    add_vote(r, fx, signed)


def late_precommit(r: Replica, fx: EffectsBuilder, signed: SignedMessage) -> None:
    """A precommit of the height just decided: for last_commit (CometBFT keeps adding
    them during timeout_commit), or evidence against its signer."""
    mine = r.last_commit.get(signed.sender)
    if mine is None:
        r.last_commit[signed.sender] = signed
    elif mine.message != signed.message:
        add_evidence(r, fx, make_evidence(mine, signed))


def add_vote(r: Replica, fx: EffectsBuilder, signed: SignedMessage) -> None:
    vote: Vote = signed.message  # type: ignore[assignment]
    key = (vote.round, vote.step)
    votes = r.votes.setdefault(key, {})
    previous = votes.get(signed.sender)
    if previous is None:
        votes[signed.sender] = signed
        r.round_senders.setdefault(vote.round, set()).add(signed.sender)
    elif previous.message != vote:
        add_evidence(r, fx, make_evidence(previous, signed))
        others = r.conflicting.setdefault(key, {}).setdefault(signed.sender, {})
        if len(others) < CONFLICTING_VOTES_MAX:
            others.setdefault(vote.block_hash, signed)


def add_evidence(r: Replica, fx: EffectsBuilder, evidence: DuplicateVoteEvidence,
                 sender: NodeId | None = None) -> None:
    """Verify, de-duplicate, keep and gossip one piece of evidence."""
    ident = evidence_id(evidence)
    if ident in r.pending_evidence or ident in r.committed_evidence:
        return
    problem = evidence_problem(r.config, evidence, r.height)
    if problem is not None:
        fx.reject(RejectReason.BAD_SIGNATURE if problem == "bad signature"
                  else RejectReason.MALFORMED if problem != "evidence too old"
                  else RejectReason.STALE, sender, f"evidence refused: {problem}")
        return
    if len(r.pending_evidence) >= PENDING_EVIDENCE_MAX:
        fx.reject(RejectReason.OVER_LIMIT, sender, "evidence pool full")
        return
    r.pending_evidence[ident] = evidence
    fx.send.append(Send(None, evidence))


def on_evidence(r: Replica, fx: EffectsBuilder, sender: NodeId,
                evidence: DuplicateVoteEvidence, signature: bytes) -> None:
    add_evidence(r, fx, evidence, sender)
