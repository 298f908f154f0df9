"""Shared fixtures for ledger and storage tests: a small genesis with known keys."""
from __future__ import annotations

import hashlib

from consensus.types import GENESIS_HASH, Block, make_block
from crypto.schemes import Scheme, public_key_from_seed
from ledger.account import address_of
from ledger.genesis import Genesis
from ledger.ledger import Ledger

CHAIN = "qenex-test"
ED = int(Scheme.ED25519)


def seed(i: int) -> bytes:
    return hashlib.sha256(b"seed%d" % i).digest()


def address(i: int) -> bytes:
    return address_of(ED, public_key_from_seed(Scheme.ED25519, seed(i)))


ISSUER = 0  # account 0 issues USD and EUR


def genesis_dict(accounts: int = 4, balance: int = 1_000_000) -> dict:
    return {
        "chain_id": CHAIN,
        "currencies": {"USD": {"minor_units": 2, "issuers": [address(ISSUER).hex()]},
                       "EUR": {"minor_units": 2, "issuers": [address(ISSUER).hex()]},
                       "JPY": {"minor_units": 0}},
        "accounts": [{"scheme": "ED25519",
                      "public_key": public_key_from_seed(Scheme.ED25519, seed(i)).hex(),
                      "balances": {"USD": balance, "EUR": balance}}
                     for i in range(accounts)],
    }


def make_genesis(accounts: int = 4, balance: int = 1_000_000) -> Genesis:
    return Genesis.from_dict(genesis_dict(accounts, balance))


def next_block(ledger: Ledger, txs: list[bytes] | tuple[bytes, ...], time_ms: int = 1_000) -> Block:
    parent = ledger.block_hash if ledger.height else GENESIS_HASH
    return make_block(CHAIN, ledger.height + 1, parent, tuple(txs), proposer=0,
                      timestamp_ms=time_ms, state_height=ledger.height,
                      state_root=ledger.state_root)


def snapshot(ledger: Ledger) -> tuple:
    """Everything observable about the state, for 'nothing changed' assertions."""
    return (ledger.state_root, tuple(sorted((a.address, a) for a in ledger.accounts())))
