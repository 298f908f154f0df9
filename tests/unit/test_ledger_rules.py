"""Ledger rules a user relies on, one rule per test (found by mutation testing, issue 23)."""
from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus import canonical
from consensus.types import GENESIS_HASH, make_block
from crypto import schemes
from ledger.account import Account, address_of, decode_account, encode_account
from ledger.errors import GenesisError, LedgerError, Reason
from ledger.genesis import GENESIS_ACCOUNTS_MAX, Currency, Genesis
from ledger.ledger import Ledger
from ledger.money import AMOUNT_MAX, checked_add, checked_sub
from ledger.state_tree import AccountProof, StateTree, verify_account_proof
from ledger.tx import (
    MEMO_BYTES_MAX,
    TX_BYTES_MAX,
    Parsed,
    Tx,
    build_create_account,
    build_issue,
    build_redeem,
    build_transfer,
    envelope_tx_id,
    parse_tx,
    sign_body,
    tx_id_of,
    tx_signing_bytes,
)
from proto.qenex.v1 import transaction_pb2 as pb
from tests.unit.ledger_helpers import (
    CHAIN,
    ED,
    ISSUER,
    address,
    genesis_dict,
    make_genesis,
    next_block,
    seed,
)

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


# ---------------------------------------------------------------- account bytes
@pytest.mark.parametrize("value", [0, 1, 63, 64, 127, 128, 8_191, 8_192, 2**21, 2**63 - 1, 2**64 - 1])
def test_account_bytes_equal_the_canonical_encoding_at_every_varint_boundary(value):
    # The state root hashes these bytes: a fast encoder that differs from the canonical one
    # at any length boundary would fork the nodes that use it from clients verifying proofs.
    key = bytes(range(256))[: value % 200 + 1] if value < 2**21 else b"k" * 128
    amount = min(value, AMOUNT_MAX) or 1
    account = Account(b"\x01" * 20, value % 5 if value > 127 else value, key, value,
                      (("EUR", amount), ("U" * (value % 200 + 1), amount)))
    assert encode_account(account) == canonical.encode(account)
    assert decode_account(encode_account(account)) == account


def test_decoding_other_canonical_bytes_as_an_account_is_refused():
    with pytest.raises(canonical.CanonicalError, match="^not an Account$"):
        decode_account(canonical.encode(("not", "an account")))


# ---------------------------------------------------------------- apply
def test_a_transaction_is_valid_up_to_and_including_its_valid_until_ms():
    ledger = Ledger(make_genesis())
    assert apply_txs(ledger, transfer(1, 1, 2, 5, valid_until_ms=5_000), time_ms=5_000) == [""]
    assert apply_txs(ledger, transfer(1, 2, 2, 5, valid_until_ms=5_000), time_ms=5_001) \
        == ["EXPIRED"]
    assert ledger.account(address(1)).nonce == 1


def test_a_transaction_without_valid_until_ms_never_expires():
    ledger = Ledger(make_genesis())
    assert apply_txs(ledger, transfer(1, 1, 2, 5), time_ms=2**62) == [""]


def test_a_second_create_account_for_the_same_key_in_one_block_is_refused():
    ledger = Ledger(make_genesis())
    first = build_create_account(CHAIN, ED, seed(NEW))
    again = build_create_account(CHAIN, ED, seed(NEW), valid_until_ms=9_999)  # another tx id
    result = ledger.apply(next_block(ledger, [first, again]))
    assert [o.reason for o in result.applied.outcomes] == ["", "ACCOUNT_EXISTS"]
    account = ledger.account(address(NEW))
    assert (account.nonce, account.balances) == (1, ())
    assert result.applied.nonces == ((address(NEW), 1),)
    assert result.state_changes == ((address(NEW), encode_account(account)),)


def test_a_created_account_can_spend_in_the_same_block():
    ledger = Ledger(make_genesis())
    assert apply_txs(ledger, build_create_account(CHAIN, ED, seed(NEW)), transfer(1, 1, NEW, 50),
                     transfer(NEW, 2, 3, 20)) == ["", "", ""]
    assert (balance(ledger, NEW), balance(ledger, 3)) == (30, 1_000_020)
    assert ledger.account(address(NEW)).nonce == 2


def test_a_transfer_in_a_currency_the_sender_does_not_hold_is_refused_for_funds():
    ledger = Ledger(make_genesis())
    assert apply_txs(ledger, transfer(1, 1, 2, 1, "JPY")) == ["INSUFFICIENT_FUNDS"]
    assert ledger.account(address(1)).nonce == 0


def test_a_recipient_without_the_currency_is_credited_from_zero():
    ledger = Ledger(make_genesis())
    issue = build_issue(CHAIN, ED, seed(ISSUER), 1, address(NEW), 40, "EUR")
    assert apply_txs(ledger, build_create_account(CHAIN, ED, seed(NEW)), issue,
                     transfer(1, 1, NEW, 2, "USD")) == ["", "", ""]
    assert ledger.account(address(NEW)).balances == (("EUR", 40), ("USD", 2))


def test_an_issue_to_an_unknown_account_is_refused_and_changes_nothing():
    ledger = Ledger(make_genesis())
    before = ledger.state_root
    issue = build_issue(CHAIN, ED, seed(ISSUER), 1, address(NEW), 40, "USD")
    result = ledger.apply(next_block(ledger, [issue]))
    assert [o.reason for o in result.applied.outcomes] == ["UNKNOWN_RECIPIENT"]
    assert (result.state_changes, ledger.state_root) == ((), before)
    assert ledger.account(address(ISSUER)).nonce == 0


