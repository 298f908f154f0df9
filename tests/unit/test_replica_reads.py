"""Client reads through the replica core: which node asks whom, and what the driver is
told (`Plan.reads`: serve once applied >= index; `Plan.read_failures`). Pure: real
engines and replicas joined by an in-memory network that delivers every message at once,
with the simulator's deterministic signatures."""
from __future__ import annotations

import collections

import pytest

from consensus.api import EngineConfig, ReadReady, Restore, create_engine
from consensus.types import Validator, ValidatorSet
from crypto.simulated import SimulatedSigner, SimulatedVerifier
from ledger.receipts import AppliedBlock
from qenex_node.core import reads as core_reads
from qenex_node.core.mempool import Mempool
from qenex_node.core.plan import Outbound, Plan
from qenex_node.core.reads import ReadFailure, ReadIndexAnswer, ReadIndexRequest
from qenex_node.core.replica import Replica

SEED, CHAIN, NODES = 11, "qenex-reads", 4
ROOT = b"\x07" * 32


class Network:
    """Replicas whose sends are delivered in order until nothing moves; blocks are
    'applied' as the driver would report them (no ledger: reads only need heights)."""

    def __init__(self, algorithm: str) -> None:
        verifier = SimulatedVerifier(SEED, NODES, CHAIN)
        validators = ValidatorSet(tuple(Validator(i, verifier.public_key(i))
                                        for i in range(NODES)))
        self.replicas = []
        for node in range(NODES):
            config = EngineConfig(node_id=node, validators=validators, chain_id=CHAIN,
                                  verifier=verifier, seed=SEED + node)
            self.replicas.append(Replica(engine=create_engine(algorithm, config),
                                         config=config, mempool=Mempool()))
        self.signers = [SimulatedSigner(SEED, n, CHAIN) for n in range(NODES)]
        self.down: set[int] = set()
        self.cut: set[tuple[int, int]] = set()  # (sender, receiver) links that drop
        self.reads: dict[int, list[ReadReady]] = collections.defaultdict(list)
        self.failures: dict[int, list[ReadFailure]] = collections.defaultdict(list)
        self.wire: collections.deque[tuple[int, int, object, bytes]] = collections.deque()
        self.seen: list[tuple[int, int, object]] = []  # (sender, to, message) delivered
        for node, replica in enumerate(self.replicas):
            self.carry(node, replica.restore(Restore()))

    def carry(self, node: int, plan: Plan) -> None:
        replica = self.replicas[node]
        while plan is not None:
            signatures = [self.signers[node].sign(out.message) for out in plan.sends]
            for out, signature in zip(plan.sends, signatures):
                targets = [p for p in range(NODES) if p != node] if out.to is None else \
                    [out.to] if out.to != node else []
                self.wire.extend((node, to, out.message, signature) for to in targets)
            applied = [AppliedBlock(c.block.height, c.block.block_hash, ROOT, ())
                       for c in plan.blocks]
            replica.done(plan, applied, signatures)
            self.reads[node] += plan.reads
            self.failures[node] += plan.read_failures
            plan = replica.next_plan()

    def settle(self) -> None:
        while self.wire:
            sender, to, message, signature = self.wire.popleft()
            if to in self.down or sender in self.down or (sender, to) in self.cut:
                continue
            self.seen.append((sender, to, message))
            self.carry(to, self.replicas[to].receive(sender, message, signature))

    def tick(self, count: int) -> None:
        for _ in range(count):
            for node, replica in enumerate(self.replicas):
                if node not in self.down:
                    self.carry(node, replica.tick())
            self.settle()

    def leader(self) -> int:
        for _ in range(100):
            leaders = {r.engine.status().leader for r in self.replicas}
            if len(leaders) == 1 and None not in leaders:
                return leaders.pop()
            self.tick(10)
        raise AssertionError("no leader elected")

    def read(self, node: int, request_id: int) -> None:
        self.carry(node, self.replicas[node].read(request_id))


