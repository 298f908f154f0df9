"""What the replica needs from the state machine it replicates (the ledger).

The ledger (`ledger/`) implements this; consensus never sees it. Kept as a Protocol so the
core stays pure and the simulator can run the real ledger or any other deterministic app.
"""
from __future__ import annotations

from typing import Protocol

from consensus.types import Block
from ledger.receipts import AppliedBlock, TxCheck, TxOutcome
from ledger.tx import envelope_tx_id

__all__ = ["Application", "AppliedBlock", "TxCheck", "TxOutcome", "tx_id"]


def tx_id(tx: bytes) -> bytes:
    """The one transaction id every driver, mempool and checker uses (see envelope_tx_id)."""
    return envelope_tx_id(tx)


class Application(Protocol):
    def check_tx(self, tx: bytes) -> TxCheck:
        """Stateless checks (size, fields, chain id, signature); never raises."""
        ...

    def apply_block(self, block: Block) -> AppliedBlock:
        """Apply the next block in height order; deterministic; never raises on bad txs."""
        ...

    @property
    def height(self) -> int: ...

    @property
    def state_root(self) -> bytes: ...
