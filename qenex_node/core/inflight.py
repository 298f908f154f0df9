"""Blocks in flight: proposed somewhere, not final yet. Their transactions stay out of
new batches, so nothing is ordered twice.

Why the core needs this: a proposer's mempool knows what it handed to its own engine,
not what other proposals carry. After a PBFT view change a block prepared in the old view
is carried into the new one and commits later; a new Raft leader commits its
predecessor's log tail; a restarted node's log still holds blocks that may commit. If a
transaction of such a block were offered again, it would be ordered twice.

How: every block that passes the core - in a peer's message, in the engine's own sends
and persisted records (a leader's log), in the records restored at start - is
remembered by height until that height is final. When a height commits, the other
proposals for it are dead and their transactions (those not committed) go back to
pending at once. Shapes are found generically: a `consensus.types.Block` field, or blocks
inside tuples and nested messages, down to `SCAN_DEPTH_MAX`.
"""
from __future__ import annotations

from consensus.types import Block
from qenex_node.core.app import tx_id

PENDING_HEIGHTS_MAX = 512  # uncommitted heights whose proposed blocks we remember
PENDING_BLOCKS_PER_HEIGHT_MAX = 8  # conflicting proposals remembered per height
SCAN_DEPTH_MAX = 5  # NEW-VIEW > signed PRE-PREPARE > block: how deep blocks hide


class InFlightBlocks:
    def __init__(self) -> None:
        self._by_height: dict[int, dict[bytes, frozenset[bytes]]] = {}

    def note(self, value: object, committed_height: int, depth: int = SCAN_DEPTH_MAX) -> None:
        """Remember the transactions of every block `value` carries above the tip."""
        if isinstance(value, Block):
            self._remember(value, committed_height)
        elif depth and isinstance(value, tuple):
            for item in value:
                self.note(item, committed_height, depth - 1)
        elif depth and hasattr(value, "__dataclass_fields__"):
            for name in value.__dataclass_fields__:  # type: ignore[union-attr]
                field = getattr(value, name)
                if isinstance(field, (Block, tuple)) or hasattr(field, "__dataclass_fields__"):
                    self.note(field, committed_height, depth - 1)

    def _remember(self, block: Block, committed_height: int) -> None:
        height = block.height
        if not committed_height < height <= committed_height + PENDING_HEIGHTS_MAX:
            return
        if not block.txs:
            return
        at_height = self._by_height.setdefault(height, {})
        if block.block_hash in at_height or len(at_height) >= PENDING_BLOCKS_PER_HEIGHT_MAX:
            return
        at_height[block.block_hash] = frozenset(tx_id(tx) for tx in block.txs)

    def carried(self) -> set[bytes]:
        """Transaction ids some block in flight carries."""
        return set().union(*(ids for blocks in self._by_height.values()
                             for ids in blocks.values()))

    def __bool__(self) -> bool:
        return bool(self._by_height)

    def final(self, block: Block, committed_ids: list[bytes]) -> set[bytes]:
        """Height `block.height` is final: forget it; return the transactions of the
        proposals that lost (minus what committed), to be offered again."""
        dead: set[bytes] = set()
        for height in [h for h in self._by_height if h <= block.height]:
            for block_hash, ids in self._by_height.pop(height).items():
                if block_hash != block.block_hash:
                    dead |= ids
        dead.difference_update(committed_ids)
        return dead
