"""Receipts of the replicated state machine: admission verdicts and per-block outcomes.

They live in the ledger (the state machine) so that the ledger imports nothing from the
node; `qenex_node.core.app` re-exports them beside the `Application` protocol.
"""
from __future__ import annotations

from dataclasses import dataclass


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
    # (address, nonce after this block) for every account whose nonce advanced, sorted by
    # address: a node's mempool learns from it that a sender's gap was filled by a
    # transaction it never held (admitted at another node), see Mempool.note_committed.
    nonces: tuple[tuple[bytes, int], ...] = ()
