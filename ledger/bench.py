"""`qenex bench ledger`: the command lives in ledger/storage/bench.py because it needs LMDB
and a clock, which the pure `ledger/` package may not import (tests/test_architecture.py)."""
from ledger.storage.bench import bench_ledger, run_bench

__all__ = ["bench_ledger", "run_bench"]
