"""Transactions: signing bytes, stateless validation and client-side builders.

Wire form: `qenex.v1.SignedTransaction` whose `body` is a serialised `TransactionBody`.
The signature covers `tx_signing_bytes(chain_id, body)`; the transaction id is
SHA-256(body), so it does not depend on the (randomised, for ML-DSA) signature.

`parse_tx` does every check that needs no state (size, fields, amounts, chain id, the
signer's address, the signature) and yields a `Tx` domain object or a typed `Reason`.
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from crypto import schemes
from ledger.account import ADDRESS_BYTES, address_of
from ledger.errors import Reason
from ledger.money import amount_in_range
from proto.qenex.v1 import transaction_pb2 as pb

TX_DOMAIN = b"QENEX/tx"
TX_BYTES_MAX = 16 * 1024  # an ML-DSA-87 create_account (key twice + signature) is ~10 KiB
MEMO_BYTES_MAX = 256
CHAIN_ID_BYTES_MAX = 255  # the chain id's length is one byte in the signing bytes
TX_ID_CACHE_MAX = 65_536  # ids are asked for at admission, commit and mempool cleanup

Verifier = Callable[[int, bytes, bytes, bytes], bool]  # (scheme, public key, message, sig)

KIND_CREATE = "create_account"
KIND_TRANSFER = "transfer"
KIND_ISSUE = "issue"
KIND_REDEEM = "redeem"


def tx_signing_bytes(chain_id: str, body: bytes) -> bytes:
    """"QENEX/tx" || u8 len(chain id) || chain id || body: the exact bytes a client signs.

    The length byte makes the split between chain id and body unambiguous.
    """
    chain = chain_id.encode("utf-8")
    if len(chain) > CHAIN_ID_BYTES_MAX:
        raise ValueError("chain id longer than 255 bytes")
    return TX_DOMAIN + bytes([len(chain)]) + chain + body


def tx_id_of(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


@functools.lru_cache(maxsize=TX_ID_CACHE_MAX)
def envelope_tx_id(tx: bytes) -> bytes:
    """The transaction id of encoded envelope bytes: SHA-256 of the body when they parse as
    a SignedTransaction, else SHA-256 of the raw bytes (such bytes are never admitted, and
    the simulator's opaque transactions get a stable id too). One function for every
    driver, mempool and invariant checker, so they can never disagree on identity."""
    try:
        envelope = pb.SignedTransaction.FromString(tx)
    except (DecodeError, ValueError):
        return hashlib.sha256(tx).digest()
    if not envelope.body:
        return hashlib.sha256(tx).digest()
    return tx_id_of(envelope.body)


@dataclass(frozen=True, slots=True)
class Tx:
    """A statelessly valid transaction (signature already checked)."""
    tx_id: bytes
    sender: bytes
    nonce: int
    valid_until_ms: int
    kind: str  # KIND_*
    to: bytes = b""  # transfer / issue recipient
    amount: int = 0
    currency: str = ""
    scheme: int = 0  # create_account: the key to bind
    public_key: bytes = b""


@dataclass(frozen=True, slots=True)
class Parsed:
    """Outcome of stateless validation: `tx` when ok, else the reason (and tx id if known)."""
    tx_id: bytes
    reason: Reason
    detail: str = ""
    tx: Tx | None = None
    sender: bytes = b""
    nonce: int = 0


def _refuse(reason: Reason, detail: str, tx_id: bytes = b"", body: object = None) -> Parsed:
    sender = getattr(body, "sender", b"") if body is not None else b""
    nonce = getattr(body, "nonce", 0) if body is not None else 0
    return Parsed(tx_id, reason, detail, None, sender, nonce)


def parse_tx(data: bytes, chain_id: str, currencies: frozenset[str] | set[str],
             verifier: Verifier | None = schemes.verify) -> Parsed:
    """Every check that needs no state; never raises on bad input.

    `verifier=None` skips the signature check (only for callers that already verified
    these exact bytes, e.g. a cache keyed by the envelope hash).
    """
    if len(data) > TX_BYTES_MAX:
        return _refuse(Reason.TOO_LARGE, f"{len(data)} B > tx_bytes_max {TX_BYTES_MAX}")
    try:
        envelope = pb.SignedTransaction.FromString(data)
        body = pb.TransactionBody.FromString(envelope.body)
    except (DecodeError, ValueError) as exc:  # ValueError: bad UTF-8 in a string field
        return _refuse(Reason.MALFORMED, f"not a SignedTransaction: {exc}")
    tx_id = tx_id_of(envelope.body)
    if body.chain_id != chain_id:
        return _refuse(Reason.WRONG_CHAIN, f"chain id {body.chain_id!r}", tx_id, body)
    reason, detail = _check_envelope(envelope, body)
    if reason is not Reason.OK:
        return _refuse(reason, detail, tx_id, body)
    tx, reason, detail = _body_to_tx(tx_id, body, envelope, currencies)
    if tx is None:
        return _refuse(reason, detail, tx_id, body)
    if verifier is not None and not verifier(envelope.scheme, envelope.public_key,
                                             tx_signing_bytes(chain_id, envelope.body),
                                             envelope.signature):
        return _refuse(Reason.BAD_SIGNATURE, "signature does not verify", tx_id, body)
    return Parsed(tx_id, Reason.OK, "", tx, tx.sender, tx.nonce)


def _check_envelope(envelope: pb.SignedTransaction, body: pb.TransactionBody) -> tuple[Reason, str]:
    if envelope.scheme not in schemes.PUBLIC_KEY_BYTES:
        return Reason.UNKNOWN_SCHEME, f"scheme {envelope.scheme}"
    if len(envelope.public_key) != schemes.PUBLIC_KEY_BYTES[envelope.scheme]:
        return Reason.BAD_PUBLIC_KEY, f"{len(envelope.public_key)} B key"
    if len(envelope.signature) != schemes.SIGNATURE_BYTES[envelope.scheme]:
        return Reason.BAD_SIGNATURE, f"{len(envelope.signature)} B signature"
    if len(body.sender) != ADDRESS_BYTES or body.sender != address_of(envelope.scheme,
                                                                     envelope.public_key):
        return Reason.BAD_ADDRESS, "sender is not the signer's address"
    if body.nonce == 0:
        return Reason.BAD_NONCE, "the first nonce is 1"
    return Reason.OK, ""


def _body_to_tx(tx_id: bytes, body: pb.TransactionBody, envelope: pb.SignedTransaction,
                currencies: frozenset[str] | set[str]) -> tuple[Tx | None, Reason, str]:
    kind = body.WhichOneof("kind")
    base = (tx_id, body.sender, body.nonce, body.valid_until_ms)
    if kind == KIND_TRANSFER:
        msg = body.transfer
        if len(msg.memo.encode("utf-8")) > MEMO_BYTES_MAX:
            return None, Reason.TOO_LARGE, f"memo longer than {MEMO_BYTES_MAX} B"
        if msg.to == body.sender:
            return None, Reason.SELF_TRANSFER, "recipient is the sender"
        return _money_tx(base, kind, msg.to, msg.amount, msg.currency, currencies)
    if kind == KIND_ISSUE:
        msg = body.issue
        return _money_tx(base, kind, msg.to, msg.amount, msg.currency, currencies)
    if kind == KIND_REDEEM:
        msg = body.redeem
        return _money_tx(base, kind, b"", msg.amount, msg.currency, currencies)
    if kind == KIND_CREATE:
        return _create_tx(base, body.create_account, envelope)
    return None, Reason.MALFORMED, "body has no kind"


def _money_tx(base: tuple, kind: str, to: bytes, amount: int, currency: str,
              currencies: frozenset[str] | set[str]) -> tuple[Tx | None, Reason, str]:
    if kind != KIND_REDEEM and len(to) != ADDRESS_BYTES:
        return None, Reason.BAD_ADDRESS, f"recipient must be {ADDRESS_BYTES} B"
    if not amount_in_range(amount):
        return None, Reason.AMOUNT_OUT_OF_RANGE, f"amount {amount}"
    if currency not in currencies:
        return None, Reason.UNKNOWN_CURRENCY, f"currency {currency!r}"
    return Tx(*base, kind=kind, to=to, amount=amount, currency=currency), Reason.OK, ""


def _create_tx(base: tuple, msg: pb.CreateAccount,
               envelope: pb.SignedTransaction) -> tuple[Tx | None, Reason, str]:
    # Self-signed registration: the new account signs with the key it binds.
    if msg.scheme != envelope.scheme or msg.public_key != envelope.public_key:
        return None, Reason.BAD_PUBLIC_KEY, "create_account must be signed by the key it binds"
    if base[2] != 1:
        return None, Reason.BAD_NONCE, "create_account uses nonce 1"
    return Tx(*base, kind=KIND_CREATE, scheme=msg.scheme, public_key=msg.public_key), \
        Reason.OK, ""


# ---------------------------------------------------------------- client-side builders
def sign_body(chain_id: str, body: pb.TransactionBody, scheme: int, seed: bytes) -> bytes:
    """Serialise, sign with the key rebuilt from `seed`, and return the envelope bytes."""
    body_bytes = body.SerializeToString(deterministic=True)
    kind = schemes.Scheme(scheme)
    signature = schemes.sign_with_seed(kind, seed, tx_signing_bytes(chain_id, body_bytes))
    envelope = pb.SignedTransaction(body=body_bytes, scheme=int(kind),
                                    public_key=schemes.public_key_from_seed(kind, seed),
                                    signature=signature)
    return envelope.SerializeToString(deterministic=True)


def sender_of(scheme: int, seed: bytes) -> bytes:
    return address_of(scheme, schemes.public_key_from_seed(schemes.Scheme(scheme), seed))


def build_create_account(chain_id: str, scheme: int, seed: bytes,
                         valid_until_ms: int = 0) -> bytes:
    public_key = schemes.public_key_from_seed(schemes.Scheme(scheme), seed)
    body = pb.TransactionBody(chain_id=chain_id, sender=address_of(scheme, public_key), nonce=1,
                              valid_until_ms=valid_until_ms,
                              create_account=pb.CreateAccount(scheme=scheme, public_key=public_key))
    return sign_body(chain_id, body, scheme, seed)


def build_transfer(chain_id: str, scheme: int, seed: bytes, nonce: int, to: bytes, amount: int,
                   currency: str, memo: str = "", valid_until_ms: int = 0) -> bytes:
    body = pb.TransactionBody(chain_id=chain_id, sender=sender_of(scheme, seed), nonce=nonce,
                              valid_until_ms=valid_until_ms,
                              transfer=pb.Transfer(to=to, amount=amount, currency=currency,
                                                   memo=memo))
    return sign_body(chain_id, body, scheme, seed)


def build_issue(chain_id: str, scheme: int, seed: bytes, nonce: int, to: bytes, amount: int,
                currency: str, valid_until_ms: int = 0) -> bytes:
    body = pb.TransactionBody(chain_id=chain_id, sender=sender_of(scheme, seed), nonce=nonce,
                              valid_until_ms=valid_until_ms,
                              issue=pb.Issue(to=to, amount=amount, currency=currency))
    return sign_body(chain_id, body, scheme, seed)


def build_redeem(chain_id: str, scheme: int, seed: bytes, nonce: int, amount: int,
                 currency: str, valid_until_ms: int = 0) -> bytes:
    body = pb.TransactionBody(chain_id=chain_id, sender=sender_of(scheme, seed), nonce=nonce,
                              valid_until_ms=valid_until_ms,
                              redeem=pb.Redeem(amount=amount, currency=currency))
    return sign_body(chain_id, body, scheme, seed)
