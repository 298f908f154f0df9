"""Ledger behaviour users rely on: valid transactions move money, bad ones are refused with
a typed reason and change nothing, and apply never raises on transaction content."""
from __future__ import annotations

import pytest

from consensus import canonical
from ledger.account import Account, encode_account
from ledger.errors import LedgerError, Reason
from ledger.ledger import Ledger
from ledger.money import AMOUNT_MAX
from ledger.state_tree import verify_account_proof
from ledger.tx import (
    TX_BYTES_MAX,
    build_create_account,
    build_issue,
    build_redeem,
    build_transfer,
    sign_body,
    tx_signing_bytes,
)
from proto.qenex.v1 import transaction_pb2 as pb
from tests.unit.ledger_helpers import (
    CHAIN,
    ED,
    ISSUER,
    address,
    make_genesis,
    next_block,
    seed,
    snapshot,
)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(make_genesis())


def apply_one(ledger: Ledger, tx: bytes, time_ms: int = 1_000):
    result = ledger.apply(next_block(ledger, [tx], time_ms))
    return result.applied.outcomes[0], result


def transfer(i: int, nonce: int, to: int, amount: int, currency: str = "USD", **kw) -> bytes:
    return build_transfer(CHAIN, ED, seed(i), nonce, address(to), amount, currency, **kw)


def test_transfer_moves_money_and_consumes_nonce(ledger):
    outcome, result = apply_one(ledger, transfer(1, 1, 2, 250))
    assert outcome.success and outcome.reason == ""
    assert ledger.account(address(1)).balance("USD") == 1_000_000 - 250
    assert ledger.account(address(2)).balance("USD") == 1_000_000 + 250
    assert ledger.account(address(1)).nonce == 1
    assert [a for a, _ in result.state_changes] == sorted([address(1), address(2)])
    assert result.applied.state_root == ledger.state_root


def test_applied_block_names_each_sender_nonce_it_advanced(ledger):
    # Mempools of nodes that never held these transactions learn filled gaps from it.
    txs = [transfer(3, 1, 2, 5), transfer(1, 1, 2, 5), transfer(1, 2, 2, 5),
           transfer(2, 1, 1, 10**12)]  # the last fails (funds): its nonce is not consumed
    result = ledger.apply(next_block(ledger, txs))
    assert [o.success for o in result.applied.outcomes] == [True, True, True, False]
    assert result.applied.nonces == tuple(sorted([(address(1), 2), (address(3), 1)]))


def test_create_account_then_receive_and_spend(ledger):
    new_seed = seed(99)
    outcome, _ = apply_one(ledger, build_create_account(CHAIN, ED, new_seed))
    assert outcome.success
    assert ledger.account(address(99)).nonce == 1
    assert apply_one(ledger, transfer(1, 1, 99, 500))[0].success
    assert apply_one(ledger, transfer(99, 2, 1, 200))[0].success
    assert ledger.account(address(99)).balance("USD") == 300


def test_create_account_with_ml_dsa_44():
    ledger = Ledger(make_genesis())
    tx = build_create_account(CHAIN, 2, seed(7))
    outcome, _ = apply_one(ledger, tx)
    assert outcome.success


def test_issue_and_redeem_by_issuer(ledger):
    assert apply_one(ledger, build_issue(CHAIN, ED, seed(ISSUER), 1, address(3), 10, "JPY"))[0] \
        .reason == "NOT_ISSUER"  # JPY names no issuer
    assert apply_one(ledger, build_issue(CHAIN, ED, seed(ISSUER), 1, address(3), 10, "USD"))[0].success
    assert ledger.account(address(3)).balance("USD") == 1_000_010
    assert apply_one(ledger, build_redeem(CHAIN, ED, seed(ISSUER), 2, 1_000_000, "USD"))[0].success
    assert ledger.account(address(ISSUER)).balance("USD") == 0
    assert ledger.account(address(ISSUER)).balances == (("EUR", 1_000_000),)


