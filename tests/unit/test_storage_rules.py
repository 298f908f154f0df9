"""Storage rules a user relies on, one rule per test (found by mutation testing, issue 23)."""
from __future__ import annotations

import hashlib
import os
import zlib

import pytest

from consensus import canonical
from consensus.api import Persist
from consensus.types import GENESIS_HASH
from ledger.account import Account, encode_account
from ledger.ledger import Ledger
from ledger.storage.base import height_key
from ledger.storage.codec import (
    StorageCorruption,
    StorageError,
    StorageWriteFailed,
    seal,
    unseal,
)
from ledger.storage.evidence import (
    HEIGHT_END,
    VALIDATOR_END,
    EvidencePage,
    evidence_key,
    evidence_ops,
    query_evidence,
)
from ledger.storage.lmdb_store import READERS_MAX, LmdbStore
from ledger.storage.memory_store import MemoryStore, StoreClosed
from ledger.storage.recovery import check_consistency, load_ledger
from ledger.storage.snapshot import (
    FRAME_BYTES_MAX,
    SNAPSHOT_MAGIC,
    SNAPSHOT_VERSION,
    SnapshotInfo,
    export_snapshot,
    import_snapshot,
)
from ledger.tx import build_transfer
from tests.unit.evidence_helpers import block_with, evidence_in_block, piece
from tests.unit.ledger_helpers import CHAIN, ED, address, make_genesis, next_block, seed
from tests.unit.test_storage import cert, commit, fresh


@pytest.fixture(params=["lmdb", "memory"])
def store(request, tmp_path):
    if request.param == "lmdb":
        s = LmdbStore.open(tmp_path / "db", map_size_bytes=64 * 1024)
        yield s
        s.close()
    else:
        yield MemoryStore()


def pay(i: int, nonce: int, to: int, amount: int) -> bytes:
    return build_transfer(CHAIN, ED, seed(i), nonce, address(to), amount, "USD")


def raw_put(store, table: bytes, key: bytes, value: bytes | None) -> None:
    """Write a raw (already sealed, or deliberately bad) value, as a faulty disk would."""
    store._write([(table, key, value)])


# ---------------------------------------------------------------- codec
def test_a_sealed_value_opens_only_under_its_own_table_and_key():
    sealed = seal(b"accounts", b"k1", b"payload")
    assert unseal(b"accounts", b"k1", sealed) == b"payload"
    with pytest.raises(StorageCorruption, match=r"^accounts\[6b32\]: checksum mismatch$"):
        unseal(b"accounts", b"k2", sealed)
    with pytest.raises(StorageCorruption, match=r"^blocks\[6b31\]: checksum mismatch$"):
        unseal(b"blocks", b"k1", sealed)


def test_a_value_with_a_bad_header_is_corruption():
    sealed = seal(b"meta", b"k", b"")
    assert len(sealed) == 9 and unseal(b"meta", b"k", sealed) == b""
    for bad in (sealed[:8], b"\x02" + sealed[1:], b""):
        with pytest.raises(StorageCorruption, match=r"^meta\[6b\]: bad header$"):
            unseal(b"meta", b"k", bad)


def test_sealed_bytes_are_pinned():
    # Golden vector: a store written by this version must open with the next one.
    sealed = seal(b"accounts", b"key", b"payload")
    assert sealed.hex() == "01" + "5a7cfb7214dd94bb" + b"payload".hex()
    assert sealed[1:9] == hashlib.blake2b(b"\x08accounts" + b"\x00\x03key" + b"payload",
                                          digest_size=8).digest()


def test_the_checksum_separates_table_from_key():
    # ("ab", "c") and ("a", "bc") must not share a checksum: the lengths are hashed too
    assert seal(b"ab", b"c", b"p")[1:9] != seal(b"a", b"bc", b"p")[1:9]
    assert seal(b"t", b"kp", b"")[1:9] != seal(b"t", b"k", b"p")[1:9]


# ---------------------------------------------------------------- meta and genesis
def test_an_empty_store_is_at_height_zero_on_the_genesis_hash_with_no_root(store):
    assert (store.height, store.block_hash, store.state_root, store.genesis()) \
        == (0, GENESIS_HASH, b"", None)


def test_init_genesis_writes_the_genesis_root_and_accounts_once(store):
    genesis = make_genesis(accounts=3)
    store.init_genesis(genesis)
    ledger = Ledger(genesis)
    assert (store.height, store.block_hash, store.state_root) == (0, GENESIS_HASH, ledger.state_root)
    assert store.genesis() == genesis
    assert list(store.accounts()) == sorted(genesis.accounts, key=lambda a: a.address)
    store.init_genesis(genesis)  # the same again: nothing to do
    with pytest.raises(StorageError, match="^store holds a different genesis$"):
        store.init_genesis(make_genesis(accounts=2))
    assert store.genesis() == genesis


