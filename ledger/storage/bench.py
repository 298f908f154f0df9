"""`qenex bench ledger`: apply + state root + persist throughput, and disk bytes per tx.

Signature checks are excluded (the ledger runs with verifier=None and envelopes carry
zero signatures): they cost the same per transaction whatever the ledger does, and FACTS.md
lists them. Accounts get random 32 B keys (never verified). Blocks are built before timing;
the timed part is exactly what a node does per committed block: `Ledger.apply` (checks,
balances, state root) then `LmdbStore.commit_block` (one synced write).
"""
from __future__ import annotations

import json
import random
import tempfile
import time

import click

from consensus.types import GENESIS_HASH, make_block
from ledger.account import Account, address_of
from ledger.genesis import Currency, Genesis
from ledger.ledger import Ledger
from ledger.storage.lmdb_store import LmdbStore
from ledger.tx import tx_signing_bytes  # noqa: F401  (documents what is skipped)
from proto.qenex.v1 import transaction_pb2 as pb

CHAIN = "qenex-bench"
BALANCE = 10**12
SEED = 42


def _genesis(accounts: int, rng: random.Random) -> tuple[Genesis, list[bytes]]:
    rows = []
    for _ in range(accounts):
        key = rng.randbytes(32)
        rows.append(Account(address_of(1, key), 1, key, 0, (("USD", BALANCE),)))
    rows.sort(key=lambda a: a.address)
    genesis = Genesis(CHAIN, (Currency("USD", 2, ()),), tuple(rows))
    return genesis, [a.address for a in rows]


def _transfers(genesis: Genesis, count: int, rng: random.Random) -> list[bytes]:
    nonces: dict[int, int] = {}
    accounts = genesis.accounts
    out = []
    for _ in range(count):
        i, j = rng.randrange(len(accounts)), rng.randrange(len(accounts) - 1)
        j = j + 1 if j >= i else j
        nonces[i] = nonces.get(i, 0) + 1
        body = pb.TransactionBody(chain_id=CHAIN, sender=accounts[i].address, nonce=nonces[i],
                                  transfer=pb.Transfer(to=accounts[j].address, amount=1 + i % 997,
                                                       currency="USD"))
        out.append(pb.SignedTransaction(body=body.SerializeToString(), scheme=1,
                                        public_key=accounts[i].public_key,
                                        signature=bytes(64)).SerializeToString())
    return out


def run_bench(accounts: int, txs: int, block_txs: int, path: str) -> dict:
    rng = random.Random(SEED)
    started = time.perf_counter()
    genesis, _ = _genesis(accounts, rng)
    ledger = Ledger(genesis, verifier=None)
    store = LmdbStore.open(path)
    store.init_genesis(genesis)
    payload = _transfers(genesis, txs, rng)
    setup_s = time.perf_counter() - started
    root_s: list[float] = []
    tree_root = ledger._tree.root

    def timed_root() -> bytes:  # the bench measures the state root update on its own too
        t0 = time.perf_counter()
        root = tree_root()
        root_s.append(time.perf_counter() - t0)
        return root
    ledger._tree.root = timed_root  # type: ignore[method-assign]
    disk_before = store.disk_bytes()
    apply_s = persist_s = 0.0
    ok = 0
    for start in range(0, txs, block_txs):
        parent = ledger.block_hash if ledger.height else GENESIS_HASH
        block = make_block(CHAIN, ledger.height + 1, parent, tuple(payload[start:start + block_txs]),
                           0, 1_000 + ledger.height, ledger.height, ledger.state_root)
        t0 = time.perf_counter()
        result = ledger.apply(block)
        t1 = time.perf_counter()
        store.commit_block(block, None, result.applied, result.state_changes)
        t2 = time.perf_counter()
        apply_s, persist_s = apply_s + t1 - t0, persist_s + t2 - t1
        ok += sum(o.success for o in result.applied.outcomes)
    disk_bytes = store.disk_bytes() - disk_before
    store.close()
    blocks = len(root_s)
    return {
        "accounts": accounts, "txs": txs, "txs_succeeded": ok, "block_txs": block_txs,
        "blocks": blocks, "signature_checks": "excluded",
        "apply_root_persist_tps": round(txs / (apply_s + persist_s)),
        "apply_root_tps": round(txs / apply_s),
        "apply_ms_per_block": round(apply_s / blocks * 1e3, 2),
        "state_root_ms_per_block": round(sum(root_s) / blocks * 1e3, 2),
        "persist_ms_per_block": round(persist_s / blocks * 1e3, 2),
        "disk_bytes_per_tx": round(disk_bytes / txs, 1),
        "setup_s": round(setup_s, 1),
    }


@click.command("ledger")
@click.option("--accounts", default=1_000_000, show_default=True, help="accounts in the state")
@click.option("--txs", default=20_000, show_default=True, help="transfers to apply")
@click.option("--block-txs", default=2_000, show_default=True, help="transfers per block")
@click.option("--path", default=None, help="LMDB directory (default: a temporary one)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def bench_ledger(accounts: int, txs: int, block_txs: int, path: str | None, as_json: bool) -> None:
    """Apply + state root + persist throughput of the ledger (signature checks excluded)."""
    if accounts < 2 or txs < 1 or block_txs < 1:
        raise click.BadParameter("need accounts >= 2, txs >= 1, block-txs >= 1")
    with tempfile.TemporaryDirectory(prefix="qenex-bench-") as tmp:
        report = run_bench(accounts, txs, block_txs, path or tmp)
    if as_json:
        click.echo(json.dumps(report, sort_keys=True))
    else:
        for key, value in sorted(report.items()):
            click.echo(f"{key:28} {value}")
