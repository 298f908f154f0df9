"""The replica core's rules, one test each: routing, forwarding, catch-up decisions,
the plan order contract and the one transaction id. Pure: no clock, no I/O; the core
drives real engines with the simulator's deterministic signatures."""
from __future__ import annotations

import dataclasses

import pytest

from consensus.api import (
    Applied,
    Commit,
    Effects,
    EngineConfig,
    Note,
    Rejected,
    RejectReason,
    Restore,
    Synced,
    create_engine,
)
from consensus.pbft.messages import Prepare
from consensus.raft.messages import InstallSnapshot
from consensus.types import GENESIS_HASH, Validator, ValidatorSet, make_block
from crypto.simulated import SimulatedSigner, SimulatedVerifier
from ledger.receipts import AppliedBlock, TxCheck
from qenex_node.core import replica as core_replica
from qenex_node.core.app import tx_id
from qenex_node.core.mempool import AddResult, Mempool
from qenex_node.core.plan import Outbound, Plan
from qenex_node.core.reads import ReadIndexAnswer, ReadIndexRequest
from qenex_node.core.replica import Replica, ReplicaInvariantError
from qenex_node.core.sync import (
    SYNC_BLOCKS_MAX,
    CatchUpTracker,
    CommittedBlock,
    SyncLimits,
    SyncRequest,
    SyncResponse,
    SyncStatus,
    TransactionBatch,
    accept_synced_blocks,
)
from simulations.runner import Simulation
from simulations.scenario import NetworkConfig, Scenario, Workload

SEED, CHAIN, NODES = 5, "qenex-core", 4
LIMITS = SyncLimits(status_interval_ticks=10, request_timeout_ticks=25, stall_intervals=1)


def make_replica(algorithm: str = "pbft", node: int = 0, restore: Restore | None = None,
                 **config_fields: object) -> Replica:
    replica = new_replica(algorithm, node, **config_fields)
    run(replica, replica.restore(restore or Restore()))
    return replica


def new_replica(algorithm: str = "pbft", node: int = 0, **config_fields: object) -> Replica:
    verifier = SimulatedVerifier(SEED, NODES, CHAIN)
    validators = ValidatorSet(tuple(Validator(i, verifier.public_key(i)) for i in range(NODES)))
    config = EngineConfig(node_id=node, validators=validators, chain_id=CHAIN,
                          verifier=verifier, seed=SEED, **config_fields)  # type: ignore[arg-type]
    return Replica(engine=create_engine(algorithm, config), config=config,
                   mempool=Mempool(), sync_limits=LIMITS)


def run(replica: Replica, plan: Plan, results: list[AppliedBlock] | None = None) -> Plan:
    """Carry out a plan with nothing written (no blocks) and fake signatures; drain."""
    signer = SimulatedSigner(SEED, replica.node_id, CHAIN)
    replica.done(plan, results or [], [signer.sign(o.message) for o in plan.sends])
    follow = replica.next_plan()
    while follow is not None:
        replica.done(follow, [], [signer.sign(o.message) for o in follow.sends])
        follow = replica.next_plan()
    return plan


def ticks(replica: Replica, count: int) -> list[Outbound]:
    sent: list[Outbound] = []
    for _ in range(count):
        sent += run(replica, replica.tick()).sends
    return sent


def sync_requests(sends: list[Outbound]) -> list[Outbound]:
    return [o for o in sends if isinstance(o.message, SyncRequest)]


def status(node: int, height: int) -> SyncStatus:
    return SyncStatus(height, b"\x01" * 32, node)


# ------------------------------------------------------------------ status and catch-up
def test_status_is_broadcast_every_interval_and_sent_on_connect():
    replica = make_replica()
    statuses = [o for o in ticks(replica, 30) if isinstance(o.message, SyncStatus)]
    assert [(o.to, o.message) for o in statuses] == [(None, SyncStatus(0, GENESIS_HASH, 0))] * 3
    plan = replica.peer_connected(2)
    assert plan.sends == (Outbound(2, SyncStatus(0, GENESIS_HASH, 0)),)
    run(replica, plan)


