"""The REST gateway of a real `qenex node start` process (hypercorn under the node's trio
run, over the runtime backend and LMDB), driven with a plain HTTP client (stdlib).

One single-node Raft cluster serves the whole module: the smallest real cluster that
commits, so the file stays cheap in CI. Tests share its ledger, so each one uses its own
sender account or reads only what it wrote."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from crypto.schemes import Scheme
from ledger.tx import build_create_account, build_transfer, sender_of
from proto.qenex.v1 import transaction_pb2 as pb
from qenex_node.client_keys import ClientKey, load_client_key
from tests.integration.cluster_util import Cluster

pytestmark = pytest.mark.integration

HTTP_TIMEOUT_S = 20
WS_SUBSCRIPTIONS_MAX = 2  # written into the node's config, so the cap is cheap to reach


class Rest:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.address = cluster.summary["nodes"][0]["rest"]
        self.chain_id = cluster.summary["chain_id"]
        self.clients = [load_client_key(c["key_file"]) for c in cluster.summary["clients"]]

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
        host, port = self.address.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=HTTP_TIMEOUT_S)
        try:
            connection.request(method, path, body=body, headers={
                "content-type": "application/json", **(headers or {})})
            response = connection.getresponse()
            raw = response.read()
            return response.status, response.getheader("content-type", ""), json.loads(raw)
        finally:
            connection.close()

    def post_tx(self, path: str, tx: bytes, query: str = "") -> tuple[int, str, Any]:
        body = json.dumps({"tx": base64.b64encode(tx).decode()}).encode()
        return self.call("POST", path + query, body)

    def transfer(self, sender: int, to: bytes, amount: int) -> bytes:
        """A signed transfer with the sender's next nonce, so each test stands alone
        whatever ran before it on the shared node."""
        key = self.clients[sender]
        status, _, account = self.call("GET", f"/v1/accounts/{key.address.hex()}")
        assert status == 200, account
        return build_transfer(self.chain_id, int(key.scheme), key.seed,
                              account["nonce"] + 1, to, amount, "USD")

    def metric(self, name: str, reason: str | None = None) -> float:
        url = f"http://{self.cluster.summary['nodes'][0]['metrics']}/metrics"
        text = urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S).read().decode()
        series = f'{name}{{reason="{reason}"}} ' if reason is not None else f"{name} "
        for line in text.splitlines():
            if line.startswith(series):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def wait_no_subscribers(self, timeout_s: float = 5) -> None:
        """Closed WebSockets free their slot a moment after the close handshake."""
        deadline = time.monotonic() + timeout_s
        while self.metric("qenex_rest_ws_subscribers") > 0:
            assert time.monotonic() < deadline, "subscriptions were not released"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("rest") / "net", 1, "raft", clients=4)
    config_path = Path(cluster.summary["nodes"][0]["home"]) / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["api"]["rest_ws_subscriptions_max"] = WS_SUBSCRIPTIONS_MAX
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    cluster.start()
    try:
        assert all(s["ready"] for s in cluster.wait_ready(60)), cluster.status()
        yield Rest(cluster)
    finally:
        cluster.stop()


def _tx_id(tx: bytes) -> str:
    return hashlib.sha256(pb.SignedTransaction.FromString(tx).body).hexdigest()


def test_testnet_names_the_rest_address(rest):
    summary = json.loads((Path(rest.cluster.summary["dir"]) / "cluster.json").read_text())
    assert summary["nodes"][0]["rest"] == rest.address


def test_signed_transfer_with_wait_is_committed_and_read_back(rest):
    to = rest.clients[1].address
    status, _, before = rest.call("GET", f"/v1/balance/{to.hex()}?currency=USD")
    assert status == 200
    tx = rest.transfer(0, to, 12345)
    status, _, doc = rest.post_tx("/v1/transfers", tx, "?wait=true&timeout_ms=15000")
    assert status == 200, doc
    assert doc["status"] == "COMMITTED" and doc["tx_id"] == _tx_id(tx)
    assert doc["receipt"]["success"] is True
    height = doc["height"]
    status, _, record = rest.call("GET", f"/v1/transactions/{doc['tx_id']}")
    assert status == 200 and record["height"] == height
    assert record["transaction"]["amount"] == 12345
    assert record["transaction"]["amount_decimal"] == "123.45"
    status, _, after = rest.call("GET", f"/v1/balance/{to.hex()}?currency=USD&min_height="
                                 f"{height}&consistency=local")
    assert status == 200 and after["height"] >= height
    assert after["balances"][0]["amount"] == before["balances"][0]["amount"] + 12345
    status, _, account = rest.call("GET", f"/v1/accounts/{rest.clients[0].address.hex()}")
    assert status == 200 and account["nonce"] == record["transaction"]["nonce"]


def test_post_transactions_accepts_then_a_retry_with_wait_answers_the_commit(rest):
    tx = rest.transfer(0, rest.clients[2].address, 99)
    status, _, accepted = rest.post_tx("/v1/transactions", tx)
    assert status == 202 and accepted == {"tx_id": _tx_id(tx), "status": "ACCEPTED"}
    # Resubmitting the same bytes is the way to retry: never an error, never twice applied.
    status, _, committed = rest.post_tx("/v1/transactions", tx, "?wait=true&timeout_ms=15000")
    assert status == 200 and committed["status"] == "COMMITTED", committed
    assert committed["tx_id"] == accepted["tx_id"] and committed["receipt"]["success"]


def test_create_account_through_post_accounts(rest):
    key = ClientKey.generate()
    tx = build_create_account(rest.chain_id, int(Scheme.ED25519), key.seed)
    status, _, doc = rest.post_tx("/v1/accounts", tx, "?wait=true&timeout_ms=15000")
    assert status == 200 and doc["status"] == "COMMITTED", doc
    address = sender_of(int(Scheme.ED25519), key.seed).hex()
    status, _, account = rest.call("GET", f"/v1/accounts/{address}")
    assert status == 200 and account["address"] == address and account["balances"] == []


def _flip_signature(tx: bytes) -> bytes:
    envelope = pb.SignedTransaction.FromString(tx)
    envelope.signature = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
    return envelope.SerializeToString(deterministic=True)


def test_bad_input_gets_problems_counted_in_metrics_and_the_node_keeps_serving(rest):
    sender = rest.clients[2].address.hex()
    _, _, before = rest.call("GET", f"/v1/accounts/{sender}")
    good = rest.transfer(2, rest.clients[3].address, 1)
    cases = [
        ("POST", "/v1/transfers", b'{"tx": ', 400, "MALFORMED_JSON"),
        ("POST", "/v1/transfers", b'{"tx": 7}', 400, "WRONG_TYPE"),
        ("POST", "/v1/transfers", b'{"tx": "AA==", "amount": 1.25}', 400, "FLOAT_NOT_ALLOWED"),
        ("POST", "/v1/transfers", json.dumps(
            {"tx": base64.b64encode(_flip_signature(good)).decode()}).encode(), 400,
         "BAD_SIGNATURE"),
        ("POST", "/v1/transactions", b'{"tx": "' + b"A" * 200_000 + b'"}', 413,
         "BODY_TOO_LARGE"),
        ("GET", f"/v1/accounts/{'ab' * 20}", None, 404, "UNKNOWN_ACCOUNT"),
        ("GET", "/v1/nowhere", None, 404, "UNKNOWN_ROUTE"),
    ]
    for method, path, body, status, reason in cases:
        counted = rest.metric("qenex_rest_rejected_total", reason)
        got, content_type, doc = rest.call(method, path, body)
        assert (got, doc["reason"]) == (status, reason), doc
        assert content_type == "application/problem+json" and doc["status"] == status
        assert rest.metric("qenex_rest_rejected_total", reason) == counted + 1
    _, _, after = rest.call("GET", f"/v1/accounts/{sender}")
    assert (after["nonce"], after["balances"]) == (before["nonce"], before["balances"])
    status, _, doc = rest.post_tx("/v1/transfers", good, "?wait=true&timeout_ms=15000")
    assert status == 200 and doc["status"] == "COMMITTED"


def test_openapi_document_is_served(rest):
    status, _, doc = rest.call("GET", "/v1/openapi.json")
    committed = json.loads((Path(__file__).resolve().parents[2] / "qenex_node" / "api"
                            / "openapi.json").read_text())
    assert status == 200 and doc == committed


class WsClient:
    """A minimal blocking WebSocket client over wsproto (hypercorn's own WebSocket layer)."""

    def __init__(self, address: str, target: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT_S)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list[Any] = []
        self.text = ""
        self.close_code: int | None = None
        self.sock.sendall(self.ws.send(Request(host=host, target=target)))
        event = self._event()
        assert isinstance(event, AcceptConnection), event

    def _event(self) -> Any:
        while not self.pending:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    def message(self) -> dict[str, Any] | None:
        """The next JSON message, or None once the node closed (see close_code)."""
        while True:
            event = self._event()
            if isinstance(event, TextMessage):
                self.text += event.data
                if event.message_finished:
                    text, self.text = self.text, ""
                    return json.loads(text)
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, (CloseConnection, RejectConnection)):
                self.close_code = getattr(event, "code", None)
                return None

    def until(self, predicate: Any) -> list[dict[str, Any]]:
        seen = []
        while (message := self.message()) is not None:
            seen.append(message)
            if predicate(message):
                return seen
        raise AssertionError(f"closed ({self.close_code}) after {seen}")

    def close(self) -> None:
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except (OSError, RuntimeError):
            pass  # the node closed first
        self.sock.close()


