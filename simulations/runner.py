"""Run a Scenario: build the world, the network, the nodes and the faults; report.

Determinism: one root seed; every random choice draws from a named stream split off it
(`_rng(name)`); nodes, peers and events are always iterated in sorted order; the event
heap breaks ties by insertion order. `trace_digest` hashes every send and commit with its
virtual time, so two runs of one seed must print the same digest (a test checks this).
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import time as wallclock
from collections import Counter
from dataclasses import dataclass
from typing import Any

from consensus import canonical
from consensus.api import (
    EngineConfig,
    Note,
    Rejected,
    engine_class,
    is_byzantine_tolerant,
    max_faulty,
)
from consensus.types import Validator, ValidatorSet
from crypto.simulated import SimulatedVerifier
from ledger.receipts import AppliedBlock
from qenex_node.core.app import tx_id
from qenex_node.core.sync import CommittedBlock
from simulations.app import DigestApp
from simulations.byzantine import behaviour_named
from simulations.invariants import Checker, InvariantResult
from simulations.liveness import LivenessLedger, LivenessReport, judge
from simulations.network import PacketNetwork
from simulations.node import SimNode
from simulations.scenario import ClockFault, Crash, LinkCut, Partition, Scenario
from simulations.world import US_PER_MS, World

PPM = 1_000_000
LEADER = -1  # Crash(node=LEADER): whoever leads when the fault fires (YAML: leader)


@dataclass(frozen=True, slots=True)
class SimulationResult:
    scenario: Scenario
    ok: bool
    invariants: tuple[InvariantResult, ...]
    heights: dict[int, int]
    committed_blocks: int  # highest height any honest node committed
    committed_txs: int  # distinct offered transactions honest nodes committed
    offered_txs: int
    liveness: LivenessReport
    evidence_committed: int  # distinct pieces of equivocation evidence honest nodes committed
    messages_sent: int
    bytes_sent: int
    core_messages: int  # of messages_sent: status, sync and forwarded batches
    core_bytes: int
    commit_times_ms: dict[int, int]
    notes: tuple[tuple[int, int, Note | Rejected], ...]
    counters: dict[str, int]
    trace_digest: str
    wall_seconds: float
    engines: dict[int, Any]
    ledger: LivenessLedger  # offered/committed times per transaction, for reports
    block_series: tuple[tuple[int, int], ...]  # (first honest commit ms, tx count) per height

    @property
    def sim_seconds_per_wall_second(self) -> float:
        return (self.scenario.duration_ms / 1000) / max(self.wall_seconds, 1e-9)

    def failure_message(self) -> str:
        broken = [f"{r.name}: {r.detail}" for r in self.invariants if not r.ok]
        return (f"invariant broken (algorithm={self.scenario.algorithm} seed="
                f"{self.scenario.seed}): " + "; ".join(broken))

    def summary(self) -> dict[str, Any]:
        return {
            "algorithm": self.scenario.algorithm, "nodes": self.scenario.nodes,
            "seed": self.scenario.seed, "duration_s": self.scenario.duration_ms / 1000,
            "ok": self.ok, "committed_blocks": self.committed_blocks,
            "offered_txs": self.offered_txs, "committed_txs": self.committed_txs,
            "evidence_committed": self.evidence_committed,
            "liveness": self.liveness.summary(), "heights": self.heights,
            "messages_sent": self.messages_sent, "bytes_sent": self.bytes_sent,
            "messages_per_block": round(self.messages_sent / max(self.committed_blocks, 1), 1),
            "bytes_per_block": self.bytes_sent // max(self.committed_blocks, 1),
            # The engine's own protocol, without the core's status/sync/forwarding traffic:
            "consensus_messages_per_block": round(
                (self.messages_sent - self.core_messages) / max(self.committed_blocks, 1), 1),
            "consensus_bytes_per_block": (self.bytes_sent - self.core_bytes)
            // max(self.committed_blocks, 1),
            "invariants": {r.name: {"ok": r.ok, "detail": r.detail} for r in self.invariants},
            "sim_seconds_per_wall_second": round(self.sim_seconds_per_wall_second, 2),
            "wall_seconds": round(self.wall_seconds, 3), "counters": self.counters,
            "trace_digest": self.trace_digest,
        }


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.world = World()
        self.network = PacketNetwork(scenario.network, self._rng("network"))
        self.sync_rng = self._rng("sync")
        self.byzantine = {b.node: behaviour_named(b.behaviour) if isinstance(b.behaviour, str)
                          else b.behaviour for b in scenario.byzantine}
        twins = sorted(b.node for b in scenario.byzantine if b.behaviour == "twins")
        self._byz_rngs: dict[int, random.Random] = {}
        self.torn_rng = self._rng("torn-writes")
        self.liveness_ledger = LivenessLedger()
        honest = frozenset(range(scenario.nodes)) - frozenset(self.byzantine)
        self.checker = Checker(honest=honest)
        self.verifier = SimulatedVerifier(scenario.seed, scenario.nodes, scenario.chain_id)
        self._trace = hashlib.sha256()
        self.messages_sent = 0
        self.bytes_sent = 0
        self.core_messages_sent = 0
        self.core_bytes_sent = 0
        self.counters: Counter[str] = Counter()
        self.notes: list[tuple[int, int, Note | Rejected]] = []
        self.commit_times_ms: dict[int, int] = {}
        self.block_series: list[tuple[int, int]] = []
        # Engines that put evidence of equivocation in blocks say how to read it back.
        self._evidence_in_block = getattr(engine_class(scenario.algorithm),
                                          "evidence_in_block", None)
        self.evidence_committed: set[bytes] = set()
        self._byzantine_signed: dict[tuple[int, object], bytes] = {}
        self._byzantine_conflicts: set[tuple[int, object]] = set()
        self._read_ids = 0
        self.clocks = {c.node: c for c in scenario.clocks}
        validators = ValidatorSet(tuple(Validator(i, self.verifier.public_key(i))
                                        for i in range(scenario.nodes)))
        self.nodes = [SimNode(self, i, self._config(i, validators), self._clock(i))
                      for i in range(scenario.nodes)]
        # Twins (Bano et al.): a second node with the same key, reached by the same address.
        self.twins = {i: SimNode(self, i, self._config(i, validators), self._clock(i))
                      for i in twins}

    # ------------------------------------------------------------ set-up
    def _rng(self, stream: str) -> random.Random:
        return random.Random(canonical.digest((self.scenario.seed, "sim", stream)))

    def byzantine_rng(self, node: int) -> random.Random:
        return self._byz_rngs.setdefault(node, self._rng(f"byzantine/{node}"))

    def _config(self, node: int, validators: ValidatorSet) -> EngineConfig:
        base = EngineConfig(node_id=node, validators=validators, chain_id=self.scenario.chain_id,
                            verifier=self.verifier, seed=self.scenario.seed,
                            tick_ms=self.scenario.tick_ms)
        return dataclasses.replace(base, **self.scenario.engine)

    def _clock(self, node: int) -> ClockFault:
        return self.clocks.get(node, ClockFault(node))

    def make_app(self) -> DigestApp:
        return DigestApp()

    def _schedule(self) -> None:
        sc = self.scenario
        steady = [n for n in self.all_nodes() if not self.clocks.get(n.node_id)]
        for tick_ms in range(sc.tick_ms, sc.duration_ms + 1, sc.tick_ms):
            self.world.at(tick_ms * US_PER_MS, self._tick_all, steady)
        for node in self.all_nodes():
            if self.clocks.get(node.node_id):
                self._schedule_drifting_ticks(node)
        for fault in sc.faults:
            self._schedule_fault(fault)
        self._schedule_workload()
        self._schedule_reads()

    def _schedule_drifting_ticks(self, node: SimNode) -> None:
        """A fast clock (drift > 0) ticks more often in virtual time, a slow one less."""
        sc = self.scenario
        tick_us = sc.tick_ms * US_PER_MS * PPM // (PPM + node.clock.drift_ppm)
        at_us = tick_us
        while at_us <= sc.duration_ms * US_PER_MS:
            self.world.at(at_us, node.on_tick)
            at_us += tick_us

    def all_nodes(self) -> list[SimNode]:
        return self.nodes + [self.twins[i] for i in sorted(self.twins)]

    def _schedule_fault(self, fault: Crash | Partition | LinkCut) -> None:
        at_us = fault.at_ms * US_PER_MS
        if isinstance(fault, Crash):
            self.world.at(at_us, self._crash, fault)  # a twin runs on

        elif isinstance(fault, Partition):
            self.world.at(at_us, self.network.partition, fault.groups)
            if fault.heal_at_ms is not None:
                self.world.at(fault.heal_at_ms * US_PER_MS, self.network.heal_partition)
        else:
            self.world.at(at_us, self.network.cut, fault.src, fault.dst)
            if fault.heal_at_ms is not None:
                self.world.at(fault.heal_at_ms * US_PER_MS, self.network.heal_cut,
                              fault.src, fault.dst)

    def _schedule_workload(self) -> None:
        load = self.scenario.workload
        if load.tx_per_s <= 0:
            return
        stop_ms = self.scenario.workload_stop_ms()
        rng = self._rng("workload")
        interval_us = max(1, 1_000_000 // load.tx_per_s)
        time_us, counter = load.start_ms * US_PER_MS, 0
        while time_us < stop_ms * US_PER_MS:
            counter += 1
            tx = counter.to_bytes(8, "big") + rng.randbytes(max(0, load.tx_bytes - 8))
            self.world.at(time_us, self._submit, rng.randrange(self.scenario.nodes), tx)
            time_us += interval_us

    def _schedule_reads(self) -> None:
        load = self.scenario.workload
        if load.reads_per_s <= 0:
            return
        rng = self._rng("reads")  # its own stream: adding reads moves no transaction
        interval_us = max(1, 1_000_000 // load.reads_per_s)
        time_us = load.start_ms * US_PER_MS
        while time_us < self.scenario.workload_stop_ms() * US_PER_MS:
            self.world.at(time_us, self._read, rng.randrange(self.scenario.nodes))
            time_us += interval_us

    # ------------------------------------------------------------ events
    def _read(self, node: int) -> None:
        """A client reads at a node (the next honest one that is up), linearizably: the
        floor is the highest height committed anywhere as the read begins."""
        for offset in range(self.scenario.nodes):
            target = self.nodes[(node + offset) % self.scenario.nodes]
            if target.up and target.node_id in self.checker.honest:
                self._read_ids += 1
                self.count("reads_started")
                deadline_ms = self.world.now_ms + self.scenario.workload.read_timeout_ms
                target.read(self._read_ids, self.checker.highest_committed, deadline_ms)
                return

    def record_read(self, node: int, read_id: int, floor: int, served_height: int) -> None:
        self.count("reads_served")
        self.trace(("read", node, read_id, served_height))
        self.checker.on_read(node, read_id, floor, served_height)

    def _tick_all(self, nodes: list[SimNode]) -> None:
        for node in nodes:
            node.on_tick()

    def _crash(self, fault: Crash) -> None:
        node = self.current_leader() if fault.node == LEADER else fault.node
        self.trace(("crash", node, fault.point))
        self.nodes[node].arm_crash(fault)
        if fault.restart_at_ms is not None:
            self.world.at(fault.restart_at_ms * US_PER_MS, self._restart, node)

    def current_leader(self) -> int:
        """The leader most honest nodes that are up believe in (node 0 if none)."""
        votes = Counter(n.engine.status().leader for n in self.nodes
                        if n.up and n.node_id in self.checker.honest)
        votes.pop(None, None)
        return min(votes, key=lambda leader: (-votes[leader], leader)) if votes else 0

    def _restart(self, node: int) -> None:
        self.trace(("restart", node))
        self.nodes[node].start()

    def _submit(self, node: int, tx: bytes) -> None:
        """A client sends to a node; clients of byzantine or crashed nodes go elsewhere
        (the next honest node that is up), as a real client would after a refusal."""
        for offset in range(self.scenario.nodes):
            target = self.nodes[(node + offset) % self.scenario.nodes]
            if target.up and target.node_id in self.checker.honest:
                self.count("submitted_txs")
                self.liveness_ledger.offer(tx_id(tx), self.world.now_ms)
                target.submit(tx)
                return
        self.count("unserved_txs")

    def deliver(self, src: int, dst: int, payload: object, signature: bytes) -> None:
        """Twins split their peers (Bano et al.): the even-numbered half of the cluster
        reaches one copy, the odd half the other, so the copies see different worlds and
        sign what each sees. Both copies' own messages reach everyone."""
        twin = self.twins.get(dst)
        target = twin if twin is not None and src % 2 == 1 else self.nodes[dst]
        target.on_packet(src, payload, signature)

    def restart_later(self, node: SimNode, delay_ms: int) -> None:
        self.world.after(delay_ms * US_PER_MS, node.start)

    # ------------------------------------------------------------ recording
    def trace(self, item: object) -> None:
        self._trace.update(repr((self.world.now_us, item)).encode())

    def count(self, name: str, amount: int = 1) -> None:
        self.counters[name] += amount

    def account_message(self, src: int, dst: int, size: int, data: bytes,
                        core: bool = False) -> None:
        self.messages_sent += 1
        self.bytes_sent += size
        if core:  # the replica core's own traffic: status, sync, forwarded batches
            self.core_messages_sent += 1
            self.core_bytes_sent += size
        self._trace.update(self.world.now_us.to_bytes(8, "big") + bytes((src, dst))
                           + hashlib.sha256(data).digest())

    def record_commit(self, node: int, item: CommittedBlock, applied: AppliedBlock) -> None:
        height = item.block.height
        self.trace(("commit", node, height, item.block.block_hash))
        self.checker.on_commit(node, item, applied)
        if node in self.checker.honest and height not in self.commit_times_ms:
            self.commit_times_ms[height] = self.world.now_ms
            self.liveness_ledger.new_height(self.world.now_ms)
            self.block_series.append((self.world.now_ms, len(item.block.txs)))
            if self._evidence_in_block is not None:
                self.evidence_committed.update(
                    canonical.digest(e) for e in self._evidence_in_block(item.block))
            self.liveness_ledger.commit([tx_id(tx) for tx in item.block.txs],
                                        self.world.now_ms)

    def record_notes(self, node: int, notes: tuple[Note | Rejected, ...]) -> None:
        for note in notes:
            self.notes.append((self.world.now_ms, node, note))
            if isinstance(note, Rejected):
                self.count(f"rejected_{note.reason.name.lower()}")

    def check_equivocation(self, node: int, position: object, data: bytes) -> None:
        self.checker.on_sign(node, position, hashlib.sha256(data).digest())

    def note_byzantine_signature(self, node: int, position: object, data: bytes) -> None:
        """Byzantine nodes are not judged, but a report shows that they did equivocate:
        two different signed messages at one position (equivocate, twins)."""
        key = (node, position)
        digest = hashlib.sha256(data).digest()
        first = self._byzantine_signed.setdefault(key, digest)
        if first != digest and key not in self._byzantine_conflicts:
            self._byzantine_conflicts.add(key)
            self.count("byzantine_conflicting_signatures")

    def violation(self, name: str, detail: str) -> None:
        self.checker.fail(name, detail)

    def honest_heights(self) -> dict[int, int]:
        return {n.node_id: n.height for n in self.nodes
                if n.node_id in self.checker.honest}

    # ------------------------------------------------------------ run
    def run(self) -> SimulationResult:
        started = wallclock.perf_counter()
        self._schedule()
        self.world.run_until(self.scenario.duration_ms * US_PER_MS)
        wall = wallclock.perf_counter() - started
        self._count_network()
        heights = {n.node_id: n.height for n in self.nodes}
        liveness = self._liveness()
        invariants = self.checker.results(liveness.invariant())
        return SimulationResult(
            scenario=self.scenario, ok=all(r.ok for r in invariants), invariants=invariants,
            heights=heights, committed_blocks=max(self.honest_heights().values(), default=0),
            committed_txs=len(self.liveness_ledger.committed_ms),
            offered_txs=len(self.liveness_ledger.offered_ms), liveness=liveness,
            evidence_committed=len(self.evidence_committed),
            messages_sent=self.messages_sent, core_messages=self.core_messages_sent,
            core_bytes=self.core_bytes_sent,
            bytes_sent=self.bytes_sent, commit_times_ms=dict(self.commit_times_ms),
            notes=tuple(self.notes), counters=dict(sorted(self.counters.items())),
            trace_digest=self._trace.hexdigest(), wall_seconds=wall,
            engines={n.node_id: n.engine for n in self.nodes}, ledger=self.liveness_ledger,
            block_series=tuple(self.block_series))

    def _count_network(self) -> None:
        net = self.network
        for name in ("packets_sent", "packets_dropped", "packets_duplicated",
                     "packets_reordered", "packets_unreachable"):
            self.counters[f"network_{name}"] = getattr(net, name)

    def _liveness(self) -> LivenessReport:
        sc = self.scenario
        return judge(self.liveness_ledger, expected=self._liveness_expected(),
                     gst_ms=sc.gst_ms(), duration_ms=sc.duration_ms,
                     window_ms=sc.liveness_window_ms, fraction_min=sc.liveness_fraction_min)

    def _liveness_expected(self) -> bool:
        sc = self.scenario
        byzantine_tolerant = is_byzantine_tolerant(sc.algorithm)
        down = sc.permanently_down()
        faulty = len(down | frozenset(self.byzantine))  # LEADER counts as one more node
        never_heals = any(not isinstance(f, Crash) and f.heal_at_ms is None for f in sc.faults)
        return faulty <= max_faulty(sc.algorithm, sc.nodes) and not never_heals and (
            not self.byzantine or byzantine_tolerant)


def initial_leader(algorithm: str, nodes: int) -> int:
    """Who proposes first (view 0 / round 1); 0 for engines that elect one (Raft)."""
    from consensus.api import Restore, create_engine

    verifier = SimulatedVerifier(0, nodes, "probe")
    validators = ValidatorSet(tuple(Validator(i, verifier.public_key(i)) for i in range(nodes)))
    engine = create_engine(algorithm, EngineConfig(node_id=0, validators=validators,
                                                   chain_id="probe", verifier=verifier))
    engine.step(Restore())
    leader = engine.status().leader
    return leader if leader is not None else 0


def run_scenario(scenario: Scenario) -> SimulationResult:
    return Simulation(scenario).run()
