"""Mempool: bounded, deduplicated, nothing admitted is silently lost."""
from __future__ import annotations

from qenex_node.core.mempool import AddResult, Mempool, MempoolLimits


def _tx(i: int) -> tuple[bytes, bytes]:
    return i.to_bytes(32, "big"), b"tx%d" % i


def test_duplicates_are_refused_while_pending_or_proposed():
    pool = Mempool()
    assert pool.add(*_tx(1)) == AddResult.ADDED
    assert pool.add(*_tx(1)) == AddResult.DUPLICATE
    pool.cut_batch(10, 10_000, now_ms=0)
    assert pool.add(*_tx(1)) == AddResult.DUPLICATE


def test_limits_refuse_instead_of_growing():
    pool = Mempool(MempoolLimits(txs_max=2, bytes_max=1_000))
    assert [pool.add(*_tx(i)) for i in range(3)] == [AddResult.ADDED] * 2 + [AddResult.FULL]
    small = Mempool(MempoolLimits(txs_max=10, bytes_max=5))
    assert small.add(b"a", b"123456") == AddResult.FULL


def test_batches_are_fifo_and_respect_limits():
    pool = Mempool()
    for i in range(5):
        pool.add(*_tx(i))
    assert pool.cut_batch(2, 10_000, now_ms=0) == (b"tx0", b"tx1")
    assert pool.cut_batch(10, 7, now_ms=0) == (b"tx2", b"tx3")  # 4 + 4 bytes > 7 stops
    assert pool.pending_count == 1


def test_refused_batch_returns_to_the_front():
    pool = Mempool()
    for i in range(3):
        pool.add(*_tx(i))
    batch = pool.cut_batch(2, 10_000, now_ms=0)
    pool.return_batch([_tx(0)[0], _tx(1)[0]])
    assert pool.cut_batch(3, 10_000, now_ms=0) == batch + (b"tx2",)


def test_uncommitted_proposals_come_back_after_the_timeout():
    pool = Mempool(MempoolLimits(proposal_timeout_ms=100))
    pool.add(*_tx(1))
    pool.cut_batch(1, 100, now_ms=0)
    assert pool.requeue_stale(now_ms=99) == 0 and pool.pending_count == 0
    assert pool.requeue_stale(now_ms=100) == 1 and pool.pending_count == 1


def test_committed_transactions_leave_and_free_their_bytes():
    pool = Mempool()
    pool.add(*_tx(1))
    pool.add(*_tx(2))
    pool.cut_batch(1, 100, now_ms=0)
    pool.remove_committed([_tx(1)[0], _tx(2)[0]])
    assert len(pool) == 0 and pool.size_bytes == 0


def test_one_senders_transactions_are_batched_in_nonce_order():
    pool = Mempool()
    alice, bob = b"A" * 20, b"B" * 20
    pool.add(b"a2", b"alice-2", alice, 2)
    pool.add(b"b1", b"bob-1", bob, 1)
    pool.add(b"a1", b"alice-1", alice, 1)
    pool.add(b"a3", b"alice-3", alice, 3)
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-1", b"alice-2", b"alice-3",
                                                    b"bob-1")


def test_a_nonce_gap_is_held_back_until_it_fills():
    pool = Mempool()
    alice = b"A" * 20
    # Committed nonce 4: nonce 6 leaves a gap (5 is missing), so it waits outside batches.
    assert pool.add(b"a6", b"alice-6", alice, 6, committed_nonce=4) == AddResult.HELD
    assert pool.held_count == 1 and b"a6" in pool and len(pool) == 1
    assert pool.cut_batch(10, 10_000, now_ms=0) == ()
    assert pool.add(b"a5", b"alice-5", alice, 5, committed_nonce=4) == AddResult.ADDED
    assert pool.held_count == 0
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-5", b"alice-6")


