"""Ledger rules a user relies on, one rule per test (found by mutation testing, issue 23)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger.ledger import Ledger
from ledger.money import AMOUNT_MAX, checked_add, checked_sub
from ledger.tx import build_create_account, build_issue, build_transfer
from tests.unit.ledger_helpers import CHAIN, ED, ISSUER, address, make_genesis, next_block, seed

NEW = 99  # an account that is not in the genesis


def apply_txs(ledger: Ledger, *txs: bytes, time_ms: int = 1_000) -> list[str]:
    """Apply one block of `txs`; the reasons of its receipts ("" = success)."""
    result = ledger.apply(next_block(ledger, list(txs), time_ms))
    return [o.reason for o in result.applied.outcomes]


def transfer(i: int, nonce: int, to: int, amount: int, currency: str = "USD", **kw) -> bytes:
    return build_transfer(CHAIN, ED, seed(i), nonce, address(to), amount, currency, **kw)


def balance(ledger: Ledger, i: int, currency: str = "USD") -> int:
    return ledger.account(address(i)).balance(currency)


# ---------------------------------------------------------------- money bounds
def test_a_transfer_of_the_whole_balance_empties_the_account_and_drops_the_currency():
    ledger = Ledger(make_genesis(balance=700))
    assert apply_txs(ledger, transfer(1, 1, 2, 700)) == [""]
    assert balance(ledger, 1) == 0 and balance(ledger, 2) == 1_400
    assert ledger.account(address(1)).balances == (("EUR", 700),)


def test_a_transfer_of_one_minor_unit_is_accepted():
    ledger = Ledger(make_genesis(balance=700))
    assert apply_txs(ledger, transfer(1, 1, 2, 1)) == [""]
    assert (balance(ledger, 1), balance(ledger, 2)) == (699, 701)


def test_a_credit_that_reaches_exactly_amount_max_is_accepted():
    ledger = Ledger(make_genesis(balance=AMOUNT_MAX - 5))
    assert apply_txs(ledger, transfer(1, 1, 2, 5)) == [""]
    assert balance(ledger, 2) == AMOUNT_MAX


def test_an_issue_of_exactly_amount_max_to_an_empty_account_is_accepted():
    ledger = Ledger(make_genesis())
    issue = build_issue(CHAIN, ED, seed(ISSUER), 1, address(NEW), AMOUNT_MAX, "USD")
    assert apply_txs(ledger, build_create_account(CHAIN, ED, seed(NEW)), issue) == ["", ""]
    assert balance(ledger, NEW) == AMOUNT_MAX


@given(st.integers(-2 * AMOUNT_MAX, 2 * AMOUNT_MAX), st.integers(-2 * AMOUNT_MAX, 2 * AMOUNT_MAX))
def test_checked_arithmetic_is_exact_inside_the_range_and_refuses_outside_it(a, b):
    for result, exact in ((checked_add(a, b), a + b), (checked_sub(a, b), a - b)):
        assert result == (exact if 0 <= exact <= AMOUNT_MAX else None)
