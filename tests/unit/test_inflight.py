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


def nested(value: object, tuples: int) -> object:
    for _ in range(tuples):
        value = (value,)
    return value


def test_blocks_are_found_down_to_the_scan_depth_and_no_deeper():
    from qenex_node.core.inflight import SCAN_DEPTH_MAX

    at_limit, too_deep = InFlightBlocks(), InFlightBlocks()
    at_limit.note(nested(block(3, b"a"), SCAN_DEPTH_MAX), 2)
    too_deep.note(nested(block(3, b"a"), SCAN_DEPTH_MAX + 1), 2)
    assert (at_limit.carried(), too_deep.carried()) == ({tx_id(b"a")}, set())
    # The same bound through message fields: signed > proposal > tuple > signed > block.
    inner = SignedMessage(1, block(3, b"b"), b"")
    deep = SignedMessage(1, Proposal((inner,)), b"")
    at_limit.note(nested(deep, SCAN_DEPTH_MAX - 4), 2)
    too_deep.note(nested(deep, SCAN_DEPTH_MAX - 3), 2)
    assert tx_id(b"b") in at_limit.carried() and too_deep.carried() == set()


def test_a_block_inside_a_message_inside_a_message_is_found():
    seen = InFlightBlocks()
    seen.note(SignedMessage(1, Proposal((block(3, b"a"),)), b""), committed_height=2)
    assert seen.carried() == {tx_id(b"a")}


def test_blocks_are_remembered_up_to_the_pending_heights_bound():
    from qenex_node.core.inflight import PENDING_HEIGHTS_MAX

    seen = InFlightBlocks()
    seen.note(block(2 + PENDING_HEIGHTS_MAX, b"last"), committed_height=2)
    seen.note(block(3 + PENDING_HEIGHTS_MAX, b"past"), committed_height=2)
    assert seen.carried() == {tx_id(b"last")}