def test_one_byzantine_claim_is_not_believed_but_f_plus_one_are():
    replica = make_replica()  # PBFT, n = 4, f = 1: the 2nd highest report is trusted
    run(replica, replica.receive(3, status(3, 1_000), b""))
    assert not sync_requests(ticks(replica, 30))
    run(replica, replica.receive(2, status(2, 40), b""))
    requests = sync_requests(ticks(replica, 30))
    assert requests and requests[0].message == SyncRequest(1, SYNC_BLOCKS_MAX, 0)
    assert requests[0].to in (2, 3)  # a peer that said it is at least that high


def test_crash_fault_engine_believes_the_highest_report():
    from qenex_node.core.replica import faults_to_distrust

    raft = make_replica("raft")
    assert faults_to_distrust(raft.engine, raft.config) == 0
    assert faults_to_distrust(make_replica().engine, make_replica().config) == 1
    tracker = CatchUpTracker(0, NODES, faults=0, limits=LIMITS)
    tracker.on_status(status(1, 7), 0)
    requests = [tracker.on_tick(0)[1] for _ in range(20)]
    assert any(r is not None for r in requests)


def test_a_short_stall_is_left_to_the_engine():
    tracker = CatchUpTracker(0, NODES, faults=0, limits=SyncLimits(
        status_interval_ticks=10, request_timeout_ticks=25, stall_intervals=3))
    tracker.on_status(status(1, 7), 0)
    first = [tracker.on_tick(0)[1] for _ in range(30)]
    assert not any(first)  # two whole intervals without progress: not yet
    assert [r for r in (tracker.on_tick(0)[1] for _ in range(10)) if r]


