"""The block tree and the 2-chain commit rule (Jolteon §3; DiemBFT v4 §4 'Block-Tree').

Theory of operation
-------------------
Every QC a replica learns - formed from votes, carried by a proposal, or by a NEW-VIEW -
goes through `observe_qc`: it may raise the high QC (which the next proposal extends and
every timeout carries), and when it certifies a block whose parent was certified in the
round just before, that parent and all its uncommitted ancestors are final (the 2-chain
rule). They are handed to the driver as `Commit`s in height order, each exactly once,
each with a certificate a third party can check alone (certificates.py).

A replica may learn of a commit before it holds the blocks (it missed proposals, or it
restarted and lost its in-memory tree). It then asks for them with `CatchUp`: committed
blocks come from peers' ledgers with their certificates, the driver checks them with
`check_certificate`, and `Synced` moves the committed tip (recovery.py). Uncommitted
blocks are never fetched: a replica needs none of them to vote, since a vote depends only
on the proposal's QC and TC and on its own safety data.

Memory stays bounded: at each commit everything at or below the new tip is dropped, and
the tree refuses blocks beyond BLOCKS_MAX.
"""
from __future__ import annotations

from consensus import api
from consensus.api import CatchUp, EffectsBuilder, Persist
from consensus.hotstuff.certificates import commit_certificate
from consensus.hotstuff.messages import QuorumCertificate
from consensus.hotstuff.state import FINAL_TXS_MAX, KEY_HIGH_QC, Replica, tx_key
from consensus.types import Block, NodeId


class SafetyViolation(AssertionError):
    """Two conflicting blocks final at one height: more than f byzantine, or a bug."""


def observe_qc(r: Replica, fx: EffectsBuilder, qc: QuorumCertificate,
               source: NodeId | None = None) -> None:
    """Learn a checked QC: high QC, QC store, and the 2-chain commit rule."""
    if qc.height > r.committed_height and qc.block_hash not in r.qcs:
        r.qcs[qc.block_hash] = qc
    if qc.round > r.high_qc.round:
        r.high_qc = qc
        fx.persist.append(Persist(KEY_HIGH_QC, qc))
    if qc.commits_parent() and (r.commit_qc is None or qc.round > r.commit_qc.round):
        r.commit_qc, r.commit_source = qc, source
    try_commit(r, fx)


def remember_block(r: Replica, fx: EffectsBuilder, block: Block,
                   justify: QuorumCertificate) -> None:
    r.blocks[block.block_hash] = block
    r.justify[block.block_hash] = justify
    if justify.height > r.committed_height:
        r.qcs.setdefault(justify.block_hash, justify)
    if block.txs:
        r.tx_height = max(r.tx_height, block.height)
    r.last_timestamp_ms = max(r.last_timestamp_ms, block.header.timestamp_ms)
    try_commit(r, fx)


def try_commit(r: Replica, fx: EffectsBuilder) -> None:
    """Commit the best commit QC's parent and its uncommitted ancestors, oldest first.
    A block or linking QC still missing is usually only late (proposals and votes race
    each other to the next leader); retrieval.on_tick_commit fetches it if it stays so."""
    qc = r.commit_qc
    if qc is None or qc.height - 1 <= r.committed_height:
        return
    chain: list[Block] = []
    block_hash = qc.parent_hash
    for _ in range(qc.height - 1 - r.committed_height):
        block = r.blocks.get(block_hash)
        if block is None:
            return
        chain.append(block)
        block_hash = block.header.parent_hash
    if block_hash != r.committed_hash:
        raise SafetyViolation(f"block {qc.parent_hash.hex()[:12]} at {qc.height - 1} is final "
                              f"but does not extend committed block {r.committed_height}")
    chain.reverse()
    links = [r.qcs.get(block.block_hash) for block in chain[1:]]
    if any(link is None for link in links):
        return
    for index, block in enumerate(chain):
        certificate = commit_certificate(block, [*links[index:], qc])  # type: ignore[list-item]
        fx.commit.append(api.Commit(block, certificate))
    mark_committed(r, chain[-1].height, chain[-1].block_hash)
    remember_final(r, chain)


def remember_final(r: Replica, chain: list[Block]) -> None:
    """None of these final blocks' transactions may be proposed again (voting.vouch):
    remember them, bounded; our own batches' final transactions need no resending."""
    for block in chain:
        for tx in block.txs:
            r.final_txs[tx_key(tx)] = block.height
    while len(r.final_txs) > FINAL_TXS_MAX:
        oldest = next(iter(r.final_txs))
        r.final_from = max(r.final_from, r.final_txs.pop(oldest) + 1)
    final = {tx for block in chain for tx in block.txs}
    if final and r.offered:
        kept = ((sent, tuple(tx for tx in txs if tx not in final), absent)
                for sent, txs, absent in r.offered)
        r.offered = [item for item in kept if item[1]]


def mark_committed(r: Replica, height: int, block_hash: bytes) -> None:
    """Move the committed tip and drop everything at or below it."""
    r.committed_height, r.committed_hash = height, block_hash
    r.commit_wait_ticks = 0
    for key in [k for k, block in r.blocks.items() if block.height <= height]:
        del r.blocks[key]
    for key in [k for k in r.justify if k not in r.blocks]:
        del r.justify[key]
    for key in [k for k, qc in r.qcs.items() if qc.height <= height]:
        del r.qcs[key]


def request_catch_up(r: Replica, fx: EffectsBuilder, target: int, qc: QuorumCertificate,
                     source: NodeId | None) -> None:
    """Fetch committed blocks up to `target`, at most one request in flight. The QC's
    voters and whoever showed us the QC are the replicas most likely to have them."""
    if target <= r.committed_height:
        return
    peers = {s.sender for s in qc.votes} | ({source} if source is not None else set())
    peers.discard(r.me)
    if target <= r.catch_up_target and r.catch_up_wait_ticks > 0:
        r.catch_up_peers = tuple(sorted(set(r.catch_up_peers) | peers))
        return
    r.catch_up_target = max(r.catch_up_target, target)
    r.catch_up_peers = tuple(sorted(peers)) or tuple(
        n for n in r.config.validators.node_ids if n != r.me)
    r.catch_up_wait_ticks = max(1, r.config.view_timeout_ticks // 4)
    fx.catch_up.append(CatchUp(r.catch_up_target, r.catch_up_peers))


def chain_txs(r: Replica, block_hash: bytes) -> set[bytes] | None:
    """The transactions of `block_hash` and its uncommitted ancestors - the chain a new
    block extending it would commit with it - or None when a block of it is missing here
    (then this replica cannot tell what it may propose)."""
    txs: set[bytes] = set()
    for _ in range(len(r.blocks) + 1):
        if block_hash == r.committed_hash:
            return txs
        block = r.blocks.get(block_hash)
        if block is None:
            return None
        txs.update(block.txs)
        block_hash = block.header.parent_hash
    return None


def announced_height(r: Replica) -> int:
    """The committed height every replica holding the high QC's block knows of: what the
    QC inside that block's proposal made final. -1 when this replica cannot tell."""
    if r.high_qc.block_hash == r.committed_hash:
        return r.committed_height
    justify = r.justify.get(r.high_qc.block_hash)
    return justify.commits_height() if justify is not None else -1