def test_init_genesis_again_writes_nothing():
    store = MemoryStore()
    store.init_genesis(make_genesis())
    store.init_genesis(make_genesis())
    assert store.writes == 1


# ---------------------------------------------------------------- the block commit
def test_a_commit_whose_receipts_name_another_height_is_refused(store):
    ledger = fresh(store)
    block = next_block(ledger, [])
    applied = ledger.apply(block).applied
    wrong = type(applied)(2, applied.block_hash, applied.state_root, applied.outcomes)
    with pytest.raises(StorageError, match="^commit of block 1 at stored height 0$"):
        store.commit_block(block, None, wrong, ())
    assert store.height == 0 and store.block(1) is None


def test_a_commit_that_does_not_extend_the_stored_chain_is_refused(store):
    ledger = fresh(store)
    commit(store, ledger, [])
    other = Ledger(make_genesis(accounts=6))
    other.apply(next_block(other, [], time_ms=5))  # another block 1
    fork = next_block(other, [])
    with pytest.raises(StorageError, match="^block 2 does not extend the stored chain$"):
        store.commit_block(fork, None, other.apply(fork).applied, ())
    assert store.height == 1


def test_a_commit_can_delete_an_account(store):
    ledger = fresh(store)
    block = next_block(ledger, [])
    store.commit_block(block, None, ledger.apply(block).applied, [(address(5), None)])
    assert store.account(address(5)) is None and store.account(address(4)) is not None


def test_a_refused_transaction_is_recorded_with_its_reason_and_place(store):
    ledger = fresh(store)
    tx = pay(1, 9, 2, 5)  # a future nonce
    _, result = commit(store, ledger, [pay(1, 1, 2, 5), tx])
    record = store.transaction(result.applied.outcomes[1].tx_id)
    assert (record.tx_id, record.height, record.index, record.success, record.reason, record.tx) \
        == (result.applied.outcomes[1].tx_id, 1, 1, False, "NONCE_MISMATCH", tx)


def test_receipts_after_unparseable_bytes_or_a_replayed_copy_are_still_recorded(store):
    ledger = fresh(store)
    first = pay(1, 1, 2, 5)
    _, result = commit(store, ledger, [b"junk", first])
    assert store.transaction(result.applied.outcomes[1].tx_id).success
    later = pay(3, 9, 2, 5)  # refused (future nonce), after a replay of `first` in its block
    _, result = commit(store, ledger, [first, later])
    record = store.transaction(result.applied.outcomes[1].tx_id)
    assert (record.height, record.index, record.reason) == (2, 1, "NONCE_MISMATCH")
    assert store.transaction(result.applied.outcomes[0].tx_id).height == 1


def test_a_refused_receipt_is_replaced_by_a_later_success(store):
    ledger = fresh(store)
    tx = pay(1, 2, 2, 5)  # nonce 2 before nonce 1: refused, then fine a block later
    _, first = commit(store, ledger, [tx])
    commit(store, ledger, [pay(1, 1, 2, 5)])
    commit(store, ledger, [tx])
    record = store.transaction(first.applied.outcomes[0].tx_id)
    assert (record.height, record.index, record.success, record.reason) == (3, 0, True, "")


def test_unparseable_bytes_leave_no_receipt(store):
    ledger = fresh(store)
    commit(store, ledger, [b"junk"])
    assert list(store._iter(b"txs")) == []
    assert store.transaction(bytes(32)) is None


def test_a_lookup_by_an_empty_or_oversized_key_finds_nothing(store):
    # Both stores answer alike: LMDB cannot hold such keys, so it must not raise on them.
    ledger = fresh(store)
    commit(store, ledger, [pay(1, 1, 2, 5)])
    for key in (b"", b"\x01" * 512, b"\x01" * 4096):
        assert store.transaction(key) is None
        assert store.block_by_hash(key) is None and store.account(key) is None
    shortest = Account(b"\x03", ED, b"k" * 32, 0, ())  # one byte: LMDB's shortest key
    raw_put(store, b"accounts", shortest.address,
            seal(b"accounts", shortest.address, encode_account(shortest)))
    assert store.account(shortest.address) == shortest
    longest = Account(b"\x02" * 511, ED, b"k" * 32, 0, ())  # LMDB's largest key still works
    raw_put(store, b"accounts", longest.address,
            seal(b"accounts", longest.address, encode_account(longest)))
    assert store.account(longest.address) == longest