def test_a_busy_node_sends_its_status_less_often():
    tracker = CatchUpTracker(0, NODES, faults=1, limits=SyncLimits(
        status_interval_ticks=10, busy_status_every_intervals=5))
    sent = [tracker.on_tick(height // 10)[0] for height in range(1, 101)]  # moving on
    assert sum(sent) == 3  # the first interval, then every fifth: 1, 5, 10


def test_no_sync_while_the_engine_is_between_leaders():
    tracker = CatchUpTracker(0, NODES, faults=0, limits=LIMITS)
    tracker.on_status(status(1, 7), 0)
    assert not any(tracker.on_tick(0, lambda: False)[1] for _ in range(40))


def test_unanswered_request_is_retried_on_another_peer():
    replica = make_replica()
    for peer in (1, 2, 3):
        run(replica, replica.receive(peer, status(peer, 9), b""))
    first = sync_requests(ticks(replica, 20))
    assert len(first) == 1
    retry = sync_requests(ticks(replica, LIMITS.request_timeout_ticks))
    assert len(retry) == 1 and retry[0].to != first[0].to


def test_no_request_while_the_node_is_level_or_still_moving():
    replica = make_replica()
    for peer in (1, 2, 3):
        run(replica, replica.receive(peer, status(peer, 0), b""))
    assert not sync_requests(ticks(replica, 40))


def test_status_naming_another_node_is_refused():
    replica = make_replica()
    plan = replica.receive(1, status(2, 50), b"")
    assert plan.notes and isinstance(plan.notes[0], Rejected)
    run(replica, plan)
    assert replica.sync.peer_heights == {}


# ------------------------------------------------------------------ routing
@pytest.mark.parametrize("message, field", [
    (SyncRequest(1, 4, 2), "serve"), (SyncResponse((), 0, 2), "check_sync"),
    (TransactionBatch((b"a", b"b"), 2), "admit")])
def test_core_messages_are_routed_to_the_driver_step_they_need(message, field):
    replica = make_replica()
    plan = replica.receive(2, message, b"")
    assert getattr(plan, field) and not plan.sends and not plan.persist
    run(replica, plan)


@pytest.mark.parametrize("message", [SyncRequest(1, 4, 3), SyncResponse((), 0, 3),
                                     TransactionBatch((b"a",), 3)])
def test_core_messages_naming_another_sender_are_refused(message):
    replica = make_replica()
    plan = replica.receive(2, message, b"")
    assert not (plan.serve or plan.check_sync or plan.admit)
    assert plan.notes[0].reason == RejectReason.MALFORMED
    run(replica, plan)


def test_a_backup_forwards_its_batch_to_the_primary():
    replica = make_replica(node=1)  # PBFT view 0: replica 0 is primary
    check = TxCheck(tx_id(b"tx-1"), True)
    assert replica.admit(b"tx-1", check) == AddResult.ADDED
    plan = replica.propose(now_ms=1_000)
    assert plan.sends == (Outbound(0, TransactionBatch((b"tx-1",), 1)),)
    run(replica, plan)


def test_a_node_changing_view_alone_forwards_to_the_primary_the_others_follow():
    """TOCS 2002 §4.1: a client's request reaches the primary the others follow. A backup
    whose view timer fired alone holds nothing back: once f + 1 others show (by their
    normal-case messages) that they still work in view 0, batches go to primary 0 -
    while the node itself still reports no leader (it accepts nothing of view 0)."""
    replica = make_replica(node=1)
    signers = {i: SimulatedSigner(SEED, i, CHAIN) for i in range(NODES)}
    assert replica.admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == AddResult.ADDED
    run(replica, replica.propose(now_ms=1_000))  # forwarded; the view timer runs
    ticks(replica, 400)
    assert replica.engine.status().role == "view_change"
    assert replica.admit(b"tx-2", TxCheck(tx_id(b"tx-2"), True)) == AddResult.ADDED
    assert run(replica, replica.propose(now_ms=5_000)).sends == ()  # nobody to send to
    for voter in (2, 3):  # f + 1 = 2 replicas still in view 0
        vote = Prepare(0, 1, b"\x02" * 32, voter)
        run(replica, replica.receive(voter, vote, signers[voter].sign(vote)))
    assert replica.engine.status().leader is None
    plan = replica.propose(now_ms=6_000)
    # tx-1 too: its forward timed out with the view, so it goes again.
    assert [(o.to, sorted(o.message.txs)) for o in plan.sends] == [(0, [b"tx-1", b"tx-2"])]
    run(replica, plan)


def test_a_committed_transaction_is_not_admitted_again():
    chain = committed_chain()
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain), len(chain), 1), chain)
    run(replica, plan, [applied_of(item) for item in chain])
    tx = next(tx for item in chain for tx in item.block.txs)
    assert replica.admit(tx, TxCheck(tx_id(tx), True)) == AddResult.DUPLICATE


def test_a_held_transaction_is_released_by_the_block_that_fills_its_gap():
    # Nonce 1 of this sender was admitted at another node; nonce 2 arrived here first
    # and waits. Applying the block that carries nonce 1 must release it: the client
    # sends nothing else until 2 commits.
    chain = committed_chain()
    replica = make_replica()
    sender = b"S" * 20
    held = replica.admit(b"nonce-2", TxCheck(tx_id(b"nonce-2"), True, sender=sender, nonce=2),
                         committed_nonce=0)
    assert held == AddResult.HELD and replica.mempool.pending_count == 0
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[:1]), 1, 1), chain[:1])
    item = chain[0]
    run(replica, plan, [AppliedBlock(item.block.height, item.block.block_hash,
                                     item.state_root, (), ((sender, 1),))])
    assert (replica.mempool.held_count, replica.mempool.pending_count) == (0, 1)


# ------------------------------------------------------------------ synced blocks
def committed_chain() -> list[CommittedBlock]:
    scenario = Scenario(algorithm="pbft", nodes=NODES, seed=SEED, duration_ms=2_000,
                        chain_id=CHAIN, network=NetworkConfig(delay_min_ms=1, delay_mean_ms=2),
                        workload=Workload(tx_per_s=100))
    sim = Simulation(scenario)
    assert sim.run().ok
    return sim.nodes[1].storage.chain[:5]


