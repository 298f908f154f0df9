"""`raft.leader` commit certificates that bind the block (thesis §3.6.2, §3.8; trust model
of §3.1; issue 11).

Theory of operation: Raft tolerates crashes, not lies, so a certificate has to prove,
with signatures anyone can check, that *this block* was committed at its height - not
only that the height was. Every signature a certificate counts therefore covers the block
hash at that height:

* leader form - signed AppendEntriesResponses of one term T from at least
  `cft_quorum(n) - 1` distinct followers, each successful with match_term == T and
  naming, in `match_hashes`, the hash of the entry at `height`. Each follower vouches
  for the entries ending at its match_index, and its match entry is of term T: with the
  leader of T these are a majority storing that entry, which is therefore committed
  (§3.6.2), and so is everything before it - including `height`, whose hash each of them
  signed. A follower vouches from the commit index the request named, so one ack per
  follower covers every height the leader may still have to certify (a lost ack leaves
  no gap).
* follower form - one vote: the leader's signed AppendEntries whose `commit_hashes` name
  the hash at `height` among the heights it announces committed (leader_commit and the
  ones below it the follower had not confirmed). If that message also carries the entry
  at `height`, the entry's block must be this block too.

A certificate naming another hash, a block whose hash no counted signature names, or a
signature that does not verify is refused; `qenex_node/core/sync.py` relies on this to
trust no peer during catch-up.
"""
from __future__ import annotations

from consensus.api import EngineConfig
from consensus.raft.messages import AppendEntries, AppendEntriesResponse, Entry
from consensus.types import HASH_BYTES, Block, Certificate, SignedMessage, cft_quorum

KIND = "raft.leader"


def hashes_max(config: EngineConfig) -> int:
    """Most block hashes one append or ack may name: acks vouch for up to two windows
    (the uncommitted tail plus one no-op), appends for one window."""
    return 2 * config.log_window_blocks + 1


def hashes_well_formed(config: EngineConfig, hashes: tuple[bytes, ...]) -> bool:
    return len(hashes) <= hashes_max(config) and all(len(h) == HASH_BYTES for h in hashes)


def leader_certificate(entry: Entry, acks: dict[int, SignedMessage],
                       needed: int) -> tuple[SignedMessage, ...]:
    assert entry.block is not None
    votes = [acks[p] for p in sorted(acks)
             if acks[p].message.match_hash_at(entry.index) == entry.block.block_hash]
    if len(votes) < needed:
        raise AssertionError(f"raft: committed {entry.index} without {needed} acks naming "
                             f"its block")
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
    if msg.leader != vote.sender or msg.commit_hash_at(block.height) != block.block_hash:
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
        if msg.match_term != msg.term or msg.match_hash_at(block.height) != block.block_hash:
            return False
        if not config.verifier.verify(vote.sender, msg, vote.signature):
            return False
        seen.add(vote.sender)
        terms.add(msg.term)
    return len(terms) <= 1 and len(seen) >= needed
