"""Catch-up: what one answer carries, and the tracker's decisions - when to ask, whom,
and what comes next - as exact outputs for exact inputs. Pure: no clock, no network."""
from __future__ import annotations

from consensus import canonical
from consensus.types import GENESIS_HASH, Certificate, make_block
from qenex_node.core.sync import (
    SYNC_BLOCKS_MAX,
    CatchUpTracker,
    CommittedBlock,
    SyncLimits,
    SyncRequest,
    SyncResponse,
    SyncStatus,
    blocks_to_serve,
    sync_response,
)

NODES = 4
LIMITS = SyncLimits(status_interval_ticks=10, request_timeout_ticks=25, stall_intervals=1)
QUIET = (False, None)


def test_requested_block_count_is_capped_and_never_negative():
    assert blocks_to_serve(SyncRequest(1, 2**32 - 1, 0)) == SYNC_BLOCKS_MAX
    assert blocks_to_serve(SyncRequest(1, 5, 0)) == 5
    assert blocks_to_serve(SyncRequest(1, -3, 0)) == 0


def tracker(faults: int = 0, limits: SyncLimits = LIMITS) -> CatchUpTracker:
    return CatchUpTracker(0, NODES, faults, limits)


def tell(t: CatchUpTracker, *heights: tuple[int, int]) -> None:
    for node, height in heights:
        t.on_status(SyncStatus(height, b"\x01" * 32, node), 0)


def request(from_height: int) -> SyncRequest:
    return SyncRequest(from_height, SYNC_BLOCKS_MAX, 0)


def test_the_first_status_goes_out_at_the_end_of_the_first_interval():
    t = tracker()
    assert [t.on_tick(0) for _ in range(10)] == [QUIET] * 9 + [(True, None)]


def test_the_f_plus_first_highest_report_is_trusted():
    t = tracker(faults=1)
    tell(t, (3, 1_000), (2, 40))
    assert t.trusted_height() == 40 and t.target == 40


def test_an_unanswered_request_is_repeated_exactly_at_its_timeout():
    t = tracker()
    assert t.on_engine_request(9, (), 0) == request(1)
    outputs = [t.on_tick(0) for _ in range(25)]
    expected = [QUIET] * 25
    expected[9] = expected[19] = (True, None)  # stalled: the status goes out each interval
    expected[24] = (False, request(1))
    assert outputs == expected


def test_no_retry_once_the_target_is_reached_by_other_means():
    t = tracker()
    assert t.on_engine_request(5, (), 0) == request(1)
    assert all(t.on_tick(5)[1] is None for _ in range(40))  # the engine got there


def test_a_response_with_progress_asks_on_from_where_it_ended():
    t = tracker()
    tell(t, (2, 9))
    t.on_engine_request(9, (), 0)
    assert t.on_response(SyncResponse((), 9, 2), 7) == request(8)
    assert t.peer_heights == {2: 9}  # a short answer does not lower what a peer said
    assert t.on_response(SyncResponse((), 9, 3), 0) is None  # no progress: wait
    assert t.peer_heights == {2: 9, 3: 0}  # the responder holds at least that much
    assert t.on_response(SyncResponse((), 9, 0), 9) is None  # target reached
    assert t.peer_heights == {2: 9, 3: 0}  # only peers are recorded, never itself


def ask_everyone_in_vain(t: CatchUpTracker) -> list[int]:
    """Every peer asked answers with nothing: each is asked once, then no more."""
    asked = [t.pick_peer()]
    while (again := t.on_response(SyncResponse((), 9, asked[-1]), 0)) is not None:
        assert again == request(1)
        asked.append(t.pick_peer())
    return asked


def test_an_empty_answer_asks_each_other_peer_once_then_waits_for_the_next_stall():
    t = tracker()
    tell(t, (2, 9))
    t.on_engine_request(9, (), 0)
    assert sorted(ask_everyone_in_vain(t)) == [1, 2, 3]
    assert t.on_tick(0) == QUIET  # the answers ended the wait: no retry on the next tick
    outputs = [t.on_tick(0) for _ in range(9)]
    assert outputs[-1] == (True, request(1))  # a whole interval stalled: ask again


def test_a_response_before_any_request_with_progress_asks_on():
    t = tracker()
    tell(t, (2, 5))
    assert t.on_response(SyncResponse((), 5, 2), 1) == request(2)


def test_stalled_intervals_are_counted_from_the_last_request():
    t = tracker(limits=SyncLimits(status_interval_ticks=10, request_timeout_ticks=25,
                                  stall_intervals=2))
    tell(t, (2, 9))
    t.on_engine_request(9, (), 0)
    ask_everyone_in_vain(t)
    outputs = [t.on_tick(0) for _ in range(20)]
    expected = [QUIET] * 20
    expected[9] = (True, None)  # one interval without progress: not yet
    expected[19] = (True, request(1))
    assert outputs == expected


def picks(t: CatchUpTracker, count: int = 3) -> list[int]:
    return [t.pick_peer() for _ in range(count)]


