"""Verification pool: check many signatures on a few workers.

Measured again on this machine (2 cores, cryptography 50.0.2, PyNaCl 1.6, Python 3.11),
one thread vs two: ML-DSA-87 verify 3,785 -> 7,514/s, ML-DSA-87 sign 851 -> 1,779/s,
Ed25519 verify 18,288 -> 32,035/s (these release the GIL), ML-KEM-1024 decapsulation
26,660 -> 24,966/s (holds the GIL). So signature verification runs on threads: no
process start-up, no copying 4.6 KB signatures between processes. `kind="process"`
(spawned, not forked: the daemon has threads) exists for schemes that hold the GIL;
`EXECUTOR_BY_SCHEME` records the choice per scheme. Beware: a busy machine hides the
scaling (a run under another agent's load showed 1.0x for threads), so re-measure on a
quiet one with `qenex bench crypto --json`, which reports both kinds.

    pool = VerificationPool(workers=2)
    results = pool.verify_batch([(scheme, public_key, message, signature), ...])
    pool.close()
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent import futures
from typing import Self

from crypto.schemes import Scheme, verify

Item = tuple[int, bytes, bytes, bytes]  # (scheme, public key, message, signature)

EXECUTOR_BY_SCHEME = {Scheme.ED25519: "thread", Scheme.ML_DSA_44: "thread",
                      Scheme.ML_DSA_65: "thread", Scheme.ML_DSA_87: "thread"}
KEM_DECAPSULATION_EXECUTOR = "process"  # holds the GIL: parallel handshakes need processes
BATCH_ITEMS_MAX = 100_000


def _verify_chunk(items: Sequence[Item]) -> list[bool]:
    return [verify(scheme, key, message, signature) for scheme, key, message, signature in items]


class VerificationPool:
    def __init__(self, workers: int = 2, kind: str | None = None,
                 scheme: Scheme = Scheme.ML_DSA_87) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.workers = workers
        self.kind = kind or EXECUTOR_BY_SCHEME.get(scheme, "thread")
        if self.kind == "thread":
            self._executor: futures.Executor = futures.ThreadPoolExecutor(
                workers, thread_name_prefix="verify")
        elif self.kind == "process":
            self._executor = futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"))
            # Start every worker now (imports included), not on the first batch.
            list(self._executor.map(_verify_chunk, [[]] * workers))
        else:
            raise ValueError(f"pool kind must be 'thread' or 'process', not {self.kind!r}")

    def verify_batch(self, items: Sequence[Item]) -> list[bool]:
        """One bool per item, in order. Malformed items are False, never an exception."""
        if len(items) > BATCH_ITEMS_MAX:
            raise ValueError(f"batch of {len(items)} exceeds BATCH_ITEMS_MAX")
        if not items:
            return []
        size = -(-len(items) // self.workers)
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        results: list[bool] = []
        for chunk_result in self._executor.map(_verify_chunk, chunks):
            results.extend(chunk_result)
        return results

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
