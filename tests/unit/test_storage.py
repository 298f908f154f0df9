"""Storage behaviour the daemon and simulator rely on, for both LMDB and the memory store."""
from __future__ import annotations

import pytest

from consensus.types import Certificate
from ledger.ledger import Ledger
from ledger.storage.codec import StorageCorruption, StorageError, StorageWriteFailed
from ledger.storage.lmdb_store import LmdbStore
from ledger.storage.memory_store import MemoryStore
from ledger.storage.recovery import check_consistency, load_ledger
from ledger.tx import build_transfer
from tests.unit.ledger_helpers import CHAIN, ED, address, make_genesis, next_block, seed


@pytest.fixture(params=["lmdb", "memory"])
def store(request, tmp_path):
    if request.param == "lmdb":
        s = LmdbStore.open(tmp_path / "db", map_size_bytes=64 * 1024)  # small: forces growth
        yield s
        s.close()
    else:
        yield MemoryStore()


def cert(height: int, block_hash: bytes) -> Certificate:
    return Certificate("test", height, block_hash, ())


def commit(store, ledger, txs, records=()):
    block = next_block(ledger, txs)
    result = ledger.apply(block)
    store.commit_block(block, cert(block.height, block.block_hash), result.applied,
                       result.state_changes, records)
    return block, result


def fresh(store):
    genesis = make_genesis(accounts=6)
    store.init_genesis(genesis)
    return Ledger(genesis)


def test_commit_then_read_back_everything(store):
    ledger = fresh(store)
    tx = build_transfer(CHAIN, ED, seed(1), 1, address(2), 70, "USD")
    block, result = commit(store, ledger, [tx, b"junk"], [("view", 3), ("vote/1", (1, b"h"))])
    assert (store.height, store.block_hash, store.state_root) == \
        (1, block.block_hash, ledger.state_root)
    assert store.block(1).block == block and store.block(1).certificate.height == 1
    assert store.block_by_hash(block.block_hash).block == block
    record = store.transaction(result.applied.outcomes[0].tx_id)
    assert (record.height, record.index, record.success, record.tx) == (1, 0, True, tx)
    assert store.account(address(2)).balance("USD") == 1_000_070
    assert dict(store.engine_records()) == {"view": 3, "vote/1": (1, b"h")}
    assert check_consistency(store) == []
    assert load_ledger(store).state_root == ledger.state_root


def test_engine_and_guard_records_set_and_delete(store):
    store.put_engine_records([("a", 1), ("b", b"x")])
    store.put_engine_records([("a", None)])
    store.put_guard_records([("last", (5, 1, 2))])
    assert store.engine_records() == (("b", b"x"),)
    assert store.guard_records() == (("last", (5, 1, 2)),)


def test_success_receipt_survives_a_replayed_copy(store):
    ledger = fresh(store)
    tx = build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")
    _, first = commit(store, ledger, [tx])
    commit(store, ledger, [tx])  # re-proposed after a leader change: refused
    record = store.transaction(first.applied.outcomes[0].tx_id)
    assert (record.height, record.success) == (1, True)


def test_out_of_order_commit_is_refused(store):
    ledger = fresh(store)
    block = next_block(ledger, [])
    result = ledger.apply(block)
    skipped = next_block(ledger, [])
    with pytest.raises(StorageError):
        store.commit_block(skipped, None, ledger.apply(skipped).applied, ())
    assert store.height == 0 and result.applied.height == 1


def test_map_grows_instead_of_failing(store):
    ledger = fresh(store)
    for nonce in range(1, 40):
        txs = [build_transfer(CHAIN, ED, seed(i), nonce, address(i + 1), 1, "USD", memo="m" * 200)
               for i in range(1, 5)]
        commit(store, ledger, txs)
    assert store.height == 39 and check_consistency(store) == []
    if isinstance(store, LmdbStore):
        assert store.map_size_bytes > 64 * 1024


def test_archived_blocks_stay_readable(store):
    ledger = fresh(store)
    blocks = [commit(store, ledger, [build_transfer(CHAIN, ED, seed(1), n, address(2), 1, "USD")])[0]
              for n in range(1, 6)]
    assert store.archive_blocks(before_height=4) == 3
    assert [store.block(b.height).block for b in blocks] == blocks
    first_tx = ledger.check_tx(blocks[0].txs[0]).tx_id
    assert store.transaction(first_tx).tx == blocks[0].txs[0]  # read through the archive
    assert check_consistency(store) == []


def test_memory_store_failed_write_stores_nothing_and_crash_keeps_everything():
    store = MemoryStore()
    ledger = fresh(store)
    commit(store, ledger, [])
    store.fail_next_write()
    block = next_block(ledger, [build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")])
    result = ledger.apply(block)
    with pytest.raises(StorageWriteFailed):
        store.commit_block(block, None, result.applied, result.state_changes)
    store.crash()
    reopened = store.reopen()
    assert reopened.height == 1 and check_consistency(reopened) == []
    assert load_ledger(reopened).account(address(2)).balance("USD") == 1_000_000


def test_checksum_catches_corruption(store, tmp_path):
    fresh(store)
    key = address(3)
    if isinstance(store, MemoryStore):
        store.corrupt(b"accounts", key)
    else:
        with store._env.begin(write=True, db=store._dbs[b"accounts"]) as txn:
            value = bytearray(txn.get(key))
            value[-1] ^= 1
            txn.put(key, bytes(value))
    with pytest.raises(StorageCorruption):
        store.account(key)


def test_lmdb_reopen_sees_committed_state(tmp_path):
    with LmdbStore.open(tmp_path / "db") as store:
        ledger = fresh(store)
        commit(store, ledger, [build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")])
    with LmdbStore.open(tmp_path / "db") as store:
        assert store.height == 1
        assert load_ledger(store).state_root == ledger.state_root
