"""GraphQL at /v1/graphql in-process over ASGI, against the real InMemoryBackend: the
seed's transaction(id), transactions(limit) and createTransaction(input), with amounts as
Int64 minor units plus a decimal string, and bad input refused without changing state."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import trio
import trio.testing

from qenex_node.api.rest_graphql import SCHEMA
from tests.unit.asgi_client import http
from tests.unit.test_rest import Node, transfer

SDL_PATH = Path(__file__).resolve().parents[2] / "qenex_node" / "api" / "schema.graphql"
CREATE = """mutation Create($tx: String!, $wait: Boolean!) {
  createTransaction(input: {tx: $tx, wait: $wait}) { id status height success reason } }"""
FIELDS = "id height kind sender to amount amountDecimal currency success reason"


async def graphql(node: Node, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    answer = await http(node.app, "POST", "/v1/graphql", body)
    assert answer.status == 200, answer.body
    return answer.json()


def b64(tx: bytes) -> str:
    return base64.b64encode(tx).decode()


@pytest.fixture
async def node():
    return Node()


async def test_create_transaction_then_query_it_by_id_and_in_the_latest(node):
    created = await graphql(node, CREATE, {"tx": b64(transfer(1, amount=12345)), "wait": False})
    payload = created["data"]["createTransaction"]
    assert payload["status"] == "ACCEPTED" and payload["height"] is None
    await node.backend.commit_pending()
    got = await graphql(node, f'{{ transaction(id: "{payload["id"]}") {{ {FIELDS} }} }}')
    tx = got["data"]["transaction"]
    assert (tx["amount"], tx["amountDecimal"], tx["currency"]) == (12345, "123.45", "USD")
    assert tx["height"] == 1 and tx["success"] is True and tx["kind"] == "transfer"
    await node.backend.submit(transfer(2, amount=5), False, 0)
    await node.backend.commit_pending()
    latest = await graphql(node, f"{{ transactions(limit: 5) {{ {FIELDS} }} }}")
    assert [t["amount"] for t in latest["data"]["transactions"]] == [5, 12345]
    one = await graphql(node, "{ transactions(limit: 1) { amountDecimal } }")
    assert one["data"]["transactions"] == [{"amountDecimal": "0.05"}]


async def test_create_transaction_with_wait_answers_committed(node):
    answers = []

    async def submit():
        answers.append(await graphql(node, CREATE, {"tx": b64(transfer(1)), "wait": True}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(submit)
        await trio.testing.wait_all_tasks_blocked()
        while not answers and len(node.backend.mempool) == 0:
            await trio.sleep(0.01)  # the query runs on a worker thread
        await node.backend.commit_pending()
    payload = answers[0]["data"]["createTransaction"]
    assert payload["status"] == "COMMITTED" and payload["height"] == 1 and payload["success"]


async def test_unknown_transaction_is_null(node):
    got = await graphql(node, f'{{ transaction(id: "{"00" * 32}") {{ id }} }}')
    assert got == {"data": {"transaction": None}}


@pytest.mark.parametrize("query,variables,reason", [
    (CREATE, {"tx": "not base64!", "wait": False}, "MALFORMED"),
    (CREATE, {"tx": base64.b64encode(b"garbage").decode(), "wait": False}, "MALFORMED"),
    ("{ transaction(id: \"xyz\") { id } }", None, "BAD_REQUEST"),
    ("{ transactions(limit: 1000) { id } }", None, "BAD_REQUEST"),
    ("{ transactions(limit: 1.5) { id } }", None, "GRAPHQL_INVALID"),  # Int, not Float
    ("{ nothing }", None, "GRAPHQL_INVALID"),
    ("{ " + " ".join(f"a{i}: transactions {{ id }}" for i in range(20)) + " }", None,
     "GRAPHQL_INVALID"),  # more aliases than the limiter allows
])
async def test_bad_graphql_is_an_error_with_a_reason_that_changes_nothing(node, query,
                                                                          variables, reason):
    before = node.state()
    got = await graphql(node, query, variables)
    assert got["errors"], got
    assert got["errors"][0].get("extensions", {}).get("reason", "GRAPHQL_INVALID") == reason
    assert node.rejected(reason) >= 1 and node.state() == before


async def test_a_bad_signature_through_graphql_is_refused_with_the_grpc_reason(node):
    from tests.unit.test_rest import _flip_signature

    got = await graphql(node, CREATE, {"tx": b64(_flip_signature(transfer(1))), "wait": False})
    assert got["errors"][0]["extensions"]["reason"] == "BAD_SIGNATURE"
    assert got["data"] is None and node.state()[2] == 0


@pytest.mark.parametrize("body,reason", [
    (b'{"query": "{ transactions(limit: 1) { id } }", "variables": {"x": 1.5}}',
     "FLOAT_NOT_ALLOWED"),
    (b'{"query": 5}', "WRONG_TYPE"),
    (b'{"query": ', "MALFORMED_JSON"),
])
async def test_bad_graphql_bodies_are_problems(node, body, reason):
    answer = await http(node.app, "POST", "/v1/graphql", body)
    assert answer.status == 400 and answer.json()["reason"] == reason
    assert answer.content_type == "application/problem+json"


def test_committed_sdl_is_the_served_schema():
    assert SDL_PATH.read_text() == SCHEMA.as_str() + "\n"
    assert "Float" not in SDL_PATH.read_text()
