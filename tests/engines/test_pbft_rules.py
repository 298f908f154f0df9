"""Tier (a): one test per PBFT protocol rule - build the engine, feed inputs, check the
exact Effects. Sections refer to Castro & Liskov, OSDI 1999 (and TOCS 2002 where noted).
The cluster is n = 4, f = 1, quorum 2f + 1 = 3; replica 0 is the primary of view 0.
"""
from __future__ import annotations

import hashlib
import hmac

from consensus import api
from consensus.api import (
    Applied,
    CatchUp,
    EngineConfig,
    Note,
    Persist,
    Propose,
    Receive,
    Rejected,
    RejectReason,
    Restore,
    Send,
    Synced,
    Tick,
    create_engine,
)
from consensus.pbft import PbftEngine
from consensus.pbft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedCertificate,
    PrePrepare,
    ViewChange,
)
from consensus.pbft.state import (
    KEY_STABLE,
    KEY_VIEW,
    KEY_VIEW_CHANGE,
    StableCheckpoint,
    ViewRecord,
    pre_prepare_key,
    prepared_key,
)
from consensus.types import (
    EMPTY_ROOT,
    GENESIS_HASH,
    Certificate,
    SignedMessage,
    Validator,
    ValidatorSet,
    make_block,
    signing_bytes,
)

CHAIN = "test-chain"
NODES = 4
ROOT = b"\x11" * 32


class HmacVerifier:
    """Signatures are HMAC-SHA256 with a per-node key: enough to test what the engine
    checks itself (embedded messages)."""

    def verify(self, sender: int, message: object, signature: bytes) -> bool:
        return 0 <= sender < NODES and hmac.compare_digest(sign(sender, message), signature)


def sign(sender: int, message: object) -> bytes:
    return hmac.new(bytes([sender]) * 32, signing_bytes(CHAIN, message), hashlib.sha256).digest()


def signed(sender: int, message: object) -> SignedMessage:
    return SignedMessage(sender, message, sign(sender, message))


def config(node: int, **overrides: object) -> EngineConfig:
    validators = ValidatorSet(tuple(Validator(i, bytes([i])) for i in range(NODES)))
    base: dict[str, object] = {
        "node_id": node, "validators": validators, "chain_id": CHAIN,
        "verifier": HmacVerifier(), "view_timeout_ticks": 10,
        "checkpoint_interval_blocks": 2, "log_window_blocks": 4, "inflight_blocks_max": 3,
        # Status (TOCS §5.2) only after the view timer, unless a test asks for it.
        "heartbeat_ticks": 100}
    base.update(overrides)
    return EngineConfig(**base)  # type: ignore[arg-type]


def engine(node: int, **overrides: object) -> PbftEngine:
    made = create_engine("pbft", config(node, **overrides))
    assert isinstance(made, PbftEngine)
    return made


def receive(eng: PbftEngine, sender: int, message: object) -> api.Effects:
    return eng.step(Receive(sender, message, sign(sender, message)))


def block_at(height: int, parent: bytes, proposer: int = 0, txs: tuple[bytes, ...] = (b"tx",),
             timestamp_ms: int | None = None) -> object:
    """Timestamps grow with the height: a header must be later than its parent's."""
    timestamp_ms = 1_000 + height - 1 if timestamp_ms is None else timestamp_ms
    return make_block(CHAIN, height, parent, txs, proposer, timestamp_ms)


def pre_prepare(height: int, parent: bytes, view: int = 0, txs: tuple[bytes, ...] = (b"tx",)
                ) -> PrePrepare:
    block = block_at(height, parent, proposer=view % NODES, txs=txs)
    return PrePrepare(view, height, block.block_hash, block)  # type: ignore[attr-defined]


def prepared_backup(node: int = 1, **overrides: object) -> tuple[PbftEngine, PrePrepare]:
    """A backup holding PRE-PREPARE(0, 1) and all backups' prepares for it."""
    eng = engine(node, **overrides)
    pp = pre_prepare(1, GENESIS_HASH)
    receive(eng, 0, pp)
    for voter in (1, 2, 3):
        receive(eng, voter, Prepare(0, 1, pp.digest, voter))
    return eng, pp


