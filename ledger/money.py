"""Money is integers of minor units, bounded to 0 .. AMOUNT_MAX, every operation checked."""
from __future__ import annotations

import re

AMOUNT_MAX = 2**63 - 1  # fits a signed 64-bit integer everywhere (SQL, Java, Go clients)
MINOR_UNITS_MAX = 18  # digits after the point; 10^18 still leaves 9 digits of whole units
CURRENCY_RE = re.compile(r"^[A-Z][A-Z0-9]{2,11}$")  # ISO 4217 style: "USD", "EUR", "XAU"


def amount_in_range(amount: int) -> bool:
    """A positive amount a transaction may move, issue or redeem."""
    return 0 < amount <= AMOUNT_MAX


def balance_in_range(balance: int) -> bool:
    return 0 <= balance <= AMOUNT_MAX


def checked_add(balance: int, amount: int) -> int | None:
    """balance + amount, or None when the sum would leave 0 .. AMOUNT_MAX."""
    # Both ends are checked, not only the top: a negative amount must never pass as a credit.
    total = balance + amount
    return total if balance_in_range(total) else None


def checked_sub(balance: int, amount: int) -> int | None:
    """balance - amount, or None when funds are insufficient (or the result leaves the range)."""
    rest = balance - amount
    return rest if balance_in_range(rest) else None


def valid_currency(code: str) -> bool:
    return bool(CURRENCY_RE.match(code))
