"""Tier (a): PBFT rules of issue 11 - recovering lost messages (STATUS, TOCS 2002 §5.2),
the capped view timeout, header checks (time and state) and the one quorum formula.
Cluster as in test_pbft_rules: n = 4, f = 1, replica 0 the primary of view 0."""
from __future__ import annotations

from consensus import api, canonical
from consensus.api import (
    Applied,
    CatchUp,
    Persist,
    Propose,
    Rejected,
    RejectReason,
    Restore,
    Send,
    Tick,
    TransferLeadership,
)
from consensus.pbft import PbftEngine
from consensus.pbft.certificates import quorum_of
from consensus.pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    SlotStatus,
    Status,
    ViewChange,
)
from consensus.pbft.state import KEY_VIEW, ViewRecord, pre_prepare_key
from consensus.pbft.status import build_status
from consensus.types import EMPTY_ROOT, GENESIS_HASH, Certificate, bft_quorum, make_block
from tests.engines.test_pbft_rules import (
    CHAIN,
    ROOT,
    checkpoint_quorum,
    config,
    engine,
    pre_prepare,
    prepared_backup,
    receive,
    signed,
)

PERIOD = 3  # heartbeat_ticks: the status period in these tests


def vote(eng: PbftEngine, pp: PrePrepare, preparers: tuple[int, ...],
         committers: tuple[int, ...]) -> None:
    """PREPAREs, then COMMITs, for `pp` (its view and sequence) from the named replicas."""
    for voter in preparers:
        receive(eng, voter, Prepare(pp.view, pp.sequence, pp.digest, voter))
    for voter in committers:
        receive(eng, voter, Commit(pp.view, pp.sequence, pp.digest, voter))


def committed_backup(node: int = 1, **overrides: object) -> tuple[PbftEngine, PrePrepare]:
    eng = engine(node, heartbeat_ticks=PERIOD, **overrides)
    pp = pre_prepare(1, GENESIS_HASH)
    receive(eng, 0, pp)
    vote(eng, pp, (1, 2, 3), (1, 2, 3))
    assert eng.status().committed_height == 1
    return eng, pp


def header_block(height: int, parent: bytes, timestamp_ms: int, state_height: int = 0,
                 state_root: bytes = EMPTY_ROOT) -> PrePrepare:
    block = make_block(CHAIN, height, parent, (b"tx",), 0, timestamp_ms, state_height,
                       state_root)
    return PrePrepare(0, height, block.block_hash, block)


# ------------------------------------------------------------------ STATUS (TOCS §5.2)
def ticks_until_status(eng: PbftEngine, limit: int) -> tuple[int, Status | None]:
    for tick in range(1, limit + 1):
        for send in eng.step(Tick()).send:
            if isinstance(send.message, Status):
                assert send.to is None  # multicast
                return tick, send.message
    return limit + 1, None


def test_stalled_replica_multicasts_its_status_once_per_period() -> None:
    """A backup missing a PREPARE makes no progress: after one status period it says
    what it holds for each uncommitted sequence, and again every period (the view
    change its view timer starts meanwhile keeps it stalled)."""
    eng = engine(1, heartbeat_ticks=PERIOD)
    pp = pre_prepare(1, GENESIS_HASH)
    receive(eng, 0, pp)
    receive(eng, 1, Prepare(0, 1, pp.digest, 1))
    receive(eng, 2, Prepare(0, 1, pp.digest, 2))
    wait, status = ticks_until_status(eng, 10 * PERIOD)
    assert (wait, status) == (PERIOD, Status(0, False, 0, 0, (SlotStatus(1, True, (1, 2), ()),),
                                             1))
    assert [ticks_until_status(eng, 10 * PERIOD)[0] for _ in range(4)] == [PERIOD] * 4


def test_status_period_is_at_least_a_quarter_of_the_view_timeout() -> None:
    """A pipelined replica always waits for some sequence: with a status period near the
    commit latency every replica of a loaded cluster would ask all the time."""
    eng = engine(1, heartbeat_ticks=PERIOD, view_timeout_ticks=40)
    receive(eng, 0, pre_prepare(1, GENESIS_HASH))
    assert ticks_until_status(eng, 40)[0] == 10