def test_a_gap_across_two_batches_is_released_behind_the_first():
    pool = Mempool()
    alice = b"A" * 20
    pool.add(b"a1", b"alice-1", alice, 1, committed_nonce=0)
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-1",)
    # 3 arrives before 2; 1 is proposed (present), so only 3 has a gap.
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0) == AddResult.HELD
    assert pool.add(b"a2", b"alice-2", alice, 2, committed_nonce=0) == AddResult.ADDED
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-2", b"alice-3")


def test_commit_of_the_missing_nonce_elsewhere_releases_the_held_one():
    pool = Mempool()
    alice = b"A" * 20
    pool.add(b"a1", b"alice-1", alice, 1, committed_nonce=0)
    pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0)
    pool.remove_committed([b"a1"])
    assert pool.held_count == 1  # 2 is still missing
    # The sender's nonce 2 committed through another node: the next admission says so.
    assert pool.add(b"a4", b"alice-4", alice, 4, committed_nonce=2) == AddResult.ADDED
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-3", b"alice-4")


def test_a_block_committing_the_gap_elsewhere_releases_the_held_one_without_new_input():
    # A closed-loop client: nonce 1 committed through another node, then nonce 2 reached
    # this node while it had not yet applied that block, so 2 was held behind a gap only
    # the block fills. The client sends nothing more until 2 commits.
    pool = Mempool()
    alice, bob = b"A" * 20, b"B" * 20
    assert pool.add(b"a2", b"alice-2", alice, 2, committed_nonce=0) == AddResult.HELD
    assert pool.cut_batch(10, 10_000, now_ms=0) == ()
    assert pool.note_committed(((alice, 1), (bob, 7))) == 1
    assert (pool.held_count, pool.pending_count, len(pool)) == (0, 1, 1)
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-2",)


def test_a_held_transaction_whose_nonce_another_took_is_released_to_get_a_receipt():
    pool = Mempool()
    alice = b"A" * 20
    pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0)
    pool.add(b"a4", b"alice-4", alice, 4, committed_nonce=0)
    # Nonce 3 committed with other bytes (a client's retry elsewhere): this copy can only
    # fail, and should, so its waiting client is answered instead of timing out.
    assert pool.note_committed(((alice, 3),)) == 2
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-3", b"alice-4")
    assert pool.note_committed(((alice, 2),)) == 0  # older news changes nothing
    pool.remove_committed([b"a3", b"a4"])
    assert (len(pool), pool.size_bytes) == (0, 0)


def test_held_transactions_are_bounded_per_sender_and_counted_in_limits():
    pool = Mempool(MempoolLimits(held_per_sender_max=2, txs_max=3))
    alice = b"A" * 20
    assert pool.add(b"a3", b"x", alice, 3, committed_nonce=0) == AddResult.HELD
    assert pool.add(b"a4", b"x", alice, 4, committed_nonce=0) == AddResult.HELD
    assert pool.add(b"a5", b"x", alice, 5, committed_nonce=0) == AddResult.NONCE_GAP
    assert pool.add(b"a3", b"x", alice, 3, committed_nonce=0) == AddResult.DUPLICATE
    assert pool.add(b"b1", b"y", b"B" * 20, 1, committed_nonce=0) == AddResult.ADDED
    assert pool.add(b"c1", b"z", b"C" * 20, 1, committed_nonce=0) == AddResult.FULL
    assert pool.size_bytes == 3


def test_unknown_committed_nonce_holds_nothing():
    pool = Mempool()
    assert pool.add(b"a9", b"alice-9", b"A" * 20, 9) == AddResult.ADDED
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-9",)


