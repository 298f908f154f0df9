"""Tendermint's half of the read barrier (consensus/read_barrier.py): what a validator
answers, and how an answer's proof is checked (Buchman et al. 2018, Algorithm 1).

Theory of operation
-------------------
A validator answers READ-QUERY with the greatest height it can back:

* its current height H, when it holds a polka there: +2/3 of the power in PREVOTEs for
  one block in one round (the proof: those signed prevotes);
* else its current height with no proof, when it is locked or precommitted a block at
  H (after a restart its polka, held only in memory, is gone - but the durable lock
  says a decision at H may exist somewhere);
* else its last committed height, with the precommits of its decision (the commit),
  or no proof when it reached that height by catch-up or a restart.

Why that covers every acknowledged block: a block B decided at height H has precommits
from validators holding +2/3 of the power, so those holding more than 1/3 are honest
precommitters. An honest validator precommits B at H only on a polka for B (line 36),
which it keeps - with its lock - until it decides H itself, and then it answers >= H
from its commit. Any answers holding +2/3 of the power share power with those honest
precommitters (+2/3 and +1/3 of one total overlap), so the answers that count include
one of them, and their maximum is >= H. Answers refused for lack of proof do not count,
which keeps the overlap: the honest validators still able to prove H and the counted
answers overlap in the power that remains.

The quorum is the engine's weighted one (`state.quorum_powers`): a round ends when the
answering validators' power reaches +2/3, not a count of validators. Proofs are checked
with decision.check_vote_quorum (the code that checks catch-up's commit certificates).
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason, Send
from consensus.read_barrier import (
    ProofProblem,
    first_message,
    not_a_certificate,
    proof_problem,
)
from consensus.tendermint.decision import check_vote_quorum
from consensus.tendermint.messages import NIL, ReadAnswer, ReadQuery, Vote, VoteStep
from consensus.tendermint.state import Replica
from consensus.types import NodeId, SignedMessage


def polka(r: Replica) -> tuple[SignedMessage, ...]:
    """The signed prevotes of a +2/3 polka for a block at our height (the highest
    round's), or ()."""
    for (round_number, step), votes in sorted(r.votes.items(), reverse=True):
        if step != VoteStep.PREVOTE:
            continue
        for block_hash in sorted({s.message.block_hash for s in votes.values()} - {NIL}):  # type: ignore[attr-defined]
            if r.votes_for(round_number, step, block_hash) >= r.quorum:
                found = (r.signed_vote(round_number, step, v, block_hash) for v in sorted(votes))
                return tuple(s for s in found if s is not None)
    return ()


def last_commit(r: Replica) -> tuple[SignedMessage, ...]:
    """The precommits of our last decision, if they still prove it (not after a
    catch-up or a restart, which leave none)."""
    votes = tuple(r.last_commit[v] for v in sorted(r.last_commit)
                  if r.last_commit[v].message.block_hash == r.committed_hash)  # type: ignore[attr-defined]
    return votes if r.power(s.sender for s in votes) >= r.quorum else ()


def quorum_backed(r: Replica) -> tuple[int, tuple[SignedMessage, ...]]:
    prevotes = polka(r)
    if prevotes:
        return r.height, prevotes
    own = r.own.precommit
    if r.locked_block is not None or (own is not None and own.height == r.height
                                      and own.block_hash != NIL):
        return r.height, ()  # a decision at our height may exist: never answer below it
    return r.committed_height, last_commit(r)


def on_read_query(r: Replica, fx: EffectsBuilder, sender: NodeId, query: ReadQuery,
                  signature: bytes) -> None:
    height, proof = quorum_backed(r)
    fx.send.append(Send(sender, ReadAnswer(query.nonce, height, proof)))


def on_read_answer(r: Replica, fx: EffectsBuilder, sender: NodeId, answer: ReadAnswer,
                   signature: bytes) -> None:
    r.read_barrier.on_answer(fx, sender, answer, r.committed_height,
                             lambda: answer_problem(r, answer))


def answer_problem(r: Replica, answer: ReadAnswer) -> ProofProblem:
    """Why `answer.proof` is neither a polka nor a commit at `answer.height`, or None."""
    proof, height = answer.proof, answer.height
    first = first_message(proof)
    if not isinstance(first, Vote):
        return not_a_certificate(proof, "a polka or a commit")
    if first.block_hash == NIL:
        return RejectReason.MALFORMED, "votes for nil back no block"
    if check_vote_quorum(r.config, first.step, height, first.block_hash, proof):
        return None

    def matches(signed: SignedMessage) -> bool:
        vote = signed.message
        return isinstance(vote, Vote) and vote.validator == signed.sender and \
            (vote.height, vote.round, vote.step, vote.block_hash) == \
            (height, first.round, first.step, first.block_hash)

    problem = proof_problem(r.config, proof, matches,
                            lambda signers: r.power(signers) >= r.quorum)
    return problem or (RejectReason.MALFORMED, "the vote check refused the proof")
