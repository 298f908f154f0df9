"""QenexClient against a real in-process dev node (gRPC server + InMemoryBackend + ledger)."""
from __future__ import annotations

import json
import os
import threading

import pytest

from crypto.schemes import Scheme
from ledger import tx as ledger_tx
from proto.qenex.v1 import node_pb2
from qenex_node.api.devnode import DevNode
from qenex_node.sdk import (
    AccountKey,
    QenexClient,
    QenexError,
    generate_account_key,
    load_account_key,
    verify_account,
    verify_block,
    write_account_key,
)
from tests.unit.test_grpc_service import CHAIN, ED, address, make_ledger, seed, transfer


@pytest.fixture
def node():
    with DevNode(make_ledger(), grpc_workers_max=4) as dev:
        yield dev


@pytest.fixture
def client(node):
    with QenexClient(node.target, timeout_s=5) as c:
        yield c


def later(fn, after_s: float = 0.05) -> threading.Timer:
    timer = threading.Timer(after_s, fn)
    timer.start()
    return timer


def test_transfer_waits_for_commit_and_uses_next_nonce(client, node):
    key = AccountKey.from_seed(Scheme.ED25519, seed(0))
    timer = later(node.commit)
    outcome = client.transfer(key, address(2).hex(), 500, "USD", wait=True, timeout_ms=5_000)
    timer.join()
    assert outcome.status == "COMMITTED" and outcome.height == 1 and outcome.receipt.success
    assert client.next_nonce(key.address) == 2
    timer = later(node.commit)
    second = client.transfer(key, address(2), 1, "USD", timeout_ms=5_000)
    timer.join()
    assert second.receipt.success and second.height == 2


def test_errors_carry_code_and_reason(client):
    envelope_bytes = bytearray(transfer(1))
    envelope_bytes[-1] ^= 1  # flip a signature bit
    with pytest.raises(QenexError) as err:
        client.submit(bytes(envelope_bytes))
    assert (err.value.code, err.value.reason) == ("INVALID_ARGUMENT", "BAD_SIGNATURE")
    with pytest.raises(QenexError) as err:
        client.submit(transfer(1), wait=True, timeout_ms=50)
    assert (err.value.code, err.value.reason) == ("DEADLINE_EXCEEDED", "TIMEOUT")
    with pytest.raises(QenexError) as err:
        client.block(99)
    assert (err.value.code, err.value.reason) == ("NOT_FOUND", "NOT_FOUND")
    with pytest.raises(QenexError) as err:
        client.transfer(generate_account_key(), address(1), 1, "USD")
    assert err.value.reason == "UNKNOWN_ACCOUNT"


def test_submit_many_streams_in_order(client):
    txs = [transfer(n) for n in range(1, 4)]
    outcomes = list(client.submit_many([txs[0], txs[1], txs[1], txs[2]]))
    assert [o.status for o in outcomes] == ["ACCEPTED", "ACCEPTED", "DUPLICATE", "ACCEPTED"]


def test_queries_verify_proofs(client, node):
    outcome = client.submit(transfer(1, amount=300))
    node.commit()
    node.commit(allow_empty=True)  # certifies the state after block 1 in block 2's header
    tx = client.transaction(outcome.tx_id.hex(), prove=True)
    assert tx.receipt.success and tx.header.height == 1
    block = client.block(1)
    assert client.block(block.block_hash.hex()) == block
    status = client.status()
    assert status.height == 2 and status.chain_id == CHAIN
    present = client.account(address(1), prove=True)
    assert present.found and present.account.balances[0].amount == 100_300
    absent = client.account(bytes(20), prove=True)
    assert not absent.found


def test_tampered_data_is_refused(client, node):
    client.submit(transfer(1))
    node.commit()
    block = client.block(1)
    block.block.header.timestamp_ms += 1
    with pytest.raises(QenexError) as err:
        verify_block(block)
    assert err.value.reason == "BAD_PROOF"
    response = client.account(address(1), prove=True)
    response.account.balances[0].amount += 1
    with pytest.raises(QenexError) as err:
        verify_account(address(1), response)
    assert err.value.reason == "BAD_PROOF"


def test_watch_yields_block_events(client, node):
    events = client.watch(from_height=1)
    client.submit(transfer(1))  # before the commit, so block 1 is not empty
    timer = later(node.commit)
    first = next(events)
    timer.join()
    assert first.block_committed.height == 1 and first.block_committed.tx_count == 1
    events.close()


def test_account_key_file_roundtrip(tmp_path):
    key = generate_account_key()
    path = tmp_path / "alice.key.json"
    write_account_key(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_account_key(path) == key
    with pytest.raises(FileExistsError):
        write_account_key(path, key)
    record = json.loads(path.read_text())
    record["seed"] = "00" * 32
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(record))
    with pytest.raises(QenexError) as err:
        load_account_key(bad)
    assert err.value.reason == "BAD_KEY_FILE"


def test_create_account_registers_a_new_key(client, node):
    key = generate_account_key()
    timer = later(node.commit)
    outcome = client.create_account(key, timeout_ms=5_000)
    timer.join()
    assert outcome.receipt.success
    assert client.account(key.address).account.public_key == key.public_key
    assert ledger_tx.sender_of(ED, key.seed) == key.address
    assert isinstance(client.status(), node_pb2.NodeStatus)


# ------------------------------------------------------------------ read consistency
def test_every_read_names_the_height_it_was_served_at(client, node):
    outcome = client.submit(transfer(1, amount=300))
    node.commit()
    answer = client.account(address(1))
    assert (answer.height, answer.state_root) == (1, node.backend.ledger.state_root)
    assert client.transaction(outcome.tx_id).read_height == 1
    local = client.account(address(1), consistency="local")
    assert local.height == 1 and local.account.balances[0].amount == 100_300


def test_the_session_floor_follows_what_the_client_was_told(client, node):
    key = AccountKey.from_seed(Scheme.ED25519, seed(0))
    timer = later(node.commit)
    client.transfer(key, address(2), 5, "USD", timeout_ms=5_000)
    timer.join()
    assert client.session_height == 1
    with QenexClient(node.target, timeout_s=5, session_height=client.session_height) as moved:
        assert moved.account(address(2)).height >= 1  # carries the floor to any node


def test_a_read_above_the_nodes_height_is_answered_behind_at_its_deadline(node):
    with QenexClient(node.target, timeout_s=1.0) as client, \
            pytest.raises(QenexError) as err:
        client.account(address(1), min_height=3)
    assert (err.value.code, err.value.reason) == ("UNAVAILABLE", "BEHIND")
    assert "applied height 0" in err.value.detail and "needs height 3" in err.value.detail
    with QenexClient(node.target, timeout_s=1.0, session_height=3) as ahead, \
            pytest.raises(QenexError) as err:
        ahead.account(address(1), consistency="local")  # even local keeps the session
    assert err.value.reason == "BEHIND"


def test_a_read_waiting_for_its_height_is_served_when_the_height_is_applied(client, node):
    client.submit(transfer(1, amount=300))
    timer = later(node.commit, after_s=0.2)
    answer = client.account(address(1), min_height=1)
    timer.join()
    assert answer.height == 1 and answer.account.balances[0].amount == 100_300


def test_an_unknown_consistency_level_is_refused_before_sending(client):
    with pytest.raises(QenexError) as err:
        client.account(address(1), consistency="eventual")
    assert (err.value.code, err.value.reason) == ("CLIENT", "BAD_REQUEST")