def test_a_receipt_pointing_past_its_block_is_corruption(store):
    ledger = fresh(store)
    commit(store, ledger, [pay(1, 1, 2, 5)])
    tx_id = b"\x07" * 32
    raw_put(store, b"txs", tx_id, seal(b"txs", tx_id, canonical.encode((1, 1, True, ""))))
    with pytest.raises(StorageCorruption, match=f"^tx {tx_id.hex()} points at missing block 1$"):
        store.transaction(tx_id)
    raw_put(store, b"txs", tx_id, seal(b"txs", tx_id, canonical.encode((7, 0, True, ""))))
    with pytest.raises(StorageCorruption, match="points at missing block 7"):
        store.transaction(tx_id)


def test_engine_records_take_persist_effects_and_come_back_in_key_order(store):
    store.put_engine_records([Persist("view", 3), Persist("a/vote", (1, b"h"))])
    store.put_engine_records([Persist("view", None)])
    assert store.engine_records() == (("a/vote", (1, b"h")),)
    ledger = fresh(store)
    commit(store, ledger, [], [Persist("b", 2), ("a/vote", None)])
    assert store.engine_records() == (("b", 2),)
    assert store.guard_records() == ()


def test_an_unreadable_record_is_corruption(store):
    raw_put(store, b"guard", b"last", seal(b"guard", b"last", b"\xffnot canonical"))
    with pytest.raises(StorageCorruption, match=r"^guard\[6c617374\]: "):
        store.guard_records()
    raw_put(store, b"engine", b"\xff", seal(b"engine", b"\xff", canonical.encode(1)))
    with pytest.raises(StorageCorruption, match=r"^engine\[ff\]: "):
        store.engine_records()


def test_an_undecodable_meta_value_is_corruption(store):
    raw_put(store, b"meta", b"height", seal(b"meta", b"height", b"\xff"))
    with pytest.raises(StorageCorruption, match=r"^meta\[686569676874\]: "):
        _ = store.height


# ---------------------------------------------------------------- reads
def test_unknown_heights_hashes_and_accounts_read_as_none(store):
    fresh(store)
    assert store.block(1) is None and store.block_by_hash(b"\x01" * 32) is None
    assert store.account(b"\x01" * 20) is None


def test_an_account_stored_under_another_address_is_corruption(store):
    fresh(store)
    other = encode_account(Account(address(2), ED, b"k" * 32, 0, ()))
    raw_put(store, b"accounts", address(1), seal(b"accounts", address(1), other))
    with pytest.raises(StorageCorruption, match=f"^accounts\\[{address(1).hex()}\\]: holds another"):
        store.account(address(1))
    raw_put(store, b"accounts", address(1), seal(b"accounts", address(1), canonical.encode(5)))
    with pytest.raises(StorageCorruption, match=f"^accounts\\[{address(1).hex()}\\]: not an Account"):
        list(store.accounts())


def test_a_block_is_found_by_its_hash_after_archiving(store):
    ledger = fresh(store)
    blocks = [commit(store, ledger, [])[0] for _ in range(3)]
    assert store.archive_blocks(before_height=3) == 2
    assert [store.block_by_hash(b.block_hash).block for b in blocks] == blocks
    assert store.block_by_hash(blocks[0].block_hash).certificate == cert(1, blocks[0].block_hash)


def test_archiving_moves_only_blocks_below_the_bound_and_only_once(store):
    ledger = fresh(store)
    for _ in range(4):
        commit(store, ledger, [])
    assert store.archive_blocks(before_height=3) == 2
    # keys are 8-byte big-endian heights (the documented layout)
    assert [k for k, _ in store._iter(b"blocks")] == [bytes(7) + b"\x03", bytes(7) + b"\x04"]
    assert [k for k, _ in store._iter(b"archive")] == [bytes(7) + b"\x01", bytes(7) + b"\x02"]
    assert store.archive_blocks(before_height=3) == 0
    assert store.archive_blocks(before_height=99) == 2  # never past the stored height
    assert [k for k, _ in store._iter(b"blocks")] == []
    assert check_consistency(store) == []


def test_an_archived_block_is_compressed_and_a_damaged_one_is_corruption(store):
    ledger = fresh(store)
    commit(store, ledger, [pay(1, 1, 2, 5)])
    plain = store._get(b"blocks", height_key(1))
    store.archive_blocks(before_height=2)
    packed = unseal(b"archive", height_key(1), store._get(b"archive", height_key(1)))
    assert zlib.decompress(packed) == unseal(b"blocks", height_key(1), plain)
    key = height_key(1)
    raw_put(store, b"archive", key, seal(b"archive", key, b"not zlib"))
    with pytest.raises(StorageCorruption, match=r"^archive\[1\]: "):
        store.block(1)
    raw_put(store, b"archive", key, seal(b"archive", key, zlib.compress(b"\xff")))
    with pytest.raises(StorageCorruption, match=r"^archive\[1\]: "):
        store.block(1)


