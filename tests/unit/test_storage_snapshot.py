"""Snapshots: export at a height, import into an empty node, continue from there."""
from __future__ import annotations

import pytest

from ledger.storage.codec import StorageCorruption, StorageError
from ledger.storage.lmdb_store import LmdbStore
from ledger.storage.memory_store import MemoryStore
from ledger.storage.recovery import check_consistency, load_ledger
from ledger.storage.snapshot import export_snapshot, import_snapshot
from ledger.tx import build_transfer
from tests.unit.ledger_helpers import CHAIN, ED, address, seed
from tests.unit.test_storage import commit, fresh


def test_export_import_then_continue(tmp_path):
    source = MemoryStore()
    ledger = fresh(source)
    for nonce in (1, 2, 3):
        commit(source, ledger, [build_transfer(CHAIN, ED, seed(1), nonce, address(2), 9, "USD")])
    info = export_snapshot(source, tmp_path / "snap")
    assert (info.height, info.state_root) == (3, ledger.state_root)
    with LmdbStore.open(tmp_path / "db") as target:
        assert import_snapshot(tmp_path / "snap", target) == info
        assert check_consistency(target, first_height=3) == []
        restored = load_ledger(target)
        assert restored.state_root == ledger.state_root
        commit(target, restored, [build_transfer(CHAIN, ED, seed(1), 4, address(2), 1, "USD")])
        assert target.height == 4 and target.account(address(2)).balance("USD") == 1_000_028
        with pytest.raises(StorageError):
            import_snapshot(tmp_path / "snap", target)  # not empty any more


def test_tampered_snapshot_is_refused(tmp_path):
    source = MemoryStore()
    fresh(source)
    export_snapshot(source, tmp_path / "snap")
    data = bytearray((tmp_path / "snap").read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "snap").write_bytes(bytes(data))
    target = MemoryStore()
    with pytest.raises(StorageCorruption):
        import_snapshot(tmp_path / "snap", target)
    assert target.genesis() is None
