"""Verification pool: check many signatures on a few workers.

Measured here (see `qenex bench crypto`): pyca's ML-DSA verify and PyNaCl's Ed25519
verify release the GIL, so threads scale on the cores we have and avoid pickling 4.6 KB
signatures to another process; ML-KEM decapsulation holds the GIL (not a verification,
but the peer channel's handshake cost), so when handshakes must run in parallel they go
to processes. `EXECUTOR_BY_SCHEME` records that choice; `VerificationPool(kind=...)`
overrides it.

    pool = VerificationPool(workers=2)
    results = pool.verify_batch([(scheme, public_key, message, signature), ...])
    pool.close()
"""
from __future__ import annotations

import concurrent.futures as futures
from collections.abc import Sequence

from crypto.schemes import Scheme, verify

Item = tuple[int, bytes, bytes, bytes]  # (scheme, public key, message, signature)

EXECUTOR_BY_SCHEME = {Scheme.ED25519: "thread", Scheme.ML_DSA_44: "thread",
                      Scheme.ML_DSA_65: "thread", Scheme.ML_DSA_87: "thread"}
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
            self._executor = futures.ProcessPoolExecutor(workers)
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

    def __enter__(self) -> VerificationPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
