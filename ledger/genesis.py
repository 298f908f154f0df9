"""Genesis: the chain's starting point, loadable from YAML/JSON-shaped dicts.

    chain_id: qenex-local
    genesis_time_ms: 0
    currencies:
      USD: {minor_units: 2, issuers: ["<40 hex address>", ...]}
    accounts:
      - {scheme: ED25519, public_key: "<hex>", nonce: 0, balances: {USD: 100000}}

Addresses are derived from (scheme, public key), so the document names keys, not addresses;
issuers are named by address because an issuer may register its account later.
Every validation error names the offending key path (e.g. `accounts[3].balances.USD`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consensus import canonical
from crypto.schemes import PUBLIC_KEY_BYTES, Scheme
from ledger.account import ADDRESS_BYTES, Account, address_of, make_balances
from ledger.errors import GenesisError
from ledger.money import AMOUNT_MAX, MINOR_UNITS_MAX, valid_currency

CHAIN_ID_BYTES_MAX = 64
GENESIS_ACCOUNTS_MAX = 10_000_000


@canonical.register("qenex.currency.v1")
@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    minor_units: int  # digits after the point: 2 for USD, 0 for JPY
    issuers: tuple[bytes, ...]  # addresses allowed to issue and redeem


@canonical.register("qenex.genesis.v1")
@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    currencies: tuple[Currency, ...]  # sorted by code
    accounts: tuple[Account, ...]  # sorted by address
    genesis_time_ms: int = 0

    def currency(self, code: str) -> Currency | None:
        for currency in self.currencies:
            if currency.code == code:
                return currency
        return None

    @classmethod
    def from_dict(cls, doc: Any) -> Genesis:
        if not isinstance(doc, dict):
            raise GenesisError("genesis: expected a mapping")
        chain_id = _chain_id(doc.get("chain_id"))
        time_ms = _int(doc.get("genesis_time_ms", 0), "genesis_time_ms", 0, 2**63 - 1)
        currencies = _currencies(doc.get("currencies"))
        codes = {c.code for c in currencies}
        raw_accounts = doc.get("accounts", [])
        if not isinstance(raw_accounts, list) or len(raw_accounts) > GENESIS_ACCOUNTS_MAX:
            raise GenesisError("accounts: expected a list of at most "
                               f"{GENESIS_ACCOUNTS_MAX} accounts")
        accounts = [_account(item, f"accounts[{i}]", codes) for i, item in enumerate(raw_accounts)]
        seen: set[bytes] = set()
        for i, account in enumerate(accounts):
            if account.address in seen:
                raise GenesisError(f"accounts[{i}].public_key: duplicate account")
            seen.add(account.address)
        return cls(chain_id=chain_id, currencies=tuple(sorted(currencies, key=lambda c: c.code)),
                   accounts=tuple(sorted(accounts, key=lambda a: a.address)),
                   genesis_time_ms=time_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "currencies": {c.code: {"minor_units": c.minor_units,
                                    "issuers": [a.hex() for a in c.issuers]}
                           for c in self.currencies},
            "accounts": [{"scheme": Scheme(a.scheme).name, "public_key": a.public_key.hex(),
                          "nonce": a.nonce, "balances": dict(a.balances)}
                         for a in self.accounts],
        }


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GenesisError(f"{path}: expected an integer in {low} .. {high}, got {value!r}")
    return value


def _hex(value: Any, path: str) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{path}: expected a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise GenesisError(f"{path}: not valid hex") from exc


def _chain_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > CHAIN_ID_BYTES_MAX:
        raise GenesisError(f"chain_id: expected 1..{CHAIN_ID_BYTES_MAX} bytes of text")
    return value


def _currencies(doc: Any) -> list[Currency]:
    if not isinstance(doc, dict) or not doc:
        raise GenesisError("currencies: expected a non-empty mapping of code -> settings")
    out = []
    for code, spec in doc.items():
        path = f"currencies.{code}"
        if not isinstance(code, str) or not valid_currency(code):
            raise GenesisError(f"{path}: currency code must look like 'USD' (A-Z0-9, 3-12)")
        if not isinstance(spec, dict):
            raise GenesisError(f"{path}: expected a mapping")
        digits = _int(spec.get("minor_units"), f"{path}.minor_units", 0, MINOR_UNITS_MAX)
        issuers_raw = spec.get("issuers", [])
        if not isinstance(issuers_raw, list):
            raise GenesisError(f"{path}.issuers: expected a list of addresses")
        issuers = []
        for i, item in enumerate(issuers_raw):
            address = _hex(item, f"{path}.issuers[{i}]")
            if len(address) != ADDRESS_BYTES:
                raise GenesisError(f"{path}.issuers[{i}]: address must be {ADDRESS_BYTES} B")
            issuers.append(address)
        out.append(Currency(code, digits, tuple(sorted(set(issuers)))))
    return out


def _account(doc: Any, path: str, codes: set[str]) -> Account:
    if not isinstance(doc, dict):
        raise GenesisError(f"{path}: expected a mapping")
    try:
        scheme = Scheme[doc.get("scheme")] if isinstance(doc.get("scheme"), str) \
            else Scheme(doc.get("scheme"))
    except (KeyError, ValueError) as exc:
        raise GenesisError(f"{path}.scheme: unknown scheme {doc.get('scheme')!r}") from exc
    public_key = _hex(doc.get("public_key"), f"{path}.public_key")
    if len(public_key) != PUBLIC_KEY_BYTES[scheme]:
        raise GenesisError(f"{path}.public_key: {scheme.name} keys are "
                           f"{PUBLIC_KEY_BYTES[scheme]} B")
    nonce = _int(doc.get("nonce", 0), f"{path}.nonce", 0, 2**64 - 1)
    raw = doc.get("balances", {})
    if not isinstance(raw, dict):
        raise GenesisError(f"{path}.balances: expected a mapping of code -> minor units")
    balances = {}
    for code, amount in raw.items():
        if code not in codes:
            raise GenesisError(f"{path}.balances.{code}: currency not declared")
        balances[code] = _int(amount, f"{path}.balances.{code}", 0, AMOUNT_MAX)
    return Account(address_of(scheme, public_key), int(scheme), public_key, nonce,
                   make_balances(balances))