def applied_of(item: CommittedBlock) -> AppliedBlock:
    return AppliedBlock(item.block.height, item.block.block_hash, item.state_root, ())


def test_verified_sync_blocks_become_one_synced_write_and_feed_synced():
    chain = committed_chain()
    replica = make_replica()
    response = SyncResponse(tuple(chain), 9, 1)
    accepted = replica.check_sync(response, *replica.chain_tip())
    assert accepted == chain  # real certificates, checked by the engine's own rule
    plan = replica.on_synced_blocks(response, accepted)
    assert plan.synced and [c.block for c in plan.blocks] == [i.block for i in chain]
    replica.done(plan, [applied_of(item) for item in chain], [b""] * len(plan.sends))
    assert replica.chain_tip() == (5, chain[-1].block.block_hash)
    follow = replica.next_plan()  # the engine is told with one Synced, then goes on
    assert follow is not None
    run(replica, follow)


def test_sync_blocks_that_do_not_extend_the_tip_are_not_planned():
    chain = committed_chain()
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[1:]), 9, 1), chain[1:])
    assert not plan.blocks
    run(replica, plan)


def test_an_answer_the_node_has_overtaken_is_late_not_invalid():
    # The node committed blocks 1-2 while its request for 1.. was on its way.
    chain = committed_chain()
    replica = make_replica()
    run(replica, replica.on_synced_blocks(SyncResponse(tuple(chain[:2]), 5, 1), chain[:2]),
        [applied_of(item) for item in chain[:2]])
    stale = SyncResponse(tuple(chain[:2]), 5, 3)
    plan = replica.on_synced_blocks(stale, replica.check_sync(stale, *replica.chain_tip()))
    assert not plan.blocks and not plan.notes
    run(replica, plan)


def test_forged_sync_block_is_refused_by_the_certificate_check():
    chain = committed_chain()
    replica = make_replica()
    forged = CommittedBlock(chain[0].block, chain[1].certificate, chain[0].state_root)
    assert replica.check_sync(SyncResponse((forged,), 9, 1), *replica.chain_tip()) == []


# ------------------------------------------------------------------ the plan contract
def test_a_new_input_before_the_last_plan_is_done_is_a_bug():
    replica = make_replica()
    replica.tick()
    with pytest.raises(ReplicaInvariantError):
        replica.tick()


def test_a_plan_carried_out_in_part_is_a_bug():
    chain = committed_chain()
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain), 9, 1), chain)
    with pytest.raises(ReplicaInvariantError, match="in part"):
        replica.done(plan, [], [b""] * len(plan.sends))


def test_the_transaction_id_is_the_body_hash_for_envelopes_and_the_bytes_hash_otherwise():
    import hashlib

    from ledger.tx import build_transfer
    from tests.unit.ledger_helpers import ED, address, seed

    tx = build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")
    from proto.qenex.v1 import transaction_pb2

    body = transaction_pb2.SignedTransaction.FromString(tx).body
    assert tx_id(tx) == hashlib.sha256(body).digest()
    assert tx_id(b"\xff\xfe opaque") == hashlib.sha256(b"\xff\xfe opaque").digest()


def test_leadership_transfer_goes_through_the_engine():
    pbft = make_replica()
    plan = pbft.transfer_leadership(2)
    assert plan.notes[0].reason == RejectReason.UNSUPPORTED and not plan.sends
    run(pbft, plan)
    raft = make_replica("raft")
    plan = raft.transfer_leadership(2)  # not the leader (no election yet): refused
    assert plan.notes[0].reason == RejectReason.NOT_LEADER
    run(raft, plan)


# ------------------------------------------------------------------ refusals, exactly
@pytest.mark.parametrize("message, detail", [
    (SyncRequest(1, 4, 3), "sync request names another requester"),
    (SyncResponse((), 0, 3), "sync response names another responder"),
    (TransactionBatch((b"a",), 3), "forwarded batch names another origin"),
    (status(3, 50), "status names another node"),
    (ReadIndexRequest(7, 3), "read index request names another origin"),
    (ReadIndexAnswer(7, 4, 3), "read index answer names another responder"),
])
def test_a_core_message_naming_another_node_is_refused_with_the_signer_and_reason(
        message, detail):
    replica = make_replica()
    plan = replica.receive(2, message, b"")
    assert plan == Plan(notes=(Rejected(RejectReason.MALFORMED, 2, detail),))
    run(replica, plan)
    assert replica.sync.peer_heights == {} and len(replica.reads) == 0


