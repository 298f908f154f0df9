"""What the replica needs from the state machine it replicates (the ledger).

The ledger (`ledger/`) implements this; consensus never sees it. Kept as a Protocol so the
core stays pure and the simulator can run the real ledger or any other deterministic app.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from consensus.types import Block


@dataclass(frozen=True, slots=True)
class TxCheck:
    """Stateless admission verdict for one encoded SignedTransaction."""
    tx_id: bytes  # 32 B; b"" when the bytes could not even be parsed
    ok: bool
    reason: str = ""  # stable name, e.g. "BAD_SIGNATURE", "WRONG_CHAIN"
    detail: str = ""
    sender: bytes = b""  # 20 B address, for per-sender ordering in the mempool
    nonce: int = 0


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """Deterministic receipt of one transaction in a block."""
    tx_id: bytes
    index: int
    success: bool
    reason: str = ""  # "" on success


@dataclass(frozen=True, slots=True)
class AppliedBlock:
    height: int
    block_hash: bytes
    state_root: bytes
    outcomes: tuple[TxOutcome, ...]


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
