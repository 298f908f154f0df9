"""Shared builders for the HotStuff rule tests: n = 4, f = 1, quorum 3, HMAC signatures.

Leader of round r is r mod 4, so round 1 is led by replica 1, round 2 by replica 2, ...;
votes of round r go to the leader of round r + 1.
"""
from __future__ import annotations

import hashlib
import hmac

from consensus import api
from consensus.api import EngineConfig, Receive, create_engine
from consensus.hotstuff import HotStuffEngine
from consensus.hotstuff.messages import (
    GENESIS_QC,
    NewView,
    Proposal,
    QuorumCertificate,
    Timeout,
    TimeoutCertificate,
    Vote,
)
from consensus.types import (
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


class HmacVerifier:
    def verify(self, sender: int, message: object, signature: bytes) -> bool:
        return 0 <= sender < NODES and hmac.compare_digest(sign(sender, message), signature)


def sign(sender: int, message: object) -> bytes:
    return hmac.new(bytes([sender]) * 32, signing_bytes(CHAIN, message), hashlib.sha256).digest()


def signed(sender: int, message: object) -> SignedMessage:
    return SignedMessage(sender, message, sign(sender, message))


def config(node: int, **overrides: object) -> EngineConfig:
    validators = ValidatorSet(tuple(Validator(i, bytes([i])) for i in range(NODES)))
    base: dict[str, object] = {"node_id": node, "validators": validators, "chain_id": CHAIN,
                               "verifier": HmacVerifier(), "view_timeout_ticks": 10}
    base.update(overrides)
    return EngineConfig(**base)  # type: ignore[arg-type]


def engine(node: int, **overrides: object) -> HotStuffEngine:
    made = create_engine("hotstuff", config(node, **overrides))
    assert isinstance(made, HotStuffEngine)
    return made


def receive(eng: HotStuffEngine, sender: int, message: object) -> api.Effects:
    return eng.step(Receive(sender, message, sign(sender, message)))


def block_at(height: int, parent: bytes, proposer: int, txs: tuple[bytes, ...] = (b"tx",),
             timestamp_ms: int = 1_000) -> Block:
    return make_block(CHAIN, height, parent, txs, proposer, timestamp_ms)


def qc_for(round_number: int, block: Block, parent_round: int, voters: tuple[int, ...] = (0, 1, 2)
           ) -> QuorumCertificate:
    parent = block.header.parent_hash
    votes = tuple(signed(v, Vote(round_number, block.height, block.block_hash, parent_round,
                                 parent, v)) for v in sorted(voters))
    return QuorumCertificate(round_number, block.height, block.block_hash, parent_round,
                             parent, votes)


def tc_for(round_number: int, high_qc_rounds: dict[int, int]) -> TimeoutCertificate:
    return TimeoutCertificate(round_number, tuple(
        signed(s, Timeout(round_number, high_qc_rounds[s], s)) for s in sorted(high_qc_rounds)))


def timeout_view(sender: int, round_number: int, high_qc: QuorumCertificate = GENESIS_QC,
                 tc: TimeoutCertificate | None = None) -> NewView:
    return NewView(signed(sender, Timeout(round_number, high_qc.round, sender)), high_qc, tc)


class Chain:
    """B1 (round 1) <- B2 (round 2) <- B3 (round 3), each led by its round's leader."""

    def __init__(self, txs: tuple[bytes, ...] = (b"tx",)) -> None:
        self.b1 = block_at(1, GENESIS_HASH, 1, txs)
        self.qc1 = qc_for(1, self.b1, 0)
        self.b2 = block_at(2, self.b1.block_hash, 2, ())
        self.qc2 = qc_for(2, self.b2, 1)
        self.b3 = block_at(3, self.b2.block_hash, 3, ())
        self.qc3 = qc_for(3, self.b3, 2)
        self.p1 = Proposal(1, self.b1, GENESIS_QC, None)
        self.p2 = Proposal(2, self.b2, self.qc1, None)
        self.p3 = Proposal(3, self.b3, self.qc2, None)