def test_websocket_bad_query_and_too_many_subscriptions_get_close_codes(rest):
    bad = WsClient(rest.address, "/v1/events?from_height=1.5")
    assert bad.message()["reason"] == "BAD_REQUEST"
    assert bad.message() is None and bad.close_code == 1008
    bad.close()
    counted = rest.metric("qenex_rest_rejected_total", "TOO_MANY_SUBSCRIPTIONS")
    held = [WsClient(rest.address, "/v1/events") for _ in range(WS_SUBSCRIPTIONS_MAX)]
    try:
        extra = WsClient(rest.address, "/v1/events")
        assert extra.message()["reason"] == "TOO_MANY_SUBSCRIPTIONS"
        assert extra.message() is None and extra.close_code == 1013
        extra.close()
        assert rest.metric("qenex_rest_rejected_total", "TOO_MANY_SUBSCRIPTIONS") == counted + 1
        # The held subscribers still get events.
        tx = rest.transfer(1, rest.clients[0].address, 1)
        status, _, doc = rest.post_tx("/v1/transfers", tx, "?wait=true&timeout_ms=15000")
        assert status == 200
        for ws in held:
            ws.until(lambda m: m["type"] == "block.committed" and m["height"] >= doc["height"])
    finally:
        for ws in held:
            ws.close()
        rest.wait_no_subscribers()


