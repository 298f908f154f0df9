"""kill -9 a writer at random moments: the reopened LMDB store is always at a block boundary.

A forked child commits blocks of transfers in a loop (starting from whatever the store
holds), with a tiny initial map so map growth happens too; the parent kills it with
SIGKILL after a random delay, reopens the store and checks: meta height matches the last
block, every block links to its parent, the stored accounts hash to the stored root, the
engine record written with each block says the same height, and money is conserved.
"""
from __future__ import annotations

import os
import random
import signal
import time
import traceback

from consensus.types import Certificate
from ledger.storage.lmdb_store import LmdbStore
from ledger.storage.recovery import check_consistency, load_ledger
from ledger.tx import build_transfer
from tests.unit.ledger_helpers import CHAIN, ED, address, make_genesis, next_block, seed

ACCOUNTS = 8
KILLS = 15


def _writer(path: str, ready_fd: int) -> None:
    store = LmdbStore.open(path, map_size_bytes=32 * 1024)
    store.init_genesis(make_genesis(accounts=ACCOUNTS))
    ledger = load_ledger(store, verifier=None)
    os.write(ready_fd, b"r")
    rng = random.Random(ledger.height)
    while True:
        txs = []
        nonces: dict[int, int] = {}
        for _ in range(rng.randrange(1, 6)):
            sender = rng.randrange(ACCOUNTS)
            nonces[sender] = nonces.get(sender, ledger.account(address(sender)).nonce) + 1
            txs.append(build_transfer(CHAIN, ED, seed(sender), nonces[sender],
                                      address((sender + 1) % ACCOUNTS), rng.randrange(1, 100),
                                      "USD", memo="x" * rng.randrange(0, 200)))
        block = next_block(ledger, txs)
        result = ledger.apply(block)
        store.commit_block(block, Certificate("test", block.height, block.block_hash, ()),
                           result.applied, result.state_changes, [("height", block.height)])


def _run_and_kill(path: str, rng: random.Random) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(read_fd)
            _writer(path, write_fd)
        except BaseException:  # noqa: BLE001 - child process: report any death, then _exit
            traceback.print_exc()
        finally:
            os._exit(1)
    os.close(write_fd)
    os.read(read_fd, 1)  # the writer has opened the store
    os.close(read_fd)
    time.sleep(rng.uniform(0.0, 0.08))
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "writer died on its own (see its traceback above)"


def test_store_survives_kill_9_at_random_points(tmp_path):
    path = str(tmp_path / "db")
    rng = random.Random(20240607)
    heights = []
    for _ in range(KILLS):
        _run_and_kill(path, rng)
        with LmdbStore.open(path) as store:
            assert check_consistency(store) == []
            records = dict(store.engine_records())
            assert records.get("height", 0) == store.height
            ledger = load_ledger(store, verifier=None)
            total = sum(a.balance("USD") for a in ledger.accounts())
            assert total == ACCOUNTS * 1_000_000
            heights.append(store.height)
    print("heights after each kill:", heights)
    assert heights == sorted(heights) and heights[-1] > 0
