"""Restart, ledger feedback and catch-up (DiemBFT v4 §4 'persistent storage'; the Diem
Safety Rules specification on what must survive a crash).

Theory of operation
-------------------
Safety rests on two durable facts per replica: it never votes or times out in a round at
or below `last_voted_round`, and a timeout never carries a QC below `preferred_round`.
Both live in SafetyData, written in the same Effects before every signed vote or timeout
(persist-before-send). On `Restore` the replica therefore resumes with data at least as
new as anything it signed:

* the round restarts at max(high QC round + 1, high TC round + 1, last voted round), so
  it neither votes again in a round it voted in nor forgets that it left one;
* the last vote, timeout and own proposal of that round are sent again, byte for byte
  (the double-sign guard returns the stored signature for identical bytes);
* the in-memory block tree is gone; committed blocks are in the ledger, and blocks that
  become final later are fetched with `CatchUp` when their commit QC shows up
  (chain.try_commit), as are those that a restored commit QC already names.

`Applied` tells the engine the state root new block headers should carry; `Synced` moves
the committed tip after a catch-up, after which waiting commits are tried again.
"""
from __future__ import annotations

from consensus.api import Applied, EffectsBuilder, Restore, Send, Synced
from consensus.hotstuff.chain import mark_committed, remember_final, request_catch_up, try_commit
from consensus.hotstuff.messages import Proposal, QuorumCertificate, TimeoutCertificate
from consensus.hotstuff.safety import SafetyData
from consensus.hotstuff.state import KEY_HIGH_QC, KEY_HIGH_TC, KEY_PROPOSAL, KEY_SAFETY, Replica
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Block


def on_restore(r: Replica, fx: EffectsBuilder, event: Restore) -> None:
    records = dict(event.records)
    safety = records.get(KEY_SAFETY)
    if isinstance(safety, SafetyData):
        r.safety = safety
    high_qc = records.get(KEY_HIGH_QC)
    if isinstance(high_qc, QuorumCertificate):
        r.high_qc = high_qc
    high_tc = records.get(KEY_HIGH_TC)
    if isinstance(high_tc, TimeoutCertificate):
        r.high_tc = high_tc
    proposal = records.get(KEY_PROPOSAL)
    if isinstance(proposal, Proposal):
        r.my_proposal = proposal
    r.committed_height = r.applied_height = event.committed_height
    r.committed_hash = event.committed_hash or GENESIS_HASH
    r.applied_root = event.state_root or EMPTY_ROOT
    r.final_from = r.committed_height + 1  # earlier blocks' transactions are not known here
    r.round = max(1, r.high_qc.round + 1, r.safety.last_voted_round,
                  r.high_tc.round + 1 if r.high_tc is not None else 0)
    if r.high_qc.commits_parent():
        r.commit_qc = r.high_qc  # blocks it makes final are fetched by on_tick_commit
    resend_round(r, fx)


def resend_round(r: Replica, fx: EffectsBuilder) -> None:
    """Re-send what this replica signed in its current round (lost if it crashed
    half-way through sending): the same messages, so never an equivocation."""
    proposal = r.my_proposal
    if proposal is not None and proposal.round == r.round:
        fx.send.append(Send(None, proposal))
    vote = r.safety.last_vote
    if vote is not None and vote.round == r.round:
        fx.send.append(Send(r.leader(vote.round + 1), vote))
    timeout = r.safety.last_timeout
    if timeout is not None and timeout.round == r.round:
        fx.send.append(Send(r.me, timeout))


def on_applied(r: Replica, fx: EffectsBuilder, event: Applied) -> None:
    if event.height >= r.applied_height:
        r.applied_height, r.applied_root = event.height, event.state_root


def on_synced(r: Replica, fx: EffectsBuilder, event: Synced) -> None:
    if event.height > r.committed_height:
        learn_synced_txs(r, event)
        mark_committed(r, event.height, event.block_hash)
    if event.height >= r.applied_height:
        r.applied_height, r.applied_root = event.height, event.state_root
    r.catch_up_wait_ticks = 0
    try_commit(r, fx)
    if r.committed_height < r.catch_up_target and not fx.catch_up:
        request_catch_up(r, fx, r.catch_up_target, r.commit_qc or r.high_qc, None)


def learn_synced_txs(r: Replica, event: Synced) -> None:
    """The fetched blocks' transactions never passed through this engine, but most of
    those blocks usually did (their proposals arrived, one was lost): walking back from
    the new tip, the blocks held here are final and their transactions are remembered.
    Below the highest block missing here, batches not known absent through it can no
    longer be checked (voting.vouch)."""
    chain: list[Block] = []
    block_hash, height = event.block_hash, event.height
    while height > r.committed_height and block_hash in r.blocks:
        block = r.blocks[block_hash]
        chain.append(block)
        block_hash, height = block.header.parent_hash, height - 1
    chain.reverse()
    remember_final(r, chain)
    if height > r.committed_height:
        r.final_from = max(r.final_from, height + 1)  # height itself is missing here


def on_tick_catch_up(r: Replica, fx: EffectsBuilder) -> None:
    """Retry an unanswered catch-up (the peer asked may itself be behind)."""
    if r.catch_up_wait_ticks <= 0:
        return
    r.catch_up_wait_ticks -= 1
    if r.catch_up_wait_ticks == 0 and r.committed_height < r.catch_up_target:
        request_catch_up(r, fx, r.catch_up_target, r.commit_qc or r.high_qc, None)