def test_websocket_stream_shows_a_transfer_and_resumes_from_its_height(rest):
    sender, recipient = rest.clients[3].address, rest.clients[1].address
    watcher = WsClient(rest.address, f"/v1/events?account={sender.hex()}")
    try:
        tx = rest.transfer(3, recipient, 250)
        status, _, doc = rest.post_tx("/v1/transfers", tx, "?wait=true&timeout_ms=15000")
        assert status == 200 and doc["status"] == "COMMITTED"
        height = doc["height"]
        seen = watcher.until(lambda m: m["type"] == "block.committed" and m["height"] == height)
    finally:
        watcher.close()
    rest.wait_no_subscribers()
    mine = [m for m in seen if m.get("tx_id") == doc["tx_id"]]
    assert [m["type"] for m in mine] == ["transaction.created", "account.updated",
                                         "balance.changed", "transaction.completed"]
    assert mine[0]["transaction"]["amount_decimal"] == "2.50"
    assert mine[2]["delta"] == -250 and mine[2]["delta_decimal"] == "-2.50"
    assert mine[3]["success"] is True
    replay = WsClient(rest.address, f"/v1/events?from_height={height}")
    try:
        first = replay.until(lambda m: m["type"] == "block.committed")
    finally:
        replay.close()
    assert first[0]["type"] == "transaction.created" and first[0]["tx_id"] == doc["tx_id"]
    assert first[-1]["height"] == height


def test_graphql_mutation_and_queries_against_the_node(rest):
    tx = rest.transfer(2, rest.clients[0].address, 4321)
    mutation = ("mutation($tx: String!) { createTransaction(input: {tx: $tx, wait: true, "
                "timeoutMs: 15000}) { id status height success } }")
    status, _, created = rest.call("POST", "/v1/graphql", json.dumps(
        {"query": mutation, "variables": {"tx": base64.b64encode(tx).decode()}}).encode())
    assert status == 200, created
    payload = created["data"]["createTransaction"]
    assert payload["status"] == "COMMITTED" and payload["success"] is True
    query = (f'{{ transaction(id: "{payload["id"]}") {{ height amount amountDecimal currency }} '
             "transactions(limit: 2) { id amount } }")
    status, _, got = rest.call("POST", "/v1/graphql", json.dumps({"query": query}).encode())
    assert status == 200 and "errors" not in got, got
    assert got["data"]["transaction"] == {"height": payload["height"], "amount": 4321,
                                          "amountDecimal": "43.21", "currency": "USD"}
    assert got["data"]["transactions"][0] == {"id": payload["id"], "amount": 4321}
    # Retrying after a lost answer is safe: the same bytes answer with the same commit.
    status, _, again = rest.call("POST", "/v1/graphql", json.dumps(
        {"query": mutation, "variables": {"tx": base64.b64encode(tx).decode()}}).encode())
    assert again["data"]["createTransaction"] == payload
    forged = base64.b64encode(_flip_signature(rest.transfer(2, rest.clients[0].address,
                                                            1))).decode()
    status, _, refused = rest.call("POST", "/v1/graphql", json.dumps(
        {"query": mutation, "variables": {"tx": forged}}).encode())
    assert status == 200 and refused["data"] is None
    assert refused["errors"][0]["extensions"]["reason"] == "BAD_SIGNATURE"
    status, content_type, problem = rest.call("POST", "/v1/graphql", json.dumps(
        {"query": "query($n: Int!) { transactions(limit: $n) { id } }"}).encode()[:-1]
        + b', "variables": {"n": 1.0}}')
    assert (status, content_type) == (400, "application/problem+json")
    assert problem["reason"] == "FLOAT_NOT_ALLOWED"
