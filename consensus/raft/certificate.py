"""`raft.leader` commit certificates (thesis §3.6.2, §3.8; trust model of §3.1).

Theory of operation: Raft tolerates crashes, not lies, so a certificate only has to prove,
with signatures anyone can check, that the block's height was committed. Two forms:

* leader form - votes are signed AppendEntriesResponses of one term T from at least
  `cft_quorum(n) - 1` distinct followers, each successful with match_index >= height and
  match_term == T. The entry at the smallest such match_index is of term T and stored on
  those followers and the leader of T (a majority): it is committed (§3.6.2), and so is
  every entry before it, including `height`.
* follower form - one vote: the leader's signed AppendEntries with leader_commit >=
  height. An honest leader only announces committed indices. If that message carries the
  entry at `height`, its block hash must match too.

Within one term the leader's log is append-only, so by Log Matching every honest node
holds the same block at `height`; the certificate names its hash and height and the
checker requires the block to have that hash, height, chain and tx root.
"""
from __future__ import annotations

from consensus.api import EngineConfig
from consensus.raft.messages import AppendEntries, AppendEntriesResponse, Entry
from consensus.types import Block, Certificate, SignedMessage, cft_quorum

KIND = "raft.leader"


def leader_certificate(entry: Entry, acks: dict[int, SignedMessage],
                       needed: int) -> tuple[SignedMessage, ...]:
    votes = [acks[p] for p in sorted(acks) if acks[p].message.match_index >= entry.index]
    if len(votes) < needed:
        raise AssertionError(f"raft: committed {entry.index} without {needed} acks")
    return tuple(votes[:needed])


def check_certificate(config: EngineConfig, block: Block, certificate: Certificate) -> bool:
    if (certificate.kind != KIND or certificate.height != block.height
            or certificate.block_hash != block.block_hash
            or block.header.chain_id != config.chain_id or not block.tx_root_matches()):
        return False
    votes = certificate.votes
    if len(votes) == 1 and isinstance(votes[0].message, AppendEntries):
        return _check_follower_form(config, block, votes[0])
    return _check_leader_form(config, block, votes)


def _check_follower_form(config: EngineConfig, block: Block, vote: SignedMessage) -> bool:
    msg = vote.message
    if msg.leader != vote.sender or msg.leader_commit < block.height:
        return False
    for entry in msg.entries:
        if entry.index == block.height and (
                entry.block is None or entry.block.block_hash != block.block_hash):
            return False
    return (vote.sender in config.validators
            and config.verifier.verify(vote.sender, msg, vote.signature))


def _check_leader_form(config: EngineConfig, block: Block,
                       votes: tuple[SignedMessage, ...]) -> bool:
    needed = cft_quorum(config.validators.size) - 1
    seen: set[int] = set()
    terms: set[int] = set()
    for vote in votes:
        msg = vote.message
        if not isinstance(msg, AppendEntriesResponse) or not msg.success:
            return False
        if msg.follower != vote.sender or vote.sender in seen or \
                vote.sender not in config.validators:
            return False
        if msg.match_term != msg.term or msg.match_index < block.height:
            return False
        if not config.verifier.verify(vote.sender, msg, vote.signature):
            return False
        seen.add(vote.sender)
        terms.add(msg.term)
    return len(terms) <= 1 and len(seen) >= needed
