"""The replica core's rules, one test each: routing, forwarding, catch-up decisions,
the plan order contract and the one transaction id. Pure: no clock, no I/O; the core
drives real engines with the simulator's deterministic signatures."""
from __future__ import annotations

import pytest

from consensus.api import EngineConfig, Rejected, RejectReason, Restore, create_engine
from consensus.pbft.messages import Prepare
from consensus.types import GENESIS_HASH, Validator, ValidatorSet
from crypto.simulated import SimulatedSigner, SimulatedVerifier
from ledger.receipts import AppliedBlock, TxCheck
from qenex_node.core.app import tx_id
from qenex_node.core.mempool import AddResult, Mempool
from qenex_node.core.plan import Outbound, Plan
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
)
from simulations.runner import Simulation
from simulations.scenario import NetworkConfig, Scenario, Workload

SEED, CHAIN, NODES = 5, "qenex-core", 4
LIMITS = SyncLimits(status_interval_ticks=10, request_timeout_ticks=25, stall_intervals=1)


def make_replica(algorithm: str = "pbft", node: int = 0) -> Replica:
    verifier = SimulatedVerifier(SEED, NODES, CHAIN)
    validators = ValidatorSet(tuple(Validator(i, verifier.public_key(i)) for i in range(NODES)))
    config = EngineConfig(node_id=node, validators=validators, chain_id=CHAIN,
                          verifier=verifier, seed=SEED)
    replica = Replica(engine=create_engine(algorithm, config), config=config,
                      mempool=Mempool(), sync_limits=LIMITS)
    run(replica, replica.restore(Restore()))
    return replica


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