# ------------------------------------------------------------------ §4.2 normal case
def test_primary_orders_a_batch_with_a_persisted_pre_prepare() -> None:
    """§4.2: the primary assigns n = 1 and multicasts PRE-PREPARE, durable first."""
    eng = engine(0)
    effects = eng.step(Propose((b"tx",), 1_000))
    expected = pre_prepare(1, GENESIS_HASH)
    assert effects == api.Effects(persist=(Persist(pre_prepare_key(1), expected),),
                                  send=(Send(None, expected),))


def test_backup_refuses_to_propose_and_starts_waiting() -> None:
    """§4.4: a backup cannot order; the waiting request starts its view-change timer."""
    eng = engine(1)
    effects = eng.step(Propose((b"tx",), 1_000))
    assert effects == api.Effects(notes=(Rejected(RejectReason.NOT_LEADER, None,
                                                  "primary is 0"),))
    for _ in range(9):
        assert eng.step(Tick()).send == ()
    assert isinstance(eng.step(Tick()).send[0].message, ViewChange)


def test_pipeline_limit_refuses_with_over_limit() -> None:
    """§4.2 water marks / inflight_blocks_max: at most 3 uncommitted blocks in flight."""
    eng = engine(0)
    for _ in range(3):
        assert eng.step(Propose((b"tx",), 1_000)).send
    effects = eng.step(Propose((b"tx",), 1_000))
    assert effects == api.Effects(notes=(Rejected(RejectReason.OVER_LIMIT, None,
                                                  "pipeline full"),))


def test_high_water_mark_refuses_with_over_limit() -> None:
    """§4.2: a primary never assigns a sequence number above H = h + L."""
    eng = engine(0, inflight_blocks_max=10)
    for _ in range(4):
        assert eng.step(Propose((b"tx",), 1_000)).send
    effects = eng.step(Propose((b"tx",), 1_000))
    assert effects.notes == (Rejected(RejectReason.OVER_LIMIT, None,
                                      "sequence 5 above high water mark"),)


def test_backup_accepts_pre_prepare_and_prepares() -> None:
    """§4.2: accept PRE-PREPARE(v, n, d) in view v within the marks; multicast PREPARE."""
    eng = engine(1)
    pp = pre_prepare(1, GENESIS_HASH)
    effects = receive(eng, 0, pp)
    assert effects == api.Effects(
        persist=(Persist(pre_prepare_key(1), signed(0, pp)),),
        send=(Send(None, Prepare(0, 1, pp.digest, 1)),))


def test_pre_prepare_from_a_backup_is_refused() -> None:
    """§4.2: only the primary of the view may pre-prepare."""
    effects = receive(engine(1), 2, pre_prepare(1, GENESIS_HASH))
    assert effects.notes[0].reason == RejectReason.WRONG_LEADER and not effects.send


def test_second_pre_prepare_with_another_digest_is_a_conflict() -> None:
    """§4.2: a backup accepts at most one digest per (v, n) - no PREPARE for the second."""
    eng = engine(1)
    receive(eng, 0, pre_prepare(1, GENESIS_HASH))
    effects = receive(eng, 0, pre_prepare(1, GENESIS_HASH, txs=(b"other",)))
    assert effects == api.Effects(notes=(Rejected(
        RejectReason.CONFLICT, 0, "pre-prepare for (0, 1) already accepted"),))


def test_invalid_block_is_refused() -> None:
    """§4.2 (request validity): a block whose parent is not the chain tip is not ordered."""
    effects = receive(engine(1), 0, pre_prepare(1, b"\x99" * 32))
    assert effects.notes[0].reason == RejectReason.INVALID_BLOCK and not effects.send


