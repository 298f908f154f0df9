"""The REST gateway in-process over ASGI, against the real InMemoryBackend (real mempool and
ledger): each route, and each kind of bad input answered with a problem document, counted,
and leaving the ledger and mempool as they were."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import trio
import trio.testing

from crypto.schemes import Scheme, public_key_from_seed
from ledger import tx as ledger_tx
from ledger.account import address_of
from ledger.genesis import Genesis
from ledger.ledger import Ledger
from proto.qenex.v1 import transaction_pb2 as pb
from qenex_node.api.memory_backend import InMemoryBackend
from qenex_node.api.rest import ROUTES, WEBSOCKET_ROUTES, RestGateway, RestLimits
from qenex_node.api.rest_json import Money, decimal_string
from qenex_node.runtime.metrics import NodeMetrics
from tests.unit.asgi_client import http

CHAIN = "qenex-rest-test"
ED = int(Scheme.ED25519)
BALANCE = 100_000
OPENAPI_PATH = Path(__file__).resolve().parents[2] / "qenex_node" / "api" / "openapi.json"


def seed(i: int) -> bytes:
    return hashlib.sha256(b"rest-seed%d" % i).digest()


def address(i: int) -> bytes:
    return address_of(ED, public_key_from_seed(Scheme.ED25519, seed(i)))


def make_ledger(accounts: int = 3) -> Ledger:
    return Ledger(Genesis.from_dict({
        "chain_id": CHAIN,
        "currencies": {"USD": {"minor_units": 2, "issuers": [address(0).hex()]},
                       "JPY": {"minor_units": 0}},
        "accounts": [{"scheme": "ED25519",
                      "public_key": public_key_from_seed(Scheme.ED25519, seed(i)).hex(),
                      "balances": {"USD": BALANCE}} for i in range(accounts)],
    }))


def transfer(nonce: int, amount: int = 12345, sender: int = 0, to: int = 1) -> bytes:
    return ledger_tx.build_transfer(CHAIN, ED, seed(sender), nonce, address(to), amount, "USD")


def raw_transfer(amount: int) -> bytes:
    """A correctly signed transfer whose amount the builder would not let through."""
    body = pb.TransactionBody(chain_id=CHAIN, sender=address(0), nonce=1,
                              transfer=pb.Transfer(to=address(1), amount=amount, currency="USD"))
    return ledger_tx.sign_body(CHAIN, body, ED, seed(0))


def tx_json(tx: bytes) -> bytes:
    return json.dumps({"tx": base64.b64encode(tx).decode()}).encode()


class Node:
    def __init__(self) -> None:
        self.backend = InMemoryBackend(make_ledger())
        self.metrics = NodeMetrics()
        self.app = RestGateway(self.backend, Money({"USD": 2, "JPY": 0}),
                               self.metrics.rest_rejected, RestLimits(body_bytes_max=32 * 1024))

    def rejected(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("qenex_rest_rejected_total",
                                                       {"reason": reason})
        return value or 0.0

    def state(self) -> tuple:
        ledger = self.backend.ledger
        return ledger.height, ledger.state_root, len(self.backend.mempool)


@pytest.fixture
async def node():
    return Node()


async def test_transfer_accepted_committed_and_read_back(node):
    tx = transfer(1)
    answer = await http(node.app, "POST", "/v1/transfers", tx_json(tx))
    assert answer.status == 202, answer.body
    tx_id = answer.json()["tx_id"]
    assert answer.json() == {"tx_id": tx_id, "status": "ACCEPTED"}
    await node.backend.commit_pending()
    got = await http(node.app, "GET", f"/v1/transactions/{tx_id}")
    assert got.status == 200
    doc = got.json()
    assert doc["height"] == 1 and doc["receipt"]["success"] is True
    assert doc["transaction"]["amount"] == 12345
    assert doc["transaction"]["amount_decimal"] == "123.45"
    assert doc["transaction"]["to"] == address(1).hex()
    assert base64.b64decode(doc["tx"]) == tx
    balance = await http(node.app, "GET", f"/v1/balance/{address(1).hex()}",
                         query="currency=USD&consistency=local")
    assert balance.json()["balances"] == [
        {"amount": BALANCE + 12345, "amount_decimal": "1123.45", "currency": "USD"}]
    account = await http(node.app, "GET", f"/v1/accounts/{address(0).hex()}",
                         query="min_height=1")
    assert account.json()["nonce"] == 1
    assert account.json()["balances"][0]["amount"] == BALANCE - 12345


async def test_wait_true_answers_committed_with_height(node):
    answers = []

    async def submit():
        answers.append(await http(node.app, "POST", "/v1/transactions", tx_json(transfer(1)),
                                  query="wait=true&timeout_ms=5000"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(submit)
        await trio.testing.wait_all_tasks_blocked()
        await node.backend.commit_pending()
    answer = answers[0]
    assert answer.status == 200
    assert answer.json()["status"] == "COMMITTED" and answer.json()["height"] == 1
    assert answer.json()["receipt"]["success"] is True


async def test_create_account_then_read_it(node):
    new_seed = hashlib.sha256(b"rest-new-account").digest()
    tx = ledger_tx.build_create_account(CHAIN, ED, new_seed)
    assert (await http(node.app, "POST", "/v1/accounts", tx_json(tx))).status == 202
    await node.backend.commit_pending()
    new_address = ledger_tx.sender_of(ED, new_seed).hex()
    account = await http(node.app, "GET", f"/v1/accounts/{new_address}")
    assert account.status == 200
    assert account.json()["scheme"] == "ED25519" and account.json()["balances"] == []


async def test_transfer_to_unknown_account_commits_as_failed_and_moves_nothing(node):
    stranger = address(9)
    tx = ledger_tx.build_transfer(CHAIN, ED, seed(0), 1, stranger, 5, "USD")
    await http(node.app, "POST", "/v1/transfers", tx_json(tx))
    await node.backend.commit_pending()
    tx_id = hashlib.sha256(pb.SignedTransaction.FromString(tx).body).hexdigest()
    receipt = (await http(node.app, "GET", f"/v1/transactions/{tx_id}")).json()["receipt"]
    assert receipt["success"] is False and receipt["reason"] == "UNKNOWN_RECIPIENT"
    balance = await http(node.app, "GET", f"/v1/balance/{address(0).hex()}")
    assert balance.json()["balances"][0]["amount"] == BALANCE
    missing = await http(node.app, "GET", f"/v1/balance/{stranger.hex()}")
    assert missing.status == 404 and missing.json()["reason"] == "UNKNOWN_ACCOUNT"


def _flip_signature(tx: bytes) -> bytes:
    envelope = pb.SignedTransaction.FromString(tx)
    envelope.signature = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
    return envelope.SerializeToString(deterministic=True)


BAD_POSTS = [
    ("malformed JSON", "/v1/transfers", b'{"tx": ', 400, "MALFORMED_JSON"),
    ("not UTF-8", "/v1/transfers", b'\xff\xfe', 400, "MALFORMED_JSON"),
    ("body not an object", "/v1/transfers", b'["tx"]', 400, "WRONG_TYPE"),
    ("tx wrong type", "/v1/transfers", b'{"tx": 5}', 400, "WRONG_TYPE"),
    ("float in body", "/v1/transfers", b'{"tx": "AA==", "amount": 1.5}', 400,
     "FLOAT_NOT_ALLOWED"),
    ("exponent in body", "/v1/transfers", b'{"tx": "AA==", "amount": 1e3}', 400,
     "FLOAT_NOT_ALLOWED"),
    ("NaN in body", "/v1/transfers", b'{"tx": "AA==", "amount": NaN}', 400,
     "FLOAT_NOT_ALLOWED"),
    ("bad base64", "/v1/transfers", b'{"tx": "not base64!"}', 400, "MALFORMED"),
    ("not a transaction", "/v1/transactions", tx_json(b"\x01\x02garbage"), 400, "MALFORMED"),
    ("bad signature", "/v1/transfers", tx_json(_flip_signature(transfer(1))), 400,
     "BAD_SIGNATURE"),
    ("overflowing amount", "/v1/transfers", tx_json(raw_transfer(2**63)), 400,
     "AMOUNT_OUT_OF_RANGE"),
    ("negative amount (int64 -1 on the wire)", "/v1/transfers",
     tx_json(raw_transfer(2**64 - 1)), 400, "AMOUNT_OUT_OF_RANGE"),
    ("zero amount", "/v1/transfers", tx_json(raw_transfer(0)), 400, "AMOUNT_OUT_OF_RANGE"),
    ("wrong kind for the route", "/v1/transfers",
     tx_json(ledger_tx.build_create_account(CHAIN, ED, seed(7))), 422, "WRONG_KIND"),
    ("wrong chain", "/v1/transfers", tx_json(ledger_tx.build_transfer(
        "other-chain", ED, seed(0), 1, address(1), 5, "USD")), 400, "WRONG_CHAIN"),
    ("used nonce", "/v1/transfers", tx_json(transfer(0)), 409, "BAD_NONCE"),
]


@pytest.mark.parametrize("what,path,body,status,reason", BAD_POSTS,
                         ids=[case[0] for case in BAD_POSTS])
async def test_bad_submission_is_a_counted_problem_that_changes_nothing(node, what, path, body,
                                                                        status, reason):
    before = node.state()
    answer = await http(node.app, "POST", path, body)
    assert answer.status == status, answer.body
    assert answer.content_type == "application/problem+json"
    doc = answer.json()
    assert doc["status"] == status and doc["reason"] == reason
    assert doc["type"] == "urn:qenex:problem:" + reason.lower().replace("_", "-")
    assert doc["title"] and doc["detail"]
    assert node.rejected(reason) == 1
    await node.backend.commit_pending()
    assert node.state() == before
    # ... and the node keeps serving.
    assert (await http(node.app, "POST", "/v1/transfers", tx_json(transfer(1)))).status == 202


BAD_GETS = [
    ("unknown route", "GET", "/v1/nothing", "", 404, "UNKNOWN_ROUTE"),
    ("wrong method", "DELETE", "/v1/transfers", "", 405, "METHOD_NOT_ALLOWED"),
    ("bad tx id", "GET", "/v1/transactions/xyz", "", 400, "BAD_REQUEST"),
    ("unknown tx", "GET", "/v1/transactions/" + "00" * 32, "", 404, "NOT_FOUND"),
    ("bad account id", "GET", "/v1/accounts/1234", "", 400, "BAD_ADDRESS"),
    ("unknown account", "GET", "/v1/accounts/" + address(9).hex(), "", 404, "UNKNOWN_ACCOUNT"),
    ("bad consistency", "GET", "/v1/balance/" + address(0).hex(), "consistency=eventual", 400,
     "BAD_REQUEST"),
    ("float min_height", "GET", "/v1/balance/" + address(0).hex(), "min_height=1.5", 400,
     "BAD_REQUEST"),
    ("unknown currency", "GET", "/v1/balance/" + address(0).hex(), "currency=XXX", 400,
     "UNKNOWN_CURRENCY"),
    ("height not reached", "GET", "/v1/balance/" + address(0).hex(),
     "min_height=50&timeout_ms=20", 503, "BEHIND"),
    ("bad wait flag", "POST", "/v1/transfers", "wait=maybe", 400, "BAD_REQUEST"),
]


@pytest.mark.parametrize("what,method,path,query,status,reason", BAD_GETS,
                         ids=[case[0] for case in BAD_GETS])
async def test_bad_request_is_a_counted_problem(node, what, method, path, query, status, reason):
    body = tx_json(transfer(1)) if method == "POST" else b""
    answer = await http(node.app, method, path, body, query=query)
    assert (answer.status, answer.json()["reason"]) == (status, reason), answer.body
    assert answer.content_type == "application/problem+json"
    assert node.rejected(reason) == 1
    assert node.state()[2] == 0  # nothing admitted


async def test_requests_over_the_in_flight_cap_are_429_overloaded():
    node = Node()
    node.app.limits = RestLimits(http_requests_max=1)
    answers = []

    async def waiting_submit():
        answers.append(await http(node.app, "POST", "/v1/transfers", tx_json(transfer(1)),
                                  query="wait=true"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiting_submit)
        await trio.testing.wait_all_tasks_blocked()
        refused = await http(node.app, "GET", f"/v1/balance/{address(0).hex()}")
        assert (refused.status, refused.json()["reason"]) == (429, "OVERLOADED")
        await node.backend.commit_pending()
    assert answers[0].status == 200 and node.rejected("OVERLOADED") == 1
    served = await http(node.app, "GET", f"/v1/balance/{address(0).hex()}")
    assert served.status == 200  # the slot is free again


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_oversized_body_is_413_without_reading_it_all(node, declared):
    body = b'{"tx": "' + b"A" * 40_000 + b'"}'
    answer = await http(node.app, "POST", "/v1/transactions", body,
                        chunk_bytes=0 if declared else 4096)
    assert answer.status == 413 and answer.json()["reason"] == "BODY_TOO_LARGE"
    assert node.rejected("BODY_TOO_LARGE") == 1 and node.state()[2] == 0


def test_decimal_strings_are_exact():
    assert decimal_string(12345, 2) == "123.45"
    assert decimal_string(5, 2) == "0.05"
    assert decimal_string(7, 0) == "7"
    assert decimal_string(-250, 2) == "-2.50"
    assert decimal_string(2**63 - 1, 18) == "9.223372036854775807"


async def test_openapi_served_is_the_committed_document_and_names_every_route(node):
    answer = await http(node.app, "GET", "/v1/openapi.json")
    committed = json.loads(OPENAPI_PATH.read_text())
    assert answer.status == 200 and answer.json() == committed
    assert committed["openapi"].startswith("3.")
    for method, path, _ in ROUTES:
        assert method.lower() in committed["paths"].get(path, {}), f"{method} {path}"
    for path in WEBSOCKET_ROUTES:  # OpenAPI names a WebSocket as the GET that upgrades
        assert "get" in committed["paths"].get(path, {}), path