# ---------------------------------------------------------------- the memory store's faults
def test_a_crashed_memory_store_refuses_every_read_and_write():
    store = MemoryStore()
    ledger = fresh(store)
    store.crash()
    for call in (lambda: store.height, lambda: list(store.accounts()),
                 lambda: store.put_engine_records([("a", 1)]),
                 lambda: store.evidence(0, 9, limit=1)):
        with pytest.raises(StoreClosed, match="^store handle is closed$"):
            call()
    assert store.reopen().genesis() == ledger.genesis


def test_a_closed_memory_store_refuses_reads():
    store = MemoryStore.open()
    store.close()
    with pytest.raises(StoreClosed):
        store.account(address(1))


def test_fail_next_write_fails_that_many_writes_then_writes_again():
    store = MemoryStore()
    store.fail_next_write(2)
    for _ in range(2):
        with pytest.raises(StorageWriteFailed, match="^injected write failure$"):
            store.put_engine_records([("a", 1)])
    store.put_engine_records([("a", 1)])
    assert store.engine_records() == (("a", 1),) and store.writes == 1


def test_corrupt_flips_a_byte_that_the_next_read_catches():
    store = MemoryStore()
    fresh(store)
    store.corrupt(b"accounts", address(1))
    with pytest.raises(StorageCorruption, match="checksum mismatch"):
        store.account(address(1))
    assert store.account(address(2)) is not None


# ---------------------------------------------------------------- LMDB
def test_lmdb_iterates_more_accounts_than_one_read_page_each_once_in_order(tmp_path):
    accounts = [Account(i.to_bytes(20, "big"), ED, b"k" * 32, 0, ()) for i in range(10_050)]
    with LmdbStore.open(tmp_path / "db") as store:
        raw = [(b"accounts", a.address, seal(b"accounts", a.address, encode_account(a)))
               for a in accounts]
        store._write(raw)
        assert list(store.accounts()) == accounts


def test_lmdb_map_grows_by_doubling_up_to_its_maximum(tmp_path, monkeypatch):
    with LmdbStore.open(tmp_path / "db", map_size_bytes=1 << 20) as store:
        store._grow()
        assert store.map_size_bytes == 2 << 20
        monkeypatch.setattr("ledger.storage.lmdb_store.MAP_SIZE_BYTES_MAX", 3 << 20)
        store._grow()
        assert store.map_size_bytes == 3 << 20
        with pytest.raises(StorageError, match=f"^map is at map_size_bytes_max {3 << 20}$"):
            store._grow()
        assert store.disk_bytes() > 0


def test_lmdb_opens_into_a_new_directory_and_reopens_what_it_wrote(tmp_path):
    path = tmp_path / "a" / "b"
    with LmdbStore.open(path) as store:
        ledger = fresh(store)
        commit(store, ledger, [pay(1, 1, 2, 5)])
    with LmdbStore.open(path) as store:
        assert load_ledger(store).account(address(2)).balance("USD") == 1_000_005
        assert store.map_size_bytes == 1 << 30


# ---------------------------------------------------------------- recovery
def test_load_ledger_needs_a_genesis(store):
    with pytest.raises(StorageError, match="^store has no genesis; call init_genesis first$"):
        load_ledger(store)


def test_load_ledger_refuses_accounts_that_do_not_hash_to_the_stored_root(store):
    ledger = fresh(store)
    commit(store, ledger, [pay(1, 1, 2, 5)])
    forged = Account(address(1), ED, ledger.account(address(1)).public_key, 1, (("USD", 10**9),))
    raw_put(store, b"accounts", address(1), seal(b"accounts", address(1), encode_account(forged)))
    stored = store.state_root.hex()
    with pytest.raises(StorageError, match=f"!= stored {stored} at height 1$"):
        load_ledger(store)
    assert check_consistency(store) == [
        f"accounts hash to {load_ledger_root(store)}, meta says {stored}"]


def load_ledger_root(store) -> str:
    return Ledger.restore(store.genesis(), 0, GENESIS_HASH, store.accounts()).state_root.hex()


def test_load_ledger_restores_height_hash_and_the_verifier(store):
    ledger = fresh(store)
    block, _ = commit(store, ledger, [pay(1, 1, 2, 5)])
    loaded = load_ledger(store)
    assert (loaded.height, loaded.block_hash, loaded.state_root) \
        == (1, block.block_hash, ledger.state_root)
    forged = forged_signature(pay(1, 2, 2, 5))
    assert loaded.check_tx(forged).reason == "BAD_SIGNATURE"
    assert load_ledger(store, verifier=None).check_tx(forged).ok


def forged_signature(tx: bytes) -> bytes:
    from proto.qenex.v1 import transaction_pb2 as pb
    envelope = pb.SignedTransaction.FromString(tx)
    envelope.signature = bytes(64)
    return envelope.SerializeToString()


