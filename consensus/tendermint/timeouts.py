"""Timeouts in ticks (Buchman et al. 2018 §3 'timeoutPropose(r)' etc.; CometBFT's
`timeout_propose` + r x `timeout_propose_delta`, and `timeout_commit`).

Theory of operation
-------------------
Algorithm 1 is live after GST because every timeout grows with the round: eventually it
exceeds the message delay and a correct proposer's round succeeds (§4, Lemma 6). Each
step's timeout is base + round x delta, in the driver's ticks. `timeout_commit` is
CometBFT's pause after a decision: late precommits still arrive (the next proposer
carries them in `last_commit`) and the driver gets time to offer a batch. A timer names
its (height, round); Algorithm 1's handlers ignore a timer of a height or round left.
"""
from __future__ import annotations

from consensus.api import EngineConfig

PROPOSE = "propose"
PREVOTE = "prevote"
PRECOMMIT = "precommit"
COMMIT = "commit"


def timeout_ticks(config: EngineConfig, kind: str, round_number: int) -> int:
    """The length of timer `kind` in round `round_number` (commit: no growth)."""
    if kind == PROPOSE:
        base, delta = config.timeout_propose_ticks, config.timeout_propose_delta_ticks
    elif kind == PREVOTE:
        base, delta = config.timeout_prevote_ticks, config.timeout_prevote_delta_ticks
    elif kind == PRECOMMIT:
        base, delta = config.timeout_precommit_ticks, config.timeout_precommit_delta_ticks
    elif kind == COMMIT:
        return config.timeout_commit_ticks
    else:
        raise ValueError(f"no timer {kind!r}")
    return max(1, base + round_number * delta)