def test_replica_that_commits_sends_no_status() -> None:
    eng, _ = committed_backup()
    for _ in range(3 * PERIOD):
        assert eng.step(Tick()) == api.Effects()


def test_status_is_answered_with_the_same_own_votes_it_lacks() -> None:
    """Replica 2 prepared and committed n = 1; replica 1's status shows neither its
    PREPARE nor its COMMIT: it re-sends exactly those two messages, to 1 only."""
    eng, pp = prepared_backup(node=2, heartbeat_ticks=PERIOD)
    eng.step(Tick())  # half a period: what 1 lacks was lost, not delayed
    status = Status(0, False, 0, 0, (SlotStatus(1, True, (1,), ()),), 1)
    effects = receive(eng, 1, status)
    assert effects == api.Effects(send=(Send(1, Prepare(0, 1, pp.digest, 2)),
                                        Send(1, Commit(0, 1, pp.digest, 2))))
    # Already holding 2's prepare: only the commit goes.
    eng2, _ = prepared_backup(node=2, heartbeat_ticks=PERIOD)
    eng2.step(Tick())
    held = Status(0, False, 0, 0, (SlotStatus(1, True, (1, 2), ()),), 3)
    assert receive(eng2, 3, held).send == (Send(3, Commit(0, 1, pp.digest, 2)),)


def test_primary_resends_its_pre_prepare_byte_for_byte() -> None:
    """A backup that lost the PRE-PREPARE lists nothing for n = 1; the primary sends
    the very message it signed first, so the double-sign guard sees a repeat."""
    eng = engine(0, heartbeat_ticks=PERIOD)
    sent = eng.step(Propose((b"tx",), 1_000)).send[0].message
    receive(eng, 0, sent)  # the driver hands the primary its own signed copy
    eng.step(Tick())
    effects = receive(eng, 3, Status(0, False, 0, 0, (), 3))
    assert effects == api.Effects(send=(Send(3, sent),))
    assert canonical.encode(effects.send[0].message) == canonical.encode(sent)


def test_status_is_not_answered_with_messages_still_in_flight() -> None:
    """A status that lists our PREPARE and COMMIT as missing right after we sent them
    (a loaded cluster: every pipelined replica waits for something) gets nothing: those
    messages are on their way. Half a period later they count as lost and go again."""
    eng, pp = prepared_backup(node=2, heartbeat_ticks=2 * PERIOD)
    status = Status(0, False, 0, 0, (SlotStatus(1, True, (1,), ()),), 1)
    assert receive(eng, 1, status).send == ()
    for _ in range(PERIOD - 1):
        eng.step(Tick())
    assert receive(eng, 3, status).send == ()
    eng.step(Tick())
    assert receive(eng, 1, status).send == (Send(1, Prepare(0, 1, pp.digest, 2)),
                                            Send(1, Commit(0, 1, pp.digest, 2)))


def test_fresh_commit_waits_while_an_old_prepare_goes_again() -> None:
    """The age counts per message: a PREPARE sent long ago goes, the COMMIT just sent
    (the slot prepared only now) does not."""
    eng = engine(2, heartbeat_ticks=PERIOD)
    pp = pre_prepare(1, GENESIS_HASH)
    receive(eng, 0, pp)
    eng.step(Tick())
    for voter in (1, 3):
        receive(eng, voter, Prepare(0, 1, pp.digest, voter))
    assert eng.replica.slots[1].prepared
    status = Status(0, False, 0, 0, (SlotStatus(1, True, (1,), ()),), 1)
    assert receive(eng, 1, status).send == (Send(1, Prepare(0, 1, pp.digest, 2)),)


def test_status_answers_are_rate_limited_per_requester() -> None:
    eng, _ = prepared_backup(node=2, heartbeat_ticks=PERIOD)
    eng.step(Tick())
    status = Status(0, False, 0, 0, (), 1)
    assert receive(eng, 1, status).send
    assert receive(eng, 1, status) == api.Effects(notes=(Rejected(
        RejectReason.DUPLICATE, 1, "status answered within half a period"),))


def test_status_with_more_slots_than_the_window_is_refused() -> None:
    slots = tuple(SlotStatus(n, False, (), ()) for n in range(1, 6))  # window is 4
    effects = receive(engine(2), 1, Status(0, False, 0, 0, slots, 1))
    assert effects.notes == (Rejected(RejectReason.OVER_LIMIT, 1,
                                      "status lists more than the window"),)