def test_status_goes_to_every_real_peer_that_connects_and_to_nobody_else():
    replica = make_replica(node=1)
    for peer in (0, 3):
        plan = replica.peer_connected(peer)
        assert plan == Plan(sends=(Outbound(peer, SyncStatus(0, GENESIS_HASH, 1)),))
        run(replica, plan)
    for stranger in (1, -1, NODES):  # itself, and indexes outside the validator set
        plan = replica.peer_connected(stranger)
        assert plan == Plan()
        run(replica, plan)


def test_a_new_replica_stands_at_genesis_until_restored():
    replica = new_replica()
    assert replica.chain_tip() == (0, GENESIS_HASH)
    assert replica.status_message() == SyncStatus(0, GENESIS_HASH, 0)


def test_restore_puts_the_replica_at_the_ledgers_tip():
    chain = committed_chain()
    tip = chain[2].block
    replica = make_replica(restore=Restore(committed_height=3, committed_hash=tip.block_hash,
                                           state_root=chain[2].state_root))
    assert replica.chain_tip() == (3, tip.block_hash)
    assert replica.engine.status().committed_height == 3


def test_an_explicit_fault_tolerance_decides_how_many_heights_are_distrusted():
    from qenex_node.core.replica import faults_to_distrust

    replica = make_replica(fault_tolerance=0)
    assert faults_to_distrust(replica.engine, replica.config) == 0
    run(replica, replica.receive(3, status(3, 12), b""))
    assert replica.sync.trusted_height() == 12  # f = 0: one report is believed


def test_propose_with_nothing_pending_plans_nothing():
    replica = make_replica()
    plan = replica.propose(now_ms=1_000)
    assert plan == Plan()
    run(replica, plan)


def test_an_own_proposal_stays_proposed_past_the_timeout_while_the_epoch_lasts():
    replica = make_replica()  # PBFT primary of view 0
    assert replica.admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == AddResult.ADDED
    run(replica, replica.propose(now_ms=1_000))
    plan = replica.propose(now_ms=1_000 + replica.mempool.limits.proposal_timeout_ms)
    assert plan == Plan()  # its block may still commit: offering it again orders it twice
    run(replica, plan)
    epoch = (replica.engine.status().view, replica.engine.status().leader)
    assert replica.mempool.requeue_stale(5_000, epoch) == 0
    assert replica.mempool.requeue_stale(5_000, (1, 1)) == 1  # a new view lets it go again


def test_a_primary_proposal_is_persisted_then_broadcast_and_fed_back():
    replica = make_replica()
    assert replica.admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == AddResult.ADDED
    plan = replica.propose(now_ms=1_000)
    assert [p.value for p in plan.persist] == [plan.sends[0].message]
    assert plan.needs_write()
    assert [(o.to, o.loopback) for o in plan.sends] == [(None, True)]
    signature = SimulatedSigner(SEED, 0, CHAIN).sign(plan.sends[0].message)
    replica.done(plan, [], [signature])
    follow = replica.next_plan()  # its own signed copy, as any replica's message
    assert follow is not None
    run(replica, follow)
    assert replica.in_flight.carried() == {tx_id(b"tx-1")}