def test_a_redeem_of_more_than_the_issuer_holds_is_refused():
    ledger = Ledger(make_genesis(balance=30))
    redeem = build_redeem(CHAIN, ED, seed(ISSUER), 1, 31, "USD")
    assert apply_txs(ledger, redeem) == ["INSUFFICIENT_FUNDS"]
    assert balance(ledger, ISSUER) == 30 and ledger.account(address(ISSUER)).nonce == 0
    assert apply_txs(ledger, build_redeem(CHAIN, ED, seed(ISSUER), 1, 30, "USD")) == [""]
    assert balance(ledger, ISSUER) == 0


def test_an_applied_block_names_its_height_hash_and_the_new_root():
    ledger = Ledger(make_genesis())
    block = next_block(ledger, [transfer(1, 1, 2, 5)])
    applied = ledger.apply(block).applied
    assert (applied.height, applied.block_hash, applied.state_root) \
        == (1, block.block_hash, ledger.state_root)
    assert (ledger.height, ledger.block_hash) == (1, block.block_hash)
    assert ledger.apply_block(next_block(ledger, [])).height == 2


def test_a_block_for_another_chain_or_height_is_refused_with_both_named():
    ledger = Ledger(make_genesis())
    other = make_block("other", 1, GENESIS_HASH, (), proposer=0, timestamp_ms=1)
    with pytest.raises(LedgerError, match="block for chain 'other', ledger is 'qenex-test'"):
        ledger.apply(other)
    skip = make_block(CHAIN, 2, GENESIS_HASH, (), proposer=0, timestamp_ms=1)
    with pytest.raises(LedgerError, match="^block 2 applied at height 0$"):
        ledger.apply(skip)
    assert ledger.height == 0


def test_restore_rebuilds_the_ledger_at_the_stored_height_with_the_full_genesis():
    ledger = Ledger(make_genesis())
    apply_txs(ledger, transfer(1, 1, 2, 5))
    restored = Ledger.restore(ledger.genesis, ledger.height, ledger.block_hash,
                              list(ledger.accounts()))
    assert (restored.height, restored.block_hash, restored.state_root) \
        == (ledger.height, ledger.block_hash, ledger.state_root)
    assert restored.genesis == ledger.genesis
    assert restored.account(address(1)) == ledger.account(address(1))
    assert apply_txs(restored, transfer(1, 2, 2, 5)) == [""]  # same currencies and issuers
    assert apply_txs(restored, build_issue(CHAIN, ED, seed(ISSUER), 1, address(2), 1, "USD")) \
        == [""]


