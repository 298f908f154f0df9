"""Stable wire names: what is hashed, signed and stored never depends on a module path.

Golden vectors pin the canonical bytes and SHA-256 of a fixed header, block, vote and
certificate, and the exact signing bytes of a vote. If one of these tests fails, the
change forks every chain and orphans every stored record: give the type a new versioned
wire name instead (and say so in the README's changelog).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib

import pytest

from consensus import canonical
from consensus.pbft.messages import Commit, Prepare
from consensus.types import Block, BlockHeader, Certificate, SignedMessage, signing_bytes
from ledger.ledger import Ledger
from ledger.storage.lmdb_store import LmdbStore
from tests.unit.ledger_helpers import CHAIN, make_genesis, next_block

HEADER = BlockHeader(chain_id="golden", height=7, parent_hash=bytes(range(32)),
                     tx_root=b"\x11" * 32, state_height=6, state_root=b"\x22" * 32,
                     proposer=3, timestamp_ms=1_700_000_000_000)
BLOCK = Block(HEADER, (b"tx-one", b"tx-two"))
VOTE = Prepare(view=2, sequence=7, digest=b"\x33" * 32, replica=4)
CERT = Certificate("pbft.commit", 7, b"\x33" * 32,
                   (SignedMessage(4, Commit(2, 7, b"\x33" * 32, 4), b"\x44" * 8),))

# label -> (canonical bytes, SHA-256 of them). Pinned on 2026-12-02; never edit in place.
GOLDEN = {
    "header": (
        "44531571656e65782e626c6f636b5f6865616465722e7631085306676f6c64656e490e4220000102030405"
        "060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f4220111111111111111111111111111111"
        "1111111111111111111111111111111111490c422022222222222222222222222222222222222222222222"
        "2222222222222222222249064980a0abfef962",
        "64cb5d2019852745ed12d478bd6d47804b0c08e5d5e27b737721965728fe427c"),
    "block": (
        "44530e71656e65782e626c6f636b2e76310344531571656e65782e626c6f636b5f6865616465722e763108"
        "5306676f6c64656e490e4220000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e"
        "1f42201111111111111111111111111111111111111111111111111111111111111111490c422022222222"
        "2222222222222222222222222222222222222222222222222222222249064980a0abfef9624c0242067478"
        "2d6f6e65420674782d74776f422064cb5d2019852745ed12d478bd6d47804b0c08e5d5e27b737721965728"
        "fe427c",
        "8c6915d1930f6a5d694b815b322a6efaea5a93c3229347fc2c01fca1b34af5f0"),
    "vote": (
        "44530f706266742e707265706172652e7631044904490e4220333333333333333333333333333333333333"
        "33333333333333333333333333334908",
        "7c5cf3638856d7a3d7555eacca2c05e780a78af09706ede63b1cde436fecec41"),
    "certificate": (
        "44531471656e65782e63657274696669636174652e763104530b706266742e636f6d6d6974490e42203333"
        "3333333333333333333333333333333333333333333333333333333333334c0144531771656e65782e7369"
        "676e65645f6d6573736167652e763103490844530e706266742e636f6d6d69742e7631044904490e422033"
        "33333333333333333333333333333333333333333333333333333333333333490842084444444444444444",
        "c0d105fcb45d7243caa3726bd3de62160b683321a2ea37ff0cdc82552a0cd8b5"),
}
VALUES = {"header": HEADER, "block": BLOCK, "vote": VOTE, "certificate": CERT}
VOTE_SIGNING_BYTES = (
    "4c04420f51454e45582f636f6e73656e7375735306676f6c64656e420f706266742e707265706172652e7631"
    "490244530f706266742e707265706172652e7631044904490e42203333333333333333333333333333333333"
    "3333333333333333333333333333334908"
)


@pytest.mark.parametrize("label", sorted(GOLDEN))
def test_golden_vectors_pin_bytes_and_hashes(label):
    encoded_hex, digest_hex = GOLDEN[label]
    value = VALUES[label]
    assert canonical.encode(value).hex() == encoded_hex
    assert canonical.digest(value).hex() == digest_hex
    assert canonical.decode(bytes.fromhex(encoded_hex)) == value


def test_block_hash_is_the_golden_header_digest():
    assert BLOCK.block_hash.hex() == GOLDEN["header"][1]


def test_signing_bytes_of_a_vote_are_pinned():
    assert signing_bytes("golden", VOTE).hex() == VOTE_SIGNING_BYTES


def _module_paths() -> list[bytes]:
    return sorted({f"{cls.__module__}.{cls.__qualname__}".encode()
                   for cls in canonical.registered_types().values()})


def test_wire_names_are_explicit_and_versioned():
    for module in ("consensus.types", "consensus.pbft", "consensus.raft", "ledger.account",
                   "ledger.errors", "ledger.genesis", "qenex_node.core.sync"):
        importlib.import_module(module)
    names = canonical.registered_types()
    assert len(names) >= 30
    for name, cls in names.items():
        assert canonical.WIRE_NAME_PATTERN.fullmatch(name), name
        assert f"{cls.__module__}." not in name, name


def test_register_refuses_module_like_or_unversioned_names():
    @dataclasses.dataclass(frozen=True)
    class Thing:
        x: int

    for bad in ("Thing", "tests.unit.Thing", "thing", "thing.v0", "thing.V1", "a..b.v1"):
        with pytest.raises(canonical.CanonicalError):
            canonical.register(bad)(Thing)
    with pytest.raises(canonical.CanonicalError, match="two classes"):
        canonical.register("qenex.block.v1")(Thing)


def test_signed_bytes_and_lmdb_files_hold_no_module_paths(tmp_path):
    importlib.import_module("consensus.raft")
    paths = _module_paths()
    assert b"consensus.types.BlockHeader" in paths  # the check looks for the right thing
    signed = signing_bytes(CHAIN, VOTE) + signing_bytes(CHAIN, CERT.votes[0].message)
    store = LmdbStore.open(tmp_path / "db", map_size_bytes=1 << 20)
    genesis = make_genesis(accounts=3)
    store.init_genesis(genesis)
    ledger = Ledger(genesis)
    block = next_block(ledger, [b"opaque"])
    result = ledger.apply(block)
    store.commit_block(block, CERT, result.applied, result.state_changes,
                       [("pbft/prepare", VOTE), ("view", 3)])
    store.close()
    files = b"".join(f.read_bytes() for f in sorted((tmp_path / "db").iterdir()))
    assert hashlib.sha256(files).digest() and b"pbft.prepare.v1" in files
    for path in paths:
        assert path not in signed and path not in files, path


# The read barrier's messages (consensus/read_barrier.py), one per wire name: SHA-256 of
# the canonical bytes, pinned on 2026-12-03. They are signed like every message.
def _read_barrier_values() -> dict[str, object]:
    from consensus.hotstuff import messages as hotstuff
    from consensus.pbft import messages as pbft
    from consensus.tendermint import messages as tendermint

    commit = SignedMessage(4, Commit(2, 7, b"\x33" * 32, 4), b"\x44" * 8)
    vote = SignedMessage(4, hotstuff.Vote(3, 7, b"\x33" * 32, 2, b"\x22" * 32, 4), b"\x44" * 8)
    prevote = SignedMessage(4, tendermint.Vote(7, 0, tendermint.VoteStep.PREVOTE, b"\x33" * 32,
                                               4), b"\x44" * 8)
    return {
        "pbft.read_query.v1": pbft.ReadQuery(5),
        "pbft.read_answer.v1": pbft.ReadAnswer(5, 7, (commit,)),
        "hotstuff.read_query.v1": hotstuff.ReadQuery(5),
        "hotstuff.read_answer.v1": hotstuff.ReadAnswer(5, 7, (vote,)),
        "tendermint.read_query.v1": tendermint.ReadQuery(5),
        "tendermint.read_answer.v1": tendermint.ReadAnswer(5, 7, (prevote,)),
    }


READ_BARRIER_DIGESTS = {
    "pbft.read_query.v1": "008fd6e93ecbd353bcfeb483bd65436cd4ca4a443392e760026d62aba2f0ab7b",
    "pbft.read_answer.v1": "c96ac970184ccc1e500f3ef052f489a3fcd3038c9d7d36565d73de367204f18e",
    "hotstuff.read_query.v1": "f054a3d3d792b706817e381414ef08b56fd57e1bb9c26b1a5231b87114358071",
    "hotstuff.read_answer.v1":
        "3c39dd421b220992f069bc8682f90b5c415b36893e98adf094afeccaa27b226d",
    "tendermint.read_query.v1":
        "f35245f03816d5adc5c6c55172e7cd343f13b2c7451a5438432391453b966a5e",
    "tendermint.read_answer.v1":
        "602147a547b11a203ecc18a1968a49ca5d851a3d1a124751077af06a5c38d2a3",
}


@pytest.mark.parametrize("name", sorted(READ_BARRIER_DIGESTS))
def test_read_barrier_messages_have_pinned_bytes(name):
    value = _read_barrier_values()[name]
    assert canonical.wire_name(type(value)) == name
    assert canonical.digest(value).hex() == READ_BARRIER_DIGESTS[name]
    assert canonical.decode(canonical.encode(value)) == value
