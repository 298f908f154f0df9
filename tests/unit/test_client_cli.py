"""`qenex status | tx | query` end to end against a real in-process dev node."""
from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from crypto.schemes import Scheme
from qenex_node.api.devnode import DevNode
from qenex_node.cli import main
from qenex_node.sdk import AccountKey, write_account_key
from tests.unit.test_grpc_service import CHAIN, address, make_ledger, seed


@pytest.fixture
def node():
    with DevNode(make_ledger(), grpc_workers_max=4) as dev:
        yield dev


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "client0.json"
    write_account_key(path, AccountKey.from_seed(Scheme.ED25519, seed(0)))
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_status_text_and_json(node):
    text = run("status", "--node", node.target)
    assert text.exit_code == 0 and "height    0" in text.output and "memory" in text.output
    data = json.loads(run("status", "--node", node.target, "--json").output)
    assert data["chain_id"] == CHAIN and data["height"] == 0 and data["leader"] == 0
    assert data["state_root"] == node.backend.ledger.state_root.hex()


def test_transfer_wait_then_queries(node, key_file):
    timer = threading.Timer(0.05, node.commit)
    timer.start()
    result = run("tx", "transfer", "--key", key_file, "--to", address(1).hex(), "--amount", "250",
                 "--node", node.target, "--wait", "--json")
    timer.join()
    assert result.exit_code == 0, result.output
    sent = json.loads(result.output)
    assert sent["status"] == "COMMITTED" and sent["height"] == 1
    account = json.loads(run("query", "account", address(1).hex(), "--prove", "--json",
                             "--node", node.target).output)
    assert account["found"] and account["account"]["balances"][0]["amount"] == 100_250
    tx = run("query", "tx", sent["tx_id"], "--prove", "--node", node.target)
    assert tx.exit_code == 0 and "success" in tx.output and "verified" in tx.output
    block = run("query", "block", "1", "--node", node.target)
    assert block.exit_code == 0 and "txs 1" in block.output


def test_errors_are_one_line_and_nonzero(node, key_file):
    missing = run("query", "block", "7", "--node", node.target)
    assert missing.exit_code == 1
    assert missing.output.strip().count("\n") == 0 and "NOT_FOUND" in missing.output
    bad_to = run("tx", "transfer", "--key", key_file, "--to", "abcd", "--amount", "1",
                 "--node", node.target)
    assert bad_to.exit_code == 1 and "BAD_ADDRESS" in bad_to.output
    nobody = run("status", "--node", "127.0.0.1:1")
    assert nobody.exit_code == 1 and "UNAVAILABLE" in nobody.output


def test_admin_transfer_leadership_names_the_refusal(node):
    result = run("admin", "transfer-leadership", "--to", "1", "--node", node.target)
    assert result.exit_code != 0 and "NOT_SUPPORTED" in result.output


def test_query_names_its_height_and_a_height_not_reached_is_behind(node):
    text = run("query", "account", address(1).hex(), "--node", node.target)
    assert text.exit_code == 0 and "(state at height 0, linearizable)" in text.output
    local = json.loads(run("query", "account", address(1).hex(), "--consistency", "local",
                           "--node", node.target, "--json").output)
    assert local["found"] and local["height"] == 0
    behind = run("query", "account", address(1).hex(), "--min-height", "5",
                 "--timeout", "1", "--node", node.target)
    assert behind.exit_code == 1
    assert "UNAVAILABLE BEHIND" in behind.output and "needs height 5" in behind.output