def test_a_transaction_another_proposal_carries_is_not_proposed_again():
    primary, backup = make_replica(), make_replica(node=1)
    assert primary.admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == AddResult.ADDED
    proposal = run(primary, primary.propose(now_ms=1_000)).sends[0].message
    signature = SimulatedSigner(SEED, 0, CHAIN).sign(proposal)
    plan = backup.receive(0, proposal, signature)
    assert [(o.to, type(o.message).__name__) for o in plan.sends] == [(None, "Prepare")]
    run(backup, plan)
    for tx in (b"tx-1", b"tx-2"):
        assert backup.admit(tx, TxCheck(tx_id(tx), True)) == AddResult.ADDED
    plan = backup.propose(now_ms=1_000)
    assert plan.sends == (Outbound(0, TransactionBatch((b"tx-2",), 1)),)
    run(backup, plan)
    # tx-1 waits as handed on: it comes back after the forward timeout, not never.
    assert backup.mempool.requeue_stale(1_000 + 3_000, (0, 0)) == 2


def test_a_block_carried_since_before_a_restart_keeps_its_transactions_out_of_batches():
    kept = make_block(CHAIN, 1, GENESIS_HASH, (b"tx-1",), 0, 1_000)
    replica = make_replica(restore=Restore(records=(("log", (kept,)),)))
    assert replica.in_flight.carried() == {tx_id(b"tx-1")}
    for tx in (b"tx-1", b"tx-2"):
        assert replica.admit(tx, TxCheck(tx_id(tx), True)) == AddResult.ADDED
    plan = replica.propose(now_ms=1_000)
    assert plan.persist[0].value.block.txs == (b"tx-2",)
    run(replica, plan)
    epoch = (replica.engine.status().view, replica.engine.status().leader)
    assert replica.mempool.requeue_stale(4_000, epoch) == 1  # tx-1 only: handed on


def test_a_follower_told_to_install_a_snapshot_asks_the_leader_for_the_blocks():
    replica = make_replica("raft", node=1)
    snapshot = InstallSnapshot(1, 2, 40, 1, b"\x05" * 32, b"\x06" * 32)
    plan = replica.receive(2, snapshot, b"")
    assert plan.sends == (Outbound(2, SyncRequest(1, SYNC_BLOCKS_MAX, 1)),)
    assert [p.key for p in plan.persist][-1] == "raft/pending_snapshot"
    run(replica, plan)
    assert (replica.sync.target, replica.sync.preferred) == (40, (2,))


def test_no_catch_up_while_a_raft_node_knows_no_leader():
    replica = make_replica("raft")  # no election within these ticks
    run(replica, replica.receive(1, status(1, 40), b""))
    assert replica.sync.target == 40
    assert not sync_requests(ticks(replica, 30))


# ------------------------------------------------------------------ synced blocks, exactly
def test_a_sync_answer_with_no_acceptable_block_is_refused_and_asked_again_later():
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse((), 9, 2), [])
    assert plan == Plan(notes=(Rejected(RejectReason.INVALID_BLOCK, 2,
                                        "sync response had no acceptable block"),))
    run(replica, plan)


def test_a_sync_answer_that_does_not_reach_the_tip_is_dropped_without_a_refusal():
    chain = committed_chain()
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[1:]), 9, 1), chain[1:])
    assert plan == Plan()
    run(replica, plan)


def test_synced_blocks_plan_one_write_the_next_request_and_a_note():
    chain = committed_chain()
    replica = make_replica()
    for peer in (1, 2):  # f + 1 peers say 40: the target
        run(replica, replica.receive(peer, status(peer, 40), b""))
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain), 40, 1), chain)
    assert plan == Plan(blocks=tuple(Commit(i.block, i.certificate) for i in chain),
                        synced=True, sends=(Outbound(2, SyncRequest(6, SYNC_BLOCKS_MAX, 0)),),
                        notes=(Note("sync", "fetched 5 blocks to 5"),))
    assert plan.needs_write() and not Plan().needs_write()
    signatures = [b"s"] * len(plan.sends)
    committed = replica.done(plan, [applied_of(item) for item in chain], signatures)
    assert committed == chain  # the certificates and the roots, for the clients
    last = chain[-1]
    # The queued feedback is the contract (plan.py step 3): one Synced for the write.
    assert list(replica._local) == [Synced(5, last.block.block_hash, last.state_root)]
    run(replica, replica.next_plan())