def test_prepared_after_2f_matching_prepares_sends_commit() -> None:
    """§4.2: pre-prepare + 2f matching prepares = prepared; persist the certificate, then
    multicast COMMIT."""
    eng = engine(1)
    pp = pre_prepare(1, GENESIS_HASH)
    receive(eng, 0, pp)
    assert receive(eng, 1, Prepare(0, 1, pp.digest, 1)) == api.Effects()
    effects = receive(eng, 2, Prepare(0, 1, pp.digest, 2))
    cert = PreparedCertificate(signed(0, pp), (signed(1, Prepare(0, 1, pp.digest, 1)),
                                               signed(2, Prepare(0, 1, pp.digest, 2))))
    assert effects == api.Effects(persist=(Persist(prepared_key(1), cert),),
                                  send=(Send(None, Commit(0, 1, pp.digest, 1)),))


def test_conflicting_prepare_from_one_replica_is_refused() -> None:
    """§4.2: one PREPARE per replica and (v, n); a second digest is equivocation."""
    eng = engine(1)
    receive(eng, 2, Prepare(0, 1, b"\x01" * 32, 2))
    effects = receive(eng, 2, Prepare(0, 1, b"\x02" * 32, 2))
    assert effects.notes == (Rejected(RejectReason.CONFLICT, 2, "second prepare for (0, 1)"),)


def test_commit_quorum_commits_the_block_with_its_certificate() -> None:
    """§4.2: committed-local with 2f + 1 matching COMMITs; the certificate proves it."""
    eng, pp = prepared_backup()
    receive(eng, 1, Commit(0, 1, pp.digest, 1))
    receive(eng, 2, Commit(0, 1, pp.digest, 2))
    effects = receive(eng, 3, Commit(0, 1, pp.digest, 3))
    votes = tuple(signed(i, Commit(0, 1, pp.digest, i)) for i in (1, 2, 3))
    certificate = Certificate("pbft.commit", 1, pp.digest, votes)
    assert effects == api.Effects(commit=(api.Commit(pp.block, certificate),))
    assert PbftEngine.check_certificate(config(1), pp.block, certificate)
    assert eng.status().committed_height == 1


def test_blocks_commit_in_sequence_order_only() -> None:
    """§4.2: n = 2 committed-local before n = 1 waits; both go out in order."""
    eng = engine(1, inflight_blocks_max=4)
    first = pre_prepare(1, GENESIS_HASH)
    second = pre_prepare(2, first.digest)
    for pp in (first, second):
        receive(eng, 0, pp)
        for voter in (2, 3):
            receive(eng, voter, Prepare(0, pp.sequence, pp.digest, voter))
    for voter in (1, 2, 3):
        assert receive(eng, voter, Commit(0, 2, second.digest, voter)).commit == ()
    receive(eng, 1, Commit(0, 1, first.digest, 1))
    receive(eng, 2, Commit(0, 1, first.digest, 2))
    effects = receive(eng, 3, Commit(0, 1, first.digest, 3))
    assert [c.block.height for c in effects.commit] == [1, 2]


def backup_with_child_prepares_first() -> tuple[PbftEngine, PrePrepare, PrePrepare]:
    """Backup 1 holds PRE-PREPAREs 1 and 2 and both other backups' PREPAREs for 2 only:
    2 has its prepares, but 1 is not prepared, so 2 may not be yet (the chain rule)."""
    eng = engine(1, inflight_blocks_max=4)
    first = pre_prepare(1, GENESIS_HASH)
    second = pre_prepare(2, first.digest)
    receive(eng, 0, first)
    receive(eng, 0, second)
    for voter in (2, 3):
        assert receive(eng, voter, Prepare(0, 2, second.digest, voter)).send == ()
    return eng, first, second


def test_commit_waits_until_the_parent_is_prepared() -> None:
    """Chain rule (normal_case.py): prepared(n) needs the parent prepared first, so every
    committed block's ancestry is in 2f + 1 view changes (§4.4 safety, block chains)."""
    eng, first, second = backup_with_child_prepares_first()
    receive(eng, 2, Prepare(0, 1, first.digest, 2))
    effects = receive(eng, 3, Prepare(0, 1, first.digest, 3))
    assert [s.message for s in effects.send] == [Commit(0, 1, first.digest, 1),
                                                 Commit(0, 2, second.digest, 1)]