def three_blocks(store):
    ledger = fresh(store)
    blocks = [commit(store, ledger, [pay(1, n, 2, 5)])[0] for n in (1, 2, 3)]
    return ledger, blocks


def copy_block(store, from_height: int, to_height: int) -> None:
    raw = unseal(b"blocks", height_key(from_height), store._get(b"blocks", height_key(from_height)))
    raw_put(store, b"blocks", height_key(to_height), seal(b"blocks", height_key(to_height), raw))


def test_a_store_with_a_missing_block_is_reported(store):
    three_blocks(store)
    raw_put(store, b"blocks", height_key(2), None)
    assert check_consistency(store) == ["block 2 missing (height 3)"]


def test_a_block_stored_at_the_wrong_height_is_reported(store):
    three_blocks(store)
    copy_block(store, 1, 2)
    assert check_consistency(store) == ["block 2 does not link to block 1",
                                        "block stored at 2 says height 1",
                                        "block 3 does not link to block 2"]


def test_a_block_that_does_not_link_to_its_parent_is_reported(store):
    three_blocks(store)
    copy_block(store, 1, 3)  # block 3's slot holds block 1 (parent: genesis, not block 2)
    assert check_consistency(store) == [
        "block 3 does not link to block 2", "block stored at 3 says height 1",
        "meta block hash / state root differ from the last block"]


def test_a_block_beyond_the_meta_height_is_reported(store):
    three_blocks(store)
    copy_block(store, 3, 4)
    assert check_consistency(store) == ["block 4 stored beyond meta height 3"]


def test_a_meta_root_that_differs_from_the_last_block_is_reported(store):
    ledger, _ = three_blocks(store)
    raw_put(store, b"meta", b"state_root", seal(b"meta", b"state_root", canonical.encode(b"\x01" * 32)))
    assert check_consistency(store) == [
        "meta block hash / state root differ from the last block",
        f"accounts hash to {ledger.state_root.hex()}, meta says {'01' * 32}"]


def test_consistency_starts_at_first_height_and_an_empty_chain_is_consistent(store):
    fresh(store)
    assert check_consistency(store) == []
    three_blocks_store = MemoryStore()
    three_blocks(three_blocks_store)
    raw_put(three_blocks_store, b"blocks", height_key(1), None)
    assert check_consistency(three_blocks_store, first_height=2) == []
    assert check_consistency(three_blocks_store) == ["block 1 missing (height 3)"]


# ---------------------------------------------------------------- snapshots
def frame(payload: bytes) -> bytes:
    """The documented snapshot frame: u32 length || payload || BLAKE2b-64(payload)."""
    return len(payload).to_bytes(4, "big") + payload + hashlib.blake2b(payload, digest_size=8).digest()


def snapshot_file(path, header: tuple, accounts: list[bytes], trailer: tuple) -> None:
    path.write_bytes(frame(canonical.encode(header)) + b"".join(frame(a) for a in accounts)
                     + frame(canonical.encode(trailer)))


def genesis_header(store, **changes) -> tuple:
    fields = {"magic": SNAPSHOT_MAGIC, "version": SNAPSHOT_VERSION, "genesis": store.genesis(),
              "height": 0, "hash": GENESIS_HASH, "root": store.state_root,
              "count": len(list(store.accounts())), "tip": None}
    fields.update(changes)
    return tuple(fields.values())


def test_a_snapshot_is_written_whole_and_describes_the_tip(tmp_path):
    source = MemoryStore()
    ledger = fresh(source)
    block, _ = commit(source, ledger, [pay(1, 1, 2, 5)])
    info = export_snapshot(source, tmp_path / "snap")
    assert info == SnapshotInfo(1, block.block_hash, ledger.state_root, 6)
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]  # no .tmp left behind
    target = MemoryStore()
    assert import_snapshot(tmp_path / "snap", target) == info
    assert target.block(1) == source.block(1)
    assert target.block_by_hash(block.block_hash).certificate == cert(1, block.block_hash)
    assert (target.height, target.block_hash, target.genesis()) == (1, block.block_hash, ledger.genesis)
    assert list(target.accounts()) == list(source.accounts())


def test_a_snapshot_at_genesis_has_no_tip_block(tmp_path):
    source = MemoryStore()
    fresh(source)
    info = export_snapshot(source, tmp_path / "snap")
    assert info == SnapshotInfo(0, GENESIS_HASH, source.state_root, 6)
    target = MemoryStore()
    import_snapshot(tmp_path / "snap", target)
    assert (target.height, target.block_hash) == (0, GENESIS_HASH)
    assert list(target._iter(b"blocks")) == [] and list(target._iter(b"hashes")) == []
    assert check_consistency(target) == []


def test_a_store_without_genesis_cannot_be_exported(tmp_path):
    with pytest.raises(StorageError, match="^store has no genesis$"):
        export_snapshot(MemoryStore(), tmp_path / "snap")
    assert list(tmp_path.iterdir()) == []