def test_replayed_transaction_in_a_later_block_is_refused(ledger):
    tx = transfer(1, 1, 2, 5)
    assert apply_one(ledger, tx)[0].success
    before = snapshot(ledger)
    outcome, _ = apply_one(ledger, tx)
    assert outcome.reason == "NONCE_MISMATCH"
    assert snapshot(ledger) == before


def test_duplicate_in_one_block_is_refused(ledger):
    tx = transfer(1, 1, 2, 5)
    result = ledger.apply(next_block(ledger, [tx, tx]))
    assert [o.reason for o in result.applied.outcomes] == ["", "DUPLICATE"]
    assert ledger.account(address(2)).balance("USD") == 1_000_005


def test_refused_transaction_does_not_stop_the_block(ledger):
    txs = [transfer(1, 1, 2, 5), transfer(1, 5, 2, 5), b"\xff garbage", transfer(2, 1, 3, 7)]
    result = ledger.apply(next_block(ledger, txs))
    assert [o.success for o in result.applied.outcomes] == [True, False, False, True]
    assert [o.index for o in result.applied.outcomes] == [0, 1, 2, 3]


def _body(**kw) -> pb.TransactionBody:
    fields: dict = {"chain_id": CHAIN, "sender": address(1), "nonce": 1}
    fields.update(kw)
    return pb.TransactionBody(**fields)


def _signed_transfer(to=None, amount=5, currency="USD", memo="", **body) -> bytes:
    t = pb.Transfer(to=address(2) if to is None else to, amount=amount, currency=currency,
                    memo=memo)
    return sign_body(body.pop("sign_chain", CHAIN), _body(transfer=t, **body), ED, seed(1))


def _bad_signature() -> bytes:
    env = pb.SignedTransaction.FromString(transfer(1, 1, 2, 5))
    env.signature = bytes(64)
    return env.SerializeToString()


def _unknown_scheme() -> bytes:
    env = pb.SignedTransaction.FromString(transfer(1, 1, 2, 5))
    env.scheme = 9
    return env.SerializeToString()


def _forged_sender() -> bytes:  # signer 1 claims to be account 2
    return sign_body(CHAIN, _body(sender=address(2), transfer=pb.Transfer(
        to=address(3), amount=5, currency="USD")), ED, seed(1))


