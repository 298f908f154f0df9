"""The REST gateway: a small ASGI app over the same `NodeBackend` the gRPC service uses.

Served by hypercorn under trio in the node's own process (qenex_node/runtime/node.py), so
handlers await the backend directly: submit, read and watch rules live in the backend
once, and this module only translates HTTP + JSON to those calls and back. Routes are the
`ROUTES` table; the committed OpenAPI document (api/openapi.json) describes each of them,
and a test keeps the two in step.

Limits: a request body is read incrementally and refused with 413 once it passes
`body_bytes_max` (never buffered first); a commit wait is capped by `wait_timeout_ms_max`;
WebSocket subscriptions and their queues are bounded in rest_events.py. Every refusal is
an RFC 9457 problem with the gRPC reason name, counted in `qenex_rest_rejected_total`.
"""
from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import Counter, Gauge

from ledger.account import ADDRESS_BYTES
from ledger.tx import TX_BYTES_MAX
from qenex_node.api.backend import (
    CONSISTENCY_LEVELS,
    LINEARIZABLE,
    BackendRefusal,
    NodeBackend,
    ReadOptions,
)
from qenex_node.api.rest_events import EventStream
from qenex_node.api.rest_graphql import GraphqlEndpoint
from qenex_node.api.rest_json import (
    TX_ID_BYTES,
    BadInput,
    Money,
    account_json,
    dumps,
    hex_id,
    json_object,
    loads_strict,
    problem,
    record_json,
    signed_tx_bytes,
    submit_json,
    tx_kind,
)
from qenex_node.api.status_codes import http_status_for_reason

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
PROBLEM_JSON = b"application/problem+json"
APPLICATION_JSON = b"application/json"
HEIGHT_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class RestLimits:
    body_bytes_max: int = 64 * 1024  # a signed ML-DSA-87 create_account is ~14 KiB in base64
    http_requests_max: int = 1_024  # requests being handled at once; more: 429 OVERLOADED
    wait_timeout_ms_default: int = 10_000
    wait_timeout_ms_max: int = 60_000
    read_timeout_ms_max: int = 30_000
    ws_subscriptions_max: int = 64
    ws_queue_messages_max: int = 256  # per subscriber, then "lagged" and disconnected
    ws_send_timeout_ms: int = 5_000  # a socket write that takes longer ends the subscriber
    graphql_concurrent_max: int = 8  # GraphQL runs on worker threads (see rest_graphql.py)


ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", "/v1/transactions", "post_transaction"),
    ("GET", "/v1/transactions/{tx_id}", "get_transaction"),
    ("POST", "/v1/accounts", "post_account"),
    ("GET", "/v1/accounts/{account_id}", "get_account"),
    ("POST", "/v1/transfers", "post_transfer"),
    ("GET", "/v1/balance/{account_id}", "get_balance"),
    ("GET", "/v1/openapi.json", "get_openapi"),
    ("POST", "/v1/graphql", "post_graphql"),
)
WEBSOCKET_ROUTES = ("/v1/events",)


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


_COMPILED = tuple((method, _pattern(path), name) for method, path, name in ROUTES)


def load_openapi() -> dict[str, Any]:
    text = resources.files("qenex_node.api").joinpath("openapi.json").read_text("utf-8")
    return json.loads(text)


@dataclass(slots=True)
class Request:
    scope: Scope
    receive: Receive
    params: dict[str, str]

    def query(self, name: str) -> str | None:
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get(name)
        return values[-1] if values else None

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.scope.get("headers", ()):
            if key.lower() == name:
                return value
        return None


class Answer(Exception):
    """A finished answer raised from deep inside a handler (a problem with extras)."""

    def __init__(self, status: int, doc: dict[str, Any]) -> None:
        super().__init__(doc.get("reason", ""))
        self.status = status
        self.doc = doc