def test_the_snapshot_format_is_the_documented_one(tmp_path):
    source = MemoryStore()
    fresh(source)
    accounts = [encode_account(a) for a in source.accounts()]
    snapshot_file(tmp_path / "mine", genesis_header(source), accounts, ("end", len(accounts)))
    export_snapshot(source, tmp_path / "theirs")
    assert (tmp_path / "mine").read_bytes() == (tmp_path / "theirs").read_bytes()


def test_a_snapshot_into_a_store_that_has_a_genesis_is_refused(tmp_path):
    source = MemoryStore()
    fresh(source)
    export_snapshot(source, tmp_path / "snap")
    with pytest.raises(StorageError, match="^import_snapshot needs an empty store$"):
        import_snapshot(tmp_path / "snap", source)


def _refused(tmp_path, data: bytes, message: str) -> None:
    (tmp_path / "bad").write_bytes(data)
    target = MemoryStore()
    with pytest.raises(StorageCorruption, match=message):
        import_snapshot(tmp_path / "bad", target)
    assert target.genesis() is None and target.writes == 0


def test_a_truncated_or_oversized_snapshot_frame_is_refused(tmp_path):
    _refused(tmp_path, b"\x00\x00\x01", "^snapshot truncated$")
    _refused(tmp_path, (FRAME_BYTES_MAX + 1).to_bytes(4, "big"), "^snapshot frame too large$")
    # a frame of exactly the maximum is read (and here found short)
    _refused(tmp_path, FRAME_BYTES_MAX.to_bytes(4, "big") + b"x",
             "^snapshot frame checksum mismatch$")
    _refused(tmp_path, frame(b"abc")[:-1], "^snapshot frame checksum mismatch$")


def test_a_snapshot_of_another_kind_or_version_is_refused(tmp_path):
    source = MemoryStore()
    fresh(source)
    accounts = [encode_account(a) for a in source.accounts()]
    for header in (genesis_header(source, magic="OTHER"), genesis_header(source, version=2)):
        snapshot_file(tmp_path / "bad", header, accounts, ("end", len(accounts)))
        _refused(tmp_path, (tmp_path / "bad").read_bytes(), "^not a QENEX snapshot of this version$")


def test_a_snapshot_whose_trailer_or_count_disagrees_is_refused(tmp_path):
    source = MemoryStore()
    fresh(source)
    accounts = [encode_account(a) for a in source.accounts()]
    snapshot_file(tmp_path / "bad", genesis_header(source), accounts, ("end", len(accounts) - 1))
    _refused(tmp_path, (tmp_path / "bad").read_bytes(), "^snapshot trailer mismatch$")
    snapshot_file(tmp_path / "bad", genesis_header(source), accounts, ("fin", len(accounts)))
    _refused(tmp_path, (tmp_path / "bad").read_bytes(), "^snapshot trailer mismatch$")
    snapshot_file(tmp_path / "bad", genesis_header(source, count=len(accounts) - 1),
                  accounts[:-1], ("end", len(accounts) - 1))
    _refused(tmp_path, (tmp_path / "bad").read_bytes(),
             "^snapshot accounts do not hash to its state root$")


def test_a_snapshot_with_an_undecodable_part_is_refused(tmp_path):
    source = MemoryStore()
    fresh(source)
    accounts = [encode_account(a) for a in source.accounts()]
    _refused(tmp_path, frame(b"\xff"), "^snapshot undecodable: ")
    _refused(tmp_path, frame(canonical.encode(("too", "short"))), "^snapshot undecodable: ")
    snapshot_file(tmp_path / "bad", genesis_header(source), [b"\xff"] + accounts[1:],
                  ("end", len(accounts)))
    _refused(tmp_path, (tmp_path / "bad").read_bytes(), "^snapshot undecodable: ")


def test_lmdb_opens_synced_and_locked_with_a_bounded_reader_table(tmp_path):
    # Durability is the point of the store: a commit returns only after fdatasync.
    with LmdbStore.open(tmp_path / "db") as store:
        flags = store._env.flags()
        assert (flags["sync"], flags["metasync"], flags["lock"]) == (True, True, True)
        assert (flags["writemap"], flags["map_async"], flags["readahead"]) == (False, False, False)
        assert store._env.max_readers() == READERS_MAX == 256


def test_an_lmdb_write_that_fails_is_reported_and_stores_nothing(tmp_path):
    with LmdbStore.open(tmp_path / "db") as store:
        with pytest.raises(StorageWriteFailed, match="^LMDB write failed: "):
            store._write([(b"engine", b"a", seal(b"engine", b"a", canonical.encode(1))),
                          (b"engine", b"", b"x")])  # LMDB refuses an empty key
        assert store.engine_records() == ()


