"""GraphQL at /v1/graphql (strawberry): `transaction(id)`, `transactions(limit)`,
`createTransaction(input)`, over the same `NodeBackend` as REST and gRPC.

Why worker threads: graphql-core gathers async resolvers with asyncio, which does not run
under trio. So a query runs with strawberry's synchronous executor on a trio worker thread
(at most `graphql_concurrent_max` at once), and each resolver reaches the backend with
`trio.from_thread.run`, exactly as the gRPC servicer does from grpcio's threads.

Money: GraphQL's Int is 32-bit, too small for minor units up to 2^63 - 1, and Float is
never money here; amounts are the scalar `Int64` (a JSON integer, refused when given as a
float, string or boolean) plus `amountDecimal` in the currency's scale.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, NewType

import strawberry
import trio
from graphql import GraphQLError
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from ledger.tx import TX_BYTES_MAX, envelope_tx_id
from qenex_node.api.backend import (
    LOCAL,
    BackendRefusal,
    NodeBackend,
    ReadOptions,
    TransactionRecord,
)
from qenex_node.api.rest_json import TX_ID_BYTES, BadInput, Money, body_json, hex_id

TRANSACTIONS_LIMIT_MAX = 100
TRANSACTIONS_SCAN_BLOCKS_MAX = 1_000  # `transactions` walks back at most this many blocks
INT64_MAX = 2**63 - 1
ALIASES_MAX = 16
TOKENS_MAX = 2_000
DEPTH_MAX = 6


def _int64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
        raise ValueError(f"Int64 takes an integer 0..{INT64_MAX} (minor units), got {value!r}")
    return value


Int64 = NewType("Int64", int)
INT64_SCALAR = strawberry.scalar(name="Int64", serialize=_int64, parse_value=_int64,
                                 description="An integer 0..2^63-1 as a JSON number: minor "
                                 "units, heights, nonces. Never a float.")


@dataclass(frozen=True, slots=True)
class Context:
    backend: NodeBackend
    money: Money

    def call(self, fn: Any, *args: Any) -> Any:
        try:
            return trio.from_thread.run(fn, *args)
        except BackendRefusal as exc:
            raise _refusal(exc.reason, exc.detail) from None


def _refusal(reason: str, detail: str) -> GraphQLError:
    return GraphQLError(f"{reason}: {detail}", extensions={"reason": reason})


@strawberry.type
class Transaction:
    id: str
    height: Int64
    index: int
    kind: str
    sender: str
    nonce: Int64
    to: str | None
    amount: Int64 | None
    amount_decimal: str | None
    currency: str | None
    memo: str | None
    success: bool
    reason: str

    @classmethod
    def of(cls, record: TransactionRecord, money: Money) -> Transaction:
        body = body_json(record.tx, money)
        return cls(id=record.outcome.tx_id.hex(), height=record.height,
                   index=record.outcome.index, kind=body["kind"], sender=body["sender"],
                   nonce=body["nonce"], to=body.get("to"), amount=body.get("amount"),
                   amount_decimal=body.get("amount_decimal"), currency=body.get("currency"),
                   memo=body.get("memo"), success=record.outcome.success,
                   reason=record.outcome.reason)


@strawberry.input
class CreateTransactionInput:
    tx: str = strawberry.field(description="base64 of the SignedTransaction envelope bytes, "
                               "exactly as signed (the same form as REST's {\"tx\": ...})")
    wait: bool = False
    timeout_ms: int = 10_000


@strawberry.type
class SubmitPayload:
    id: str
    status: str
    height: Int64 | None
    success: bool | None
    reason: str | None


def _record(context: Context, tx_id: bytes) -> TransactionRecord | None:
    record, _ = context.call(context.backend.get_transaction, tx_id, ReadOptions())
    return record


def _recent(context: Context, limit: int) -> list[Transaction]:
    found: list[Transaction] = []
    status = context.call(context.backend.status)
    height = status.height
    floor = max(height - TRANSACTIONS_SCAN_BLOCKS_MAX, 0)
    read = ReadOptions(LOCAL, min_height=height)
    while height > floor and len(found) < limit:
        item, _ = context.call(context.backend.get_block, height, None, read)
        for tx in reversed(item.block.txs if item is not None else ()):
            record = _record(context, envelope_tx_id(tx))
            if record is not None and record.height == height and len(found) < limit:
                found.append(Transaction.of(record, context.money))
        height -= 1
    return found


@strawberry.type
class Query:
    @strawberry.field(description="A committed transaction by id (64 hex digits).")
    # `id` and `input` shadow builtins on purpose: they are the seed schema's argument names.
    def transaction(self, info: Info, id: str) -> Transaction | None:
        try:
            tx_id = hex_id(id, TX_ID_BYTES, "id")
        except BadInput as exc:
            raise _refusal(exc.reason, exc.detail) from None
        record = _record(info.context, tx_id)
        return Transaction.of(record, info.context.money) if record is not None else None

    @strawberry.field(description="The latest committed transactions, newest first "
                      f"(limit 1..{TRANSACTIONS_LIMIT_MAX}; looks back at most "
                      f"{TRANSACTIONS_SCAN_BLOCKS_MAX} blocks).")
    def transactions(self, info: Info, limit: int = 10) -> list[Transaction]:
        if not 1 <= limit <= TRANSACTIONS_LIMIT_MAX:
            raise _refusal("BAD_REQUEST", f"limit must be 1..{TRANSACTIONS_LIMIT_MAX}")
        return _recent(info.context, limit)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Submit a signed transaction; with wait, answer once "
                         "committed.")
    def create_transaction(self, info: Info, input: CreateTransactionInput
                           ) -> SubmitPayload:
        context: Context = info.context
        if len(input.tx) > (TX_BYTES_MAX + 2) // 3 * 4 + 4:
            raise _refusal("TOO_LARGE", f"tx is longer than {TX_BYTES_MAX} B")
        try:
            tx = base64.b64decode(input.tx, validate=True)
        except (binascii.Error, ValueError):
            raise _refusal("MALFORMED", "tx is not valid base64") from None
        if not 1 <= input.timeout_ms <= 60_000:
            raise _refusal("BAD_REQUEST", "timeoutMs must be 1..60000")
        result = context.call(context.backend.submit, tx, input.wait, input.timeout_ms)
        if result.status == "REJECTED":
            raise _refusal(result.reason, result.detail)
        outcome = result.outcome
        return SubmitPayload(id=result.tx_id.hex(), status=result.status,
                             height=result.height if result.status == "COMMITTED" else None,
                             success=outcome.success if outcome else None,
                             reason=outcome.reason if outcome else None)


SCHEMA = strawberry.Schema(
    query=Query, mutation=Mutation,
    config=StrawberryConfig(scalar_map={Int64: INT64_SCALAR}),
    # Bounds on one query's cost: the schema has no cycles, but aliases could repeat the
    # most expensive field (`transactions`) many times within one body.
    extensions=[lambda: QueryDepthLimiter(max_depth=DEPTH_MAX),
                lambda: MaxAliasesLimiter(max_alias_count=ALIASES_MAX),
                lambda: MaxTokensLimiter(max_token_count=TOKENS_MAX)])


class GraphqlEndpoint:
    def __init__(self, backend: NodeBackend, money: Money, limits: Any) -> None:
        self.context = Context(backend, money)
        self.limiter = trio.CapacityLimiter(limits.graphql_concurrent_max)

    async def execute(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any], list[str]]:
        """(HTTP status, the GraphQL response, the reasons of its errors)."""
        query, variables = doc.get("query"), doc.get("variables")
        operation = doc.get("operationName")
        if not isinstance(query, str):
            raise BadInput("WRONG_TYPE", "query must be a string")
        if variables is not None and not isinstance(variables, dict):
            raise BadInput("WRONG_TYPE", "variables must be an object")
        if operation is not None and not isinstance(operation, str):
            raise BadInput("WRONG_TYPE", "operationName must be a string")
        result = await trio.to_thread.run_sync(
            lambda: SCHEMA.execute_sync(query, variables, self.context,
                                        operation_name=operation), limiter=self.limiter)
        answer: dict[str, Any] = {"data": result.data}
        reasons = []
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
            reasons = [(error.extensions or {}).get("reason", "GRAPHQL_INVALID")
                       for error in result.errors]
        return 200, answer, reasons
