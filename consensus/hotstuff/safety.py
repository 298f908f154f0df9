"""Safety rules: the only code that decides whether this replica signs a vote or a timeout.

Theory of operation
-------------------
The Diem "Safety Rules" specification separates the few lines that keep a validator from
forking the chain from everything else (networking, block tree, pacemaker), so that only
they need to be trusted. This module is that core for Jolteon's 2-chain protocol, with the
rules of DiemBFT v4 §4 (Algorithm "Safety") and Jolteon §3, written as pure functions of
the durable `SafetyData`:

  safe_to_vote(B)    B.round > max(last_voted_round, B.qc.round), and either
                     B.round = B.qc.round + 1 (consecutive), or B carries TC(B.round - 1)
                     and B.qc.round >= max(high QC rounds in the TC) (safe to extend);
  safe_to_timeout(r) qc.round >= preferred_round (the highest 1-chain it voted on: the
                     'lock' of the 2-chain protocol), r > max(last_voted_round - 1,
                     qc.round), and r = qc.round + 1 or r = tc.round + 1.
A vote raises last_voted_round to B.round and preferred_round to B.qc.round; a timeout
raises last_voted_round (no vote may follow a timeout in one round) and
highest_timeout_round. Signing twice at one round returns the very same message (the
double-sign guard then hands back the stored signature); anything else is refused.

The caller (the engine) persists the returned `SafetyData` in the same Effects before the
signed message is sent, so after any crash the replica restarts with data at least as new
as every signature that left (persist-before-send). Certificates handed in here are
already checked by certificates.py: the rules only reason about rounds.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from consensus import canonical
from consensus.hotstuff.messages import Timeout, Vote
from consensus.types import NodeId


@canonical.register("hotstuff.safety_data.v1")
@dataclass(frozen=True, slots=True)
class SafetyData:
    last_voted_round: int = 0  # highest round voted or timed out in: never vote below
    preferred_round: int = 0  # highest QC round voted on (1-chain); timeouts carry >= it
    highest_timeout_round: int = 0
    last_vote: Vote | None = None  # re-sent unchanged, never replaced in its round
    last_timeout: Timeout | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str


@dataclass(frozen=True, slots=True)
class VoteRequest:
    """What the rules need to know about a (checked) proposal."""
    round: int
    height: int
    block_hash: bytes
    qc_round: int
    qc_hash: bytes
    tc_round: int | None = None  # the proposal's TC of round - 1, if it carries one
    tc_high_qc_round: int = 0


def decide_vote(data: SafetyData, me: NodeId,
                request: VoteRequest) -> tuple[SafetyData, Vote] | Refusal:
    vote = Vote(request.round, request.height, request.block_hash, request.qc_round,
                request.qc_hash, me)
    if data.last_vote == vote:
        return data, vote  # the same bytes again (a restart, a repeated proposal)
    if request.round <= max(data.last_voted_round, request.qc_round):
        return Refusal(f"round {request.round} not above last voted round "
                       f"{data.last_voted_round} and QC round {request.qc_round}")
    consecutive = request.round == request.qc_round + 1
    safe_to_extend = (request.tc_round is not None and request.round == request.tc_round + 1
                      and request.qc_round >= request.tc_high_qc_round)
    if not (consecutive or safe_to_extend):
        return Refusal(f"round {request.round} neither follows its QC round "
                       f"{request.qc_round} nor extends a TC's highest QC")
    updated = dataclasses.replace(
        data, last_voted_round=request.round,
        preferred_round=max(data.preferred_round, request.qc_round), last_vote=vote)
    return updated, vote


def decide_timeout(data: SafetyData, me: NodeId, round_number: int, high_qc_round: int,
                   tc_round: int) -> tuple[SafetyData, Timeout] | Refusal:
    """`tc_round` is the round of the highest TC known (0 for none)."""
    if data.last_timeout is not None and data.last_timeout.round == round_number:
        return data, data.last_timeout  # retransmission: the same bytes, never new ones
    if high_qc_round < data.preferred_round:
        return Refusal(f"high QC round {high_qc_round} below preferred round "
                       f"{data.preferred_round}")
    if round_number <= max(data.last_voted_round - 1, high_qc_round) \
            or round_number <= data.highest_timeout_round:
        return Refusal(f"round {round_number} already left (last voted "
                       f"{data.last_voted_round}, timed out {data.highest_timeout_round})")
    if round_number not in (high_qc_round + 1, tc_round + 1):
        return Refusal(f"round {round_number} follows neither QC round {high_qc_round} "
                       f"nor TC round {tc_round}")
    timeout = Timeout(round_number, high_qc_round, me)
    updated = dataclasses.replace(
        data, last_voted_round=max(data.last_voted_round, round_number),
        highest_timeout_round=round_number, last_timeout=timeout)
    return updated, timeout