def test_requests_rotate_over_the_peers_known_to_be_ahead():
    t = tracker()
    tell(t, (1, 5), (2, 9), (3, 9))
    assert picks(t, 4) == [3, 2, 3, 2]  # 1 is behind the target of 9
    level = tracker()
    tell(level, (1, 9), (2, 9), (3, 9))
    assert picks(level, 4) == [2, 3, 1, 2]


def test_a_peer_that_never_reported_is_not_taken_for_ahead():
    t = tracker()
    tell(t, (2, 1))
    assert picks(t) == [2, 2, 2]


def test_the_engines_choice_comes_first_then_the_peers_ahead():
    t = tracker()
    tell(t, (1, 5), (2, 9))
    t.on_engine_request(9, (3,), 0)
    assert picks(t, 4) == [2, 3, 2, 3]  # candidates (3, 2), round-robin


def test_with_nobody_known_to_be_ahead_any_peer_is_asked():
    t = tracker()
    t.on_engine_request(9, (), 0)
    assert picks(t) == [2, 3, 1]


def hear(t: CatchUpTracker, *peers: int) -> None:
    for peer in peers:
        t.heard_from(peer)


def test_a_peer_that_let_a_request_time_out_is_left_out_until_it_answers():
    t = tracker()
    tell(t, (1, 9), (2, 9), (3, 9))
    t.on_engine_request(9, (), 0)
    assert t.pick_peer() == 2
    for _ in range(25):  # the request times out and goes again
        hear(t, 1, 2, 3)  # 2 is up (it sends consensus traffic) but did not answer
        t.on_tick(0)
    assert picks(t, 4) == [1, 3, 1, 3]
    t.on_response(SyncResponse((), 9, 2), 0)
    assert t.unresponsive == set()  # it answered: it may be asked again


def test_a_peer_silent_for_two_status_intervals_is_left_out():
    t = tracker()
    tell(t, (1, 9), (2, 9), (3, 9))
    for _ in range(21):  # 2 * status_interval_ticks + 1: peer 3 has crashed
        hear(t, 1, 2)
        t.on_tick(9)
    assert sorted(set(picks(t, 6))) == [1, 2]
    hear(t, 3)  # it restarted and spoke
    assert sorted(set(picks(t, 6))) == [1, 2, 3]


def test_the_engines_choice_known_to_be_behind_gives_way_to_peers_ahead():
    t = tracker()
    tell(t, (1, 5), (2, 9))
    t.on_engine_request(9, (1, 3), 0)  # 1 vouched once but says 5 now; 3 never said
    assert picks(t, 4) == [2, 3, 2, 3]


def test_when_every_peer_failed_once_all_are_asked_again():
    t = tracker()
    t.on_engine_request(9, (), 0)
    asked = []
    for _ in range(3):  # each request times out in turn
        asked.append(t.asked if t.asked is not None else t.pick_peer())
        for _ in range(25):
            hear(t, 1, 2, 3)
            t.on_tick(0)
        t.pick_peer()
    assert sorted(asked) == [1, 2, 3] and t.unresponsive == set()


def test_the_engine_asking_adds_no_second_request_while_one_is_in_flight():
    t = tracker()
    assert t.on_engine_request(9, (), 0) == request(1)
    assert [t.on_tick(0) for _ in range(24)][-1] == QUIET  # one tick of the wait left
    assert t.on_engine_request(12, (), 0) is None
    assert t.target == 12  # the retry goes for the new target


def test_the_engine_asking_for_a_height_the_node_holds_sends_nothing():
    t = tracker()
    assert t.on_engine_request(5, (), 5) is None
    assert t.on_engine_request(4, (), 5) is None


def stored_chain(count: int) -> list[CommittedBlock]:
    blocks, parent = [], GENESIS_HASH
    for height in range(1, count + 1):
        block = make_block("c", height, parent, (b"tx-%d" % height,), 0, 1_000)
        blocks.append(CommittedBlock(block, Certificate("test", height, block.block_hash, ()),
                                     b"\x07" * 32))
        parent = block.block_hash
    return blocks


def test_an_answer_carries_whole_blocks_while_they_fit_its_byte_budget():
    chain = stored_chain(3)
    sizes = [len(canonical.encode(item)) for item in chain]
    ask = SyncRequest(1, SYNC_BLOCKS_MAX, 2)
    assert sync_response(ask, chain, 9, 1, bytes_max=sizes[0] + sizes[1]) == \
        SyncResponse(tuple(chain[:2]), 9, 1)  # exactly full
    assert sync_response(ask, chain, 9, 1, bytes_max=sizes[0] + sizes[1] - 1) == \
        SyncResponse(tuple(chain[:1]), 9, 1)
    assert sync_response(ask, chain, 9, 1, bytes_max=1) == SyncResponse(tuple(chain[:1]), 9, 1)
    assert sync_response(ask, chain, 9, 1) == SyncResponse(tuple(chain), 9, 1)


def test_an_answer_carries_no_more_blocks_than_asked():
    chain = stored_chain(3)
    assert sync_response(SyncRequest(1, 2, 2), chain, 3, 0) == SyncResponse(tuple(chain[:2]),
                                                                            3, 0)
    assert sync_response(SyncRequest(1, 0, 2), chain, 3, 0) == SyncResponse((), 3, 0)