def test_lmdb_disk_bytes_are_the_pages_in_use_and_grow_with_the_data(tmp_path):
    with LmdbStore.open(tmp_path / "db") as store:
        empty = store.disk_bytes()
        assert empty == os.path.getsize(tmp_path / "db" / "data.mdb")  # no writemap: no holes
        store._write([(b"engine", b"k%d" % i, seal(b"engine", b"k%d" % i, b"x" * 3000))
                      for i in range(100)])
        used = store.disk_bytes()
        assert used == os.path.getsize(tmp_path / "db" / "data.mdb")
        assert used >= empty + 100 * 3000 and used % store._env.stat()["psize"] == 0


def test_both_stores_scan_a_half_open_key_range_in_order_up_to_a_count(store):
    keys = [b"a", b"b", b"ba", b"c", b"d"]
    store._write([(b"engine", k, b"v" + k) for k in reversed(keys)])
    assert store._scan(b"engine", b"b", b"d", None) == [(b"b", b"vb"), (b"ba", b"vba"), (b"c", b"vc")]
    assert store._scan(b"engine", b"b", b"d", 2) == [(b"b", b"vb"), (b"ba", b"vba")]
    assert store._scan(b"engine", b"b", b"c", 1) == [(b"b", b"vb")]
    assert store._scan(b"engine", b"e", b"z", None) == []


def test_deleting_a_record_that_is_not_there_is_no_error(store):
    store.put_engine_records([("never-written", None)])
    store.put_guard_records([Persist("never-written", None)])
    assert store.engine_records() == () and store.guard_records() == ()


def test_fail_next_write_fails_exactly_the_next_write_and_requests_add_up():
    store = MemoryStore()
    store.fail_next_write()
    with pytest.raises(StorageWriteFailed):
        store.put_engine_records([("a", 1)])
    store.put_engine_records([("a", 1)])
    store.put_engine_records([("b", 2)])
    assert store.writes == 2  # one count per committed write
    store.fail_next_write()
    store.fail_next_write()
    for _ in range(2):
        with pytest.raises(StorageWriteFailed):
            store.put_engine_records([("c", 3)])
    store.put_engine_records([("c", 3)])
    assert store.engine_records() == (("a", 1), ("b", 2), ("c", 3)) and store.writes == 3


def test_corrupt_changes_the_value_whatever_its_last_byte():
    store = MemoryStore()
    for last in (b"\x00", b"\x01", b"\xff"):
        store._write([(b"engine", b"k", seal(b"engine", b"k", b"p" + last))])
        store.corrupt(b"engine", b"k")
        with pytest.raises(StorageCorruption, match="checksum mismatch"):
            unseal(b"engine", b"k", store._get(b"engine", b"k"))


# ---------------------------------------------------------------- the evidence index
EV_FAR = 1_000_000


def ev_commit(store, ledger, pieces) -> None:
    block = block_with(ledger, pieces)
    result = ledger.apply(block)
    store.commit_block(block, None, result.applied, result.state_changes, (),
                       evidence_in_block(block))


def ev_positions(page) -> list[tuple[int, int, int]]:
    return [(r.height, r.index, r.validator) for r in page.records]


class ReadCounter:
    """A real store seen through the RangeReader protocol, counting the index entries read."""

    def __init__(self, store) -> None:
        self.store, self.entries = store, 0

    def _scan(self, table, start, stop, count_max):
        found = self.store._scan(table, start, stop, count_max)
        self.entries += len(found)
        return found

    def _get(self, table, key):
        return self.store._get(table, key)


def test_evidence_against_the_highest_validator_id_is_indexed_and_one_more_is_refused(store):
    ledger = fresh(store)
    top = piece(0, 1)
    block = block_with(ledger, [top])
    result = ledger.apply(block)

    class Accused:
        def __init__(self, validator):
            self.validator = validator

    with pytest.raises(StorageError, match=f"^evidence at height 1 names validator {VALIDATOR_END}$"):
        store.commit_block(block, None, result.applied, result.state_changes, (),
                           [Accused(VALIDATOR_END)])
    with pytest.raises(StorageError, match="^evidence at height 1 names validator '1'$"):
        store.commit_block(block, None, result.applied, result.state_changes, (), [Accused("1")])
    store._write(evidence_ops(1, [piece(VALIDATOR_END - 1, 1)]))
    page = store.evidence(0, EV_FAR, validator=VALIDATOR_END - 1, limit=5)
    assert ev_positions(page) == [(1, 0, VALIDATOR_END - 1)]


def test_evidence_against_validator_zero_is_found_by_validator(store):
    ledger = fresh(store)
    ev_commit(store, ledger, [piece(0, 1), piece(1, 1)])
    assert ev_positions(store.evidence(0, EV_FAR, validator=0, limit=5)) == [(1, 0, 0)]