def test_status_from_behind_the_stable_checkpoint_gets_our_checkpoint() -> None:
    """A replica whose CHECKPOINTs were lost learns the stable checkpoint again."""
    eng, pp = committed_backup()
    second = pre_prepare(2, pp.digest)
    receive(eng, 0, second)
    for voter in (2, 3):
        receive(eng, voter, Prepare(0, 2, second.digest, voter))
    for voter in (1, 2, 3):
        receive(eng, voter, Commit(0, 2, second.digest, voter))
    checkpoint_quorum(eng, 2, second.digest)
    assert eng.replica.low_water_mark == 2
    effects = receive(eng, 3, Status(0, False, 0, 0, (), 3))
    assert effects.send == (Send(3, Checkpoint(2, ROOT, second.digest, 1)),)


def test_replica_changing_view_gets_the_view_change_again() -> None:
    """Both changing to view 1: the other's status is answered with our VIEW-CHANGE."""
    eng = engine(2)
    change = ViewChange(1, 0, (), (), 2)
    eng.step(Restore(((KEY_VIEW, ViewRecord(1, True, 0)), ("pbft/view_change", change)),
                     0, b"", EMPTY_ROOT))
    effects = receive(eng, 1, Status(1, True, 0, 0, (), 1))
    assert effects == api.Effects(send=(Send(1, change),))


# ------------------------------------------------------------------ view timeout
def ticks_until_view_change(eng: PbftEngine, limit: int = 10_000) -> int:
    for tick in range(1, limit):
        if any(isinstance(s.message, ViewChange) for s in eng.step(Tick()).send):
            return tick
    raise AssertionError("no view change")


def test_view_timeout_growth_is_capped() -> None:
    """§4.5.2 doubles the timeout per failed view; capped at 16x (10 ticks base)."""
    eng = engine(1)
    eng.step(Restore(((KEY_VIEW, ViewRecord(5, False, 9)),), 0, b"", EMPTY_ROOT))
    eng.step(Propose((b"tx",), 1_000))  # a request waits: the timer runs
    assert ticks_until_view_change(eng) == 10 << 4


def test_the_first_failed_view_waits_the_base_timeout_for_the_next_one() -> None:
    """§4.5.2: the timer expired in view v after T; the NEW-VIEW of v + 1 gets T too,
    and only when it does not come does the wait for v + 2 double to 2T."""
    def ticks_until_view(view: int) -> int:  # resends of the same VIEW-CHANGE aside
        for tick in range(1, 1_000):
            if any(isinstance(s.message, ViewChange) and s.message.new_view == view
                   for s in eng.step(Tick()).send):
                return tick
        raise AssertionError(f"no view change to {view}")

    eng = engine(3)  # the primaries of views 0, 1 and 2 are gone
    eng.step(Propose((b"tx",), 1_000))  # view 0: a request waits
    assert ticks_until_view(1) == 10
    for voter in (0, 1, 2):  # 2f + 1 have left view 0: the timer for view 1 runs
        receive(eng, voter, ViewChange(1, 0, (), (), voter))
    assert ticks_until_view(2) == 10  # no NEW-VIEW for view 1: on to view 2
    for voter in (0, 1, 2):
        receive(eng, voter, ViewChange(2, 0, (), (), voter))
    assert ticks_until_view(3) == 20


def test_a_lagging_replica_does_not_suspect_a_primary_the_others_commit_with() -> None:
    """A commit quorum (2f + 1 COMMITs) for a sequence this replica cannot execute yet
    shows the view working elsewhere: its timer restarts, it does not change view
    alone. f + 1 commits are not enough - they may never grow into a quorum."""
    def lagging_backup(voters: tuple[int, ...]) -> PbftEngine:
        eng = engine(1)
        receive(eng, 0, pre_prepare(1, GENESIS_HASH))  # its request waits: the timer runs
        for _ in range(9):  # one tick before the view-change timeout
            assert not any(isinstance(s.message, ViewChange) for s in eng.step(Tick()).send)
        for voter in voters:  # sequence 2 committed elsewhere; 1 is not done here
            receive(eng, voter, Commit(0, 2, b"\x02" * 32, voter))
        return eng

    assert ticks_until_view_change(lagging_backup((0, 2, 3))) == 10
    assert ticks_until_view_change(lagging_backup((0, 2))) == 1
    late = lagging_backup((0, 2, 3))
    for _ in range(5):
        late.step(Tick())
    receive(late, 1, Commit(0, 2, b"\x02" * 32, 1))  # one more vote for a seen quorum
    assert ticks_until_view_change(late) == 5  # is no new progress


