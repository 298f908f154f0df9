"""JSON forms for the REST, WebSocket and GraphQL gateway: strict parsing, money, problems.

Strict parsing: money is integers (ARCHITECTURE.md rule 4), and a JSON number with a
fraction or exponent (`1.5`, `1e3`) or NaN/Infinity would reach Python as a float, so
`loads_strict` refuses them at the parser instead of rounding them somewhere later.

A signed transaction travels as its exact envelope bytes (`qenex.v1.SignedTransaction`,
the bytes the node would get over gRPC) in base64, `{"tx": "<base64>"}`: the signature
covers canonical bytes, and re-encoding JSON fields into those bytes on the server would
make every client's signature depend on our field order. Answers decode the envelope for
reading (`amount` integer minor units plus `amount_decimal` in the currency's scale).

Errors are RFC 9457 problem details with `reason`, the same stable reason names gRPC
carries in `qenex-reason` (qenex_node/api/status_codes.py).
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from ledger.account import ADDRESS_BYTES
from proto.qenex.v1 import transaction_pb2 as pb
from qenex_node.api.backend import AccountRead, SubmitResult, TransactionRecord
from qenex_node.core.app import TxOutcome

# A URN, not a made-up web address: RFC 9457 asks only for a URI, and nothing is served there.
PROBLEM_TYPE_BASE = "urn:qenex:problem:"
TX_ID_BYTES = 32


class BadInput(Exception):
    """A request the gateway refuses before the backend sees it (always a 4xx)."""

    def __init__(self, reason: str, detail: str, status: int = 400) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status


def _refuse_float(text: str) -> Any:
    raise BadInput("FLOAT_NOT_ALLOWED", f"number {text} is not an integer; amounts and "
                   "heights are integers (minor units), never floats or exponents")


def _refuse_constant(text: str) -> Any:
    raise BadInput("FLOAT_NOT_ALLOWED", f"{text} is not valid JSON here")


def loads_strict(body: bytes) -> Any:
    """Parse a request body; floats, exponents, NaN and Infinity are refused."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("MALFORMED_JSON", "the body is not UTF-8") from None
    try:
        return json.loads(text, parse_float=_refuse_float, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise BadInput("MALFORMED_JSON", f"not JSON: {exc}") from None


def dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def problem(status: int, reason: str, detail: str, title: str = "") -> dict[str, Any]:
    return {"type": PROBLEM_TYPE_BASE + reason.lower().replace("_", "-"),
            "title": title or reason.replace("_", " ").capitalize(), "status": status,
            "detail": detail, "reason": reason}


# ------------------------------------------------------------ request fields
def json_object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise BadInput("WRONG_TYPE", f"the body must be a JSON object, got "
                       f"{type(doc).__name__}")
    return doc


def integer_field(doc: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = doc.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput("WRONG_TYPE", f"{name} must be an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise BadInput("OUT_OF_RANGE", f"{name} must be between {low} and {high}, got {value}")
    return value


def signed_tx_bytes(doc: dict[str, Any], tx_bytes_max: int) -> bytes:
    """The envelope bytes from `{"tx": base64}`, exactly as the client signed them."""
    value = doc.get("tx")
    if not isinstance(value, str):
        raise BadInput("WRONG_TYPE", "tx must be a base64 string of the SignedTransaction "
                       "envelope bytes")
    if len(value) > (tx_bytes_max + 2) // 3 * 4 + 4:
        raise BadInput("TOO_LARGE", f"tx is longer than {tx_bytes_max} B", 413)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("MALFORMED", "tx is not valid base64") from None


def tx_kind(tx: bytes) -> str:
    """The body's kind ("transfer", "create_account", ...) or raise MALFORMED."""
    try:
        envelope = pb.SignedTransaction.FromString(tx)
        body = pb.TransactionBody.FromString(envelope.body)
    except (DecodeError, ValueError) as exc:
        raise BadInput("MALFORMED", f"tx is not a SignedTransaction: {exc}") from None
    return body.WhichOneof("kind") or ""


def hex_id(text: str, size: int, what: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != size:
        reason = "BAD_ADDRESS" if size == ADDRESS_BYTES else "BAD_REQUEST"
        raise BadInput(reason, f"{what} must be {2 * size} hex digits, got {text[:80]!r}")
    return value


# ------------------------------------------------------------ money
def decimal_string(amount: int, minor_units: int) -> str:
    """12345 with 2 minor units -> "123.45"; exact, from integers only."""
    sign = "-" if amount < 0 else ""
    digits = str(abs(amount))
    if minor_units == 0:
        return sign + digits
    digits = digits.rjust(minor_units + 1, "0")
    return f"{sign}{digits[:-minor_units]}.{digits[-minor_units:]}"


@dataclass(frozen=True, slots=True)
class Money:
    """Renders amounts with each currency's scale (minor units) from genesis."""
    minor_units: dict[str, int]

    def render(self, amount: int, currency: str) -> dict[str, Any]:
        units = self.minor_units.get(currency, 0)
        return {"amount": amount, "amount_decimal": decimal_string(amount, units),
                "currency": currency}

    def balances(self, account: Any) -> list[dict[str, Any]]:
        return [self.render(amount, code) for code, amount in account.balances]


# ------------------------------------------------------------ answers
def outcome_json(outcome: TxOutcome, height: int) -> dict[str, Any]:
    return {"tx_id": outcome.tx_id.hex(), "height": height, "index": outcome.index,
            "success": outcome.success, "reason": outcome.reason}


def submit_json(result: SubmitResult) -> dict[str, Any]:
    doc: dict[str, Any] = {"tx_id": result.tx_id.hex(), "status": result.status}
    if result.status == "COMMITTED":
        doc["height"] = result.height
    if result.outcome is not None:
        doc["receipt"] = outcome_json(result.outcome, result.height)
    return doc


def body_json(tx: bytes, money: Money) -> dict[str, Any]:
    """The decoded, human-readable form of committed envelope bytes."""
    envelope = pb.SignedTransaction.FromString(tx)
    body = pb.TransactionBody.FromString(envelope.body)
    kind = body.WhichOneof("kind") or ""
    doc: dict[str, Any] = {"kind": kind, "chain_id": body.chain_id,
                           "sender": body.sender.hex(), "nonce": body.nonce,
                           "valid_until_ms": body.valid_until_ms}
    if kind in ("transfer", "issue"):
        msg = getattr(body, kind)
        doc.update(to=msg.to.hex(), **money.render(msg.amount, msg.currency))
        if kind == "transfer":
            doc["memo"] = msg.memo
    elif kind == "redeem":
        doc.update(money.render(body.redeem.amount, body.redeem.currency))
    elif kind == "create_account":
        doc.update(scheme=pb.SignatureScheme.Name(body.create_account.scheme),
                   public_key=body.create_account.public_key.hex())
    return doc


def record_json(record: TransactionRecord, read_height: int, money: Money) -> dict[str, Any]:
    return {"tx_id": record.outcome.tx_id.hex(), "height": record.height,
            "read_height": read_height, "transaction": body_json(record.tx, money),
            "receipt": outcome_json(record.outcome, record.height),
            "tx": base64.b64encode(record.tx).decode("ascii")}


def account_json(answer: AccountRead, money: Money) -> dict[str, Any]:
    account: Any = answer.account
    return {"address": account.address.hex(), "scheme": pb.SignatureScheme.Name(account.scheme),
            "public_key": account.public_key.hex(), "nonce": account.nonce,
            "balances": money.balances(account), "height": answer.height,
            "state_root": answer.state_root.hex()}
