"""Deterministic applications for the simulator.

`DigestApp` is the fast default: transactions are opaque bytes, a repeated transaction id
gets a DUPLICATE receipt (so a transaction ordered twice is visible), and the state root
is a hash chain over applied transaction ids. It keeps the simulator about consensus; the
real ledger runs in the simulator with `Workload(ledger=True)`.
"""
from __future__ import annotations

import hashlib

from consensus.types import EMPTY_ROOT, Block
from qenex_node.core.app import AppliedBlock, TxCheck, TxOutcome, tx_id


class DigestApp:
    def __init__(self) -> None:
        self._height = 0
        self._root = EMPTY_ROOT
        self._seen: set[bytes] = set()

    @property
    def height(self) -> int:
        return self._height

    @property
    def state_root(self) -> bytes:
        return self._root

    def check_tx(self, tx: bytes) -> TxCheck:
        """Refuses what it applied already, as the ledger refuses a used nonce: a node
        that restarted has forgotten its recently committed ids, and a peer's re-forward
        of a committed transaction must not be ordered again."""
        ident = tx_id(tx)
        if not tx:
            return TxCheck(tx_id=ident, ok=False, reason="EMPTY")
        if ident in self._seen:
            return TxCheck(tx_id=ident, ok=False, reason="ALREADY_COMMITTED")
        return TxCheck(tx_id=ident, ok=True, reason="")

    def apply_block(self, block: Block) -> AppliedBlock:
        if block.height != self._height + 1:
            raise AssertionError(f"apply out of order: {block.height} after {self._height}")
        outcomes = []
        digest = hashlib.sha256(self._root)
        for index, tx in enumerate(block.txs):
            ident = tx_id(tx)
            fresh = ident not in self._seen
            self._seen.add(ident)
            outcomes.append(TxOutcome(ident, index, fresh, "" if fresh else "DUPLICATE"))
            if fresh:
                digest.update(ident)
        self._height = block.height
        self._root = digest.digest()
        return AppliedBlock(block.height, block.block_hash, self._root, tuple(outcomes))
