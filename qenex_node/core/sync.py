"""Catch-up (block sync), shared by the daemon and the simulator.

A node that is behind asks a peer for committed blocks with their certificates. It trusts
no peer: each block must extend the chain it already has (height and parent hash), carry
a tx root that matches its transactions, and come with a certificate that the engine's own
rule (`Engine.check_certificate`) accepts. The first block that fails ends the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus import canonical
from consensus.api import EngineConfig
from consensus.types import GENESIS_HASH, Block, Certificate

SYNC_BLOCKS_MAX = 64  # per response: bounds the message size and the work per request


@canonical.register("sync.committed_block.v1")
@dataclass(frozen=True, slots=True)
class CommittedBlock:
    block: Block
    certificate: Certificate
    state_root: bytes  # the server's root after applying it; checked against our own


@canonical.register("sync.request.v1")
@dataclass(frozen=True, slots=True)
class SyncRequest:
    from_height: int
    max_blocks: int
    requester: int


@canonical.register("sync.response.v1")
@dataclass(frozen=True, slots=True)
class SyncResponse:
    blocks: tuple[CommittedBlock, ...]
    tip_height: int
    responder: int


def blocks_to_serve(request: SyncRequest) -> int:
    """How many blocks one answer carries: what was asked, never past SYNC_BLOCKS_MAX."""
    return max(0, min(request.max_blocks, SYNC_BLOCKS_MAX))


def serve_sync(request: SyncRequest, chain: list[CommittedBlock], responder: int) -> SyncResponse:
    """Answer from `chain` (index 0 holds height 1)."""
    count = blocks_to_serve(request)
    start = max(request.from_height, 1) - 1
    return SyncResponse(tuple(chain[start:start + count]), len(chain), responder)


def accept_synced_blocks(engine_cls: type, config: EngineConfig, height: int,
                         block_hash: bytes, response: SyncResponse) -> list[CommittedBlock]:
    """The prefix of `response.blocks` that safely extends (height, block_hash)."""
    accepted: list[CommittedBlock] = []
    for item in response.blocks:
        block = item.block
        expected_parent = block_hash if height else GENESIS_HASH
        if block.height != height + 1 or block.header.parent_hash != expected_parent:
            break
        if block.header.chain_id != config.chain_id or not block.tx_root_matches():
            break
        if item.certificate.block_hash != block.block_hash:
            break
        if not engine_cls.check_certificate(config, block, item.certificate):
            break
        accepted.append(item)
        height, block_hash = block.height, block.block_hash
    return accepted


@canonical.register("tx.batch.v1")
@dataclass(frozen=True, slots=True)
class TransactionBatch:
    """Admitted transactions a node forwards to the node it believes will propose them."""
    txs: tuple[bytes, ...]
    origin: int