def test_own_proposals_wait_for_a_new_epoch_but_forwarded_ones_go_again_on_time():
    pool = Mempool(MempoolLimits(proposal_timeout_ms=100, own_proposal_timeout_factor=10))
    pool.add(*_tx(1))
    pool.add(*_tx(2))
    pool.cut_batch(1, 100, now_ms=0, epoch=(3, 0))  # tx1: proposed by us in view 3
    pool.cut_batch(1, 100, now_ms=0, epoch=(3, 0))  # tx2: handed to the leader
    pool.mark_forwarded([_tx(2)[0]])
    assert pool.requeue_stale(now_ms=150, epoch=(3, 0)) == 1  # only the forwarded one
    assert pool.cut_batch(5, 100, now_ms=150) == (b"tx2",)
    assert pool.requeue_stale(now_ms=150, epoch=(4, 1)) == 1  # the view changed: tx1 too
    pool = Mempool(MempoolLimits(proposal_timeout_ms=100, own_proposal_timeout_factor=10))
    pool.add(*_tx(1))
    pool.cut_batch(1, 100, now_ms=0, epoch=(3, 0))
    assert pool.requeue_stale(now_ms=999, epoch=(3, 0)) == 0
    assert pool.requeue_stale(now_ms=1_000, epoch=(3, 0)) == 1  # last resort


def test_a_forwarded_transaction_goes_again_as_soon_as_its_epoch_ends():
    # The leader it went to may be the crashed node the view change replaced: waiting out
    # the forward timeout in the new view only delays it.
    pool = Mempool(MempoolLimits(proposal_timeout_ms=3_000))
    pool.add(*_tx(1))
    pool.cut_batch(1, 100, now_ms=0, epoch=(3, 0))
    pool.mark_forwarded([_tx(1)[0]], (3, 0))
    assert pool.requeue_stale(now_ms=100, epoch=(3, 0)) == 0  # same leader: it has it
    assert pool.requeue_stale(now_ms=100, epoch=(4, None)) == 1  # its epoch ended
    assert pool.cut_batch(5, 100, now_ms=100, epoch=(4, 1)) == (b"tx1",)


def test_a_nonce_the_ledger_already_used_is_refused():
    """A peer re-forwards a committed transfer after this node restarted (its recent
    committed ids are gone): the applied nonce refuses it, so it is not ordered twice."""
    pool = Mempool()
    alice = b"alice"
    assert pool.add(b"a4", b"alice-4", alice, 4, committed_nonce=4) == AddResult.NONCE_TOO_LOW
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=4) == AddResult.NONCE_TOO_LOW
    assert b"a4" not in pool and len(pool) == 0
    assert pool.add(b"a5", b"alice-5", alice, 5, committed_nonce=4) == AddResult.ADDED


def test_a_transaction_that_exactly_fills_the_byte_limits_is_taken():
    pool = Mempool(MempoolLimits(bytes_max=8))
    assert pool.add(b"a", b"1234") == AddResult.ADDED
    assert pool.add(b"b", b"5678") == AddResult.ADDED  # 8 of 8 bytes
    assert pool.add(b"c", b"9") == AddResult.FULL
    assert pool.cut_batch(10, 8, now_ms=0) == (b"1234", b"5678")


def test_a_new_senders_committed_nonce_anchors_the_gap_check():
    pool = Mempool()
    alice = b"A" * 20
    assert pool.add(b"a5", b"alice-5", alice, 5, committed_nonce=4) == AddResult.ADDED
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-5",)


def test_news_of_an_unknown_sender_does_not_stop_the_others_being_released():
    pool = Mempool()
    alice, bob = b"A" * 20, b"B" * 20
    assert pool.add(b"a2", b"alice-2", alice, 2, committed_nonce=0) == AddResult.HELD
    assert pool.add(b"a5", b"alice-5", alice, 5, committed_nonce=0) == AddResult.HELD
    assert pool.note_committed(((bob, 7), (alice, 1))) == 1  # 5 still waits for 3 and 4
    assert (pool.held_count, pool.pending_count) == (1, 1)