def test_a_parent_committed_without_being_prepared_here_lets_its_child_prepare() -> None:
    """Chain rule, the other way in: the parent may become final here by 2f + 1 COMMITs
    while this replica never saw its prepares (lost). The child, whose prepares all came
    already, is prepared at that moment - its prepares will not come again (a repeat is
    refused as a duplicate), and with exactly 2f + 1 honest replicas the child commits
    nowhere without this replica's COMMIT. Found by a swarm (pbft seed 208469397682831:
    a stall until the view timer, then two byzantine primaries in a row)."""
    eng, first, second = backup_with_child_prepares_first()
    for voter in (0, 2):
        receive(eng, voter, Commit(0, 1, first.digest, voter))
    effects = receive(eng, 3, Commit(0, 1, first.digest, 3))
    assert [c.block for c in effects.commit] == [first.block]
    assert [s.message for s in effects.send] == [Commit(0, 2, second.digest, 1)]
    assert [p.key for p in effects.persist] == [prepared_key(2)]


def test_message_for_a_later_view_is_buffered() -> None:
    """§4.2: only messages of the current view are accepted; later ones wait."""
    effects = receive(engine(1), 2, Prepare(3, 1, b"\x01" * 32, 2))
    assert effects.notes == (Rejected(RejectReason.FUTURE, 2,
                                      "buffered: view 3, replica in view 0"),)


def test_future_buffer_is_bounded_per_sender() -> None:
    """Bounded memory: each sender may park pending_messages_max / n messages."""
    eng = engine(1, pending_messages_max=8)
    for seq in (1, 2):
        receive(eng, 2, Prepare(1, seq, b"\x01" * 32, 2))
    effects = receive(eng, 2, Prepare(1, 3, b"\x01" * 32, 2))
    assert effects.notes[0].reason == RejectReason.OVER_LIMIT


# ------------------------------------------------------------------ §4.3 checkpoints
def test_checkpoint_is_multicast_every_k_blocks() -> None:
    """§4.3: after executing n with n mod K = 0, multicast CHECKPOINT(n, state root)."""
    eng = engine(1)
    assert eng.step(Applied(1, b"\x01" * 32, ROOT)) == api.Effects()
    effects = eng.step(Applied(2, b"\x02" * 32, ROOT))
    assert effects == api.Effects(send=(Send(None, Checkpoint(2, ROOT, b"\x02" * 32, 1)),))


def checkpoint_quorum(eng: PbftEngine, sequence: int, block_hash: bytes) -> api.Effects:
    effects = api.Effects()
    for replica in (0, 1, 2):
        effects = receive(eng, replica, Checkpoint(sequence, ROOT, block_hash, replica))
    return effects


def test_stable_checkpoint_moves_water_marks_and_drops_the_log() -> None:
    """§4.3: 2f + 1 matching checkpoints make it stable; the log below is discarded."""
    eng, pp = prepared_backup()
    for voter in (1, 2, 3):
        receive(eng, voter, Commit(0, 1, pp.digest, voter))
    second = pre_prepare(2, pp.digest)
    receive(eng, 0, second)
    for voter in (2, 3):
        receive(eng, voter, Prepare(0, 2, second.digest, voter))
    for voter in (1, 2, 3):
        receive(eng, voter, Commit(0, 2, second.digest, voter))
    effects = checkpoint_quorum(eng, 2, second.digest)
    proof = tuple(signed(i, Checkpoint(2, ROOT, second.digest, i)) for i in (0, 1, 2))
    stable = StableCheckpoint(2, second.digest, ROOT, proof)
    deletes = tuple(Persist(key(n), None) for n in (1, 2)
                    for key in (pre_prepare_key, prepared_key))
    assert effects == api.Effects(
        persist=(Persist(KEY_STABLE, stable),) + deletes,
        notes=(Note("checkpoint", "stable checkpoint 2", 0, 0),))
    r = eng.replica
    assert (r.low_water_mark, r.high_water_mark) == (2, 6)
    assert not r.slots and not r.prepared_certs and not r.blocks and not r.checkpoints