def test_a_commit_quorum_does_not_hold_back_a_view_change_under_way() -> None:
    """While changing view the timer waits for the NEW-VIEW (§4.5.2); commits finishing
    an old sequence do not make the new primary any less missing."""
    eng = engine(2)
    receive(eng, 0, pre_prepare(1, GENESIS_HASH))
    assert ticks_until_view_change(eng) == 10
    for voter in (0, 1, 3):  # 2f + 1 have left view 0: the NEW-VIEW timer runs
        receive(eng, voter, ViewChange(1, 0, (), (), voter))
    for _ in range(9):
        eng.step(Tick())
    for voter in (0, 1, 3):
        receive(eng, voter, Commit(0, 2, b"\x02" * 32, voter))
    assert any(isinstance(s.message, ViewChange) and s.message.new_view == 2
               for s in eng.step(Tick()).send)


def test_view_timeout_resets_after_progress() -> None:
    eng = engine(1)
    eng.step(Restore(((KEY_VIEW, ViewRecord(1, False, 3)),), 0, b"", EMPTY_ROOT))
    block = make_block(CHAIN, 1, GENESIS_HASH, (b"tx",), 1, 1_000)
    pp = PrePrepare(1, 1, block.block_hash, block)
    receive(eng, 1, pp)
    vote(eng, pp, (2, 3), (0, 2, 3))
    assert eng.status().committed_height == 1
    eng.step(Propose((b"tx",), 1_000))
    assert ticks_until_view_change(eng) == 10


def test_committing_only_reproposals_does_not_reset_the_view_timeout() -> None:
    """§4.5.2: the doubled timeout holds until the new view executes a request it had
    not executed before. The NEW-VIEW's re-proposal of n = 1 commits in view 1: not yet
    progress (timeout still 4 x 10 ticks); the fresh n = 2 is."""
    eng = engine(2)
    eng.step(Restore(((KEY_VIEW, ViewRecord(0, False, 3)),), 0, b"", EMPTY_ROOT))
    pp = pre_prepare(1, GENESIS_HASH)
    receive(eng, 0, pp)
    for voter in (1, 3):
        receive(eng, voter, Prepare(0, 1, pp.digest, voter))
    cert = eng.replica.prepared_certs[1]
    changes = tuple(signed(i, ViewChange(1, 0, (), (cert,) if i == 0 else (), i))
                    for i in (0, 1, 3))
    reproposed = PrePrepare(1, 1, pp.digest, pp.block)
    receive(eng, 1, NewView(1, changes, (signed(1, reproposed),)))
    vote(eng, reproposed, (1, 3), (1, 2, 3))
    assert eng.status().committed_height == 1 and eng.status().view == 1
    eng.step(Propose((b"tx",), 1_000))  # a request waits: the timer runs
    assert eng.replica.view_timeout_ticks() == 40
    fresh = pre_prepare(2, pp.digest, view=1)
    receive(eng, 1, fresh)
    vote(eng, fresh, (0, 3), (0, 2, 3))
    assert eng.status().committed_height == 2
    assert eng.replica.view_timeout_ticks() == 10


# ------------------------------------------------------------------ header checks
def test_timestamp_not_after_the_parent_is_refused() -> None:
    eng = engine(1)
    first = header_block(1, GENESIS_HASH, 1_000)
    receive(eng, 0, first)
    effects = receive(eng, 0, header_block(2, first.digest, 1_000))
    assert effects == api.Effects(notes=(Rejected(
        RejectReason.INVALID_BLOCK, 0, "timestamp 1000 not after its parent's 1000"),))


