"""Block retrieval: fetching certified blocks that are not final yet (DiemBFT v4 §5
'sync up'; the Diem consensus specification's BlockRetrievalRequest).

Theory of operation
-------------------
Votes need no block history (safety.py), so a replica that missed a proposal keeps
voting; but to commit it needs every block from its committed tip up to the block a
commit QC makes final. `CatchUp` fetches only what peers have *committed*; on a lossy
network each replica may miss a different proposal, and then no one commits and no
ledger can serve the gap. So a replica whose commit waits for a missing block asks a peer
for it and its ancestors from that peer's block tree: BLOCK-REQUEST(hash, count), answered
with BLOCK-RESPONSE(blocks, the QC each block's proposal carried).

Nothing in a response is trusted: a block is kept only if this replica is waiting for
exactly that hash (the parent named by a block it holds, or by its commit QC), above its
committed height, with a valid tx root, and its QC must check. Answers are bounded
(BLOCKS_PER_RESPONSE_MAX blocks, about one batch of payload) and each peer is served at
most once per round, so requests cannot be used to make a replica flood the network.
"""
from __future__ import annotations

from consensus.api import EffectsBuilder, RejectReason, Send
from consensus.hotstuff.certificates import check_qc
from consensus.hotstuff.chain import remember_block, request_catch_up
from consensus.hotstuff.messages import BlockRequest, BlockResponse, QuorumCertificate
from consensus.hotstuff.state import Replica
from consensus.types import Block, NodeId

BLOCKS_PER_RESPONSE_MAX = 8


def on_tick_commit(r: Replica, fx: EffectsBuilder) -> None:
    """A commit that waits for missing blocks for a quarter round timeout: ask a peer's
    block tree for them (retrieval.py) and, in case others committed them, their ledgers."""
    qc = r.commit_qc
    if qc is None or qc.height - 1 <= r.committed_height:
        r.commit_wait_ticks = 0
        return
    r.commit_wait_ticks += 1
    if r.commit_wait_ticks >= max(1, r.config.view_timeout_ticks // 4):
        r.commit_wait_ticks = 0
        peers = sorted({s.sender for s in qc.votes} - {r.me})
        request_missing(r, fx, tuple(peers))
        request_catch_up(r, fx, qc.height - 1, qc, r.commit_source)


def missing_block(r: Replica) -> tuple[bytes, int] | None:
    """(hash, height) of the highest block the commit QC's chain lacks here."""
    qc = r.commit_qc
    if qc is None or qc.height - 1 <= r.committed_height:
        return None
    block_hash, height = qc.parent_hash, qc.height - 1
    while height > r.committed_height:
        block = r.blocks.get(block_hash)
        if block is None:
            return block_hash, height
        block_hash, height = block.header.parent_hash, height - 1
    return None


def request_missing(r: Replica, fx: EffectsBuilder, peers: tuple[NodeId, ...]) -> None:
    missing = missing_block(r)
    if missing is None or not peers:
        return
    block_hash, height = missing
    r.retrievals += 1
    peer = peers[r.retrievals % len(peers)]
    count = min(BLOCKS_PER_RESPONSE_MAX, height - r.committed_height)
    fx.send.append(Send(peer, BlockRequest(block_hash, count)))


def on_block_request(r: Replica, fx: EffectsBuilder, sender: NodeId, request: BlockRequest,
                     signature: bytes) -> None:
    if sender == r.me or r.served.get(sender, -1) >= r.round:
        fx.reject(RejectReason.OVER_LIMIT, sender, "one block request per round")
        return
    r.served[sender] = r.round
    blocks: list[Block] = []
    justifies: list[QuorumCertificate] = []
    block_hash, size = request.block_hash, 0
    while len(blocks) < min(request.count, BLOCKS_PER_RESPONSE_MAX):
        block, justify = r.blocks.get(block_hash), r.justify.get(block_hash)
        if block is None or justify is None:
            break
        if blocks and size + block.payload_bytes() > r.config.batch_bytes_max:
            break
        blocks.append(block)
        justifies.append(justify)
        size += block.payload_bytes()
        block_hash = block.header.parent_hash
    if blocks:
        fx.send.append(Send(sender, BlockResponse(tuple(blocks), tuple(justifies))))


def on_block_response(r: Replica, fx: EffectsBuilder, sender: NodeId,
                      response: BlockResponse, signature: bytes) -> None:
    for block, justify in zip(response.blocks, response.justifies):
        wanted = missing_block(r)
        if wanted is None or block.block_hash != wanted[0] or block.height != wanted[1]:
            return  # not what we wait for (answered already, or never asked)
        header = block.header
        if header.chain_id != r.config.chain_id or not block.tx_root_matches() \
                or justify.block_hash != header.parent_hash \
                or justify.height != block.height - 1 or check_qc(r.config, justify) is not None:
            fx.reject(RejectReason.INVALID_BLOCK, sender, "retrieved block or its QC invalid")
            return
        remember_block(r, fx, block, justify)