def test_f_plus_1_checkpoints_ahead_of_us_start_state_transfer() -> None:
    """TOCS §5.3.2: f + 1 matching checkpoints above our state (one is honest) mean we
    fell behind: fetch the blocks from them; the stable checkpoint does not ask twice."""
    eng = engine(3)
    assert receive(eng, 0, Checkpoint(4, ROOT, b"\x04" * 32, 0)).catch_up == ()
    effects = receive(eng, 1, Checkpoint(4, ROOT, b"\x04" * 32, 1))
    assert effects.catch_up == (CatchUp(4, (0, 1)),)
    assert receive(eng, 2, Checkpoint(4, ROOT, b"\x04" * 32, 2)).catch_up == ()
    assert eng.replica.low_water_mark == 4
    after = eng.step(Synced(4, b"\x04" * 32, ROOT))
    assert eng.status().committed_height == 4
    assert after == api.Effects()  # checkpoint 4 is already stable: nothing to add


def test_unanswered_state_transfer_is_retried() -> None:
    """TOCS §5.3.2: a fetch that brings nothing is asked again after T/4 ticks, from
    every replica that has vouched for the checkpoint since."""
    eng = engine(3)
    checkpoint_quorum(eng, 4, b"\x04" * 32)
    assert eng.step(Tick()).catch_up == ()
    assert eng.step(Tick()).catch_up == (CatchUp(4, (0, 1, 2)),)


def test_old_messages_below_the_low_water_mark_are_stale() -> None:
    """§4.3: messages at or below the stable checkpoint are discarded."""
    eng = engine(3)
    checkpoint_quorum(eng, 2, b"\x02" * 32)
    effects = receive(eng, 1, Prepare(0, 2, b"\x01" * 32, 1))
    assert effects.notes[0].reason == RejectReason.STALE


# ------------------------------------------------------------------ §4.4 view change
def view_change(replica: int, view: int = 1, prepared: tuple = ()) -> ViewChange:
    return ViewChange(view, 0, (), prepared, replica)


def test_timer_expiry_multicasts_a_view_change_with_prepared_certificates() -> None:
    """§4.4: a waiting request and no progress for T ticks: VIEW-CHANGE(v + 1, n, C, P)."""
    eng, _ = prepared_backup()
    cert = eng.replica.prepared_certs[1]
    for _ in range(9):
        assert eng.step(Tick()) == api.Effects()
    effects = eng.step(Tick())
    change = ViewChange(1, 0, (), (cert,), 1)
    assert effects == api.Effects(
        persist=(Persist(KEY_VIEW, ViewRecord(1, True, 1)), Persist(KEY_VIEW_CHANGE, change)),
        send=(Send(None, change),),
        notes=(Note("view_change", "view change to 1", 1, 1),))


def test_f_plus_1_view_changes_make_a_replica_join() -> None:
    """§4.5.2: f + 1 view changes for higher views: join the smallest at once."""
    eng = engine(3)
    assert receive(eng, 0, view_change(0, 2)).send == ()
    effects = receive(eng, 1, view_change(1, 1))
    assert effects.send == (Send(None, ViewChange(1, 0, (), (), 3)),)
    assert eng.status().role == "view_change"


def test_view_change_with_a_forged_certificate_is_refused() -> None:
    """§4.4: prepared certificates inside a view change are checked, not trusted."""
    pp = pre_prepare(1, GENESIS_HASH)
    forged = PreparedCertificate(signed(0, pp), (SignedMessage(2, Prepare(0, 1, pp.digest, 2),
                                                               b"bad"),
                                                 signed(3, Prepare(0, 1, pp.digest, 3))))
    effects = receive(engine(1), 2, view_change(2, 1, (forged,)))
    assert effects.notes[0].reason == RejectReason.BAD_SIGNATURE


def new_primary_with(changes: list[ViewChange]) -> tuple[PbftEngine, list[api.Effects]]:
    eng = engine(1)
    return eng, [receive(eng, change.replica, change) for change in changes]


