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
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from crypto.schemes import Scheme
from ledger.tx import build_create_account, build_transfer, sender_of
from proto.qenex.v1 import transaction_pb2 as pb
from qenex_node.client_keys import ClientKey, load_client_key
from tests.integration.cluster_util import Cluster

pytestmark = pytest.mark.integration

HTTP_TIMEOUT_S = 20


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

    def transfer(self, sender: int, nonce: int, to: bytes, amount: int) -> bytes:
        key = self.clients[sender]
        return build_transfer(self.chain_id, int(key.scheme), key.seed, nonce, to, amount, "USD")

    def metric(self, name: str, reason: str) -> float:
        url = f"http://{self.cluster.summary['nodes'][0]['metrics']}/metrics"
        text = urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S).read().decode()
        for line in text.splitlines():
            if line.startswith(f'{name}{{reason="{reason}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("rest") / "net", 1, "raft", clients=4)
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
    tx = rest.transfer(0, 1, to, 12345)
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
    assert status == 200 and account["nonce"] == 1


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
    good = rest.transfer(2, 1, rest.clients[3].address, 1)
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
