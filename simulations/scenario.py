"""What a simulated run is: cluster shape, network model, faults, workload.

Everything here is plain data, loadable from scenarios/*.yaml, so a researcher can rerun a
published scenario by name and seed and get the same trace.
"""
from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from consensus.api import Send


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
    written, messages not sent) or "mid_send" (some messages sent, the rest lost).
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
class ByzantineContext:
    node_id: int
    nodes: int
    chain_id: str
    now_ms: int
    rng: random.Random


# behaviour(ctx, send) -> [(destination, message), ...] actually signed and sent
Behaviour = Callable[[ByzantineContext, Send], list[tuple[int, object]]]


@dataclass(frozen=True, slots=True)
class ByzantineNode:
    node: int
    behaviour: Behaviour


@dataclass(frozen=True, slots=True)
class Workload:
    tx_per_s: int = 200
    tx_bytes: int = 120  # opaque payload size when the digest app is used
    start_ms: int = 0
    stop_ms: int | None = None  # default: duration - 20 %, so the tail can drain
    ledger: bool = False  # real ledger with signed Ed25519 transfers (slower, realistic)


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

    def heal_time_ms(self) -> int:
        """When the last fault ends (a crash never restarted counts as permanent)."""
        ends = [0]
        for fault in self.faults:
            end = fault.restart_at_ms if isinstance(fault, Crash) else fault.heal_at_ms
            ends.append(end if end is not None else fault.at_ms)
        return max(ends)

    def permanently_down(self) -> frozenset[int]:
        return frozenset(f.node for f in self.faults
                         if isinstance(f, Crash) and f.restart_at_ms is None)


_FAULT_KINDS = {"crash": Crash, "partition": Partition, "link_cut": LinkCut}


def _fault_from_dict(data: dict[str, Any]) -> Crash | Partition | LinkCut:
    kind = data.get("kind")
    cls = _FAULT_KINDS.get(str(kind))
    if cls is None:
        raise ValueError(f"faults: unknown kind {kind!r} (one of {sorted(_FAULT_KINDS)})")
    args = {k: v for k, v in data.items() if k != "kind"}
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
    if "network" in args:
        args["network"] = NetworkConfig(**args["network"])
    if "workload" in args:
        args["workload"] = Workload(**args["workload"])
    if "faults" in args:
        args["faults"] = tuple(_fault_from_dict(f) for f in args["faults"])
    if "byzantine" in args:
        raise ValueError("scenario: byzantine behaviours are code; use the Python API or "
                         "--byzantine on the command line")
    return Scenario(**args)


def load_scenario(path: str) -> Scenario:
    with open(path, encoding="utf-8") as handle:
        return scenario_from_dict(yaml.safe_load(handle) or {})