def test_new_primary_reproposes_prepared_and_fills_gaps_with_null_blocks() -> None:
    """§4.4: O re-proposes the highest-view prepared block per n in (min-s, max-s] and a
    null block where there is none; the pre-prepares are signed, then NEW-VIEW goes out."""
    first = pre_prepare(1, GENESIS_HASH)
    cert = PreparedCertificate(signed(0, first), tuple(
        signed(i, Prepare(0, 1, first.digest, i)) for i in (1, 2)))
    eng, _ = new_primary_with([view_change(0, 1, (cert,)), view_change(2), view_change(3)])
    plan = eng.replica.new_view_plan
    assert plan is not None and [pp.block for pp in plan.pre_prepares] == [first.block]
    effects = receive(eng, 1, plan.pre_prepares[0])
    assert len(effects.send) == 1 and isinstance(effects.send[0].message, NewView)
    assert effects.send[0].message.pre_prepares == (signed(1, plan.pre_prepares[0]),)


def test_backup_checks_the_new_view_against_its_view_changes() -> None:
    """§4.4: a NEW-VIEW that drops a prepared block is refused; the right one installs."""
    first = pre_prepare(1, GENESIS_HASH)
    cert = PreparedCertificate(signed(0, first), tuple(
        signed(i, Prepare(0, 1, first.digest, i)) for i in (1, 2)))
    changes = tuple(signed(c.replica, c) for c in
                    (view_change(0, 1, (cert,)), view_change(2), view_change(3)))
    null = make_block(CHAIN, 1, GENESIS_HASH, (), 1, 0)
    bad = NewView(1, changes, (signed(1, PrePrepare(1, 1, null.block_hash, null)),))
    eng = engine(2)
    effects = receive(eng, 1, bad)
    assert effects.notes[0].reason == RejectReason.INVALID_BLOCK
    good = NewView(1, changes, (signed(1, PrePrepare(1, 1, first.digest, first.block)),))
    effects = receive(eng, 1, good)
    assert eng.status().view == 1 and eng.status().leader == 1
    assert Send(None, Prepare(1, 1, first.digest, 2)) in effects.send


def test_new_view_with_too_few_view_changes_is_refused() -> None:
    """§4.4: NEW-VIEW must carry 2f + 1 valid view changes from distinct replicas."""
    changes = tuple(signed(i, view_change(i)) for i in (0, 2))
    effects = receive(engine(3), 1, NewView(1, changes, ()))
    assert effects.notes[0].reason == RejectReason.QUORUM_MISSING


def test_new_view_from_a_non_primary_is_refused() -> None:
    changes = tuple(signed(i, view_change(i)) for i in (0, 2, 3))
    effects = receive(engine(3), 2, NewView(1, changes, ()))
    assert effects.notes[0].reason == RejectReason.WRONG_LEADER


# ------------------------------------------------------------------ durability
def test_restarted_backup_does_not_prepare_a_second_digest() -> None:
    """Durable safety state: the accepted pre-prepare survives a restart."""
    pp = pre_prepare(1, GENESIS_HASH)
    eng = engine(1)
    eng.step(Restore(((pre_prepare_key(1), signed(0, pp)),), 0, b"", EMPTY_ROOT))
    effects = receive(eng, 0, pre_prepare(1, GENESIS_HASH, txs=(b"other",)))
    assert effects.send == () and effects.notes[0].reason == RejectReason.CONFLICT


def test_restarted_replica_resends_its_exact_view_change() -> None:
    """Durable safety state: a view change under way is re-sent byte for byte."""
    change = ViewChange(1, 0, (), (), 2)
    records = ((KEY_VIEW, ViewRecord(1, True, 0)), (KEY_VIEW_CHANGE, change))
    effects = engine(2).step(Restore(records, 0, b"", EMPTY_ROOT))
    assert effects == api.Effects(send=(Send(None, change),))


