"""Bounded, deduplicated pool of admitted transactions waiting to be ordered.

Pure (no clock): callers pass `now_ms`. A transaction moves pending -> proposed when a
batch is cut; if its block does not commit within `proposal_timeout_ms` (view change,
dropped proposal, crashed leader) it returns to pending, so an admitted transaction is
never silently dropped. Committed ids are removed. Limits: `txs_max` and `bytes_max`;
past them `add` refuses (back-pressure), it never grows.

Within a batch, one sender's transactions are put in nonce order: a client that pipelines
nonces n, n+1 to a node may see them admitted in either order (gRPC threads race), and the
ledger only accepts each sender's exact next nonce.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    txs_max: int = 50_000
    bytes_max: int = 64 * 1024 * 1024
    proposal_timeout_ms: int = 3_000


class AddResult:
    ADDED = "ADDED"
    DUPLICATE = "DUPLICATE"
    FULL = "MEMPOOL_FULL"


class Mempool:
    def __init__(self, limits: MempoolLimits = MempoolLimits()) -> None:
        self.limits = limits
        self._pending: OrderedDict[bytes, bytes] = OrderedDict()  # tx_id -> tx bytes
        self._order: dict[bytes, tuple[bytes, int]] = {}  # tx_id -> (sender, nonce)
        self._proposed: OrderedDict[bytes, tuple[bytes, int]] = OrderedDict()  # id -> (tx, ms)
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending) + len(self._proposed)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_id: object) -> bool:
        return tx_id in self._pending or tx_id in self._proposed

    def add(self, tx_id: bytes, tx: bytes, sender: bytes = b"", nonce: int = 0) -> str:
        if tx_id in self:
            return AddResult.DUPLICATE
        if len(self) >= self.limits.txs_max or self._bytes + len(tx) > self.limits.bytes_max:
            return AddResult.FULL
        self._pending[tx_id] = tx
        if sender:
            self._order[tx_id] = (sender, nonce)
        self._bytes += len(tx)
        return AddResult.ADDED

    def cut_batch(self, txs_max: int, bytes_max: int, now_ms: int) -> tuple[bytes, ...]:
        """Take up to the limits from the front of pending (FIFO) and mark them proposed."""
        chosen: list[tuple[bytes, bytes]] = []
        size = 0
        for tx_id, tx in list(self._pending.items()):
            if len(chosen) >= txs_max or size + len(tx) > bytes_max:
                break
            del self._pending[tx_id]
            self._proposed[tx_id] = (tx, now_ms)
            chosen.append((tx_id, tx))
            size += len(tx)
        return self._nonce_ordered(chosen)

    def _nonce_ordered(self, chosen: list[tuple[bytes, bytes]]) -> tuple[bytes, ...]:
        """Senders keep their first-seen order; each sender's txs go in nonce order."""
        first_seen: dict[bytes, int] = {}
        keyed = []
        for position, (tx_id, tx) in enumerate(chosen):
            sender, nonce = self._order.get(tx_id, (tx_id, 0))
            rank = first_seen.setdefault(sender, position)
            keyed.append((rank, nonce, position, tx))
        keyed.sort()
        return tuple(item[3] for item in keyed)

    def return_batch(self, tx_ids: list[bytes]) -> None:
        """A proposal was refused: its transactions go back to the front of pending."""
        for tx_id in reversed(tx_ids):
            entry = self._proposed.pop(tx_id, None)
            if entry is not None:
                self._pending[tx_id] = entry[0]
                self._pending.move_to_end(tx_id, last=False)

    def requeue_stale(self, now_ms: int) -> int:
        """Proposed but not committed for too long: make them pending again."""
        stale = [tx_id for tx_id, (_, at_ms) in self._proposed.items()
                 if now_ms - at_ms >= self.limits.proposal_timeout_ms]
        for tx_id in stale:
            tx, _ = self._proposed.pop(tx_id)
            self._pending[tx_id] = tx
        return len(stale)

    def remove_committed(self, tx_ids: list[bytes] | tuple[bytes, ...]) -> None:
        for tx_id in tx_ids:
            tx = self._pending.pop(tx_id, None)
            if tx is None:
                entry = self._proposed.pop(tx_id, None)
                tx = entry[0] if entry else None
            if tx is not None:
                self._bytes -= len(tx)
                self._order.pop(tx_id, None)
