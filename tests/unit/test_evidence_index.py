"""The evidence index: written with its block, read by height range and by validator,
paged without repeats or gaps, and still there after a restart (LMDB and memory store)."""
from __future__ import annotations

import pytest

from consensus import canonical
from consensus.api import engine_class
from consensus.types import Certificate
from ledger.genesis import Genesis
from ledger.ledger import Ledger
from ledger.storage.codec import StorageError
from ledger.storage.lmdb_store import LmdbStore
from ledger.storage.memory_store import MemoryStore
from ledger.tx import build_transfer
from qenex_node.runtime.storage import LedgerStorage, evidence_extractor
from tests.unit.evidence_helpers import block_with, evidence_in_block, piece
from tests.unit.ledger_helpers import CHAIN, ED, address, make_genesis, seed

FAR_HEIGHT = 1_000_000


@pytest.fixture(params=["lmdb", "memory"])
def store(request, tmp_path):
    if request.param == "lmdb":
        s = LmdbStore.open(tmp_path / "db", map_size_bytes=64 * 1024)
        yield s
        s.close()
    else:
        yield MemoryStore()


def fresh(store) -> Ledger:
    genesis = make_genesis()
    store.init_genesis(genesis)
    return Ledger(genesis)


def commit(store, ledger: Ledger, pieces, txs=()) -> None:
    block = block_with(ledger, pieces, txs)
    result = ledger.apply(block)
    store.commit_block(block, Certificate("test", block.height, block.block_hash, ()),
                       result.applied, result.state_changes, (), evidence_in_block(block))


def positions(page) -> list[tuple[int, int, int]]:
    return [(r.height, r.index, r.validator) for r in page.records]


def test_committed_evidence_is_found_by_height_and_by_validator(store):
    ledger = fresh(store)
    transfer = build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")
    against_2, against_1 = piece(2, height=1), piece(1, height=1, round_=3)
    commit(store, ledger, [], (transfer,))  # height 1: an ordinary block
    commit(store, ledger, [against_2, against_1], (transfer,))  # height 2
    page = store.evidence(0, FAR_HEIGHT, limit=100)
    assert positions(page) == [(2, 0, 2), (2, 1, 1)] and page.next_height == 0
    assert [canonical.decode(r.evidence) for r in page.records] == [against_2, against_1]
    by_validator = store.evidence(0, FAR_HEIGHT, validator=1, limit=100)
    assert positions(by_validator) == [(2, 1, 1)]
    assert store.evidence(0, FAR_HEIGHT, validator=0, limit=100).records == ()
    assert store.evidence(1, 1, limit=100).records == ()  # the height range is honoured
    assert store.evidence(3, FAR_HEIGHT, limit=100).records == ()


def test_blocks_without_evidence_index_nothing(store):
    ledger = fresh(store)
    for nonce in (1, 2):
        commit(store, ledger, [], (build_transfer(CHAIN, ED, seed(1), nonce, address(2), 1,
                                                  "USD"),))
    assert store.height == 2
    assert store.evidence(0, FAR_HEIGHT, limit=100).records == ()
    assert list(store._iter(b"evidence")) == [] and list(store._iter(b"evidence_validator")) == []


def test_pages_follow_next_height_without_repeats_or_gaps(store):
    ledger = fresh(store)
    per_block = {1: [piece(0, 1)], 2: [piece(1, 1), piece(2, 1)], 3: [], 4: [piece(0, 3)],
                 5: [piece(3, 4, round_=0), piece(3, 4, round_=1), piece(3, 4, round_=2)]}
    for height in sorted(per_block):
        commit(store, ledger, per_block[height])
    seen, pages, start = [], [], 0
    while True:
        page = store.evidence(start, FAR_HEIGHT, limit=2)
        pages.append(positions(page))
        seen += positions(page)
        if page.next_height == 0:
            break
        assert page.next_height > start
        start = page.next_height
    everything = positions(store.evidence(0, FAR_HEIGHT, limit=100))
    assert seen == everything and len(everything) == 7
    # A page ends at a block boundary; a block larger than the limit comes whole.
    assert pages == [[(1, 0, 0)], [(2, 0, 1), (2, 1, 2)], [(4, 0, 0)],
                     [(5, 0, 3), (5, 1, 3), (5, 2, 3)]]


def test_validator_pages_use_the_secondary_index(store):
    ledger = fresh(store)
    for height in range(1, 6):
        commit(store, ledger, [piece(0, height), piece(1, height)])
    first = store.evidence(0, FAR_HEIGHT, validator=1, limit=3)
    assert positions(first) == [(1, 1, 1), (2, 1, 1), (3, 1, 1)] and first.next_height == 4
    rest = store.evidence(first.next_height, 5, validator=1, limit=3)
    assert positions(rest) == [(4, 1, 1), (5, 1, 1)] and rest.next_height == 0


def test_a_bad_validator_id_refuses_the_whole_commit(store):
    ledger = fresh(store)
    block = block_with(ledger, [piece(0, 1)])
    result = ledger.apply(block)

    class Unindexable:  # an extractor bug: the index cannot name the accused
        validator = -1

    with pytest.raises(StorageError):
        store.commit_block(block, None, result.applied, result.state_changes, (),
                           [Unindexable()])
    assert store.height == 0 and store.block(1) is None  # no block without its index


def test_ledger_storage_indexes_what_the_engine_finds_and_survives_a_restart(tmp_path):
    genesis: Genesis = make_genesis()
    path = str(tmp_path / "ledger")
    storage = LedgerStorage.open(path, genesis, 1 << 20,
                                 evidence_extractor(engine_class("tendermint")))
    accused = piece(2, height=1)
    block = block_with(storage.ledger, [accused])
    storage.write_step((), [(block, Certificate("test", 1, block.block_hash, ()))])
    storage.close()
    reopened = LedgerStorage.open(path, genesis, 1 << 20)
    try:
        page = reopened.store.evidence(1, reopened.height, validator=2, limit=10)
        assert [canonical.decode(r.evidence) for r in page.records] == [accused]
        assert reopened.store.block(1).block == block
    finally:
        reopened.close()


def test_engines_without_evidence_have_no_extractor():
    assert evidence_extractor(engine_class("tendermint")) is not None
    for name in ("pbft", "raft", "hotstuff"):
        assert evidence_extractor(engine_class(name)) is None