# ---------------------------------------------------------------- the verified-signature cache
class CountingVerifier:
    """The real verifier, counting the envelopes it checks."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
        self.calls += 1
        return schemes.verify(scheme, public_key, message, signature)


def test_a_signature_is_verified_once_while_its_envelope_is_cached():
    verifier = CountingVerifier()
    ledger = Ledger(make_genesis(), verifier=verifier)
    tx = transfer(1, 1, 2, 5)
    assert ledger.check_tx(tx).ok and ledger.check_tx(tx).ok
    assert apply_txs(ledger, tx) == [""]
    assert verifier.calls == 1


def test_a_refused_signature_is_never_cached():
    verifier = CountingVerifier()
    ledger = Ledger(make_genesis(), verifier=verifier)
    envelope = pb.SignedTransaction.FromString(transfer(1, 1, 2, 5))
    envelope.signature = bytes(64)
    forged = envelope.SerializeToString()
    assert ledger.check_tx(forged).reason == "BAD_SIGNATURE"
    assert apply_txs(ledger, forged) == ["BAD_SIGNATURE"]
    assert verifier.calls == 2


def test_the_verified_cache_holds_at_most_its_maximum_and_forgets_the_least_recent():
    verifier = CountingVerifier()
    ledger = Ledger(make_genesis(), verifier=verifier, verified_cache_max=2)
    a, b, c = (transfer(1, n, 2, 5) for n in (1, 2, 3))
    for tx in (a, b, a, c):  # a is used again, so b is the least recent when c arrives
        ledger.check_tx(tx)
    assert verifier.calls == 3
    ledger.check_tx(a)
    ledger.check_tx(c)
    assert verifier.calls == 3  # both still cached
    ledger.check_tx(b)
    assert verifier.calls == 4  # b was forgotten


# ---------------------------------------------------------------- stateless refusals
def _body(nonce: int = 3, chain_id: str = CHAIN, **kw) -> pb.TransactionBody:
    return pb.TransactionBody(chain_id=chain_id, sender=address(1), nonce=nonce, **kw)


def _signed(body: pb.TransactionBody, chain: str = CHAIN, i: int = 1) -> bytes:
    return sign_body(chain, body, ED, seed(i))


def _send(to: bytes | None = None, amount: int = 5, currency: str = "USD", memo: str = "",
          **kw) -> pb.TransactionBody:
    return _body(transfer=pb.Transfer(to=address(2) if to is None else to, amount=amount,
                                      currency=currency, memo=memo), **kw)


def _envelope(body: pb.TransactionBody, **fields) -> bytes:
    envelope = pb.SignedTransaction.FromString(_signed(body))
    for name, value in fields.items():
        setattr(envelope, name, value)
    return envelope.SerializeToString()


def _create(scheme: int = ED, key_seed: int = 1, nonce: int = 1) -> pb.TransactionBody:
    key = schemes.public_key_from_seed(schemes.Scheme(scheme), seed(key_seed))
    return _body(nonce=nonce, create_account=pb.CreateAccount(scheme=scheme, public_key=key))


REFUSALS = {  # name: (envelope bytes, reason, exact detail); the body's nonce is 3 unless named
    "wrong chain": (lambda: _signed(_send(chain_id="other"), "other"), "WRONG_CHAIN",
                    "chain id 'other'"),
    "unknown scheme": (lambda: _envelope(_send(), scheme=9), "UNKNOWN_SCHEME", "scheme 9"),
    "short key": (lambda: _envelope(_send(), public_key=bytes(31)), "BAD_PUBLIC_KEY", "31 B key"),
    "short signature": (lambda: _envelope(_send(), signature=bytes(63)), "BAD_SIGNATURE",
                        "63 B signature"),
    "forged signature": (lambda: _envelope(_send(), signature=bytes(64)), "BAD_SIGNATURE",
                         "signature does not verify"),
    "forged sender": (lambda: _signed(pb.TransactionBody(
        chain_id=CHAIN, sender=address(2), nonce=3,
        transfer=pb.Transfer(to=address(3), amount=5, currency="USD"))),
        "BAD_ADDRESS", "sender is not the signer's address"),
    "nonce zero": (lambda: _signed(_send(nonce=0)), "BAD_NONCE", "the first nonce is 1"),
    "memo too long": (lambda: _signed(_send(memo="é" * 129)), "TOO_LARGE",
                      "memo longer than 256 B"),
    "self transfer": (lambda: _signed(_send(to=address(1))), "SELF_TRANSFER",
                      "recipient is the sender"),
    "short recipient": (lambda: _signed(_send(to=bytes(19))), "BAD_ADDRESS",
                        "recipient must be 20 B"),
    "short issue recipient": (lambda: _signed(_body(issue=pb.Issue(to=bytes(21), amount=5,
                                                                   currency="USD"))),
                              "BAD_ADDRESS", "recipient must be 20 B"),
    "zero amount": (lambda: _signed(_send(amount=0)), "AMOUNT_OUT_OF_RANGE", "amount 0"),
    "redeem of zero": (lambda: _signed(_body(redeem=pb.Redeem(amount=0, currency="USD"))),
                       "AMOUNT_OUT_OF_RANGE", "amount 0"),
    "unknown currency": (lambda: _signed(_send(currency="XAU")), "UNKNOWN_CURRENCY",
                         "currency 'XAU'"),
    "no kind": (lambda: _signed(_body()), "MALFORMED", "body has no kind"),
    "create binding another key": (lambda: _signed(_create(key_seed=2)), "BAD_PUBLIC_KEY",
                                   "create_account must be signed by the key it binds"),
    "create binding another scheme": (lambda: _signed(_create(scheme=2)), "BAD_PUBLIC_KEY",
                                      "create_account must be signed by the key it binds"),
    "create with nonce 3": (lambda: _signed(_create(nonce=3)), "BAD_NONCE",
                            "create_account uses nonce 1"),
}


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_a_stateless_refusal_names_its_reason_detail_id_sender_and_nonce(name):
    # Clients see reason and detail; the mempool orders and drops by sender and nonce.
    make, reason, detail = REFUSALS[name]
    tx = make()
    body = pb.TransactionBody.FromString(pb.SignedTransaction.FromString(tx).body)
    check = Ledger(make_genesis()).check_tx(tx)
    assert (check.ok, check.reason, check.detail) == (False, reason, detail)
    assert (check.tx_id, check.sender, check.nonce) \
        == (tx_id_of(pb.SignedTransaction.FromString(tx).body), body.sender, body.nonce)


def test_bytes_that_do_not_parse_are_refused_with_no_id_sender_or_nonce():
    check = Ledger(make_genesis()).check_tx(b"\x0a\xff\xff")
    assert (check.ok, check.reason, check.tx_id, check.sender, check.nonce) \
        == (False, "MALFORMED", b"", b"", 0)
    assert check.detail.startswith("not a SignedTransaction: ")


def _padded(tx: bytes, size: int) -> bytes:
    """`tx` with an unknown field appended (kept by protobuf, outside the signed body)."""
    pad = size - len(tx) - 3  # tag (1 B) + length (2 B) + pad
    return tx + b"\x7a" + bytes([(pad & 0x7F) | 0x80, pad >> 7]) + bytes(pad)


def test_an_envelope_of_exactly_tx_bytes_max_is_admitted_and_one_byte_more_is_refused():
    ledger = Ledger(make_genesis())
    exact = _padded(transfer(1, 1, 2, 5), TX_BYTES_MAX)
    assert len(exact) == TX_BYTES_MAX and ledger.check_tx(exact).ok
    over = _padded(transfer(1, 1, 2, 5), TX_BYTES_MAX + 1)
    check = ledger.check_tx(over)
    assert (check.ok, check.reason, check.detail, check.tx_id, check.sender) \
        == (False, "TOO_LARGE", f"{TX_BYTES_MAX + 1} B > tx_bytes_max {TX_BYTES_MAX}", b"", b"")


def test_a_memo_of_exactly_memo_bytes_max_is_admitted():
    ledger = Ledger(make_genesis())
    memo = "é" * (MEMO_BYTES_MAX // 2)  # two bytes each
    assert ledger.check_tx(build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD",
                                          memo=memo)).ok


def test_signing_bytes_take_a_chain_id_of_up_to_255_bytes():
    assert tx_signing_bytes("c" * 255, b"body") == b"QENEX/tx\xff" + b"c" * 255 + b"body"
    with pytest.raises(ValueError, match="^chain id longer than 255 bytes$"):
        tx_signing_bytes("c" * 256, b"body")


def test_parse_tx_yields_the_exact_transaction_of_each_kind():
    currencies = frozenset({"USD"})
    cases = [
        (build_create_account(CHAIN, ED, seed(NEW), valid_until_ms=7),
         {"sender": address(NEW), "nonce": 1, "kind": "create_account", "scheme": ED,
              "public_key": schemes.public_key_from_seed(schemes.Scheme.ED25519, seed(NEW))}),
        (build_transfer(CHAIN, ED, seed(1), 4, address(2), 9, "USD", valid_until_ms=7),
         {"sender": address(1), "nonce": 4, "kind": "transfer", "to": address(2), "amount": 9, "currency": "USD"}),
        (build_issue(CHAIN, ED, seed(ISSUER), 5, address(2), 8, "USD", valid_until_ms=7),
         {"sender": address(ISSUER), "nonce": 5, "kind": "issue", "to": address(2), "amount": 8,
              "currency": "USD"}),
        (build_redeem(CHAIN, ED, seed(ISSUER), 6, 3, "USD", valid_until_ms=7),
         {"sender": address(ISSUER), "nonce": 6, "kind": "redeem", "amount": 3, "currency": "USD"}),
    ]
    for tx, fields in cases:
        tx_id = tx_id_of(pb.SignedTransaction.FromString(tx).body)
        expected = Tx(tx_id=tx_id, valid_until_ms=7, **fields)
        assert parse_tx(tx, CHAIN, currencies) \
            == Parsed(tx_id, Reason.OK, "", expected, fields["sender"], fields["nonce"])


def test_a_created_account_binds_the_scheme_and_key_that_signed_it():
    ledger = Ledger(make_genesis())
    assert apply_txs(ledger, build_create_account(CHAIN, 2, seed(NEW))) == [""]
    key = schemes.public_key_from_seed(schemes.Scheme(2), seed(NEW))
    created = address_of(2, key)
    assert ledger.account(created) == Account(created, 2, key, 1, ())


def test_a_transfer_carries_its_memo_and_no_memo_by_default():
    def memo_of(tx: bytes) -> str:
        return pb.TransactionBody.FromString(pb.SignedTransaction.FromString(tx).body).transfer.memo

    assert memo_of(build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD")) == ""
    assert memo_of(build_transfer(CHAIN, ED, seed(1), 1, address(2), 5, "USD", memo="rent")) \
        == "rent"


def test_envelope_tx_id_is_the_body_hash_or_else_the_hash_of_the_bytes():
    tx = transfer(1, 1, 2, 5)
    assert envelope_tx_id(tx) == hashlib.sha256(pb.SignedTransaction.FromString(tx).body).digest()
    for opaque in (b"\x0a\xff\xff", pb.SignedTransaction(scheme=1).SerializeToString(), b""):
        assert envelope_tx_id(opaque) == hashlib.sha256(opaque).digest()


def test_a_new_ledger_is_at_height_zero_on_the_genesis_hash():
    ledger = Ledger(make_genesis())
    assert (ledger.height, ledger.block_hash) == (0, GENESIS_HASH)


def test_a_restored_ledger_checks_signatures_with_the_verifier_it_is_given():
    ledger = Ledger(make_genesis())
    apply_txs(ledger, transfer(1, 1, 2, 5))
    verifier = CountingVerifier()
    restored = Ledger.restore(ledger.genesis, ledger.height, ledger.block_hash,
                              list(ledger.accounts()), verifier=verifier)
    envelope = pb.SignedTransaction.FromString(transfer(1, 2, 2, 5))
    envelope.signature = bytes(64)
    assert restored.check_tx(envelope.SerializeToString()).reason == "BAD_SIGNATURE"
    assert restored.check_tx(transfer(1, 2, 2, 5)).ok
    assert verifier.calls == 2
    default = Ledger.restore(ledger.genesis, ledger.height, ledger.block_hash,
                             list(ledger.accounts()))
    assert default.check_tx(envelope.SerializeToString()).reason == "BAD_SIGNATURE"


def test_a_forged_envelope_is_refused_even_after_a_good_one_was_cached():
    ledger = Ledger(make_genesis())
    good = transfer(1, 1, 2, 5)
    envelope = pb.SignedTransaction.FromString(transfer(1, 2, 2, 5))
    envelope.signature = bytes(64)
    assert ledger.check_tx(good).ok
    assert ledger.check_tx(envelope.SerializeToString()).reason == "BAD_SIGNATURE"
    assert apply_txs(ledger, good, envelope.SerializeToString()) == ["", "BAD_SIGNATURE"]


def test_an_admitted_transaction_has_an_empty_reason_and_detail():
    check = Ledger(make_genesis()).check_tx(transfer(1, 1, 2, 5))
    assert (check.ok, check.reason, check.detail) == (True, "", "")


def test_a_ledger_without_a_verifier_checks_everything_but_signatures():
    # Benchmarks only: the stateless rules still hold, the signature is not looked at.
    ledger = Ledger(make_genesis(), verifier=None)
    envelope = pb.SignedTransaction.FromString(transfer(1, 1, 2, 5))
    envelope.signature = bytes(64)
    assert ledger.check_tx(envelope.SerializeToString()).ok
    assert ledger.check_tx(_signed(_send(chain_id="other"), "other")).reason == "WRONG_CHAIN"
    assert apply_txs(ledger, envelope.SerializeToString()) == [""]


def test_a_refused_transaction_keeps_its_id_in_the_receipt():
    ledger = Ledger(make_genesis())
    tx = transfer(1, 7, 2, 5)  # a future nonce
    outcome = ledger.apply(next_block(ledger, [tx])).applied.outcomes[0]
    assert (outcome.tx_id, outcome.success, outcome.reason) \
        == (tx_id_of(pb.SignedTransaction.FromString(tx).body), False, "NONCE_MISMATCH")


def test_an_issuer_cannot_redeem_a_currency_it_holds_none_of():
    ledger = Ledger(make_genesis(balance=0))
    assert apply_txs(ledger, build_redeem(CHAIN, ED, seed(ISSUER), 1, 1, "USD")) \
        == ["INSUFFICIENT_FUNDS"]
    assert ledger.account(address(ISSUER)).nonce == 0


# ---------------------------------------------------------------- genesis
def _doc(**changes) -> dict:
    doc = genesis_dict(accounts=2)
    doc.update(changes)
    return doc


def _with_account(**fields) -> dict:
    doc = genesis_dict(accounts=2)
    doc["accounts"][1].update(fields)
    return doc


def _with_usd(**fields) -> dict:
    doc = genesis_dict(accounts=2)
    doc["currencies"]["USD"].update(fields)
    return doc


KEY_HEX = "ab" * 32
GENESIS_ERRORS = {  # name: (document, the exact error message)
    "not a mapping": (["chain_id"], "genesis: expected a mapping"),
    "no chain id": ({k: v for k, v in _doc().items() if k != "chain_id"},
                    "chain_id: expected 1..64 bytes of text"),
    "empty chain id": (_doc(chain_id=""), "chain_id: expected 1..64 bytes of text"),
    "chain id of 65 bytes": (_doc(chain_id="é" * 32 + "c"), "chain_id: expected 1..64 bytes of text"),
    "chain id not text": (_doc(chain_id=7), "chain_id: expected 1..64 bytes of text"),
    "negative time": (_doc(genesis_time_ms=-1),
                      f"genesis_time_ms: expected an integer in 0 .. {2**63 - 1}, got -1"),
    "time above 2^63-1": (_doc(genesis_time_ms=2**63),
                          f"genesis_time_ms: expected an integer in 0 .. {2**63 - 1}, got {2**63}"),
    "time as a bool": (_doc(genesis_time_ms=True),
                       f"genesis_time_ms: expected an integer in 0 .. {2**63 - 1}, got True"),
    "time as text": (_doc(genesis_time_ms="5"),
                     f"genesis_time_ms: expected an integer in 0 .. {2**63 - 1}, got '5'"),
    "no currencies": (_doc(currencies={}),
                      "currencies: expected a non-empty mapping of code -> settings"),
    "currencies as a list": (_doc(currencies=["USD"]),
                             "currencies: expected a non-empty mapping of code -> settings"),
    "lower-case code": (_doc(currencies={"usd": {"minor_units": 2}}),
                        "currencies.usd: currency code must look like 'USD' (A-Z0-9, 3-12)"),
    "code not text": (_doc(currencies={5: {"minor_units": 2}}),
                      "currencies.5: currency code must look like 'USD' (A-Z0-9, 3-12)"),
    "settings not a mapping": (_doc(currencies={"USD": 2}), "currencies.USD: expected a mapping"),
    "no minor units": (_doc(currencies={"USD": {}}),
                       "currencies.USD.minor_units: expected an integer in 0 .. 18, got None"),
    "19 minor units": (_doc(currencies={"USD": {"minor_units": 19}}),
                       "currencies.USD.minor_units: expected an integer in 0 .. 18, got 19"),
    "negative minor units": (_doc(currencies={"USD": {"minor_units": -1}}),
                             "currencies.USD.minor_units: expected an integer in 0 .. 18, got -1"),
    "issuers not a list": (_with_usd(issuers="ab" * 20),
                           "currencies.USD.issuers: expected a list of addresses"),
    "issuer not hex": (_with_usd(issuers=["zz" * 20]), "currencies.USD.issuers[0]: not valid hex"),
    "issuer not text": (_with_usd(issuers=[20]), "currencies.USD.issuers[0]: expected a hex string"),
    "issuer of 19 bytes": (_with_usd(issuers=["ab" * 20, "ab" * 19]),
                           "currencies.USD.issuers[1]: address must be 20 B"),
    "accounts not a list": (_doc(accounts={}),
                            "accounts: expected a list of at most 10000000 accounts"),
    "account not a mapping": (_doc(accounts=[[]]), "accounts[0]: expected a mapping"),
    "unknown scheme name": (_with_account(scheme="RSA"), "accounts[1].scheme: unknown scheme 'RSA'"),
    "unknown scheme number": (_with_account(scheme=9), "accounts[1].scheme: unknown scheme 9"),
    "short key": (_with_account(public_key="ab" * 31), "accounts[1].public_key: ED25519 keys are 32 B"),
    "key not hex": (_with_account(public_key="x" * 64), "accounts[1].public_key: not valid hex"),
    "negative nonce": (_with_account(nonce=-1),
                       f"accounts[1].nonce: expected an integer in 0 .. {2**64 - 1}, got -1"),
    "nonce above 2^64-1": (_with_account(nonce=2**64),
                           f"accounts[1].nonce: expected an integer in 0 .. {2**64 - 1}, got {2**64}"),
    "balances not a mapping": (_with_account(balances=[]),
                               "accounts[1].balances: expected a mapping of code -> minor units"),
    "undeclared currency": (_with_account(balances={"XAU": 1}),
                            "accounts[1].balances.XAU: currency not declared"),
    "negative balance": (_with_account(balances={"USD": -1}),
                         f"accounts[1].balances.USD: expected an integer in 0 .. {AMOUNT_MAX}, got -1"),
    "balance above AMOUNT_MAX": (_with_account(balances={"USD": AMOUNT_MAX + 1}),
                                 (f"accounts[1].balances.USD: expected an integer in 0 .. "
                                 f"{AMOUNT_MAX}, got {AMOUNT_MAX + 1}")),
    "duplicate account": (_doc(accounts=[{"scheme": "ED25519", "public_key": KEY_HEX}] * 2),
                          "accounts[1].public_key: duplicate account"),
}


@pytest.mark.parametrize("name", sorted(GENESIS_ERRORS))
def test_an_invalid_genesis_is_refused_naming_the_offending_key(name):
    doc, message = GENESIS_ERRORS[name]
    with pytest.raises(GenesisError) as raised:
        Genesis.from_dict(doc)
    assert str(raised.value) == message


def test_genesis_accepts_every_bound_inclusive():
    doc = _doc(chain_id="é" * 32, genesis_time_ms=2**63 - 1,
               currencies={"USD": {"minor_units": 18}, "JPY": {"minor_units": 0}})
    doc["accounts"] = [{"scheme": "ED25519", "public_key": KEY_HEX, "nonce": 2**64 - 1,
                        "balances": {"USD": AMOUNT_MAX, "JPY": 0}}]
    genesis = Genesis.from_dict(doc)
    assert (genesis.chain_id, genesis.genesis_time_ms) == ("é" * 32, 2**63 - 1)
    assert [(c.code, c.minor_units) for c in genesis.currencies] == [("JPY", 0), ("USD", 18)]
    (account,) = genesis.accounts
    assert (account.nonce, account.balances) == (2**64 - 1, (("USD", AMOUNT_MAX),))


def test_genesis_defaults_to_time_zero_no_accounts_no_issuers_and_nonce_zero():
    genesis = Genesis.from_dict({"chain_id": "c", "currencies": {"USD": {"minor_units": 2}}})
    assert (genesis.genesis_time_ms, genesis.accounts) == (0, ())
    assert genesis.currency("USD") == Currency("USD", 2, ())
    assert genesis.currency("EUR") is None
    one = Genesis.from_dict({"chain_id": "c", "currencies": {"USD": {"minor_units": 2}},
                             "accounts": [{"scheme": 1, "public_key": KEY_HEX}]})
    assert (one.accounts[0].nonce, one.accounts[0].balances, one.accounts[0].scheme) == (0, (), 1)


def test_genesis_names_accounts_by_key_and_sorts_accounts_currencies_and_issuers():
    issuers = ["cd" * 20, "ab" * 20, "cd" * 20]
    doc = _doc(currencies={"USD": {"minor_units": 2, "issuers": issuers},
                           "EUR": {"minor_units": 2}})
    genesis = Genesis.from_dict(doc)
    assert [c.code for c in genesis.currencies] == ["EUR", "USD"]
    assert genesis.currency("USD").issuers == (bytes.fromhex("ab" * 20), bytes.fromhex("cd" * 20))
    assert [a.address for a in genesis.accounts] == sorted([address(0), address(1)])
    first = genesis.accounts[[a.address for a in genesis.accounts].index(address(1))]
    assert first == Account(address(1), ED, schemes.public_key_from_seed(schemes.Scheme.ED25519,
                                                                          seed(1)),
                            0, (("EUR", 1_000_000), ("USD", 1_000_000)))


def test_genesis_survives_a_round_trip_through_its_document():
    doc = genesis_dict(accounts=3)
    doc["genesis_time_ms"] = 1_234
    doc["accounts"][2]["nonce"] = 9
    genesis = Genesis.from_dict(doc)
    again = genesis.to_dict()
    assert Genesis.from_dict(again) == genesis
    assert again["currencies"]["USD"] == {"minor_units": 2, "issuers": [address(ISSUER).hex()]}
    assert again["accounts"][0]["scheme"] == "ED25519"
    assert sorted(a["nonce"] for a in again["accounts"]) == [0, 0, 9]
    assert again["chain_id"] == CHAIN and again["genesis_time_ms"] == 1_234


# ---------------------------------------------------------------- the state tree, against its definition
def _ref_leaves(state: dict[bytes, bytes]) -> list[tuple[int, bytes]]:
    return sorted((int.from_bytes(hashlib.sha256(a).digest(), "big"), hashlib.sha256(v).digest())
                  for a, v in state.items())


def _ref_bit(key: int, depth: int) -> int:
    return (key >> (255 - depth)) & 1


def _ref_hash(leaves: list[tuple[int, bytes]], depth: int) -> bytes:
    """hash(subtree) exactly as the state_tree docstring defines it (what clients rebuild)."""
    if not leaves:
        return bytes(32)
    if len(leaves) == 1:
        key, value_hash = leaves[0]
        return hashlib.sha256(b"\x00" + key.to_bytes(32, "big") + value_hash).digest()
    left = [item for item in leaves if not _ref_bit(item[0], depth)]
    right = [item for item in leaves if _ref_bit(item[0], depth)]
    return hashlib.sha256(b"\x01" + _ref_hash(left, depth + 1) + _ref_hash(right, depth + 1)).digest()


def _ref_proof(leaves: list[tuple[int, bytes]], address_bytes: bytes) -> AccountProof:
    key = int.from_bytes(hashlib.sha256(address_bytes).digest(), "big")
    siblings, depth = [], 0
    while len(leaves) >= 2:
        mine = [item for item in leaves if _ref_bit(item[0], depth) == _ref_bit(key, depth)]
        other = [item for item in leaves if _ref_bit(item[0], depth) != _ref_bit(key, depth)]
        siblings.append(_ref_hash(other, depth + 1))
        leaves, depth = mine, depth + 1
    if leaves and leaves[0][0] != key:
        return AccountProof(tuple(siblings), leaves[0][0].to_bytes(32, "big"), leaves[0][1])
    return AccountProof(tuple(siblings))


tree_states = st.dictionaries(st.binary(min_size=1, max_size=20), st.binary(max_size=8), max_size=70)


@settings(max_examples=30, deadline=None)
@given(tree_states, st.lists(st.binary(min_size=1, max_size=20), max_size=6), st.integers(0, 7))
def test_the_state_root_and_every_proof_are_those_of_the_definition(state, absent, bits):
    leaves = _ref_leaves(state)
    for tree in (StateTree.from_accounts(state), StateTree(dict(leaves), bucket_bits=bits)):
        root = tree.root()
        assert root == _ref_hash(leaves, 0)
        assert len(tree) == len(state) and tree.leaf_items() == leaves
        for address_bytes in [*state, *absent]:
            proof = tree.prove(address_bytes)
            assert proof == _ref_proof(leaves, address_bytes)
            assert verify_account_proof(root, address_bytes, state.get(address_bytes), proof)


@settings(max_examples=25, deadline=None)
@given(tree_states, st.lists(st.tuples(st.binary(min_size=1, max_size=20),
                                       st.one_of(st.none(), st.binary(max_size=8))), max_size=40))
def test_updates_and_deletes_keep_the_root_and_proofs_of_the_definition(state, updates):
    tree = StateTree.from_accounts(state)
    state = dict(state)
    for address_bytes, value in updates:
        tree.set(address_bytes, value)
        if value is None:
            state.pop(address_bytes, None)
        else:
            state[address_bytes] = value
        assert len(tree) == len(state)
    leaves = _ref_leaves(state)
    assert tree.root() == _ref_hash(leaves, 0)
    for address_bytes, _ in updates:
        assert tree.prove(address_bytes) == _ref_proof(leaves, address_bytes)


def test_the_state_root_of_a_known_state_is_pinned():
    # Golden vector: changing the tree's definition changes this and breaks every client.
    state = {b"a" * 20: b"one", b"b" * 20: b"two", b"c" * 20: b"three"}
    root = "d5641c1b0723e42890e18e12c51d2c2a15b1265d60341f018a3310e40c6d8184"
    assert StateTree.from_accounts(state).root().hex() == root
    assert _ref_hash(_ref_leaves(state), 0).hex() == root
    assert StateTree.from_accounts({}).root() == bytes(32)


def _absence_proof_ending_at_another_account():
    """A state, an absent address whose proof ends at another account, and that proof."""
    state = {bytes([i]) * 20: b"v%d" % i for i in range(6)}
    tree = StateTree.from_accounts(state)
    for i in range(100, 400):
        absent = i.to_bytes(2, "big") * 10
        proof = tree.prove(absent)
        if proof.other_key:
            return state, tree.root(), absent, proof
    raise AssertionError("no absence proof ending at an account")


def test_an_absence_proof_with_a_malformed_other_account_is_refused():
    _state, root, absent, proof = _absence_proof_ending_at_another_account()
    assert verify_account_proof(root, absent, None, proof)
    for bad in (AccountProof(proof.siblings, proof.other_key[:31], proof.other_value_hash),
                AccountProof(proof.siblings, proof.other_key, proof.other_value_hash[:31]),
                AccountProof(proof.siblings, proof.other_key, proof.other_value_hash + b"\x00"),
                AccountProof(proof.siblings, proof.other_key, b"\x00" * 32)):
        assert not verify_account_proof(root, absent, None, bad)


def test_a_membership_proof_may_not_name_another_account():
    state, root, _absent, proof = _absence_proof_ending_at_another_account()
    address_bytes = next(iter(state))
    real = StateTree.from_accounts(state).prove(address_bytes)
    assert verify_account_proof(root, address_bytes, state[address_bytes], real)
    with_other = AccountProof(real.siblings, proof.other_key, proof.other_value_hash)
    assert not verify_account_proof(root, address_bytes, state[address_bytes], with_other)


def test_an_account_cannot_prove_its_own_absence_by_naming_itself():
    address_bytes = b"\x05" * 20
    tree = StateTree.from_accounts({address_bytes: b"v", b"\x06" * 20: b"w"})
    key = hashlib.sha256(address_bytes).digest()
    value_hash = hashlib.sha256(b"v").digest()
    proof = AccountProof(tree.prove(address_bytes).siblings, key, value_hash)
    assert not verify_account_proof(tree.root(), address_bytes, None, proof)


def test_an_absence_proof_whose_other_account_is_off_the_key_path_is_refused():
    # A root built with the other leaf where the key's path goes, but the leaf's own key
    # starting with the other bit: no valid tree puts it there.
    address_bytes = next(a for a in (bytes([i]) * 20 for i in range(256))
                         if not hashlib.sha256(a).digest()[0] & 0x80)  # first bit 0
    other_key = next(k for k in (hashlib.sha256(bytes([i])).digest() for i in range(256))
                     if k[0] & 0x80)  # first bit 1
    other_value_hash, sibling = hashlib.sha256(b"x").digest(), b"\x07" * 32
    leaf = hashlib.sha256(b"\x00" + other_key + other_value_hash).digest()
    root = hashlib.sha256(b"\x01" + leaf + sibling).digest()  # the leaf on the left (bit 0)
    proof = AccountProof((sibling,), other_key, other_value_hash)
    assert not verify_account_proof(root, address_bytes, None, proof)


def test_a_proof_longer_than_the_key_is_refused_without_raising():
    proof = AccountProof((bytes(32),) * 257)
    assert not verify_account_proof(bytes(32), b"\x01" * 20, None, proof)
    assert not verify_account_proof(bytes(32), b"\x01" * 20, b"v", proof)


def test_a_proof_verifies_only_against_its_own_root_address_and_bytes():
    state, root, absent, proof = _absence_proof_ending_at_another_account()
    tree = StateTree.from_accounts(state)
    for address_bytes, value in state.items():
        real = tree.prove(address_bytes)
        assert verify_account_proof(root, address_bytes, value, real)
        assert not verify_account_proof(root, address_bytes, value + b"!", real)
        assert not verify_account_proof(root, address_bytes, None, real)
        assert not verify_account_proof(bytes(32), address_bytes, value, real)
        assert not verify_account_proof(root, absent, value, real)
    assert not verify_account_proof(root, absent, b"v0", proof)


def test_the_tree_keeps_its_bucket_layout_until_accounts_exceed_four_per_bucket():
    # The amortised O(1) promise: a block's root() never rebuilds a tree that has not grown
    # fourfold, and a rebuilt tree has the same root.
    tree = StateTree({}, bucket_bits=4)  # 16 buckets
    for i in range(64):
        tree.set(b"%020d" % i, b"v")
    tree.root()
    assert (tree.bits, len(tree)) == (4, 64)
    tree.set(b"%020d" % 64, b"v")
    root = tree.root()
    assert (tree.bits, len(tree)) == (7, 65)  # 65 accounts need 7 bits
    assert root == StateTree.from_accounts({b"%020d" % i: b"v" for i in range(65)}).root()
    wide = StateTree({}, bucket_bits=6)
    wide.set(b"x" * 20, b"v")
    wide.root()
    assert wide.bits == 6


def test_genesis_takes_at_most_genesis_accounts_max_accounts():
    at_most = [None] * GENESIS_ACCOUNTS_MAX  # not one is a mapping, but the count is fine
    with pytest.raises(GenesisError, match=r"^accounts\[0\]: expected a mapping$"):
        Genesis.from_dict(_doc(accounts=at_most))
    at_most.append(None)
    with pytest.raises(GenesisError, match="^accounts: expected a list of at most 10000000 accounts$"):
        Genesis.from_dict(_doc(accounts=at_most))


def test_a_ledger_trusts_only_the_verifier_it_was_given_also_for_cached_envelopes():
    # A simulator's stand-in crypto signs differently from the real schemes: once its
    # envelope is admitted, applying it must not fall back to the real verifier.
    def stand_in(scheme: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return signature == b"\x07" * 64

    envelope = pb.SignedTransaction.FromString(transfer(1, 1, 2, 5))
    envelope.signature = b"\x07" * 64
    tx = envelope.SerializeToString()
    ledger = Ledger(make_genesis(), verifier=stand_in)
    assert ledger.check_tx(tx).ok and ledger.check_tx(tx).ok
    assert apply_txs(ledger, tx) == [""]
    assert Ledger(make_genesis()).check_tx(tx).reason == "BAD_SIGNATURE"


def test_an_absence_proof_naming_an_other_key_of_33_bytes_is_refused():
    # Even against a root built to match it: leaves hash exactly 32-byte keys.
    address_bytes = b"\x05" * 20
    key = hashlib.sha256(address_bytes).digest()
    other_key = b"\x00" + bytes([key[0]]) + bytes(31)  # as an integer, on the key's path
    other_value_hash, sibling = hashlib.sha256(b"x").digest(), b"\x07" * 32
    leaf = hashlib.sha256(b"\x00" + other_key + other_value_hash).digest()
    pair = (sibling, leaf) if key[0] & 0x80 else (leaf, sibling)
    root = hashlib.sha256(b"\x01" + pair[0] + pair[1]).digest()
    proof = AccountProof((sibling,), other_key, other_value_hash)
    assert not verify_account_proof(root, address_bytes, None, proof)


def test_deleting_accounts_one_by_one_keeps_the_count_root_and_proofs_of_the_definition():
    state = {b"%020d" % i: b"v%d" % i for i in range(24)}
    tree = StateTree({}, bucket_bits=4)
    for address_bytes, value in state.items():
        tree.set(address_bytes, value)
    for address_bytes in list(state):
        del state[address_bytes]
        tree.set(address_bytes, None)
        tree.set(address_bytes, None)  # deleting it again changes nothing
        leaves = _ref_leaves(state)
        assert (len(tree), tree.root()) == (len(state), _ref_hash(leaves, 0))
        assert tree.prove(address_bytes) == _ref_proof(leaves, address_bytes)
    assert tree.root() == bytes(32)