def test_released_transactions_keep_their_senders_place_in_the_batch():
    pool = Mempool()
    alice, bob = b"A" * 20, b"B" * 20
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0) == AddResult.HELD
    assert pool.add(b"b2", b"bob-2", bob, 2, committed_nonce=0) == AddResult.HELD
    assert pool.note_committed(((alice, 2), (bob, 1))) == 2
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-3", b"bob-2")


def test_committing_a_transaction_here_fills_the_gap_behind_it():
    pool = Mempool()
    alice = b"A" * 20
    # Nonce 2 came without a committed nonce (nothing known: not held), 3 with one.
    assert pool.add(b"a2", b"alice-2", alice, 2) == AddResult.ADDED
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0) == AddResult.HELD
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-2",)
    pool.remove_committed([b"a2"])
    assert (pool.held_count, pool.pending_count) == (0, 1)
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-3",)


def test_a_sender_is_forgotten_once_none_of_its_transactions_remain():
    pool = Mempool()
    alice, bob = b"A" * 20, b"B" * 20
    pool.add(b"a1", b"alice-1", alice, 1, committed_nonce=0)
    pool.add(b"a2", b"alice-2", alice, 2, committed_nonce=0)
    pool.add(b"a4", b"alice-4", alice, 4, committed_nonce=0)  # held
    pool.add(b"b1", b"bob-1", bob, 1, committed_nonce=0)
    pool.add(b"b3", b"bob-3", bob, 3, committed_nonce=0)  # held
    pool.remove_committed([b"a1"])
    assert sorted(pool._senders) == [alice, bob]  # alice still has 2 (and 4) here
    pool.note_committed(((bob, 2),))  # releases 3
    pool.note_committed(((alice, 3),))  # releases 4
    pool.remove_committed([b"a2", b"a4", b"b1", b"b3"])
    # Bounded: a sender's bookkeeping lives only while its transactions do.
    assert (len(pool), pool.size_bytes, pool._senders) == (0, 0, {})


def test_returning_transactions_that_are_not_proposed_changes_nothing():
    pool = Mempool()
    pool.add(*(b"t1", b"tx1"))
    pool.return_batch([b"unknown", b"t1"])  # t1 is pending, not proposed
    assert pool.cut_batch(10, 100, now_ms=0) == (b"tx1",)


def test_a_held_transaction_is_released_whenever_the_committed_nonce_passes_it():
    alice = b"A" * 20
    # 1. An admission that knows more: nonce 3 committed elsewhere.
    pool = Mempool()
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0) == AddResult.HELD
    assert pool.add(b"a4", b"alice-4", alice, 4, committed_nonce=3) == AddResult.ADDED
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-3", b"alice-4")
    # 2. A transaction of this pool commits a higher nonce than the held one.
    pool = Mempool()
    assert pool.add(b"a5", b"alice-5", alice, 5) == AddResult.ADDED  # nonce not checked
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0) == AddResult.HELD
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"alice-5",)
    pool.remove_committed([b"a5"])
    assert (pool.held_count, pool.pending_count) == (0, 1)  # answered, not stranded
    assert pool.note_committed(((alice, 5),)) == 0


def test_a_senders_pending_transactions_still_anchor_its_next_nonce_after_a_commit():
    pool = Mempool()
    alice = b"A" * 20
    pool.add(b"a1", b"alice-1", alice, 1, committed_nonce=0)
    pool.add(b"a2", b"alice-2", alice, 2, committed_nonce=0)
    pool.remove_committed([b"a1"])
    assert pool.add(b"a3", b"alice-3", alice, 3, committed_nonce=0) == AddResult.ADDED


def test_transactions_without_a_sender_keep_their_place_among_the_others():
    pool = Mempool()
    alice = b"A" * 20
    pool.add(b"t1", b"opaque-1")
    pool.add(b"a1", b"alice-1", alice, 1, committed_nonce=0)
    pool.add(b"t2", b"opaque-2")
    assert pool.cut_batch(10, 10_000, now_ms=0) == (b"opaque-1", b"alice-1", b"opaque-2")
