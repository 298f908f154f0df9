"""Tools that are not ours talk to a real node: a Node.js client (@grpc/grpc-js with
@grpc/proto-loader, `proto/` as its only include root) reads status and an account and
submits a transfer the Python SDK signed; `promtool check metrics` accepts the node's
/metrics. One small PBFT cluster (4 nodes, f = 1) serves both.

In CI (the CI env var set) a missing `node` or `promtool` fails the test: `.ci/run`
installs them; only outside CI does their absence skip. Missing npm modules always fail
(with `node` present, `npm ci --prefix tests/clients/node` is all it takes)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import grpc
import pytest

from ledger.tx import build_transfer
from proto.qenex.v1 import node_pb2, transaction_pb2
from qenex_node.sdk import load_account_key
from qenex_node.testnet import CLIENT_BALANCE_MINOR, CURRENCY
from tests.integration.cluster_util import Cluster

pytestmark = [pytest.mark.integration]

NODES = 4
NODE_CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
CLIENT_RUN_TIMEOUT_S = 60
TRANSFER_MINOR = 7


def _require(tool: str, present: bool) -> None:
    """Fail in CI (it must have installed the tool), skip on a developer's machine."""
    if present:
        return
    message = f"{tool} is missing; `.ci/run` installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("foreign") / "net", NODES, "pbft", clients=2)
    cluster.start()
    try:
        assert all(s["ready"] for s in cluster.wait_ready()), cluster.status()
        yield cluster
    finally:
        cluster.stop()


def _run_node_client(*args: str) -> dict:
    _require("node", shutil.which("node") is not None)
    modules = NODE_CLIENT_DIR / "node_modules" / "@grpc"
    if not ((modules / "grpc-js").is_dir() and (modules / "proto-loader").is_dir()):
        pytest.fail("npm modules missing: run `npm ci --prefix tests/clients/node`")
    done = subprocess.run(["node", str(NODE_CLIENT_DIR / "client.js"), *args],
                          check=False, capture_output=True, text=True,
                          timeout=CLIENT_RUN_TIMEOUT_S)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def test_nodejs_client_reads_status_and_account_and_submits(cluster):
    sender, receiver = (load_account_key(c["key_file"]) for c in cluster.summary["clients"])
    chain_id = cluster.summary["chain_id"]
    tx = build_transfer(chain_id, int(sender.scheme), sender.seed, 1, receiver.address,
                        TRANSFER_MINOR, CURRENCY)
    tx_id = hashlib.sha256(transaction_pb2.SignedTransaction.FromString(tx).body).hexdigest()

    out = _run_node_client(cluster.summary["nodes"][0]["grpc"], sender.address.hex(), tx.hex())

    status, account, submit = out["status"], out["account"], out["submit"]
    assert (status["chain_id"], status["algorithm"]) == (chain_id, "pbft")
    assert status["node_id"] == 0 and int(status["height"]) >= 0
    assert account["found"] is True
    assert account["account"]["address"] == sender.address.hex()
    assert account["account"]["scheme"] == "ED25519"
    assert account["account"]["nonce"] == "0"
    assert account["account"]["balances"] == [
        {"currency": CURRENCY, "amount": str(CLIENT_BALANCE_MINOR)}]
    assert (submit["status"], submit["tx_id"]) == ("COMMITTED", tx_id)
    assert submit["receipt"]["success"] is True and int(submit["height"]) >= 1
    # The transfer the JS client carried is the one the ledger applied.
    after = cluster.stub(1).GetAccount(node_pb2.GetAccountRequest(address=receiver.address),
                                       timeout=10)
    assert [(b.currency, b.amount) for b in after.account.balances] == [
        (CURRENCY, CLIENT_BALANCE_MINOR + TRANSFER_MINOR)]


def test_nodejs_client_reports_an_unknown_account_as_not_found(cluster):
    out = _run_node_client(cluster.summary["nodes"][2]["grpc"], "ab" * 20)
    assert out["account"]["found"] is False and "submit" not in out


def test_metrics_pass_promtool_check_metrics(cluster):
    promtool = shutil.which("promtool")
    _require("promtool (Debian package prometheus)", promtool is not None)
    # A read and a refused submission first, so labelled series exist to be checked too.
    stub = cluster.stub(0)
    stub.GetStatus(node_pb2.GetStatusRequest(), timeout=10)
    stub.GetAccount(node_pb2.GetAccountRequest(address=b"\x01" * 20), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(
            tx=transaction_pb2.SignedTransaction()), timeout=10)
    url = f"http://{cluster.summary['nodes'][0]['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        exposition = response.read()
    assert b"qenex_submit_to_commit_seconds_bucket" in exposition
    assert b'qenex_reads_total{' in exposition
    checked = subprocess.run([promtool, "check", "metrics"], input=exposition,
                             check=False, capture_output=True, timeout=30)
    problems = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0 and not problems.strip(), problems