@pytest.fixture
def raft() -> Network:
    net = Network("raft")
    net.leader()
    net.tick(30)  # the leader's no-op entry commits everywhere
    return net


def test_a_read_on_the_raft_leader_is_ready_at_its_commit_index(raft):
    leader = raft.leader()
    index = raft.replicas[leader].engine.commit_index
    raft.read(leader, 1)
    assert raft.reads[leader] == []  # not before a majority confirmed the leadership
    raft.settle()
    assert raft.reads[leader] == [ReadReady(1, index)] and index >= 1


def test_a_raft_follower_asks_the_leader_and_serves_at_the_leaders_index(raft):
    leader = raft.leader()
    follower = (leader + 1) % NODES
    index = raft.replicas[leader].engine.commit_index
    raft.read(follower, 7)
    assert raft.wire[-1][:3] == (follower, leader, ReadIndexRequest(7, follower))
    raft.settle()
    assert raft.reads[follower] == [ReadReady(7, index)]
    assert raft.reads[leader] == [] and raft.failures[follower] == []
    answers = [m for s, t, m in raft.seen if isinstance(m, ReadIndexAnswer)]
    assert answers == [ReadIndexAnswer(7, index, leader)]


def test_a_follower_asked_for_a_read_index_answers_with_a_refusal(raft):
    leader = raft.leader()
    follower, other = (leader + 1) % NODES, (leader + 2) % NODES
    request = ReadIndexRequest(3, other)
    raft.carry(follower, raft.replicas[follower].receive(
        other, request, raft.signers[other].sign(request)))
    assert raft.wire[-1][:3] == (follower, other, ReadIndexAnswer(3, 0, follower,
                                                                  refused="NOT_LEADER"))
    raft.settle()
    assert raft.reads[other] == [] and raft.failures[other] == []  # it never asked


def test_a_leader_that_steps_down_fails_the_followers_read(raft):
    leader = raft.leader()
    follower = (leader + 1) % NODES
    for node in range(NODES):
        if node not in (leader, follower):
            raft.cut |= {(leader, node), (node, leader)}
    raft.read(follower, 8)
    raft.read(leader, 9)  # the leader's own client too (engine read id 1 there)
    raft.tick(400)  # check-quorum: a leader hearing only a minority steps down (§6.2)
    assert raft.reads[follower] == raft.reads[leader] == []
    assert raft.failures[leader] == [ReadFailure(9, "ABORTED", "1:stepped down")]
    assert raft.failures[follower] == [ReadFailure(8, "ABORTED",
                                                   f"leader {leader} refused the read")]


def test_a_read_index_answer_from_a_node_not_asked_is_ignored(raft):
    leader = raft.leader()
    follower, stranger = (leader + 1) % NODES, (leader + 2) % NODES
    raft.read(follower, 4)
    raft.wire.clear()  # the request is lost
    forged = ReadIndexAnswer(4, 999, stranger)
    raft.carry(follower, raft.replicas[follower].receive(
        stranger, forged, raft.signers[stranger].sign(forged)))
    assert raft.reads[follower] == [] and raft.failures[follower] == []


def test_an_answer_naming_another_responder_is_refused(raft):
    leader = raft.leader()
    follower = (leader + 1) % NODES
    raft.read(follower, 5)
    raft.wire.clear()
    lie = ReadIndexAnswer(5, 1, (leader + 2) % NODES)  # signed by the leader, names another
    plan = raft.replicas[follower].receive(leader, lie, raft.signers[leader].sign(lie))
    assert [n.detail for n in plan.notes] == ["read index answer names another responder"]
    raft.carry(follower, plan)
    assert raft.reads[follower] == []


def test_a_forgotten_read_is_not_answered_late(raft):
    leader = raft.leader()
    follower = (leader + 1) % NODES
    raft.read(follower, 6)
    raft.replicas[follower].forget_read(6)  # the client's deadline passed
    raft.settle()
    assert raft.reads[follower] == [] and len(raft.replicas[follower].reads) == 0


