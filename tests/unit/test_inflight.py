"""Blocks in flight: their transactions are known wherever the block hides in a message,
and when a height is final the losing proposals' transactions are handed back."""
from __future__ import annotations

from dataclasses import dataclass

from consensus.types import GENESIS_HASH, SignedMessage, make_block
from qenex_node.core.app import tx_id
from qenex_node.core.inflight import PENDING_BLOCKS_PER_HEIGHT_MAX, InFlightBlocks


@dataclass(frozen=True)
class Proposal:  # an engine message shape: a block inside a signed message inside a tuple
    entries: tuple[object, ...]


def block(height: int, *txs: bytes):  # type: ignore[no-untyped-def]
    return make_block("c", height, GENESIS_HASH, txs, 0, 1_000)


def test_blocks_are_found_inside_nested_messages():
    seen = InFlightBlocks()
    seen.note(Proposal((SignedMessage(1, block(3, b"a", b"b"), b""),)), committed_height=2)
    assert seen.carried() == {tx_id(b"a"), tx_id(b"b")}


def test_blocks_at_or_below_the_tip_are_ignored():
    seen = InFlightBlocks()
    seen.note(block(2, b"a"), committed_height=2)
    assert not seen and seen.carried() == set()


def test_a_final_height_hands_back_the_losers_transactions_only():
    seen = InFlightBlocks()
    winner, loser = block(3, b"a", b"b"), block(3, b"b", b"c")
    seen.note(winner, 2)
    seen.note(loser, 2)
    seen.note(block(4, b"d"), 2)
    dead = seen.final(winner, [tx_id(b"a"), tx_id(b"b")])
    assert dead == {tx_id(b"c")}  # b committed in the winner; c must be offered again
    assert seen.carried() == {tx_id(b"d")}


def test_conflicting_proposals_per_height_are_bounded():
    seen = InFlightBlocks()
    for i in range(PENDING_BLOCKS_PER_HEIGHT_MAX + 3):
        seen.note(block(5, bytes([i])), 0)
    assert len(seen.carried()) == PENDING_BLOCKS_PER_HEIGHT_MAX
