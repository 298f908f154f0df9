"""Shrinking a failing run to a minimal fault schedule that still fails.

Greedy delta debugging over the scenario's parts (Zeller & Hildebrandt, "Simplifying and
Isolating Failure-Inducing Input", 2002), in the order that removes the most at once:
drop whole faults, byzantine nodes and clock faults; zero each network probability;
shorten fault windows and the run; lower the node count when no fault names the nodes
that would go. A candidate is kept when it breaks the same invariant again (same seed:
the run is deterministic). Every candidate is one simulation, so the budget is bounded.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from simulations.scenario import Crash, LinkCut, NetworkConfig, Partition, Scenario

SHRINK_RUNS_MAX = 200  # simulations one shrink may spend

Fails = Callable[[Scenario], bool]


def _without(items: tuple, index: int) -> tuple:
    return items[:index] + items[index + 1:]


def _removals(s: Scenario) -> Iterator[Scenario]:
    for i in range(len(s.faults)):
        yield dataclasses.replace(s, faults=_without(s.faults, i))
    for i in range(len(s.byzantine)):
        yield dataclasses.replace(s, byzantine=_without(s.byzantine, i))
    if s.clocks:
        yield dataclasses.replace(s, clocks=())
    if s.torn_write_probability:
        yield dataclasses.replace(s, torn_write_probability=0.0)


def _network_simplifications(s: Scenario) -> Iterator[Scenario]:
    net = s.network
    for name in ("drop_probability", "duplicate_probability", "reorder_probability"):
        if getattr(net, name):
            yield dataclasses.replace(s, network=dataclasses.replace(net, **{name: 0.0}))
    default = NetworkConfig(signature_bytes=net.signature_bytes)
    if (net.delay_min_ms, net.delay_mean_ms) != (default.delay_min_ms, default.delay_mean_ms):
        yield dataclasses.replace(s, network=dataclasses.replace(
            net, delay_min_ms=default.delay_min_ms, delay_mean_ms=default.delay_mean_ms))


def _shorter_window(fault: Crash | Partition | LinkCut) -> Crash | Partition | LinkCut | None:
    if isinstance(fault, Crash):
        if fault.restart_at_ms is None or fault.restart_at_ms - fault.at_ms < 200:
            return None
        return dataclasses.replace(fault, restart_at_ms=(fault.at_ms + fault.restart_at_ms) // 2)
    if fault.heal_at_ms is None or fault.heal_at_ms - fault.at_ms < 200:
        return None
    return dataclasses.replace(fault, heal_at_ms=(fault.at_ms + fault.heal_at_ms) // 2)


def _shortenings(s: Scenario) -> Iterator[Scenario]:
    for i, fault in enumerate(s.faults):
        shorter = _shorter_window(fault)
        if shorter is not None:
            yield dataclasses.replace(s, faults=s.faults[:i] + (shorter,) + s.faults[i + 1:])
    # The liveness window is part of the property checked, not of the input: a shorter
    # window would ask a different question (e.g. "commit within 0.9 s of a forging
    # leader", less than one view timeout) and "still fails" for another reason. So
    # the run shortens only while the last fault still ends a whole window before it.
    shorter_ms = max(s.duration_ms * 3 // 4, last_fault_end_ms(s) + s.liveness_window_ms)
    if s.duration_ms >= 2_000 and shorter_ms < s.duration_ms:
        yield dataclasses.replace(s, duration_ms=shorter_ms)


def last_fault_end_ms(s: Scenario) -> int:
    ends = [0]
    for fault in s.faults:
        end = fault.restart_at_ms if isinstance(fault, Crash) else fault.heal_at_ms
        ends.append(fault.at_ms if end is None else end)
    return max(ends)


def _named_nodes(s: Scenario) -> set[int]:
    named: set[int] = set()
    for fault in s.faults:
        if isinstance(fault, Partition):
            named.update(n for group in fault.groups for n in group)
        elif isinstance(fault, LinkCut):
            named.update((fault.src, fault.dst))
        elif fault.node >= 0:
            named.add(fault.node)
    named.update(b.node for b in s.byzantine)
    named.update(c.node for c in s.clocks)
    return named


def _fewer_nodes(s: Scenario) -> Iterator[Scenario]:
    named = _named_nodes(s)
    for smaller in (4, 5, 6, 7, 10):
        if smaller < s.nodes and all(n < smaller for n in named):
            yield dataclasses.replace(s, nodes=smaller)
            return


def candidates(s: Scenario) -> Iterator[Scenario]:
    yield from _removals(s)
    yield from _network_simplifications(s)
    yield from _fewer_nodes(s)
    yield from _shortenings(s)


def shrink(scenario: Scenario, fails: Fails, runs_max: int = SHRINK_RUNS_MAX
           ) -> tuple[Scenario, int]:
    """The smallest scenario found that still `fails`, and how many runs it took."""
    if not fails(scenario):
        raise ValueError("the run does not fail: nothing to shrink")
    runs, current, progress = 1, scenario, True
    while progress and runs < runs_max:
        progress = False
        for candidate in candidates(current):
            runs += 1
            if fails(candidate):
                current, progress = candidate, True
                break
            if runs >= runs_max:
                break
    return current, runs