def test_timestamp_too_far_ahead_of_the_replica_clock_is_refused_until_time_passes() -> None:
    """The clock is the latest Propose timestamp plus tick_ms (10) per tick."""
    eng = engine(1, timestamp_skew_max_ms=2_000)
    eng.step(Propose((b"tx",), 5_000))  # refused (not the primary) but anchors the clock
    early = header_block(1, GENESIS_HASH, 7_005)
    assert receive(eng, 0, early) == api.Effects(notes=(Rejected(
        RejectReason.INVALID_BLOCK, 0,
        "timestamp 7005 more than 2000 ms ahead of this replica's clock 5000"),))
    eng.step(Tick())
    assert receive(eng, 0, early).send == (Send(None, Prepare(0, 1, early.digest, 1)),)


def test_header_timestamps_do_not_move_the_clock() -> None:
    """A byzantine primary cannot ratchet the estimate with its own timestamps."""
    eng = engine(1, timestamp_skew_max_ms=2_000, inflight_blocks_max=4)
    eng.step(Propose((b"tx",), 5_000))
    first = header_block(1, GENESIS_HASH, 7_000)
    assert receive(eng, 0, first).send
    second = header_block(2, first.digest, 7_001)
    assert receive(eng, 0, second).notes[0].reason == RejectReason.INVALID_BLOCK


def test_primary_proposes_strictly_increasing_timestamps() -> None:
    eng = engine(0)
    first = eng.step(Propose((b"a",), 1_000)).send[0].message
    receive(eng, 0, first)
    second = eng.step(Propose((b"b",), 1_000)).send[0].message
    assert (first.block.header.timestamp_ms, second.block.header.timestamp_ms) == (1_000, 1_001)


def test_wrong_state_root_is_refused() -> None:
    eng, pp = committed_backup()
    eng.step(Applied(1, pp.digest, ROOT))
    wrong = header_block(2, pp.digest, 1_001, state_height=1, state_root=b"\x22" * 32)
    assert receive(eng, 0, wrong) == api.Effects(notes=(Rejected(
        RejectReason.INVALID_BLOCK, 0,
        "state root at 1 is not the one this replica computed"),))
    right = header_block(2, pp.digest, 1_001, state_height=1, state_root=ROOT)
    assert receive(eng, 0, right).send == (Send(None, Prepare(0, 2, right.digest, 1)),)


def test_state_height_at_or_above_the_block_is_refused() -> None:
    effects = receive(engine(1), 0, header_block(1, GENESIS_HASH, 1_000, state_height=1))
    assert effects.notes == (Rejected(RejectReason.INVALID_BLOCK, 0,
                                      "state height 1 not below height 1"),)


def test_pre_prepare_naming_unapplied_state_waits_for_applied() -> None:
    """Committed but not yet applied here: buffered, then prepared on `Applied`."""
    eng, pp = committed_backup()
    later = header_block(2, pp.digest, 1_001, state_height=1, state_root=ROOT)
    assert receive(eng, 0, later) == api.Effects(notes=(Rejected(
        RejectReason.FUTURE, 0, "buffered: state height 1 not applied here yet"),))
    effects = eng.step(Applied(1, pp.digest, ROOT))
    assert effects.persist == (Persist(pre_prepare_key(2), signed(0, later)),)
    assert effects.send == (Send(None, Prepare(0, 2, later.digest, 1)),)


# ------------------------------------------------------------------ one quorum
def test_replica_and_certificate_check_share_one_quorum() -> None:
    """fault_tolerance = 0 on n = 4: both need 4 commits (they were two formulas)."""
    cfg = config(1, fault_tolerance=0)
    assert quorum_of(cfg) == bft_quorum(4, 0) == 4
    eng = engine(1, fault_tolerance=0)
    assert eng.replica.quorum == 4 and eng.replica.faults == 0
    pp = pre_prepare(1, GENESIS_HASH)
    votes = tuple(signed(i, Commit(0, 1, pp.digest, i)) for i in (1, 2, 3))
    assert not PbftEngine.check_certificate(cfg, pp.block, Certificate("pbft.commit", 1,
                                                                       pp.digest, votes))
    assert PbftEngine.check_certificate(config(1), pp.block, Certificate(
        "pbft.commit", 1, pp.digest, votes))