def test_sync_blocks_checked_before_the_node_moved_on_apply_only_the_new_ones():
    chain = committed_chain()
    replica = make_replica()
    response = SyncResponse(tuple(chain), 5, 1)
    accepted = replica.check_sync(response, *replica.chain_tip())  # off the loop, at 0
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[:2]), 5, 2), chain[:2])
    run(replica, plan, [applied_of(item) for item in chain[:2]])  # meanwhile: at 2
    plan = replica.on_synced_blocks(response, accepted)
    assert [c.block for c in plan.blocks] == [i.block for i in chain[2:]]
    run(replica, plan, [applied_of(item) for item in chain[2:]])
    assert replica.chain_tip() == (5, chain[-1].block.block_hash)


def test_sync_from_a_height_checks_the_blocks_against_the_tip_hash():
    chain = committed_chain()
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[:2]), 5, 1), chain[:2])
    run(replica, plan, [applied_of(item) for item in chain[:2]])
    response = SyncResponse(tuple(chain[2:]), 5, 1)
    assert replica.check_sync(response, *replica.chain_tip()) == chain[2:]
    # Starting below the tip (we committed meanwhile): the blocks we hold are skipped,
    # the first one above must extend our tip.
    assert replica.check_sync(SyncResponse(tuple(chain[1:]), 5, 1),
                              *replica.chain_tip()) == chain[2:]


def test_a_sync_block_that_forks_from_the_tip_is_refused_despite_its_certificate():
    chain = committed_chain()
    replica = make_replica()
    response = SyncResponse((chain[1],), 9, 1)
    assert replica.check_sync(response, 1, b"\x09" * 32) == []
    assert replica.check_sync(response, 1, chain[0].block.block_hash) == [chain[1]]
    assert replica.check_sync(SyncResponse(tuple(chain[1:]), 9, 1), 0, GENESIS_HASH) == []


def test_a_sync_block_whose_transactions_do_not_match_its_header_is_refused():
    chain = committed_chain()
    first = chain[0]
    tampered = CommittedBlock(dataclasses.replace(first.block, txs=first.block.txs + (b"x",)),
                              first.certificate, first.state_root)
    replica = make_replica()
    assert tampered.block.block_hash == first.block.block_hash  # the header is unchanged
    assert replica.check_sync(SyncResponse((tampered,), 9, 1), 0, GENESIS_HASH) == []


def test_a_sync_block_whose_votes_do_not_verify_is_refused():
    chain = committed_chain()
    first = chain[0]
    votes = tuple(dataclasses.replace(v, signature=b"\x00" * len(v.signature))
                  for v in first.certificate.votes)
    forged = CommittedBlock(first.block, dataclasses.replace(first.certificate, votes=votes),
                            first.state_root)
    replica = make_replica()
    assert replica.check_sync(SyncResponse((forged,), 9, 1), 0, GENESIS_HASH) == []


def test_sync_at_genesis_accepts_a_driver_that_names_no_hash():
    chain = committed_chain()
    replica = make_replica()
    assert accept_synced_blocks(replica.engine_cls, replica.config, 0, b"",
                                SyncResponse(tuple(chain), 9, 1)) == chain


# ------------------------------------------------------------------ done, exactly
def test_done_without_a_plan_is_a_bug():
    replica = make_replica()
    with pytest.raises(ReplicaInvariantError):
        replica.done(Plan(), [], [])


def test_storage_that_applied_another_block_than_planned_is_a_bug():
    chain = committed_chain()
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[:1]), 9, 1), chain[:1])
    wrong = AppliedBlock(1, chain[1].block.block_hash, chain[0].state_root, ())
    with pytest.raises(ReplicaInvariantError):
        replica.done(plan, [wrong], [b""] * len(plan.sends))


def test_blocks_committed_by_the_engine_feed_one_applied_each():
    chain = committed_chain()
    replica = make_replica()
    # A plan of engine commits (what a quorum's votes would make), carried out in place
    # of the tick's own plan: done() checks a plan against its results, not its origin.
    replica.tick()
    plan = Plan(blocks=tuple(Commit(i.block, i.certificate) for i in chain[:2]))
    assert replica.done(plan, [applied_of(i) for i in chain[:2]], []) == chain[:2]
    assert list(replica._local) == [Applied(i.block.height, i.block.block_hash, i.state_root)
                                    for i in chain[:2]]


