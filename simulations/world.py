"""Discrete-event loop on virtual time.

Events are ordered by (time_us, seq): `seq` is a global insertion counter, so two events
at the same instant always run in the order they were scheduled. Nothing here reads a
clock or an unseeded RNG; that is what makes a seed reproduce a trace exactly.
"""
from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

US_PER_MS = 1_000


class World:
    def __init__(self) -> None:
        self.now_us = 0
        self._seq = 0
        self._queue: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self.events_run = 0

    @property
    def now_ms(self) -> int:
        return self.now_us // US_PER_MS

    def at(self, time_us: int, action: Callable[..., None], *args: Any) -> None:
        if time_us < self.now_us:
            raise ValueError("cannot schedule in the past")
        self._seq += 1
        heapq.heappush(self._queue, (time_us, self._seq, action, args))

    def after(self, delay_us: int, action: Callable[..., None], *args: Any) -> None:
        self.at(self.now_us + max(0, delay_us), action, *args)

    def run_until(self, end_us: int) -> None:
        while self._queue and self._queue[0][0] <= end_us:
            time_us, _, action, args = heapq.heappop(self._queue)
            self.now_us = time_us
            self.events_run += 1
            action(*args)
        self.now_us = end_us
