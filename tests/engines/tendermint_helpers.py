"""Shared builders for the Tendermint rule tests: n = 4, f = 1, quorum 3, HMAC signatures.

Equal powers give round-robin proposers: proposer(h, r) = (h - 1 + r) mod 4, so at
height 1 rounds 0, 1, 2, 3 are proposed by validators 0, 1, 2, 3. The validator under
test is 3 unless a test says otherwise.
"""
from __future__ import annotations

import hashlib
import hmac

from consensus import api
from consensus.api import EngineConfig, Receive, Restore, Tick, create_engine
from consensus.tendermint import TendermintEngine
from consensus.tendermint.messages import NIL, Proposal, Vote, VoteStep
from consensus.tendermint.state import KEY_STATE, DurableState, Step
from consensus.types import (
    EMPTY_ROOT,
    GENESIS_HASH,
    Block,
    SignedMessage,
    Validator,
    ValidatorSet,
    make_block,
    signing_bytes,
)

CHAIN = "test-chain"
NODES = 4
ME = 3
TIMEOUTS = {"timeout_propose_ticks": 5, "timeout_propose_delta_ticks": 2,
            "timeout_prevote_ticks": 3, "timeout_prevote_delta_ticks": 1,
            "timeout_precommit_ticks": 3, "timeout_precommit_delta_ticks": 1,
            "timeout_commit_ticks": 2, "heartbeat_ticks": 1_000}


class HmacVerifier:
    def verify(self, sender: int, message: object, signature: bytes) -> bool:
        return 0 <= sender < NODES and hmac.compare_digest(sign(sender, message), signature)


def sign(sender: int, message: object) -> bytes:
    return hmac.new(bytes([sender]) * 32, signing_bytes(CHAIN, message), hashlib.sha256).digest()


def signed(sender: int, message: object) -> SignedMessage:
    return SignedMessage(sender, message, sign(sender, message))


def config(node: int = ME, **overrides: object) -> EngineConfig:
    validators = ValidatorSet(tuple(Validator(i, bytes([i])) for i in range(NODES)))
    base: dict[str, object] = {"node_id": node, "validators": validators, "chain_id": CHAIN,
                               "verifier": HmacVerifier(), **TIMEOUTS}
    base.update(overrides)
    return EngineConfig(**base)  # type: ignore[arg-type]


def engine(node: int = ME, **overrides: object) -> TendermintEngine:
    made = create_engine("tendermint", config(node, **overrides))
    assert isinstance(made, TendermintEngine)
    return made


def started(node: int = ME, **overrides: object) -> TendermintEngine:
    eng = engine(node, **overrides)
    eng.step(Restore())
    return eng


def receive(eng: TendermintEngine, sender: int, message: object) -> api.Effects:
    return eng.step(Receive(sender, message, sign(sender, message)))


def ticks(eng: TendermintEngine, count: int) -> list[api.Effects]:
    return [eng.step(Tick()) for _ in range(count)]


def block_at(height: int = 1, proposer: int = 0, txs: tuple[bytes, ...] = (b"tx",),
             parent: bytes = GENESIS_HASH) -> Block:
    return make_block(CHAIN, height, parent, txs, proposer, 1_000, height - 1, EMPTY_ROOT)


def proposal(block: Block, round_number: int = 0, pol_round: int = -1,
             proposer: int | None = None, height: int = 1) -> Proposal:
    who = (height - 1 + round_number) % NODES if proposer is None else proposer
    return Proposal(height, round_number, block, pol_round, who, ())


def prevote(voter: int, block_hash: bytes, round_number: int = 0, height: int = 1) -> Vote:
    return Vote(height, round_number, VoteStep.PREVOTE, block_hash, voter)


def precommit(voter: int, block_hash: bytes, round_number: int = 0, height: int = 1) -> Vote:
    return Vote(height, round_number, VoteStep.PRECOMMIT, block_hash, voter)


def state(round_number: int, step: Step, locked: tuple[int, Block | None] = (-1, None),
          valid: tuple[int, Block | None] = (-1, None), height: int = 1) -> api.Persist:
    return api.Persist(KEY_STATE, DurableState(height, round_number, step, locked[0], locked[1],
                                               valid[0], valid[1]))


__all__ = ["NIL"]
