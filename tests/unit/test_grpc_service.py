"""The real gRPC server, in-process, over the real InMemoryBackend (real mempool + ledger).

The trio loop runs in a background thread (DevNode); the tests are plain threads calling
grpc, as real clients do.
"""
from __future__ import annotations

import hashlib
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from crypto.schemes import Scheme, public_key_from_seed
from ledger import tx as ledger_tx
from ledger.account import address_of
from ledger.genesis import Genesis
from ledger.ledger import Ledger
from proto.qenex.v1 import node_pb2, node_pb2_grpc, transaction_pb2
from qenex_node.api.devnode import DevNode

CHAIN = "qenex-grpc-test"
ED = int(Scheme.ED25519)
MESSAGE_BYTES_MAX = 64 * 1024


def seed(i: int) -> bytes:
    return hashlib.sha256(b"grpc-seed%d" % i).digest()


def address(i: int) -> bytes:
    return address_of(ED, public_key_from_seed(Scheme.ED25519, seed(i)))


def make_ledger(accounts: int = 3) -> Ledger:
    return Ledger(Genesis.from_dict({
        "chain_id": CHAIN,
        "currencies": {"USD": {"minor_units": 2, "issuers": [address(0).hex()]}},
        "accounts": [{"scheme": "ED25519",
                      "public_key": public_key_from_seed(Scheme.ED25519, seed(i)).hex(),
                      "balances": {"USD": 100_000}} for i in range(accounts)],
    }))


def transfer(nonce: int, amount: int = 100, sender: int = 0, to: int = 1) -> bytes:
    return ledger_tx.build_transfer(CHAIN, ED, seed(sender), nonce, address(to), amount, "USD")


def request(tx: bytes, wait: bool = False, timeout_ms: int = 0) -> node_pb2.SubmitTransactionRequest:
    return node_pb2.SubmitTransactionRequest(tx=transaction_pb2.SignedTransaction.FromString(tx),
                                             wait_for_commit=wait, timeout_ms=timeout_ms)


def reason_of(exc: grpc.RpcError) -> str:
    return dict(exc.trailing_metadata() or ()).get("qenex-reason", "")


@pytest.fixture
def node():
    with DevNode(make_ledger(), grpc_workers_max=4,
                 grpc_message_bytes_max=MESSAGE_BYTES_MAX) as dev:
        yield dev


@pytest.fixture
def stub(node):
    with grpc.insecure_channel(node.target) as channel:
        yield node_pb2_grpc.NodeStub(channel)


def committer(node: DevNode, after_s: float = 0.05) -> threading.Timer:
    timer = threading.Timer(after_s, node.commit)
    timer.start()
    return timer


# ------------------------------------------------------------ submit
def test_submit_accepted_then_duplicate(stub, node):
    tx = transfer(1)
    first = stub.SubmitTransaction(request(tx), timeout=5)
    assert first.status == node_pb2.ACCEPTED
    assert first.tx_id == ledger_tx.tx_id_of(transaction_pb2.SignedTransaction.FromString(tx).body)
    again = stub.SubmitTransaction(request(tx), timeout=5)
    assert again.status == node_pb2.DUPLICATE
    node.commit()
    after_commit = stub.SubmitTransaction(request(tx), timeout=5)
    assert after_commit.status == node_pb2.DUPLICATE