def test_feedback_inputs_past_the_bound_are_a_bug(monkeypatch):
    chain = committed_chain()
    monkeypatch.setattr(core_replica, "LOCAL_INPUTS_MAX", 2)
    replica = make_replica()
    replica.tick()
    plan = Plan(blocks=tuple(Commit(i.block, i.certificate) for i in chain[:2]))
    replica.done(plan, [applied_of(i) for i in chain[:2]], [])  # exactly the bound
    replica.tick()
    plan = Plan(blocks=(Commit(chain[2].block, chain[2].certificate),))
    with pytest.raises(ReplicaInvariantError):
        replica.done(plan, [applied_of(chain[2])], [])


def test_recently_committed_ids_are_refused_up_to_their_bound_oldest_first(monkeypatch):
    chain = committed_chain()
    txs = [tx for item in chain[:2] for tx in item.block.txs]
    assert len(txs) >= 3
    monkeypatch.setattr(core_replica, "COMMITTED_IDS_MAX", 2)
    replica = make_replica()
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[:2]), 9, 1), chain[:2])
    run(replica, plan, [applied_of(item) for item in chain[:2]])
    outcomes = [replica.admit(tx, TxCheck(tx_id(tx), True)) for tx in txs]
    assert outcomes == [AddResult.ADDED] * (len(txs) - 2) + [AddResult.DUPLICATE] * 2


def test_a_proposal_that_lost_its_height_gives_its_transactions_back_at_once():
    chain = committed_chain()
    loser = make_block(CHAIN, 1, GENESIS_HASH, (b"tx-1", b"not-here"), 2, 1_000)
    replica = make_replica(node=1, restore=Restore(records=(("log", loser),)))
    assert replica.admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == AddResult.ADDED
    run(replica, replica.propose(now_ms=1_000))  # carried by the loser: held back
    assert replica.mempool.pending_count == 0
    plan = replica.on_synced_blocks(SyncResponse(tuple(chain[:1]), 9, 1), chain[:1])
    run(replica, plan, [applied_of(chain[0])])
    assert replica.mempool.pending_count == 1 and not replica.in_flight


def test_an_engine_commit_the_ledger_already_holds_is_skipped_and_a_fork_is_a_bug():
    chain = committed_chain()
    replica = make_replica()
    run(replica, replica.on_synced_blocks(SyncResponse(tuple(chain[:2]), 9, 1), chain[:2]),
        [applied_of(item) for item in chain[:2]])
    commits = tuple(Commit(i.block, i.certificate) for i in chain[:4])
    # Catch-up got to 2 first; the engine's 1 and 2 are those blocks, 3 and 4 are new.
    # (Called directly: making four real engines commit behind a sync is a simulation.)
    assert replica._new_blocks(Effects(commit=commits)) == commits[2:]
    fork = make_block(CHAIN, 2, chain[0].block.block_hash, (b"other",), 1, 1_000)
    with pytest.raises(ReplicaInvariantError):
        replica._new_blocks(Effects(commit=(Commit(fork, chain[1].certificate),)))
    with pytest.raises(ReplicaInvariantError):  # a gap
        replica._new_blocks(Effects(commit=commits[3:]))


def test_a_send_to_itself_is_fed_back_and_never_broadcast():
    # A new PBFT primary sends re-issued PRE-PREPAREs to itself (view_change.py): those
    # must loop back addressed to itself, or the driver would put them on every wire.
    replica = make_replica()
    message = SyncStatus(0, GENESIS_HASH, 0)
    assert replica._outbound(0, message) == Outbound(0, message, loopback=True)
    assert replica._outbound(None, message) == Outbound(None, message, loopback=True)
    assert replica._outbound(2, message) == Outbound(2, message)
