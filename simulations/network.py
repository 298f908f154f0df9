"""Seeded packet simulator: delay, loss, duplication, reordering, partitions, cut links."""
from __future__ import annotations

import random

from simulations.scenario import NetworkConfig

US_PER_MS = 1_000


class PacketNetwork:
    def __init__(self, config: NetworkConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._groups: dict[int, int] | None = None  # node -> partition group
        self._cut: set[tuple[int, int]] = set()
        self.packets_sent = 0
        self.packets_dropped = 0
        self.packets_duplicated = 0
        self.packets_reordered = 0
        self.packets_unreachable = 0  # partitions and cut links (counted in dropped too)

    def partition(self, groups: tuple[tuple[int, ...], ...]) -> None:
        self._groups = {node: index for index, group in enumerate(groups) for node in group}

    def heal_partition(self) -> None:
        self._groups = None

    def cut(self, src: int, dst: int) -> None:
        self._cut.add((src, dst))

    def heal_cut(self, src: int, dst: int) -> None:
        self._cut.discard((src, dst))

    def reachable(self, src: int, dst: int) -> bool:
        if src == dst:
            return True
        if (src, dst) in self._cut:
            return False
        if self._groups is not None:
            # A node in no group is isolated from everyone.
            return self._groups.get(src, -1) == self._groups.get(dst, -2)
        return True

    def _delay_us(self) -> int:
        cfg = self.config
        delay_ms = cfg.delay_min_ms + self._rng.expovariate(1.0 / cfg.delay_mean_ms) \
            if cfg.delay_mean_ms > 0 else cfg.delay_min_ms
        if cfg.reorder_probability and self._rng.random() < cfg.reorder_probability:
            self.packets_reordered += 1
            delay_ms += self._rng.random() * 5 * cfg.delay_mean_ms
        return int(delay_ms * US_PER_MS)

    def deliveries_us(self, src: int, dst: int) -> list[int]:
        """Delays (µs) of the copies of one packet that arrive: [], [d] or [d1, d2]."""
        self.packets_sent += 1
        if src == dst:
            return [0]
        if not self.reachable(src, dst):
            self.packets_unreachable += 1
            self.packets_dropped += 1
            return []
        if self.config.drop_probability and self._rng.random() < self.config.drop_probability:
            self.packets_dropped += 1
            return []
        delays = [self._delay_us()]
        if self._rng.random() < self.config.duplicate_probability:
            self.packets_duplicated += 1
            delays.append(self._delay_us())
        return delays
