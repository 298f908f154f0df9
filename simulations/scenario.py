"""What a simulated run is: cluster shape, network model, faults, workload.

Everything here is plain data, loadable from scenarios/*.yaml, so a researcher can rerun a
published scenario by name and seed and get the same trace.
"""
from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass, field
from typing import Any

import yaml

from simulations.byzantine import BEHAVIOURS, Behaviour, ByzantineContext

__all__ = ["Behaviour", "ByzantineContext"]  # re-exported: tests and scenarios use them


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Delay = delay_min_ms + Exponential(mean = delay_mean_ms), per packet."""
    delay_min_ms: float = 1.0
    delay_mean_ms: float = 4.0
    drop_probability: float = 0.0
    duplicate_probability: float = 0.0
    reorder_probability: float = 0.0  # extra delay of up to 5 x mean, so later packets pass
    signature_bytes: int = 4627  # counted per message (ML-DSA-87), whatever signs in the sim


@dataclass(frozen=True, slots=True)
class Crash:
    """Node stops at `at_ms`; restarts from its durable state at `restart_at_ms` (or never).

    `point` says where in a step the crash lands: "between_steps", "after_persist" (state
    written, messages not sent), "mid_send" (some messages sent, the rest lost) or
    "mid_write" (the write in progress never became durable: lost, nothing sent).
    """
    node: int
    at_ms: int
    restart_at_ms: int | None = None
    point: str = "between_steps"


@dataclass(frozen=True, slots=True)
class Partition:
    """Nodes in different groups cannot reach each other until `heal_at_ms`."""
    groups: tuple[tuple[int, ...], ...]
    at_ms: int
    heal_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class LinkCut:
    """Asymmetric fault: packets from src to dst are lost (dst to src still flow)."""
    src: int
    dst: int
    at_ms: int
    heal_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ClockFault:
    """A node whose clock is off by `skew_ms` and whose ticks run `drift_ppm` fast (> 0)
    or slow (< 0): timeouts fire early or late, proposal timestamps are skewed."""
    node: int
    skew_ms: int = 0
    drift_ppm: int = 0


CRASH_POINTS = ("between_steps", "after_persist", "mid_send", "mid_write")




@dataclass(frozen=True, slots=True)
class ByzantineNode:
    node: int
    behaviour: Behaviour | str  # a callable, or a name from simulations.byzantine


@dataclass(frozen=True, slots=True)
class Workload:
    tx_per_s: int = 200
    tx_bytes: int = 120  # opaque payload size when the digest app is used
    start_ms: int = 0
    stop_ms: int | None = None  # default: duration - 20 %, so the tail can drain
    ledger: bool = False  # real ledger with signed Ed25519 transfers (slower, realistic)
    # Linearizable reads at random honest nodes (0: none), checked against real time by
    # the `linearizable_reads` invariant; a read not served by its deadline is counted.
    reads_per_s: int = 0
    read_timeout_ms: int = 3_000


@dataclass(frozen=True, slots=True)
class Scenario:
    algorithm: str
    nodes: int = 7
    seed: int = 1
    duration_ms: int = 10_000
    tick_ms: int = 10
    block_time_ms: int = 100
    network: NetworkConfig = NetworkConfig()
    faults: tuple[Crash | Partition | LinkCut, ...] = ()
    byzantine: tuple[ByzantineNode, ...] = ()
    workload: Workload = Workload()
    engine: dict[str, Any] = field(default_factory=dict)  # EngineConfig overrides
    liveness_window_ms: int = 8_000  # after the last heal, progress is required within this
    chain_id: str = "qenex-sim"
    clocks: tuple[ClockFault, ...] = ()
    torn_write_probability: float = 0.0  # a write that never becomes durable, then a crash
    torn_write_restart_ms: int = 1_000  # a node crashed by a torn write restarts after this
    torn_write_until_ms: int | None = None  # torn writes stop here (None: the whole run)
    liveness_fraction_min: float = 0.9  # of transactions offered after GST, to be committed

    def gst_ms(self) -> int:
        """Global stabilisation time: when the last temporary fault ends (0 when the only
        faults are permanent crashes, byzantine nodes and packet loss, which last for the
        whole run and which the protocol must live with)."""
        ends = [0]
        for fault in self.faults:
            if isinstance(fault, Crash):
                if fault.restart_at_ms is not None:
                    ends.append(fault.restart_at_ms)
            elif fault.heal_at_ms is not None:
                ends.append(fault.heal_at_ms)
            else:
                ends.append(self.duration_ms)  # never heals: no GST within the run
        if self.torn_write_probability:
            # Torn writes crash random nodes, possibly more than f at once: only once they
            # stop (and their last victims are back) does the system owe liveness.
            until = self.torn_write_until_ms if self.torn_write_until_ms is not None \
                else self.duration_ms
            ends.append(min(until + self.torn_write_restart_ms, self.duration_ms))
        return max(ends)

    def workload_stop_ms(self) -> int:
        stop = self.workload.stop_ms
        return stop if stop is not None else self.duration_ms * 4 // 5

    def permanently_down(self) -> frozenset[int]:
        """Nodes crashed for good (-1 stands for "whoever leads then")."""
        return frozenset(f.node for f in self.faults
                         if isinstance(f, Crash) and f.restart_at_ms is None)


_FAULT_KINDS = {"crash": Crash, "partition": Partition, "link_cut": LinkCut,
                "one_way": LinkCut}


def _fault_from_dict(data: dict[str, Any]) -> Crash | Partition | LinkCut:
    kind = data.get("kind")
    cls = _FAULT_KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"faults: unknown kind {kind!r} (one of {sorted(_FAULT_KINDS)})")
    args = {k: v for k, v in data.items() if k != "kind"}
    if cls is Crash and args.get("node") == "leader":
        args["node"] = -1  # runner.LEADER: resolved when the crash fires
    if cls is Crash and args.get("point", "between_steps") not in CRASH_POINTS:
        raise ValueError(f"crash: point must be one of {CRASH_POINTS}")
    if cls is Partition:
        args["groups"] = tuple(tuple(g) for g in args.get("groups", ()))
    return cls(**args)


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Build a Scenario from YAML data; unknown keys are errors that name the key."""
    known = {f.name for f in dataclasses.fields(Scenario)}
    unknown = sorted(set(data) - known - {"name", "description"})
    if unknown:
        raise ValueError(f"scenario: unknown keys {unknown}")
    args = {k: v for k, v in data.items() if k in known}
    args.setdefault("algorithm", "pbft")  # scenario files are engine-neutral; -a overrides
    if "network" in args:
        args["network"] = NetworkConfig(**args["network"])
    if "workload" in args:
        args["workload"] = Workload(**args["workload"])
    if "faults" in args:
        args["faults"] = tuple(_fault_from_dict(f) for f in args["faults"])
    if "clocks" in args:
        args["clocks"] = tuple(ClockFault(**c) for c in args["clocks"])
    if "byzantine" in args:
        args["byzantine"] = tuple(_byzantine_from_dict(b) for b in args["byzantine"])
    return Scenario(**args)