def test_garbage_body_is_invalid_argument(stub):
    bad = node_pb2.SubmitTransactionRequest(
        tx=transaction_pb2.SignedTransaction(body=b"\xff\xfegarbage", scheme=1))
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitTransaction(bad, timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(err.value) == "MALFORMED"
    assert err.value.details().startswith("MALFORMED")


def test_bad_signature_and_nonce_reasons(stub, node):
    envelope = transaction_pb2.SignedTransaction.FromString(transfer(1))
    envelope.signature = bytes(64)
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitTransaction(node_pb2.SubmitTransactionRequest(tx=envelope), timeout=5)
    assert (err.value.code(), reason_of(err.value)) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                        "BAD_SIGNATURE")
    stub.SubmitTransaction(request(transfer(1)), timeout=5)
    node.commit()
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitTransaction(request(transfer(1, amount=7)), timeout=5)  # replayed nonce
    assert (err.value.code(), reason_of(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                        "NONCE_TOO_LOW")


def test_oversized_message_is_resource_exhausted(stub):
    big = node_pb2.SubmitTransactionRequest(
        tx=transaction_pb2.SignedTransaction(body=b"x" * (MESSAGE_BYTES_MAX + 1)))
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitTransaction(big, timeout=5)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_wait_for_commit_returns_height_and_receipt(stub, node):
    timer = committer(node)
    response = stub.SubmitTransaction(request(transfer(1), wait=True, timeout_ms=5_000), timeout=10)
    timer.join()
    assert response.status == node_pb2.COMMITTED
    assert response.height == 1
    assert response.receipt.success and response.receipt.height == 1
    assert response.receipt.tx_id == response.tx_id


def test_wait_for_commit_timeout_is_deadline_exceeded(stub):
    with pytest.raises(grpc.RpcError) as err:
        stub.SubmitTransaction(request(transfer(1), wait=True, timeout_ms=50), timeout=5)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert reason_of(err.value) == "TIMEOUT"


def test_committed_but_failed_is_ok_with_failed_receipt(stub, node):
    timer = committer(node)
    response = stub.SubmitTransaction(request(transfer(1, amount=10**9), wait=True,
                                              timeout_ms=5_000), timeout=10)
    timer.join()
    assert response.status == node_pb2.COMMITTED
    assert not response.receipt.success
    assert response.receipt.reason_text == "INSUFFICIENT_FUNDS" and response.receipt.reason == 25


def test_streaming_submit_answers_in_order(stub):
    txs = [transfer(n) for n in range(1, 6)]
    bad = node_pb2.SubmitTransactionRequest(
        tx=transaction_pb2.SignedTransaction(body=b"junk"))
    requests = [request(txs[0]), request(txs[1]), bad, request(txs[1])] + \
        [request(t) for t in txs[2:]]
    answers = list(stub.SubmitTransactions(iter(requests), timeout=10))
    assert [node_pb2.SubmitStatus.Name(a.status) for a in answers] == \
        ["ACCEPTED", "ACCEPTED", "REJECTED", "DUPLICATE", "ACCEPTED", "ACCEPTED", "ACCEPTED"]
    assert answers[2].reason == "MALFORMED"
    ids = [ledger_tx.tx_id_of(transaction_pb2.SignedTransaction.FromString(t).body) for t in txs]
    assert [answers[i].tx_id for i in (0, 1, 4, 5, 6)] == ids


# ------------------------------------------------------------ queries
def test_get_status(stub, node):
    stub.SubmitTransaction(request(transfer(1)), timeout=5)
    status = stub.GetStatus(node_pb2.GetStatusRequest(), timeout=5)
    assert (status.chain_id, status.algorithm, status.height, status.mempool_txs) == \
        (CHAIN, "memory", 0, 1)
    node.commit()
    status = stub.GetStatus(node_pb2.GetStatusRequest(), timeout=5)
    assert status.height == 1 and status.mempool_txs == 0 and status.leader == 0
    assert status.state_root == node.backend.ledger.state_root


def test_get_block_by_height_and_hash_and_not_found(stub, node):
    stub.SubmitTransaction(request(transfer(1)), timeout=5)
    committed = node.commit()
    by_height = stub.GetBlock(node_pb2.GetBlockRequest(height=1), timeout=5).block
    assert by_height.block_hash == committed.block.block_hash
    assert list(by_height.block.txs) == list(committed.block.txs)
    by_hash = stub.GetBlock(node_pb2.GetBlockRequest(block_hash=by_height.block_hash), timeout=5)
    assert by_hash.block == by_height
    for missing in (node_pb2.GetBlockRequest(height=2),
                    node_pb2.GetBlockRequest(block_hash=bytes(32))):
        with pytest.raises(grpc.RpcError) as err:
            stub.GetBlock(missing, timeout=5)
        assert (err.value.code(), reason_of(err.value)) == (grpc.StatusCode.NOT_FOUND,
                                                            "NOT_FOUND")


def test_get_transaction_and_account(stub, node):
    response = stub.SubmitTransaction(request(transfer(1, amount=250)), timeout=5)
    node.commit()
    found = stub.GetTransaction(node_pb2.GetTransactionRequest(tx_id=response.tx_id, prove=True),
                                timeout=5)
    assert found.receipt.success and found.header.height == 1 and found.proof.leaf_count == 1
    with pytest.raises(grpc.RpcError) as err:
        stub.GetTransaction(node_pb2.GetTransactionRequest(tx_id=bytes(32)), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    account = stub.GetAccount(node_pb2.GetAccountRequest(address=address(1)), timeout=5)
    assert account.found and account.account.balances[0].amount == 100_250
    absent = stub.GetAccount(node_pb2.GetAccountRequest(address=bytes(20), prove=True), timeout=5)
    assert not absent.found and absent.proof.state_root == node.backend.ledger.state_root
    with pytest.raises(grpc.RpcError) as err:
        stub.GetAccount(node_pb2.GetAccountRequest(address=b"short"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_evidence_of_a_single_node_is_empty_and_bounded(stub, node):
    node.commit(allow_empty=True)
    answer = stub.GetEvidence(node_pb2.GetEvidenceRequest(validator=0), timeout=5)
    assert list(answer.items) == [] and answer.next_height == 0
    at_max = stub.GetEvidence(node_pb2.GetEvidenceRequest(limit=1_000), timeout=5)
    assert list(at_max.items) == []
    for bad in (node_pb2.GetEvidenceRequest(limit=1_001),
                node_pb2.GetEvidenceRequest(from_height=2, to_height=1)):
        with pytest.raises(grpc.RpcError) as err:
            stub.GetEvidence(bad, timeout=5)
        assert (err.value.code(), reason_of(err.value)) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                            "BAD_REQUEST")
        assert err.value.details().startswith("BAD_REQUEST: ")


# ------------------------------------------------------------ events
def test_watch_events_live_and_replay(stub, node):
    stub.SubmitTransaction(request(transfer(1)), timeout=5)
    node.commit()
    stream = stub.WatchEvents(node_pb2.WatchEventsRequest(from_height=1), timeout=10)
    first = next(stream)
    assert first.WhichOneof("kind") == "block_committed" and first.block_committed.height == 1
    assert next(stream).transaction_committed.height == 1
    stub.SubmitTransaction(request(transfer(2)), timeout=5)
    node.commit()
    live = next(stream)
    assert live.block_committed.height == 2 and live.block_committed.tx_count == 1
    stream.cancel()
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.CANCELLED


def test_cancelled_watch_releases_its_subscription(stub, node):
    for height in range(1, 4):  # more than watch_streams_max (2 with 4 workers)
        # from_height = the next block, so the event arrives whether the subscription
        # starts before the commit (live) or after it (replay).
        stream = stub.WatchEvents(node_pb2.WatchEventsRequest(from_height=height), timeout=10)
        node.commit(allow_empty=True)
        assert next(stream).WhichOneof("kind") == "block_committed"
        stream.cancel()
    deadline = threading.Event()
    for _ in range(100):  # the server drops the subscriber once the cancel reaches it
        if not node.backend._watchers:
            break
        deadline.wait(0.01)
    assert not node.backend._watchers


# ------------------------------------------------------------ health, reflection, limits
def test_health_follows_backend_readiness(node):
    with grpc.insecure_channel(node.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        check = health_pb2.HealthCheckRequest(service="qenex.v1.Node")
        assert health.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
        node.backend.ready = False
        assert health.Check(check, timeout=5).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(grpc.RpcError) as err:
            node_pb2_grpc.NodeStub(channel).SubmitTransaction(request(transfer(1)), timeout=5)
        assert (err.value.code(), reason_of(err.value)) == (grpc.StatusCode.UNAVAILABLE,
                                                            "NOT_READY")


def test_reflection_lists_the_node_service(node):
    with grpc.insecure_channel(node.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        names = {s.name for s in next(answers).list_services_response.service}
    assert {"qenex.v1.Node", "grpc.health.v1.Health"} <= names


def test_overload_is_resource_exhausted():
    with DevNode(make_ledger(), grpc_workers_max=2, concurrent_rpcs_max=1) as dev, \
            grpc.insecure_channel(dev.target) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        waiting = stub.SubmitTransaction.future(request(transfer(1), wait=True, timeout_ms=5_000),
                                                timeout=10)
        for _ in range(200):  # until the waiting call holds the only slot
            if dev.backend._waiters:
                break
            threading.Event().wait(0.01)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetStatus(node_pb2.GetStatusRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        dev.commit()
        assert waiting.result().status == node_pb2.COMMITTED


def test_slow_watcher_is_ended_with_watch_lagged(stub, node):
    from qenex_node.api.memory_backend import MemoryLimits
    node.backend.limits = MemoryLimits(watch_events_max=2)
    stream = stub.WatchEvents(node_pb2.WatchEventsRequest(from_height=1), timeout=20)
    node.commit(allow_empty=True)
    assert next(stream).block_committed.height == 1  # subscribed
    # The pump's buffer and grpc's flow-control window hold a few thousand small events;
    # past them the backend's 2-event queue overflows and the watcher is ended.
    for _ in range(3_000):
        node.commit(allow_empty=True)
    with pytest.raises(grpc.RpcError) as err:
        for _ in stream:
            pass
    assert (err.value.code(), reason_of(err.value)) == (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                                        "WATCH_LAGGED")


def test_transfer_leadership_without_an_engine_is_not_supported(stub):
    with pytest.raises(grpc.RpcError) as info:
        stub.TransferLeadership(node_pb2.TransferLeadershipRequest(to=1), timeout=5)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "NOT_SUPPORTED" in info.value.details()
