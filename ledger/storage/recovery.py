"""Restart helpers: rebuild the ledger from a store, and check a store is self-consistent."""
from __future__ import annotations

from consensus.types import GENESIS_HASH
from crypto import schemes
from ledger.account import encode_account
from ledger.ledger import Ledger
from ledger.state_tree import StateTree
from ledger.storage.base import StoreBase
from ledger.storage.codec import StorageError
from ledger.tx import Verifier


def load_ledger(store: StoreBase, verifier: Verifier | None = schemes.verify) -> Ledger:
    """The ledger exactly as of the store's last committed block (state root checked)."""
    genesis = store.genesis()
    if genesis is None:
        raise StorageError("store has no genesis; call init_genesis first")
    ledger = Ledger.restore(genesis, store.height, store.block_hash, store.accounts(),
                            verifier=verifier)
    if ledger.state_root != store.state_root:
        raise StorageError(f"recomputed state root {ledger.state_root.hex()} != stored "
                           f"{store.state_root.hex()} at height {store.height}")
    return ledger


def check_consistency(store: StoreBase, first_height: int = 1) -> list[str]:
    """Problems found (empty when consistent): meta matches the last block, every block
    links to its parent, and the stored accounts hash to the stored state root."""
    problems: list[str] = []
    height = store.height
    parent = GENESIS_HASH
    for h in range(first_height, height + 1):
        stored = store.block(h)
        if stored is None:
            problems.append(f"block {h} missing (height {height})")
            return problems
        if h > first_height and stored.block.header.parent_hash != parent:
            problems.append(f"block {h} does not link to block {h - 1}")
        if stored.block.height != h:
            problems.append(f"block stored at {h} says height {stored.block.height}")
        parent = stored.block.block_hash
    if store.block(height + 1) is not None:
        problems.append(f"block {height + 1} stored beyond meta height {height}")
    if height and (parent != store.block_hash or store.block(height).state_root != store.state_root):
        problems.append("meta block hash / state root differ from the last block")
    root = StateTree.from_accounts([(a.address, encode_account(a)) for a in store.accounts()]).root()
    if root != store.state_root:
        problems.append(f"accounts hash to {root.hex()}, meta says {store.state_root.hex()}")
    return problems
