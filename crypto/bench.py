"""Crypto throughput on this machine: sign/verify per scheme, ML-KEM, the verification pool.

Numbers are operations per second over a short wall-clock window each, so they move with
machine load; run it on a quiet machine before quoting them.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent import futures

from crypto.pool import EXECUTOR_BY_SCHEME, VerificationPool
from crypto.schemes import Scheme, SeedSigner, kem_decapsulate, kem_encapsulate, kem_keypair, verify

MESSAGE = b"QENEX/bench" + bytes(200)


def rate_per_s(operation: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(8):
            operation()
        count += 8
        now = time.perf_counter()
        if now >= deadline:
            return round(count / (now - start), 1)


def _scheme_rates(scheme: Scheme, seconds: float) -> dict[str, float]:
    signer = SeedSigner(scheme, os.urandom(32))
    signature = signer.sign(MESSAGE)
    return {"sign_per_s": rate_per_s(lambda: signer.sign(MESSAGE), seconds),
            "verify_per_s": rate_per_s(
                lambda: verify(scheme, signer.public_key, MESSAGE, signature), seconds)}


def _pool_rate(scheme: Scheme, workers: int, items_count: int, kind: str) -> float:
    signer = SeedSigner(scheme, os.urandom(32))
    item = (int(scheme), signer.public_key, MESSAGE, signer.sign(MESSAGE))
    items = [item] * items_count
    with VerificationPool(workers=workers, scheme=scheme, kind=kind) as pool:
        pool.verify_batch(items[:workers])  # start the workers outside the timing
        start = time.perf_counter()
        assert all(pool.verify_batch(items))
        return round(items_count / (time.perf_counter() - start), 1)


def _threaded_decaps_rate(threads: int, count: int) -> float:
    private, public = kem_keypair()
    _, ciphertext = kem_encapsulate(public)
    def loop(n: int) -> None:
        for _ in range(n):
            kem_decapsulate(private, ciphertext)

    with futures.ThreadPoolExecutor(threads) as executor:
        start = time.perf_counter()
        list(executor.map(loop, [count // threads] * threads))
        return round(count / (time.perf_counter() - start), 1)


def run(seconds: float = 0.3, pool_items: int = 1000) -> dict[str, object]:
    schemes = {s.name: _scheme_rates(s, seconds) for s in Scheme}
    private, public = kem_keypair()
    _, ciphertext = kem_encapsulate(public)
    schemes["ML_KEM_1024"] = {
        "encapsulate_per_s": rate_per_s(lambda: kem_encapsulate(public), seconds),
        "decapsulate_per_s": rate_per_s(lambda: kem_decapsulate(private, ciphertext), seconds)}
    pool: dict[str, dict[str, float]] = {}
    for scheme, items in ((Scheme.ML_DSA_87, pool_items), (Scheme.ED25519, pool_items * 8)):
        for kind in ("process", "thread"):
            pool[f"{scheme.name}_{kind}"] = {
                f"verify_per_s_{w}_workers": _pool_rate(scheme, w, items, kind) for w in (1, 2)}
    pool["ML_KEM_1024_decaps_threads"] = {f"per_s_{t}_threads": _threaded_decaps_rate(t, 4000)
                                          for t in (1, 2)}
    return {"cpu_count": os.cpu_count(), "window_s": seconds, "schemes": schemes,
            "pool": pool, "pool_kind_default": {s.name: k for s, k in EXECUTOR_BY_SCHEME.items()}}
