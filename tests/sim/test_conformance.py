"""Conformance: the runtime driver and the simulator's driver do the same thing.

One seeded simulation records everything node 0 was given (ticks, proposal times, client
transactions, verified peer packets) and everything its simulator driver did (each
storage write: engine records and blocks; each message sent). The very same input
sequence is then fed to the trio runtime driver (`qenex_node.runtime.driver.Driver`) with
in-memory storage, an outbox that keeps what it is given, the same deterministic signer
and no clock. Both must write the same records and blocks and send the same messages, in
the same order. The scenario cuts node 0 off for a while, so catch-up (status, sync
requests and answers, certificate checks) is part of what is compared.
"""
from __future__ import annotations

import dataclasses

import pytest
import structlog

from consensus.api import Tick, create_engine
from crypto.simulated import SimulatedSigner
from qenex_node.core.mempool import Mempool, MempoolLimits
from qenex_node.core.replica import Replica
from qenex_node.runtime.driver import ClientRead, Driver, PeerMessage, ProposeNow
from qenex_node.runtime.metrics import NodeMetrics
from simulations.app import DigestApp
from simulations.node import MEMPOOL_PROPOSAL_TIMEOUT_MS, SimStorage
from simulations.runner import Simulation
from simulations.scenario import NetworkConfig, Partition, Scenario, Workload


@dataclasses.dataclass
class Recording:
    inputs: list[tuple[object, ...]] = dataclasses.field(default_factory=list)
    # ("write", records, block hashes) and ("send", to, message), interleaved as done:
    # a driver that sent before it wrote would show it here.
    events: list[tuple[object, ...]] = dataclasses.field(default_factory=list)

    def on_input(self, kind: str, *args: object) -> None:
        self.inputs.append((kind, *args))

    def on_write(self, persist, blocks) -> None:  # type: ignore[no-untyped-def]
        if persist or blocks:
            self.events.append(("write", tuple(persist), tuple(b.block_hash for b, _ in blocks)))

    def on_send(self, to: int | None, message: object) -> None:
        self.events.append(("send", to, message))


class KeepingOutbox:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    def send(self, peer: int, message: object, signature: bytes) -> bool:
        self.recording.on_send(peer, message)
        return True

    def broadcast(self, message: object, signature: bytes) -> int:
        self.recording.on_send(None, message)
        return 1


class RecordingStorage(SimStorage):
    def __init__(self, recording: Recording) -> None:
        super().__init__(DigestApp, lambda item, applied: None)
        self.recording = recording
        self.reopen()

    def write_step(self, persist, blocks):  # type: ignore[no-untyped-def]
        self.recording.on_write(persist, blocks)
        return super().write_step(persist, blocks)


def record_simulation(algorithm: str, seed: int) -> tuple[Simulation, Recording]:
    scenario = Scenario(algorithm=algorithm, nodes=4, seed=seed, duration_ms=4_000,
                        network=NetworkConfig(delay_min_ms=1, delay_mean_ms=3),
                        workload=Workload(tx_per_s=150, reads_per_s=40),
                        faults=(Partition(((0,), (1, 2, 3)), at_ms=1_000, heal_at_ms=2_200),),
                        engine={"view_timeout_ticks": 40})
    sim = Simulation(scenario)
    recording = Recording()
    node = sim.nodes[0]
    node.recorder = recording
    # The node started before the recorder was attached: replay starts from its Restore.
    result = sim.run()
    assert result.ok, result.failure_message()
    assert node.height > 5
    return sim, recording


async def replay_through_runtime(sim: Simulation, inputs: list[tuple[object, ...]]) -> Recording:
    import trio

    node = sim.nodes[0]
    recording = Recording()
    storage = RecordingStorage(recording)
    replica = Replica(engine=create_engine(sim.scenario.algorithm, node.config),
                      config=node.config,
                      mempool=Mempool(MempoolLimits(
                          proposal_timeout_ms=MEMPOOL_PROPOSAL_TIMEOUT_MS)))
    driver = Driver(replica=replica, storage=storage,
                    signer=SimulatedSigner(sim.scenario.seed, 0, sim.scenario.chain_id),
                    outbox=KeepingOutbox(recording), metrics=NodeMetrics(),
                    log=structlog.get_logger("conformance"))
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        await driver.process(storage.restore_input())
        recording.events.clear()  # the simulated node restored before it was recorded
        for kind, *args in inputs:
            if kind == "tick":
                await driver.process(Tick())
            elif kind == "propose":
                await driver.process(ProposeNow(args[0]))
            elif kind == "packet":
                await driver.process(PeerMessage(*args))
                await driver.wait_admissions()
            elif kind == "admit":
                replica.admit(args[0], storage.app.check_tx(args[0]))
            elif kind == "read":
                await driver.process(ClientRead(args[0], trio.Event()))
        nursery.cancel_scope.cancel()
    return recording


# Raft's leader repairs a cut-off follower with AppendEntries, so it never needs blocks
# from the sync path there; PBFT fetches them.
@pytest.mark.parametrize("algorithm, catch_up", [
    ("pbft", {"SyncStatus", "SyncRequest"}), ("raft", {"SyncStatus"})])
async def test_runtime_and_simulator_drivers_do_the_same(algorithm: str,
                                                         catch_up: set[str]) -> None:
    sim, simulated = record_simulation(algorithm, seed=11)
    kinds = {entry[0] for entry in simulated.inputs}
    assert {"tick", "propose", "packet", "admit", "read"} <= kinds
    names = {type(e[2]).__name__ for e in simulated.events if e[0] == "send"}
    assert catch_up <= names  # the catch-up machinery was exercised
    received = {type(e[2]).__name__ for e in simulated.inputs if e[0] == "packet"}
    assert "SyncResponse" in received or "SyncRequest" not in catch_up
    assert sum(1 for e in simulated.events if e[0] == "write" and e[2]) > 5  # blocks
    runtime = await replay_through_runtime(sim, simulated.inputs)
    for index, (ours, theirs) in enumerate(zip(runtime.events, simulated.events)):
        assert ours == theirs, f"event {index} differs"
    assert len(runtime.events) == len(simulated.events) > 50
