"""The driver's storage step: ledger apply + one synced LMDB write per plan.

Runs on a worker thread (LMDB and the state tree are blocking work). `lock` serialises
the ledger between the driver's writes and the readers (admission, queries), which run
on other worker threads. When one step commits
several blocks, the engine's records ride with the last block: a crash between two of those
writes leaves the ledger a block or two ahead of the engine's records, which is the normal
restart case (the engine learns the ledger's height from `Restore`), and none of this
step's messages were sent yet, so nothing that left the node is contradicted.

Evidence: engines that put misbehaviour evidence in blocks (Tendermint) say how to read
it back (`evidence_in_block` on the engine class); each committed block's pieces are
indexed in that block's own write, on every path that commits a block (the engine's own
commits and catch-up alike both arrive here as plan blocks).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from consensus.api import Persist
from consensus.types import Block, Certificate
from ledger.genesis import Genesis
from ledger.ledger import Ledger
from ledger.receipts import AppliedBlock, TxCheck
from ledger.storage.lmdb_store import LmdbStore
from qenex_node.core.sync import CommittedBlock

EvidenceExtractor = Callable[[Block], Sequence[object]]


def evidence_extractor(engine_class: type) -> EvidenceExtractor | None:
    """The engine class's reader of the evidence its blocks carry; None for engines that
    have none (PBFT, Raft, HotStuff)."""
    return getattr(engine_class, "evidence_in_block", None)


class LedgerStorage:
    def __init__(self, store: LmdbStore, ledger: Ledger,
                 evidence_in_block: EvidenceExtractor | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.lock = threading.Lock()
        self._evidence_in_block = evidence_in_block

    @property
    def height(self) -> int:
        return self.store.height

    def admission_check(self, tx: bytes) -> tuple[TxCheck, int | None]:
        """Stateless checks plus the sender's applied nonce (for the mempool's gap rule).

        The ledger's verified-envelope cache is shared with apply, hence the lock."""
        with self.lock:
            check = self.ledger.check_tx(tx)
            account = self.ledger.account(check.sender) if check.ok else None
        return check, (account.nonce if account is not None else None)

    @classmethod
    def open(cls, path: str, genesis: Genesis, map_size_bytes: int,
             evidence_in_block: EvidenceExtractor | None = None) -> LedgerStorage:
        store = LmdbStore.open(path, map_size_bytes=map_size_bytes)
        store.init_genesis(genesis)
        if store.height == 0:
            ledger = Ledger(genesis)
        else:
            ledger = Ledger.restore(genesis, store.height, store.block_hash, store.accounts())
            if ledger.state_root != store.state_root:
                raise RuntimeError(f"stored state root at height {store.height} does not match "
                                   "the stored accounts: the store is damaged; restore it from "
                                   "a snapshot or resync this node from its peers")
        return cls(store, ledger, evidence_in_block)

    def write_step(self, persist: Sequence[Persist],
                   blocks: Sequence[tuple[Block, Certificate]]) -> list[AppliedBlock]:
        with self.lock:
            return self._write_step(persist, blocks)

    def _write_step(self, persist: Sequence[Persist],
                    blocks: Sequence[tuple[Block, Certificate]]) -> list[AppliedBlock]:
        if not blocks:
            if persist:
                self.store.put_engine_records(persist)
            return []
        results: list[AppliedBlock] = []
        for index, (block, certificate) in enumerate(blocks):
            result = self.ledger.apply(block)
            records = persist if index == len(blocks) - 1 else ()
            evidence = self._evidence_in_block(block) if self._evidence_in_block else ()
            self.store.commit_block(block, certificate, result.applied, result.state_changes,
                                    records, evidence)
            results.append(result.applied)
        return results

    def committed(self, height: int) -> CommittedBlock | None:
        stored = self.store.block(height)
        if stored is None or stored.certificate is None:
            return None
        return CommittedBlock(stored.block, stored.certificate, stored.state_root)

    def committed_range(self, from_height: int, count: int) -> list[CommittedBlock]:
        out = []
        for height in range(max(from_height, 1), min(from_height + count, self.store.height + 1)):
            item = self.committed(height)
            if item is None:
                break
            out.append(item)
        return out

    def close(self) -> None:
        self.store.close()