def test_a_read_forgotten_on_the_leader_is_dropped_and_the_others_answered(raft):
    leader = raft.leader()
    index = raft.replicas[leader].engine.commit_index
    raft.read(leader, 1)
    raft.read(leader, 2)
    raft.replicas[leader].forget_read(1)
    raft.settle()
    assert raft.reads[leader] == [ReadReady(2, index)]
    assert len(raft.replicas[leader].reads) == 0


def test_reads_beyond_the_bound_fail_at_once(raft, monkeypatch):
    monkeypatch.setattr(core_reads, "READS_PENDING_MAX", 2)
    follower = (raft.leader() + 1) % NODES
    for request_id in (1, 2, 3):
        raft.read(follower, request_id)
    assert raft.failures[follower] == [ReadFailure(3, "OVER_LIMIT", "too many reads waiting")]
    raft.settle()
    assert [r.request_id for r in raft.reads[follower]] == [1, 2]


def test_a_read_while_no_leader_is_known_fails_for_the_driver_to_retry():
    net = Network("raft")  # before any election
    net.read(0, 9)
    assert net.failures[0] == [ReadFailure(9, "NOT_LEADER", "read 1: not the leader; "
                                           "leader=None")]
    assert len(net.replicas[0].reads) == 0


@pytest.mark.parametrize("algorithm", ["pbft", "hotstuff", "tendermint"])
def test_a_bft_read_is_answered_by_the_barrier_on_any_node_without_forwarding(algorithm):
    net = Network(algorithm)
    net.tick(50)
    reader = 2
    net.read(reader, 4)
    for _ in range(30):
        if net.reads[reader]:
            break
        net.tick(5)
    floor = max(r.height for r in net.replicas)
    assert [r.request_id for r in net.reads[reader]] == [4]
    assert net.reads[reader][0].index >= 0 and net.failures[reader] == []
    assert not any(isinstance(m, ReadIndexRequest) for _, _, m in net.seen)
    assert net.reads[reader][0].index <= floor + 1


def test_a_read_forwarded_to_a_leader_that_crashed_fails_once_another_leads(raft):
    old = raft.leader()
    follower = (old + 1) % NODES
    raft.down.add(old)
    raft.read(follower, 12)  # forwarded to the crashed leader: no answer will come
    raft.settle()
    assert raft.failures[follower] == []
    new = None
    for _ in range(60):
        raft.tick(10)
        leaders = {r.engine.status().leader for n, r in enumerate(raft.replicas)
                   if n != old}
        if len(leaders) == 1 and leaders != {old} and None not in leaders:
            new = leaders.pop()
            break
    assert new is not None
    # Failed as soon as the follower stopped following the old leader (an election),
    # so the driver's retry goes to whoever leads next.
    assert [(f.request_id, f.reason) for f in raft.failures[follower]] == [(12, "NOT_LEADER")]
    assert raft.failures[follower][0].detail in ("the leader changed to None",
                                                 f"the leader changed to {new}")
    assert len(raft.replicas[follower].reads) == 0


def test_a_bft_node_refuses_to_serve_a_read_index_to_a_peer():
    net = Network("pbft")
    request = ReadIndexRequest(1, 2)
    plan = net.replicas[0].receive(2, request, net.signers[2].sign(request))
    assert [(n.sender, n.detail) for n in plan.notes] == [
        (2, "read index requests are for crash-fault engines")]
    assert plan.sends == () and len(net.replicas[0].reads) == 0
    net.carry(0, plan)


