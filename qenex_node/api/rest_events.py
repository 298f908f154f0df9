"""The WebSocket event stream at /v1/events, built on `backend.watch(from_height)`.

Every message is final and replayable by height: the node publishes no mempool events.
For each committed block (in height order) a subscriber gets, per transaction that touches
its `account` filter (all transactions without one):

    transaction.created    the transaction as it entered the chain (decoded body)
    account.updated        per account it changed (only when it succeeded)
    balance.changed        per balance it moved: delta in minor units + decimal string
    transaction.completed  its receipt (success, ledger reason)

then `block.committed` for the block itself (always, filter or not): having seen it, a
client resumes with `from_height` = its height + 1. The block's transactions are read with
`get_block` / `get_transaction` at that height (local reads), because the backend's watch
events carry ids and receipts but not bodies, and its replay from storage carries blocks
only; a gap in the backend's heights is filled the same way, so replay and live events
give the same messages.

Bounds: at most `ws_subscriptions_max` subscribers (more are accepted and closed at once
with 1013 "try again later"); each has a queue of `ws_queue_messages_max` messages between
the reader of the backend and the socket writer. When it fills (the client reads too
slowly) the subscriber gets `{"type": "lagged", "resume_from_height": H}` and close code
4008, and the backend's own per-subscriber bound (WATCH_LAGGED) ends the same way. A write
that takes longer than `ws_send_timeout_ms` ends the connection without further messages.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import trio
from prometheus_client import Gauge

from ledger.account import ADDRESS_BYTES
from ledger.tx import envelope_tx_id
from qenex_node.api.backend import LOCAL, BackendRefusal, NodeBackend, ReadOptions
from qenex_node.api.rest_json import BadInput, Money, body_json, decimal_string, dumps, hex_id

log = logging.getLogger(__name__)

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # bad query parameters
CLOSE_TRY_AGAIN_LATER = 1013  # too many subscriptions
CLOSE_LAGGED = 4008  # application code: the subscriber read too slowly
HEIGHT_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Subscription:
    account: bytes | None  # only transactions touching this address
    from_height: int  # 0 = only new blocks


def parse_subscription(query_string: bytes) -> Subscription:
    query = parse_qs(query_string.decode("latin-1"))
    unknown = sorted(set(query) - {"account", "from_height"})
    if unknown:
        raise BadInput("BAD_REQUEST", f"unknown parameter {unknown[0][:40]!r} (use account, "
                       "from_height)")
    account = None
    if "account" in query:
        account = hex_id(query["account"][-1], ADDRESS_BYTES, "account")
    from_height = 0
    if "from_height" in query:
        text = query["from_height"][-1]
        if not text.isdigit() or int(text) > HEIGHT_MAX:
            raise BadInput("BAD_REQUEST", f"from_height must be an integer, got {text[:40]!r}")
        from_height = int(text)
    return Subscription(account, from_height)


class _Lagged(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class EventStream:
    def __init__(self, backend: NodeBackend, money: Money,
                 count_rejection: Callable[[str], None], limits: Any,
                 subscribers: Gauge | None = None) -> None:
        self.backend = backend
        self.money = money
        self.count_rejection = count_rejection
        self.limits = limits  # qenex_node.api.rest.RestLimits
        self.active = 0
        self.subscribers = subscribers  # exported as qenex_rest_ws_subscribers

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope["path"] != "/v1/events":
            await self._refuse(send, CLOSE_POLICY, "UNKNOWN_ROUTE", "the only WebSocket route "
                               "is /v1/events")
            return
        try:
            subscription = parse_subscription(scope.get("query_string", b""))
        except BadInput as exc:
            await self._refuse(send, CLOSE_POLICY, exc.reason, exc.detail)
            return
        if self.active >= self.limits.ws_subscriptions_max:
            await self._refuse(send, CLOSE_TRY_AGAIN_LATER, "TOO_MANY_SUBSCRIPTIONS",
                               f"this node serves at most {self.limits.ws_subscriptions_max} "
                               "event subscriptions")
            return
        self._track(+1)
        try:
            await send({"type": "websocket.accept"})
            await _Subscriber(self, subscription, send).run(receive)
        finally:
            self._track(-1)

    def _track(self, change: int) -> None:
        self.active += change
        if self.subscribers is not None:
            self.subscribers.set(self.active)

    async def _refuse(self, send: Any, code: int, reason: str, detail: str) -> None:
        # Accept first so the client can read why (a refused handshake is a bare 403).
        self.count_rejection(reason)
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": dumps(
            {"type": "error", "reason": reason, "detail": detail}).decode()})
        await send({"type": "websocket.close", "code": code, "reason": reason})


class _Subscriber:
    """One connection: a producer turns backend events into messages on a bounded queue,
    the writer sends them; whichever ends first ends both."""

    def __init__(self, stream: EventStream, subscription: Subscription, send: Any) -> None:
        self.stream = stream
        self.backend = stream.backend
        self.money = stream.money
        self.subscription = subscription
        self.send = send
        self.next_height = subscription.from_height  # first height not yet turned into messages
        self.delivered_height = max(subscription.from_height - 1, 0)  # block.committed sent

    async def run(self, receive: Any) -> None:
        outbox, inbox = trio.open_memory_channel[dict[str, Any]](
            self.stream.limits.ws_queue_messages_max)
        ending: dict[str, Any] = {}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._produce, outbox, ending, nursery.cancel_scope)
            nursery.start_soon(self._until_disconnect, receive, ending, nursery.cancel_scope)
            await self._write(inbox, ending)
            nursery.cancel_scope.cancel()
        await self._finish(ending)

    async def _until_disconnect(self, receive: Any, ending: dict[str, Any],
                                scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "websocket.disconnect":
            pass  # clients have nothing to say on this stream; their frames are dropped
        ending.setdefault("gone", True)
        scope.cancel()

    async def _write(self, inbox: trio.MemoryReceiveChannel, ending: dict[str, Any]) -> None:
        timeout_s = self.stream.limits.ws_send_timeout_ms / 1000
        async for message in inbox:
            if "lagged" in ending:
                return  # do not drain a full queue to a slow reader: tell it and stop
            with trio.move_on_after(timeout_s) as write:
                await self.send({"type": "websocket.send", "text": dumps(message).decode()})
            if write.cancelled_caught:
                ending.setdefault("stuck", True)
                return
            if message["type"] == "block.committed":
                self.delivered_height = message["height"]

    async def _finish(self, ending: dict[str, Any]) -> None:
        if "gone" in ending or "stuck" in ending:
            if "stuck" in ending:
                self.stream.count_rejection("SLOW_SUBSCRIBER")
            return
        if "lagged" in ending:
            self.stream.count_rejection("SUBSCRIBER_LAGGED")
            message = {"type": "lagged", "detail": ending["lagged"],
                       "resume_from_height": self.delivered_height + 1}
            await self._last_words(message, CLOSE_LAGGED, "lagged")
        elif "refusal" in ending:
            reason, detail = ending["refusal"]
            self.stream.count_rejection(reason)
            await self._last_words({"type": "error", "reason": reason, "detail": detail},
                                   CLOSE_TRY_AGAIN_LATER, reason)
        else:
            await self._last_words(None, CLOSE_GOING_AWAY, "node stopping")

    async def _last_words(self, message: dict[str, Any] | None, code: int, why: str) -> None:
        with trio.move_on_after(self.stream.limits.ws_send_timeout_ms / 1000):
            if message is not None:
                await self.send({"type": "websocket.send", "text": dumps(message).decode()})
            await self.send({"type": "websocket.close", "code": code, "reason": why})

    # ------------------------------------------------------------ producer
    async def _produce(self, outbox: trio.MemorySendChannel, ending: dict[str, Any],
                       scope: trio.CancelScope) -> None:
        try:
            async with outbox:
                async for message in self._messages():
                    try:
                        outbox.send_nowait(message)
                    except trio.WouldBlock:
                        raise _Lagged(f"more than {self.stream.limits.ws_queue_messages_max} "
                                      "messages waiting for this subscriber") from None
        except _Lagged as exc:
            ending.setdefault("lagged", exc.detail)
        except BackendRefusal as exc:
            if exc.reason == "WATCH_LAGGED":
                ending.setdefault("lagged", exc.detail)
            else:
                ending.setdefault("refusal", (exc.reason, exc.detail))
        # The writer sees the closed outbox (or the flag) and stops; its nursery ends us.

    async def _messages(self) -> AsyncIterator[dict[str, Any]]:
        events = self.backend.watch(self.subscription.from_height)
        try:
            async for event in events:
                if event.kind != "block_committed" or event.height < self.next_height:
                    continue  # receipts are read per block below, with the bodies
                start = self.next_height or event.height
                for height in range(start, event.height + 1):
                    for message in await self._block_messages(height):
                        yield message
                self.next_height = event.height + 1
        finally:
            with trio.CancelScope(shield=True):
                await events.aclose()  # type: ignore[attr-defined]

    async def _block_messages(self, height: int) -> list[dict[str, Any]]:
        read = ReadOptions(LOCAL, min_height=height)
        item, _ = await self.backend.get_block(height, None, read)
        if item is None:
            raise BackendRefusal("BEHIND", f"block {height} is not readable on this node")
        block = item.block
        messages: list[dict[str, Any]] = []
        for index, tx in enumerate(block.txs):
            messages.extend(await self._tx_messages(tx, index, height, read))
        messages.append({"type": "block.committed", "height": height,
                         "block_hash": block.block_hash.hex(),
                         "state_root": item.state_root.hex(), "tx_count": len(block.txs),
                         "timestamp_ms": block.header.timestamp_ms})
        return messages

    async def _tx_messages(self, tx: bytes, index: int, height: int,
                           read: ReadOptions) -> list[dict[str, Any]]:
        body = body_json(tx, self.money)
        touched = [a for a in (body["sender"], body.get("to")) if a]
        wanted = self.subscription.account
        if wanted is not None and wanted.hex() not in touched:
            return []
        tx_id = envelope_tx_id(tx)
        record, _ = await self.backend.get_transaction(tx_id, read)
        if record is None or (record.height, record.proof_index) != (height, index):
            return []  # a refused repeat of an earlier transaction: it changed nothing
        base = {"tx_id": tx_id.hex(), "height": height}
        messages = [{"type": "transaction.created", **base, "index": index,
                     "transaction": body}]
        if record.outcome.success:
            messages.extend(self._effects(body, base, wanted))
        messages.append({"type": "transaction.completed", **base, "index": index,
                         "success": record.outcome.success, "reason": record.outcome.reason})
        return messages

    def _effects(self, body: dict[str, Any], base: dict[str, Any],
                 wanted: bytes | None) -> list[dict[str, Any]]:
        kind, sender, to = body["kind"], body["sender"], body.get("to", "")
        deltas: list[tuple[str, int]] = []
        if kind == "transfer":
            deltas = [(sender, -body["amount"]), (to, body["amount"])]
        elif kind == "issue":
            deltas = [(to, body["amount"])]
        elif kind == "redeem":
            deltas = [(sender, -body["amount"])]
        changed = [sender] + [a for a, _ in deltas if a != sender]
        messages = [{"type": "account.updated", **base, "account": account, "cause": kind}
                    for account in changed if wanted is None or account == wanted.hex()]
        units = self.money.minor_units.get(body.get("currency", ""), 0)
        messages.extend({"type": "balance.changed", **base, "account": account,
                         "currency": body["currency"], "delta": delta,
                         "delta_decimal": decimal_string(delta, units)}
                        for account, delta in deltas
                        if wanted is None or account == wanted.hex())
        return messages

