"""Hypothesis properties of apply: money is conserved (except issue/redeem), balances stay in
0 .. 2^63-1, a (sender, nonce) never succeeds twice, and the same blocks give the same root."""
from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.account import encode_account
from ledger.ledger import Ledger
from ledger.money import AMOUNT_MAX
from ledger.state_tree import StateTree, verify_account_proof
from ledger.tx import build_issue, build_redeem, build_transfer
from tests.unit.ledger_helpers import CHAIN, ED, ISSUER, address, make_genesis, next_block, seed

ACCOUNTS = 5
CURRENCIES = ("USD", "EUR")

op = st.tuples(
    st.sampled_from(["transfer"] * 6 + ["issue", "redeem"]),
    st.integers(0, ACCOUNTS - 1),  # sender
    st.integers(0, ACCOUNTS),  # recipient (ACCOUNTS = an unknown account)
    st.one_of(st.integers(1, 2_000_000), st.sampled_from([0, AMOUNT_MAX, AMOUNT_MAX + 1])),
    st.sampled_from([0, 0, 0, 0, -1, 1]),  # nonce offset from the next one
    st.sampled_from(CURRENCIES),
)
blocks_strategy = st.lists(st.lists(op, max_size=8), min_size=1, max_size=5)


def _build(ledger: Ledger, ops, nonces: dict[int, int]) -> list[bytes]:
    txs = []
    for kind, sender, to, amount, offset, currency in ops:
        if kind != "transfer":
            sender = ISSUER if sender % 2 == 0 else sender  # issuer most of the time
        nonce = max(1, nonces.get(sender, ledger.account(address(sender)).nonce) + 1 + offset)
        nonces[sender] = max(nonces.get(sender, 0), nonce if offset == 0 else nonces.get(sender, 0))
        to_address = address(to) if to < ACCOUNTS else b"\x09" * 20
        if kind == "transfer":
            txs.append(build_transfer(CHAIN, ED, seed(sender), nonce, to_address, amount, currency))
        elif kind == "issue":
            txs.append(build_issue(CHAIN, ED, seed(sender), nonce, to_address, amount, currency))
        else:
            txs.append(build_redeem(CHAIN, ED, seed(sender), nonce, amount, currency))
    return txs


def _totals(ledger: Ledger) -> Counter:
    totals: Counter = Counter()
    for account in ledger.accounts():
        for code, amount in account.balances:
            assert 0 < amount <= AMOUNT_MAX
            totals[code] += amount
    return totals


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks_strategy)
def test_apply_conserves_money_and_never_reuses_nonces(plan):
    ledger = Ledger(make_genesis(accounts=ACCOUNTS), verifier=None)
    replica = Ledger(make_genesis(accounts=ACCOUNTS), verifier=None)
    used: set[tuple[bytes, int]] = set()
    for ops in plan:
        before = _totals(ledger)
        block = next_block(ledger, _build(ledger, ops, {}))
        nonces_before = {a.address: a.nonce for a in ledger.accounts()}
        result = ledger.apply(block)
        assert replica.apply(block) == result  # same block, same receipts and root
        minted: Counter = Counter()
        for outcome, data in zip(result.applied.outcomes, block.txs):
            parsed = ledger._parse(data)
            if not outcome.success:
                continue
            tx = parsed.tx
            assert (tx.sender, tx.nonce) not in used
            used.add((tx.sender, tx.nonce))
            if tx.kind == "issue":
                minted[tx.currency] += tx.amount
            elif tx.kind == "redeem":
                minted[tx.currency] -= tx.amount
        after = _totals(ledger)
        for code in CURRENCIES:
            assert after[code] == before[code] + minted[code]
        for account in ledger.accounts():  # nonces only move forward
            assert account.nonce >= nonces_before.get(account.address, 0)
    scratch = StateTree.from_accounts([(a.address, encode_account(a)) for a in ledger.accounts()])
    assert scratch.root() == ledger.state_root


keys = st.binary(min_size=20, max_size=20)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(keys, st.binary(max_size=8), max_size=40),
       st.lists(st.tuples(keys, st.one_of(st.none(), st.binary(max_size=8))), max_size=30),
       st.integers(0, 6))
def test_state_tree_root_is_independent_of_history_and_layout(initial, updates, bits):
    tree = StateTree.from_accounts(initial)
    state = dict(initial)
    for address_bytes, value in updates:
        tree.set(address_bytes, value)
        if value is None:
            state.pop(address_bytes, None)
        else:
            state[address_bytes] = value
    root = tree.root()
    assert root == StateTree.from_accounts(state).root()
    other_layout = StateTree(dict(StateTree.from_accounts(state).leaf_items()),
                             bucket_bits=bits)
    assert other_layout.root() == root
    for address_bytes, _ in updates[:5]:
        proof = tree.prove(address_bytes)
        assert verify_account_proof(root, address_bytes, state.get(address_bytes), proof)
        assert not verify_account_proof(root, address_bytes, b"forged", proof)


def test_state_tree_regrows_without_changing_the_root():
    tree = StateTree.from_accounts({})
    bits = tree.bits
    state = {bytes([i % 256, i // 256]) * 10: b"v%d" % i for i in range(300)}
    for address_bytes, value in state.items():
        tree.set(address_bytes, value)
    root = tree.root()
    assert tree.bits > bits
    assert root == StateTree.from_accounts(state).root()