def test_a_leader_with_too_many_reads_waiting_refuses_a_followers_read_at_once(
        raft, monkeypatch):
    monkeypatch.setattr(core_reads, "READS_PENDING_MAX", 1)
    leader = raft.leader()
    follower = (leader + 1) % NODES
    raft.read(leader, 1)  # waits for the heartbeat round: the bound is reached
    request = ReadIndexRequest(3, follower)
    plan = raft.replicas[leader].receive(follower, request, raft.signers[follower].sign(request))
    assert plan == Plan(sends=(Outbound(follower, ReadIndexAnswer(3, 0, leader,
                                                                  refused="OVER_LIMIT")),))
    raft.carry(leader, plan)


def test_a_read_index_answer_nobody_waits_for_plans_nothing(raft):
    leader = raft.leader()
    follower = (leader + 1) % NODES
    late = ReadIndexAnswer(4, 9, leader)  # e.g. for a read the client gave up on
    plan = raft.replicas[follower].receive(leader, late, raft.signers[leader].sign(late))
    assert plan == Plan()
    raft.carry(follower, plan)


def test_a_raft_leader_hands_leadership_to_the_named_node():
    from consensus.raft.messages import TimeoutNow

    net = Network("raft")
    leader = net.leader()
    net.tick(30)
    target = (leader + 2) % NODES
    plan = net.replicas[leader].transfer_leadership(target)
    assert [(o.to, type(o.message)) for o in plan.sends] == [(target, TimeoutNow)]
    net.carry(leader, plan)
    net.settle()
    assert net.leader() == target


def test_a_hotstuff_replica_keeps_a_proposals_transactions_out_of_its_own_batches():
    """HotStuff replicas vote on a proposal without persisting it: the core must learn
    its transactions from the message itself, or a later leader orders them twice."""
    from ledger.receipts import TxCheck
    from qenex_node.core.app import tx_id

    net = Network("hotstuff")
    leader = net.leader()
    follower = (leader + 1) % NODES
    assert net.replicas[leader].admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == "ADDED"
    net.carry(leader, net.replicas[leader].propose(10_000))
    sender, _to, proposal, signature = next(w for w in net.wire if w[1] == follower)
    net.wire.clear()
    replica = net.replicas[follower]
    net.carry(follower, replica.receive(sender, proposal, signature))
    assert replica.in_flight.carried() == {tx_id(b"tx-1")}
    assert replica.admit(b"tx-1", TxCheck(tx_id(b"tx-1"), True)) == "ADDED"
    plan = replica.propose(10_000)
    assert plan == Plan()  # a follower's batch would go to the leader: nothing to send
    net.carry(follower, plan)


def test_a_raft_followers_answers_go_to_the_leader_only(raft):
    leader = raft.leader()
    follower = (leader + 1) % NODES
    for _ in range(50):  # until the next heartbeat leaves
        raft.carry(leader, raft.replicas[leader].tick())
        if any(w[1] == follower for w in raft.wire):
            break
    sender, _to, message, signature = next(w for w in raft.wire if w[1] == follower)
    raft.wire.clear()
    plan = raft.replicas[follower].receive(sender, message, signature)
    assert plan.sends and all((o.to, o.loopback) == (leader, False) for o in plan.sends)
    raft.carry(follower, plan)


def test_a_raft_leaders_entries_past_its_send_window_are_known_to_be_in_flight(raft):
    """With its pipeline full (no acks), the leader appends entries it does not send yet:
    the core learns their transactions from the persisted log alone - or, after a new
    term sends them back to pending, they would be proposed a second time."""
    from ledger.receipts import TxCheck
    from qenex_node.core.app import tx_id

    leader = raft.leader()
    replica = raft.replicas[leader]
    window = replica.config.inflight_blocks_max
    txs = [b"tx-%d" % k for k in range(window + 2)]
    for k, tx in enumerate(txs):
        assert replica.admit(tx, TxCheck(tx_id(tx), True)) == "ADDED"
        plan = replica.propose(1_000 + k)
        assert bool(plan.sends) == (k < window) and len(plan.persist) == 1
        raft.carry(leader, plan)
        raft.wire.clear()  # no follower hears of it: no acks
    assert replica.in_flight.carried() == {tx_id(tx) for tx in txs}