def test_a_query_outside_every_key_is_an_empty_final_page(store):
    ledger = fresh(store)
    ev_commit(store, ledger, [piece(0, 1)])
    for page in (store.evidence(0, EV_FAR, validator=-1, limit=5),
                 store.evidence(0, EV_FAR, validator=VALIDATOR_END, limit=5),
                 store.evidence(5, 4, limit=5), store.evidence(-9, -1, limit=5)):
        assert page == EvidencePage((), 0)


def test_a_query_may_name_heights_beyond_any_key(store):
    far = HEIGHT_END - 2  # the highest height a query reaches
    store._write(evidence_ops(far, [piece(4, 1)]))
    assert ev_positions(store.evidence(far, 2**70, limit=5)) == [(far, 0, 4)]
    assert ev_positions(store.evidence(0, 2**70, validator=4, limit=5)) == [(far, 0, 4)]


def test_a_limit_below_one_is_refused_and_a_limit_of_one_pages_piece_by_block(store):
    ledger = fresh(store)
    ev_commit(store, ledger, [piece(0, 1)])
    ev_commit(store, ledger, [piece(1, 1)])
    with pytest.raises(ValueError, match="^limit must be at least 1$"):
        store.evidence(0, EV_FAR, limit=0)
    first = store.evidence(0, EV_FAR, limit=1)
    assert (ev_positions(first), first.next_height) == ([(1, 0, 0)], 2)


def test_a_range_holding_exactly_limit_pieces_is_one_final_page(store):
    ledger = fresh(store)
    ev_commit(store, ledger, [piece(0, 1), piece(1, 1)])
    ev_commit(store, ledger, [piece(2, 1)])
    page = store.evidence(0, EV_FAR, limit=3)
    assert (len(page.records), page.next_height) == (3, 0)


def test_a_page_ends_before_a_block_it_would_cut(store):
    ledger = fresh(store)
    for pieces in ([piece(0, 1)], [piece(1, 1)], [piece(2, 1), piece(3, 1)]):
        ev_commit(store, ledger, pieces)
    page = store.evidence(0, EV_FAR, limit=3)  # the 3rd piece would cut block 3
    assert (ev_positions(page), page.next_height) == ([(1, 0, 0), (2, 0, 1)], 3)


def test_a_block_larger_than_the_limit_is_a_page_of_its_own(store):
    ledger = fresh(store)
    ev_commit(store, ledger, [piece(0, 1), piece(1, 1), piece(2, 1)])
    ev_commit(store, ledger, [piece(3, 1)])
    ev_commit(store, ledger, [piece(4, 1)])
    page = store.evidence(0, EV_FAR, limit=2)
    assert (ev_positions(page), page.next_height) == ([(1, 0, 0), (1, 1, 1), (1, 2, 2)], 2)
    only_first = store.evidence(0, 1, limit=2)  # nothing after it in range
    assert (len(only_first.records), only_first.next_height) == (3, 0)
    up_to_two = store.evidence(0, 2, limit=2)
    assert (len(up_to_two.records), up_to_two.next_height) == (3, 2)


def test_a_page_reads_at_most_one_index_entry_past_its_limit():
    store = MemoryStore()
    ledger = fresh(store)
    for _ in range(6):
        ev_commit(store, ledger, [piece(0, 1), piece(1, 1)])
    reader = ReadCounter(store)
    page = query_evidence(reader, 0, EV_FAR, None, 4)
    assert len(page.records) == 4 and reader.entries == 5
    big = MemoryStore()
    ledger = fresh(big)
    ev_commit(big, ledger, [piece(v, 1) for v in range(5)])
    for _ in range(4):
        ev_commit(big, ledger, [piece(0, 1)])
    reader = ReadCounter(big)
    page = query_evidence(reader, 0, EV_FAR, None, 2)
    # limit + 1, then the whole block, then one entry to find where the next page starts
    assert (len(page.records), page.next_height) == (5, 2) and reader.entries == 3 + 5 + 1


def test_an_unreadable_evidence_row_or_a_dangling_index_entry_is_corruption(store):
    ledger = fresh(store)
    ev_commit(store, ledger, [piece(0, 1)])
    key = evidence_key(1, 0)
    raw_put(store, b"evidence", key, seal(b"evidence", key, canonical.encode(7)))
    with pytest.raises(StorageCorruption, match=f"^evidence\\[{key.hex()}\\]: "):
        store.evidence(0, EV_FAR, limit=5)
    raw_put(store, b"evidence", key, None)
    with pytest.raises(StorageCorruption,
                       match=f"^evidence_validator points at missing evidence\\[{key.hex()}\\]$"):
        store.evidence(0, EV_FAR, validator=0, limit=5)