def test_restarted_primary_does_not_reuse_a_sequence_number() -> None:
    """Durable safety state: an own pre-prepare persisted but perhaps never signed is sent
    again unchanged, and the next batch gets the next sequence number."""
    pp = pre_prepare(1, GENESIS_HASH)
    eng = engine(0)
    effects = eng.step(Restore(((pre_prepare_key(1), pp),), 0, b"", EMPTY_ROOT))
    assert effects == api.Effects(send=(Send(None, pp),))
    assert eng.step(Propose((b"next",), 2_000)).send[0].message.sequence == 2


# ------------------------------------------------------------------ certificates
def test_check_certificate_needs_a_quorum_of_one_view() -> None:
    """Catch-up trusts a block only with 2f + 1 valid COMMITs of one view (§4.2)."""
    block = block_at(1, GENESIS_HASH)
    votes = tuple(signed(i, Commit(0, 1, block.block_hash, i)) for i in (0, 1, 2))
    cfg = config(3)
    assert PbftEngine.check_certificate(cfg, block, Certificate("pbft.commit", 1,
                                                                block.block_hash, votes))
    assert not PbftEngine.check_certificate(cfg, block, Certificate(
        "pbft.commit", 1, block.block_hash, votes[:2]))
    mixed = votes[:2] + (signed(2, Commit(1, 1, block.block_hash, 2)),)
    assert not PbftEngine.check_certificate(cfg, block, Certificate(
        "pbft.commit", 1, block.block_hash, mixed))
    forged = votes[:2] + (SignedMessage(2, votes[2].message, b"x"),)
    assert not PbftEngine.check_certificate(cfg, block, Certificate(
        "pbft.commit", 1, block.block_hash, forged))


def test_every_signed_message_has_a_sign_position() -> None:
    """The double-sign guard needs one position per (kind, view, sequence)."""
    pp = pre_prepare(1, GENESIS_HASH)
    assert pp.sign_position() == ("pbft.pre_prepare", 0, 1)
    assert Prepare(0, 1, pp.digest, 1).sign_position() == ("pbft.prepare", 0, 1)
    assert Commit(0, 1, pp.digest, 1).sign_position() == ("pbft.commit", 0, 1)
    assert Checkpoint(2, ROOT, pp.digest, 1).sign_position() == ("pbft.checkpoint", 2)
    assert view_change(1, 3).sign_position() == ("pbft.view_change", 3)
    assert NewView(3, (), ()).sign_position() == ("pbft.new_view", 3)


def test_committed_replica_still_prepares_a_reproposed_block() -> None:
    """§4.4: a NEW-VIEW re-proposes n; replicas that already committed n vote for it
    again, or replicas that did not commit it in the old view could never finish it."""
    eng, pp = prepared_backup(node=2)
    for voter in (1, 2, 3):
        receive(eng, voter, Commit(0, 1, pp.digest, voter))
    assert eng.status().committed_height == 1
    cert = eng.replica.prepared_certs[1]
    changes = tuple(signed(i, view_change(i, 1, (cert,) if i == 0 else ())) for i in (0, 1, 3))
    effects = receive(eng, 1, NewView(1, changes, (signed(1, PrePrepare(1, 1, pp.digest,
                                                                         pp.block)),)))
    assert Send(None, Prepare(1, 1, pp.digest, 2)) in effects.send
    assert effects.commit == ()  # never committed twice


def test_view_change_timer_counts_view_changes_for_later_views() -> None:
    """§4.5.2 timer start: 2f + 1 replicas left the old view, even if one of them has
    already moved past our target view (a restarted replica forgot its earlier VC)."""
    eng = engine(2)
    receive(eng, 0, view_change(0, 1))
    receive(eng, 1, view_change(1, 1))  # f + 1: replica 2 joins view 1
    receive(eng, 2, view_change(2, 1))  # its own, handed back by the driver
    receive(eng, 0, view_change(0, 2))  # replica 0 moves on to view 2
    assert eng.status().view == 1
    for _ in range(9):
        assert eng.step(Tick()).send == ()
    assert eng.step(Tick()).send == (Send(None, ViewChange(2, 0, (), (), 2)),)
