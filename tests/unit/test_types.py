"""Blocks, Merkle proofs, quorum arithmetic and signing bytes."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consensus import canonical
from consensus.types import (
    GENESIS_HASH,
    Block,
    Validator,
    ValidatorSet,
    bft_quorum,
    cft_quorum,
    make_block,
    max_faulty_bft,
    max_faulty_cft,
    merkle_proof,
    merkle_root,
    merkle_verify,
    signing_bytes,
)


@pytest.mark.parametrize("nodes, f, quorum", [(4, 1, 3), (7, 2, 5), (10, 3, 7), (16, 5, 11)])
def test_bft_quorums_intersect_in_an_honest_node(nodes, f, quorum):
    assert max_faulty_bft(nodes) == f and bft_quorum(nodes) == quorum
    assert 2 * quorum - nodes >= f + 1


@pytest.mark.parametrize("nodes, f, quorum", [(3, 1, 2), (5, 2, 3), (7, 3, 4)])
def test_cft_majority(nodes, f, quorum):
    assert max_faulty_cft(nodes) == f and cft_quorum(nodes) == quorum


@given(st.lists(st.binary(max_size=16), min_size=1, max_size=33), st.data())
def test_every_leaf_has_a_valid_proof_and_tampering_fails(leaves, data):
    index = data.draw(st.integers(0, len(leaves) - 1))
    root = merkle_root(leaves)
    path = merkle_proof(leaves, index)
    assert merkle_verify(leaves[index], index, len(leaves), path, root)
    assert not merkle_verify(leaves[index] + b"x", index, len(leaves), path, root)
    if len(leaves) > 1:
        assert not merkle_verify(leaves[index], index ^ 1, len(leaves), path, root) \
            or leaves[index] == leaves[index ^ 1 if index ^ 1 < len(leaves) else index]


def test_block_hash_is_recomputed_never_trusted():
    block = make_block("c", 1, GENESIS_HASH, (b"tx",), proposer=0, timestamp_ms=5)
    forged = Block(block.header, block.txs, block_hash=b"\x01" * 32)
    assert forged.block_hash == block.block_hash
    decoded = canonical.decode(canonical.encode(block))
    assert decoded == block and decoded.block_hash == block.block_hash


def test_block_hash_covers_every_header_field():
    block = make_block("c", 1, GENESIS_HASH, (b"tx",), proposer=0, timestamp_ms=5)
    for name, value in [("chain_id", "d"), ("height", 2), ("parent_hash", b"\x01" * 32),
                        ("tx_root", b"\x02" * 32), ("state_height", 1),
                        ("state_root", b"\x03" * 32), ("proposer", 1), ("timestamp_ms", 6)]:
        changed = Block(dataclasses.replace(block.header, **{name: value}), block.txs)
        assert changed.block_hash != block.block_hash, name


def test_tx_root_detects_swapped_transactions():
    block = make_block("c", 1, GENESIS_HASH, (b"a", b"b"), proposer=0, timestamp_ms=5)
    assert block.tx_root_matches()
    assert not Block(block.header, (b"b", b"a")).tx_root_matches()


def test_signing_bytes_differ_by_chain_kind_and_version():
    validator = Validator(0, b"k")
    base = signing_bytes("chain-a", validator)
    assert base.endswith(canonical.encode(validator))
    assert signing_bytes("chain-b", validator) != base
    assert signing_bytes("chain-a", validator, version=2) != base
    assert signing_bytes("chain-a", ValidatorSet((validator,))) != base


def test_validator_ids_must_be_dense():
    with pytest.raises(ValueError):
        ValidatorSet((Validator(1, b"k"),))