def _byzantine_from_dict(data: dict[str, Any]) -> ByzantineNode:
    if set(data) != {"node", "behaviour"} or data["behaviour"] not in BEHAVIOURS:
        raise ValueError(f"byzantine: expected {{node, behaviour}} with behaviour one of "
                         f"{sorted(BEHAVIOURS)}, got {data!r}")
    return ByzantineNode(int(data["node"]), str(data["behaviour"]))


def scenario_to_dict(scenario: Scenario) -> dict[str, Any]:
    """The YAML-able form of a scenario (named behaviours only), for shrink and reports."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(Scenario):
        value = getattr(scenario, f.name)
        if f.name == "faults":
            value = [_fault_to_dict(fault) for fault in value]
        elif f.name == "byzantine":
            if any(not isinstance(b.behaviour, str) for b in value):
                raise ValueError("only named byzantine behaviours can be written out")
            value = [{"node": b.node, "behaviour": b.behaviour} for b in value]
        elif f.name == "clocks":
            value = [dataclasses.asdict(c) for c in value]
        elif f.name in ("network", "workload"):
            value = dataclasses.asdict(value)
        elif f.name == "engine":
            value = dict(value)
        out[f.name] = value
    return out


def _fault_to_dict(fault: Crash | Partition | LinkCut) -> dict[str, Any]:
    kind = {Crash: "crash", Partition: "partition", LinkCut: "link_cut"}[type(fault)]
    data = dataclasses.asdict(fault)
    if isinstance(fault, Crash) and fault.node == -1:
        data["node"] = "leader"
    if isinstance(fault, Partition):
        data["groups"] = [list(g) for g in fault.groups]
    return {"kind": kind, **data}


def load_scenario(path: str) -> Scenario:
    with open(path, encoding="utf-8") as handle:
        return scenario_from_dict(yaml.safe_load(handle) or {})


SCENARIO_DIR = pathlib.Path(__file__).resolve().parent / "scenarios"


def shipped_scenarios() -> dict[str, str]:
    """name -> path of the scenario library that ships with the simulator."""
    return {path.stem: str(path) for path in sorted(SCENARIO_DIR.glob("*.yaml"))}
