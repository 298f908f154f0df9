"""Weighted round-robin proposer selection: CometBFT's proposer-priority algorithm
(`types/validator_set.go`, IncrementProposerPriority), which Algorithm 1 leaves open
("proposer(h, r) is a deterministic function", Buchman et al. 2018 §3).

Theory of operation
-------------------
Every validator holds a priority. One increment: (1) if the spread of priorities exceeds
PRIORITY_WINDOW_FACTOR x total power, divide every priority by ceil(spread / window)
(Go's truncating division); (2) subtract the average priority (floor division, as Go's
big.Int Div); (3) add each validator's power to its priority; (4) the validator with the
highest priority proposes - ties go to the smaller node id, as CometBFT's to the smaller
address - and pays the total power back. Over total-power increments each validator
proposes in proportion to its power; equal powers give plain round-robin 0, 1, ..., n-1.

Which increment picks proposer(h, r): priorities start at 0 and the proposer of (h, r) is
the one picked by increment number (h - 1) + r + 1. CometBFT carries the priorities of
height h into h + 1 with one increment and copies them for round r with r more; with a
fixed validator set that is the same count. (CometBFT applies several round increments
after one rescale; we rescale before every increment so that the answer depends on the
count alone, never on which rounds a node happened to pass through.)

Pure and deterministic: every node computes the same schedule from the validator set.
Checkpoints every CHECKPOINT_INCREMENTS keep a look-up at any (h, r) cheap; at most
CHECKPOINTS_MAX of them are kept.
"""
from __future__ import annotations

from consensus.types import NodeId, ValidatorSet

PRIORITY_WINDOW_FACTOR = 2  # CometBFT PriorityWindowSizeFactor
CHECKPOINT_INCREMENTS = 256
CHECKPOINTS_MAX = 4_096


def increment(powers: tuple[int, ...], priorities: list[int]) -> NodeId:
    """One CometBFT increment, in place; returns the proposer it picks."""
    total = sum(powers)
    window = PRIORITY_WINDOW_FACTOR * total
    spread = max(priorities) - min(priorities)
    if spread > window:
        ratio = -(-spread // window)
        priorities[:] = [_go_div(p, ratio) for p in priorities]
    average = sum(priorities) // len(priorities)
    for index, power in enumerate(powers):
        priorities[index] += power - average
    best = max(range(len(powers)), key=lambda i: (priorities[i], -i))
    priorities[best] -= total
    return best


def _go_div(value: int, divisor: int) -> int:
    """Go's int64 division truncates towards zero."""
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient


class ProposerSchedule:
    def __init__(self, validators: ValidatorSet) -> None:
        self.powers = tuple(v.power for v in validators.validators)
        if not self.powers or min(self.powers) < 1:
            raise ValueError("every validator needs a positive voting power")
        self._checkpoints: dict[int, tuple[int, ...]] = {0: (0,) * len(self.powers)}
        self._cache: dict[int, NodeId] = {}

    def proposer(self, height: int, round_number: int) -> NodeId:
        return self.picked_by((height - 1) + round_number + 1)

    def picked_by(self, count: int) -> NodeId:
        """The proposer picked by increment number `count` (1-based)."""
        if len(set(self.powers)) == 1:
            return (count - 1) % len(self.powers)  # what the increments give (tested)
        hit = self._cache.get(count)
        if hit is not None:
            return hit
        base = (count - 1) // CHECKPOINT_INCREMENTS * CHECKPOINT_INCREMENTS
        start = max(k for k in self._checkpoints if k <= base) if base not in \
            self._checkpoints else base
        priorities = list(self._checkpoints[start])
        picked = 0
        for done in range(start + 1, count + 1):
            picked = increment(self.powers, priorities)
            if done % CHECKPOINT_INCREMENTS == 0 and len(self._checkpoints) < CHECKPOINTS_MAX:
                self._checkpoints[done] = tuple(priorities)
        if len(self._cache) >= CHECKPOINT_INCREMENTS:
            self._cache.clear()
        self._cache[count] = picked
        return picked