BAD_INPUTS = {
    "malformed bytes": (b"\x0a\xff\xff", "MALFORMED"),
    "empty body kind": (sign_body(CHAIN, _body(), ED, seed(1)), "MALFORMED"),
    "too large": (b"\x00" * (TX_BYTES_MAX + 1), "TOO_LARGE"),
    "wrong chain": (_signed_transfer(chain_id="other", sign_chain="other"), "WRONG_CHAIN"),
    "signed for other chain": (_signed_transfer(sign_chain="other"), "BAD_SIGNATURE"),
    "bad signature": (_bad_signature(), "BAD_SIGNATURE"),
    "unknown scheme": (_unknown_scheme(), "UNKNOWN_SCHEME"),
    "forged sender": (_forged_sender(), "BAD_ADDRESS"),
    "short recipient": (_signed_transfer(to=b"\x01" * 19), "BAD_ADDRESS"),
    "zero amount": (_signed_transfer(amount=0), "AMOUNT_OUT_OF_RANGE"),
    "amount above 2^63-1": (_signed_transfer(amount=AMOUNT_MAX + 1), "AMOUNT_OUT_OF_RANGE"),
    "amount 2^64-1": (_signed_transfer(amount=2**64 - 1), "AMOUNT_OUT_OF_RANGE"),
    "unknown currency": (_signed_transfer(currency="XXX"), "UNKNOWN_CURRENCY"),
    "memo too long": (_signed_transfer(memo="m" * 257), "TOO_LARGE"),
    "self transfer": (_signed_transfer(to=address(1)), "SELF_TRANSFER"),
    "nonce zero": (_signed_transfer(nonce=0), "BAD_NONCE"),
    "future nonce": (_signed_transfer(nonce=2), "NONCE_MISMATCH"),
    "expired": (_signed_transfer(valid_until_ms=999), "EXPIRED"),
    "unknown recipient": (_signed_transfer(to=b"\x07" * 20), "UNKNOWN_RECIPIENT"),
    "insufficient funds": (_signed_transfer(amount=1_000_001), "INSUFFICIENT_FUNDS"),
    "not issuer": (sign_body(CHAIN, _body(issue=pb.Issue(to=address(1), amount=5,
                                                          currency="USD")), ED, seed(1)),
                   "NOT_ISSUER"),
    "redeem not issuer": (sign_body(CHAIN, _body(redeem=pb.Redeem(amount=5, currency="USD")),
                                    ED, seed(1)), "NOT_ISSUER"),
    "unknown sender": (build_transfer(CHAIN, ED, seed(50), 1, address(1), 5, "USD"),
                       "UNKNOWN_ACCOUNT"),
    "create existing": (build_create_account(CHAIN, ED, seed(1)), "ACCOUNT_EXISTS"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_typed_reason_and_changes_nothing(ledger, name):
    tx, reason = BAD_INPUTS[name]
    before = snapshot(ledger)
    outcome, result = apply_one(ledger, tx)
    assert (outcome.success, outcome.reason) == (False, reason)
    assert Reason[reason]  # every reason is a documented enum member
    assert snapshot(ledger) == before
    assert result.state_changes == ()
    check = ledger.check_tx(tx)
    if Reason[reason] < 20:  # stateless reasons are caught before the mempool too
        assert (check.ok, check.reason) == (False, reason)
    else:
        assert check.ok


def test_overflowing_credit_is_refused():
    ledger = Ledger(make_genesis(balance=AMOUNT_MAX))
    before = snapshot(ledger)
    outcome, _ = apply_one(ledger, transfer(1, 1, 2, 1))
    assert outcome.reason == "OVERFLOW"
    assert snapshot(ledger) == before
    outcome, _ = apply_one(ledger, build_issue(CHAIN, ED, seed(ISSUER), 1, address(2), 1, "USD"))
    assert outcome.reason == "OVERFLOW"


def test_check_tx_reports_id_sender_and_nonce(ledger):
    tx = transfer(1, 3, 2, 5)
    check = ledger.check_tx(tx)
    assert check.ok and check.sender == address(1) and check.nonce == 3
    assert check.tx_id == __import__("hashlib").sha256(pb.SignedTransaction.FromString(tx).body).digest()
    assert ledger.check_tx(b"junk").tx_id == b""


def test_signing_bytes_bind_chain_id():
    assert tx_signing_bytes("ab", b"c") != tx_signing_bytes("a", b"bc")
    assert tx_signing_bytes("c", b"body").startswith(b"QENEX/tx\x01c")


def test_block_for_wrong_height_or_chain_is_a_driver_bug(ledger):
    block = next_block(ledger, [])
    ledger.apply(block)
    with pytest.raises(LedgerError):
        ledger.apply(block)


def test_same_blocks_give_same_root_and_restore_matches():
    a, b = Ledger(make_genesis()), Ledger(make_genesis())
    for nonce in (1, 2, 3):
        block = next_block(a, [transfer(1, nonce, 2, 10), transfer(2, nonce, 3, 4)])
        assert a.apply(block) == b.apply(block)
    restored = Ledger.restore(a.genesis, a.height, a.block_hash, list(a.accounts()))
    assert restored.state_root == a.state_root


def test_account_bytes_are_canonical():
    account = Account(b"\x01" * 20, 4, b"k" * 2592, 2**40, (("EUR", 1), ("USD", AMOUNT_MAX)))
    assert encode_account(account) == canonical.encode(account)


def test_account_proofs_verify_against_state_root(ledger):
    apply_one(ledger, transfer(1, 1, 2, 5))
    root = ledger.state_root
    for i in range(4):
        acct = ledger.account(address(i))
        assert verify_account_proof(root, address(i), encode_account(acct),
                                    ledger.prove_account(address(i)))
    absent = b"\x42" * 20
    proof = ledger.prove_account(absent)
    assert verify_account_proof(root, absent, None, proof)
    assert not verify_account_proof(root, address(1), None, ledger.prove_account(address(1)))
