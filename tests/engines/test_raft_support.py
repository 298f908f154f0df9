"""Small fixtures for the Raft rule tests: engines, an HMAC verifier, signed receives."""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from consensus.api import Effects, EngineConfig, Receive, Tick
from consensus.raft import RaftEngine
from consensus.raft.messages import AppendEntries, AppendEntriesResponse, Entry, RequestVoteResponse
from consensus.types import GENESIS_HASH, Validator, ValidatorSet, make_block, signing_bytes

CHAIN = "raft-test"


class HmacVerifier:
    """Signature stand-in: HMAC-SHA256 keyed by the node id."""

    def verify(self, sender: int, message: object, signature: bytes) -> bool:
        return hmac.compare_digest(sign(sender, message), signature)


def sign(sender: int, message: object) -> bytes:
    key = hashlib.sha256(b"key" + bytes([sender])).digest()
    return hmac.new(key, signing_bytes(CHAIN, message), hashlib.sha256).digest()


def config(node: int = 0, nodes: int = 3, **overrides) -> EngineConfig:
    validators = ValidatorSet(tuple(Validator(i, bytes([i]) * 32) for i in range(nodes)))
    base = EngineConfig(node_id=node, validators=validators, chain_id=CHAIN,
                        verifier=HmacVerifier(), seed=7, election_timeout_ticks=10,
                        heartbeat_ticks=2)
    return replace(base, **overrides)


def engine(node: int = 0, nodes: int = 3, **overrides) -> RaftEngine:
    return RaftEngine(config(node, nodes, **overrides))


def recv(eng: RaftEngine, sender: int, message: object) -> Effects:
    return eng.step(Receive(sender, message, sign(sender, message)))


def tick_until_sends(eng: RaftEngine, limit: int = 100) -> Effects:
    for _ in range(limit):
        fx = eng.step(Tick())
        if fx.send:
            return fx
    raise AssertionError("no timeout")


def block(height: int, parent: bytes = GENESIS_HASH, txs=(), proposer: int = 1):
    return make_block(CHAIN, height, parent, txs, proposer, 1000 + height)


def chain(terms: list[int], proposer: int = 1) -> tuple[Entry, ...]:
    """Entries 1..len(terms) with the given terms, blocks linked by parent hash."""
    entries, parent = [], GENESIS_HASH
    for index, term in enumerate(terms, start=1):
        b = block(index, parent, (f"tx{index}-{term}".encode(),), proposer)
        entries.append(Entry(term, index, b))
        parent = b.block_hash
    return tuple(entries)


def elect(eng: RaftEngine) -> Effects:
    """Drive `eng` through pre-vote and vote to leadership; returns the leader's Effects."""
    tick_until_sends(eng)
    for voter in eng.peers[:eng.quorum - 1]:
        recv(eng, voter, RequestVoteResponse(eng.term + 1, voter, True, pre_vote=True))
    fx = Effects()
    for voter in eng.peers[:eng.quorum - 1]:
        fx = recv(eng, voter, RequestVoteResponse(eng.term, voter, True))
    assert eng.role == "leader"
    return fx


def ack(eng: RaftEngine, follower: int, match: int, context: int = 0) -> Effects:
    """A follower holding the leader's log up to `match` acknowledges it, vouching for
    the hashes from the leader's commit index (as a real follower does)."""
    start = min(eng.commit_index, match)
    hashes = tuple(eng.log.hash_at(i) for i in range(start + 1, match + 1))
    return recv(eng, follower, AppendEntriesResponse(
        eng.term, follower, True, match, read_context=context,
        match_term=eng.log.term_at(match) or 0, match_hashes=hashes,
        commit_index=min(eng.commit_index, match)))


def hashes_of(entries: tuple[Entry, ...], upto: int | None = None) -> tuple[bytes, ...]:
    """Block hashes of entries 1..upto (a leader's `commit_hashes` from index 1)."""
    return tuple(e.block.block_hash for e in entries if upto is None or e.index <= upto)


def sends_of(fx: Effects, kind: type) -> list:
    return [(s.to, s.message) for s in fx.send if isinstance(s.message, kind)]


def append(term: int, leader: int, prev: int, prev_term: int, entries=(), commit: int = 0,
           context: int = 0, hashes: tuple[bytes, ...] = ()) -> AppendEntries:
    return AppendEntries(term, leader, prev, prev_term, tuple(entries), commit, context,
                         hashes)