# ------------------------------------------------------------------ contract inputs
def test_pbft_refuses_leadership_transfer() -> None:
    """Reads are served by the read barrier (tests/engines/test_read_barrier.py)."""
    eng = engine(0)
    assert eng.step(TransferLeadership(2)) == api.Effects(notes=(Rejected(
        RejectReason.UNSUPPORTED, None, "pbft changes primaries by view change only"),))


# ------------------------------------------------------------------ state transfer
def test_unanswered_state_transfer_asks_every_replica() -> None:
    """The vouchers may have fallen behind since; a retry asks anyone - fetched blocks
    are checked against their certificates, so no peer has to be trusted."""
    eng = engine(3, view_timeout_ticks=8)
    receive(eng, 0, Checkpoint(4, ROOT, b"\x04" * 32, 0))
    assert receive(eng, 1, Checkpoint(4, ROOT, b"\x04" * 32, 1)).catch_up == (
        CatchUp(4, (0, 1)),)
    assert eng.step(Tick()).catch_up == ()
    assert eng.step(Tick()).catch_up == (CatchUp(4, (0, 1, 2)),)


# ------------------------------------------------------------------ issue: liveness fixes
def test_state_transfer_retry_asks_replicas_whose_status_shows_them_ahead() -> None:
    """A retry asks the replicas whose STATUS named a committed height at or past the
    target, not everyone: the driver waits out each unanswered request in turn, so a
    silent replica named here stalls the catch-up while others hold the blocks."""
    eng = engine(3, view_timeout_ticks=8)
    receive(eng, 2, Status(0, False, 4, 4, (), 2))
    receive(eng, 0, Checkpoint(4, ROOT, b"\x04" * 32, 0))
    assert receive(eng, 1, Checkpoint(4, ROOT, b"\x04" * 32, 1)).catch_up == (
        CatchUp(4, (0, 1)),)
    assert eng.step(Tick()).catch_up == ()
    assert eng.step(Tick()).catch_up == (CatchUp(4, (2,)),)  # before: (0, 1, 2)


def reproposed_in_view_1(node: int, commits_from: tuple[int, ...]
                         ) -> tuple[PbftEngine, PrePrepare]:
    """Replica `node` prepared (0, 1) and holds view-0 COMMITs from `commits_from`; then
    NEW-VIEW(1) re-proposes the block at 1 (primary 1)."""
    eng, pp = prepared_backup(node=node, heartbeat_ticks=PERIOD)
    for voter in commits_from:
        receive(eng, voter, Commit(0, 1, pp.digest, voter))
    cert = eng.replica.prepared_certs[1]
    changes = tuple(signed(i, ViewChange(1, 0, (), (cert,) if i == 0 else (), i))
                    for i in (0, 1, 3))
    receive(eng, 1, NewView(1, changes, (signed(1, PrePrepare(1, 1, pp.digest, pp.block)),)))
    assert eng.status().view == 1 and eng.status().leader == 1
    return eng, pp


def test_status_lists_only_commits_of_the_current_view() -> None:
    """§4.2: a commit certificate is 2f + 1 COMMITs of one view. A view-0 commit held in
    view 1 does not count, so the STATUS lists its sender as missing: it re-sends its
    view-1 commit (before: listed as held, never re-sent, the sequence stalled)."""
    eng, pp = reproposed_in_view_1(2, (1, 3))
    receive(eng, 3, Commit(1, 1, pp.digest, 3))
    status = build_status(eng.replica)
    assert status == Status(1, False, 0, 0, (SlotStatus(1, True, (), (3,)),), 2)


def test_committed_replica_resends_its_commit_for_a_reproposed_block() -> None:
    """A replica that committed n in view 0 and is not prepared for the re-proposal of n
    in view 1 (prepares lost) still answers a laggard's STATUS with its view-1 COMMIT:
    the block is final, every later view re-proposes exactly it (§4.4)."""
    eng, pp = reproposed_in_view_1(2, (1, 2, 3))
    assert eng.status().committed_height == 1 and not eng.replica.slots[1].prepared
    laggard = Status(1, False, 0, 0, (SlotStatus(1, True, (1, 3), (1, 3)),), 3)
    eng.step(Tick())
    effects = receive(eng, 3, laggard)
    assert effects == api.Effects(send=(Send(3, Prepare(1, 1, pp.digest, 2)),
                                        Send(3, Commit(1, 1, pp.digest, 2))))