async def read_body(request: Request, bytes_max: int) -> bytes:
    """The whole body, read chunk by chunk; 413 as soon as it passes `bytes_max`."""
    declared = request.header(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > bytes_max:
        raise BadInput("BODY_TOO_LARGE", f"body of {int(declared)} B is over the "
                       f"{bytes_max} B limit", 413)
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise BadInput("CLIENT_GONE", "the client closed the connection", 499)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > bytes_max:
            raise BadInput("BODY_TOO_LARGE", f"body is over the {bytes_max} B limit", 413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _query_int(request: Request, name: str, default: int, high: int) -> int:
    text = request.query(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) > high:
        raise BadInput("BAD_REQUEST", f"{name} must be an integer 0..{high}, got {text[:40]!r}")
    return int(text)


def _query_bool(request: Request, name: str) -> bool:
    text = (request.query(name) or "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise BadInput("BAD_REQUEST", f"{name} must be true or false, got {text[:40]!r}")
    return text in ("true", "1")


class RestGateway:
    """The ASGI application: HTTP routes here, /v1/events and /v1/graphql delegated."""

    def __init__(self, backend: NodeBackend, money: Money, rejected: Counter,
                 limits: RestLimits = RestLimits(), subscribers: Gauge | None = None) -> None:
        self.backend = backend
        self.money = money
        self.rejected = rejected
        self.limits = limits
        self.openapi = load_openapi()
        self.requests_in_flight = 0
        self.events = EventStream(backend, money, self.count_rejection, limits, subscribers)
        self.graphql = GraphqlEndpoint(backend, money, limits)

    def count_rejection(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self.events.serve(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    # ------------------------------------------------------------ plumbing
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, doc = await self._admitted(scope, receive)
            content_type = APPLICATION_JSON
        except Answer as answer:
            status, doc, content_type = answer.status, answer.doc, PROBLEM_JSON
        except BadInput as exc:
            status, doc = exc.status, problem(exc.status, exc.reason, exc.detail)
            content_type = PROBLEM_JSON
        except BackendRefusal as exc:
            status = http_status_for_reason(exc.reason)
            doc, content_type = problem(status, exc.reason, exc.detail), PROBLEM_JSON
        except Exception as exc:
            # A bug in the node, not a verdict on the request: say so, log it loudly, and
            # keep serving the other requests.
            log.exception("REST handler failed")
            status, content_type = 500, PROBLEM_JSON
            doc = problem(500, "INTERNAL", f"{type(exc).__name__} in the node; see its log")
        if content_type == PROBLEM_JSON:
            self.count_rejection(doc["reason"])
            if doc["reason"] == "CLIENT_GONE":
                return
        await _respond(send, status, doc, content_type)

    async def _admitted(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        # hypercorn has no cap on connections; this caps the requests being worked on
        # (each wait=true one holds a commit waiter), so overload is a 429, not growth.
        if self.requests_in_flight >= self.limits.http_requests_max:
            raise BackendRefusal("OVERLOADED", f"{self.requests_in_flight} requests in "
                                 "flight on this node; retry with back-off")
        self.requests_in_flight += 1
        try:
            return await self._dispatch(scope, receive)
        finally:
            self.requests_in_flight -= 1

    async def _dispatch(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        path, method = scope["path"], scope["method"]
        allowed = []
        for route_method, pattern, name in _COMPILED:
            match = pattern.match(path)
            if match is None:
                continue
            if route_method == method:
                handler = getattr(self, name)
                return await handler(Request(scope, receive, match.groupdict()))
            allowed.append(route_method)
        if allowed:
            raise BadInput("METHOD_NOT_ALLOWED", f"{method} {path}: use {', '.join(allowed)}",
                           405)
        raise BadInput("UNKNOWN_ROUTE", f"no route {method} {path}; see /v1/openapi.json", 404)

    def _read_options(self, request: Request) -> ReadOptions:
        consistency = request.query("consistency") or LINEARIZABLE
        if consistency not in CONSISTENCY_LEVELS:
            raise BadInput("BAD_REQUEST", f"consistency must be one of "
                           f"{', '.join(CONSISTENCY_LEVELS)}, got {consistency[:40]!r}")
        return ReadOptions(consistency, _query_int(request, "min_height", 0, HEIGHT_MAX),
                           _query_int(request, "timeout_ms", 0, self.limits.read_timeout_ms_max))

    # ------------------------------------------------------------ submit
    async def _submit(self, request: Request, kind: str | None) -> tuple[int, dict[str, Any]]:
        doc = json_object(loads_strict(await read_body(request, self.limits.body_bytes_max)))
        tx = signed_tx_bytes(doc, TX_BYTES_MAX)
        if kind is not None and (got := tx_kind(tx)) != kind:
            raise BadInput("WRONG_KIND", f"{request.scope['path']} takes a signed {kind} "
                           f"transaction, got {got or 'none'}; use /v1/transactions "
                           "for any kind", 422)
        wait = _query_bool(request, "wait")
        timeout_ms = _query_int(request, "timeout_ms", self.limits.wait_timeout_ms_default,
                                self.limits.wait_timeout_ms_max) or \
            self.limits.wait_timeout_ms_default
        result = await self.backend.submit(tx, wait, timeout_ms)
        if result.status == "REJECTED":
            status = http_status_for_reason(result.reason)
            refusal = problem(status, result.reason, result.detail)
            refusal["tx_id"] = result.tx_id.hex()
            raise Answer(status, refusal)
        return (202 if result.status == "ACCEPTED" else 200), submit_json(result)

    async def post_transaction(self, request: Request) -> tuple[int, dict[str, Any]]:
        return await self._submit(request, None)

    async def post_transfer(self, request: Request) -> tuple[int, dict[str, Any]]:
        return await self._submit(request, "transfer")

    async def post_account(self, request: Request) -> tuple[int, dict[str, Any]]:
        # Accounts come into being by a self-signed create_account transaction (nonce 1,
        # signed by the key it binds; ledger/tx.py); transfers to unknown accounts fail.
        return await self._submit(request, "create_account")

    # ------------------------------------------------------------ reads
    async def get_transaction(self, request: Request) -> tuple[int, dict[str, Any]]:
        tx_id = hex_id(request.params["tx_id"], TX_ID_BYTES, "tx_id")
        record, read_height = await self.backend.get_transaction(tx_id,
                                                                 self._read_options(request))
        if record is None:
            raise BadInput("NOT_FOUND", f"no committed transaction {tx_id.hex()} at height "
                           f"{read_height}", 404)
        return 200, record_json(record, read_height, self.money)

    async def _account(self, request: Request) -> Any:
        address = hex_id(request.params["account_id"], ADDRESS_BYTES, "account id")
        answer = await self.backend.get_account(address, False, self._read_options(request))
        if answer.account is None:
            raise BadInput("UNKNOWN_ACCOUNT", f"no account {address.hex()} at height "
                           f"{answer.height}", 404)
        return answer

    async def get_account(self, request: Request) -> tuple[int, dict[str, Any]]:
        return 200, account_json(await self._account(request), self.money)

    async def get_balance(self, request: Request) -> tuple[int, dict[str, Any]]:
        currency = request.query("currency")
        if currency is not None and currency not in self.money.minor_units:
            raise BadInput("UNKNOWN_CURRENCY", f"currency {currency[:16]!r} is not in genesis")
        answer = await self._account(request)
        balances = self.money.balances(answer.account)
        if currency is not None:
            balances = [b for b in balances if b["currency"] == currency] or \
                [self.money.render(0, currency)]
        return 200, {"account": answer.account.address.hex(), "height": answer.height,
                     "balances": balances}

    async def get_openapi(self, request: Request) -> tuple[int, dict[str, Any]]:
        return 200, self.openapi

    async def post_graphql(self, request: Request) -> tuple[int, dict[str, Any]]:
        doc = json_object(loads_strict(await read_body(request, self.limits.body_bytes_max)))
        status, answer, reasons = await self.graphql.execute(doc)
        for reason in reasons:  # GraphQL answers errors in-band (200); count them all the same
            self.count_rejection(reason)
        return status, answer


async def _respond(send: Send, status: int, doc: dict[str, Any], content_type: bytes) -> None:
    body = dumps(doc)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode("ascii"))]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to set up: the node starts the backend before the server."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
