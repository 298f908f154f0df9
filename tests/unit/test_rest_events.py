"""The /v1/events WebSocket stream in-process over ASGI, against the real InMemoryBackend:
the messages a transfer produces, the account filter, resuming by height, and the bounds
(too many subscribers, a subscriber that reads too slowly or not at all)."""
from __future__ import annotations

import pytest
import trio
import trio.testing

from qenex_node.api.memory_backend import InMemoryBackend
from qenex_node.api.rest import RestGateway, RestLimits
from qenex_node.api.rest_json import Money
from qenex_node.runtime.metrics import NodeMetrics
from tests.unit.asgi_client import WebSocket, run_websocket
from tests.unit.test_rest import address, make_ledger, transfer


class Node:
    def __init__(self, **limits: int) -> None:
        self.backend = InMemoryBackend(make_ledger())
        self.metrics = NodeMetrics()
        self.app = RestGateway(self.backend, Money({"USD": 2, "JPY": 0}),
                               self.metrics.rest_rejected, RestLimits(**limits),
                               self.metrics.rest_subscribers)

    def rejected(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("qenex_rest_rejected_total",
                                                       {"reason": reason})
        return value or 0.0

    async def commit(self, *txs: bytes) -> None:
        for tx in txs:
            result = await self.backend.submit(tx, False, 0)
            assert result.status == "ACCEPTED", result
        await self.backend.commit_pending(allow_empty=True)


def _is_block(height: int):
    return lambda m: m["type"] == "block.committed" and m["height"] == height


async def _subscribe(nursery: trio.Nursery, node: Node, query: str = "") -> WebSocket:
    ws = WebSocket()
    nursery.start_soon(run_websocket, node.app, ws, "/v1/events", query)
    await ws.accept()
    await trio.testing.wait_all_tasks_blocked()  # the subscriber is registered
    return ws


async def test_a_transfer_produces_the_seed_events_then_block_committed():
    node = Node()
    async with trio.open_nursery() as nursery:
        ws = await _subscribe(nursery, node)
        await node.commit(transfer(1, amount=12345))
        seen = await ws.messages_until(_is_block(1))
        await ws.disconnect()
    assert [m["type"] for m in seen] == [
        "transaction.created", "account.updated", "account.updated", "balance.changed",
        "balance.changed", "transaction.completed", "block.committed"]
    created, completed = seen[0], seen[5]
    assert created["transaction"]["amount"] == 12345
    assert created["transaction"]["amount_decimal"] == "123.45"
    assert completed["success"] is True and completed["tx_id"] == created["tx_id"]
    deltas = {(m["account"], m["delta"], m["delta_decimal"]) for m in seen[3:5]}
    assert deltas == {(address(0).hex(), -12345, "-123.45"), (address(1).hex(), 12345, "123.45")}
    assert {m["account"] for m in seen[1:3]} == {address(0).hex(), address(1).hex()}


async def test_account_filter_keeps_only_that_accounts_events():
    node = Node()
    async with trio.open_nursery() as nursery:
        ws = await _subscribe(nursery, node, f"account={address(2).hex()}")
        await node.commit(transfer(1, sender=0, to=1))  # not account 2's business
        await node.commit(transfer(1, sender=1, to=2, amount=7))
        seen = await ws.messages_until(_is_block(2))
        await ws.disconnect()
    assert [m["type"] for m in seen] == [
        "block.committed", "transaction.created", "account.updated", "balance.changed",
        "transaction.completed", "block.committed"]
    assert seen[2]["account"] == seen[3]["account"] == address(2).hex()
    assert seen[3]["delta"] == 7


async def test_resume_from_height_replays_committed_blocks_then_goes_live():
    node = Node()
    await node.commit(transfer(1))
    await node.commit(transfer(2))
    async with trio.open_nursery() as nursery:
        ws = await _subscribe(nursery, node, "from_height=2")
        first = await ws.messages_until(_is_block(2))
        await node.commit(transfer(3))
        live = await ws.messages_until(_is_block(3))
        await ws.disconnect()
    assert first[0]["type"] == "transaction.created" and first[0]["height"] == 2
    assert all(m["height"] == 2 for m in first)
    assert all(m["height"] == 3 for m in live) and live[0]["transaction"]["nonce"] == 3


async def test_a_slow_reader_is_told_it_lagged_and_closed_with_4008():
    node = Node(ws_queue_messages_max=4)
    async with trio.open_nursery() as nursery:
        ws = await _subscribe(nursery, node)
        # The client reads nothing while three blocks of seven messages each arrive.
        for nonce in (1, 2, 3):
            await node.commit(transfer(nonce))
        await trio.testing.wait_all_tasks_blocked()
        seen = await ws.messages_until(lambda m: m["type"] == "lagged")
        assert await ws.message() is None and ws.close_code == 4008
    assert seen[-1]["type"] == "lagged" and seen[-1]["resume_from_height"] == 1
    assert len(seen) <= 1 + 1 + 4  # at most the one in the writer's hand plus the queue
    assert node.rejected("SUBSCRIBER_LAGGED") == 1
    assert node.backend.ledger.height == 3  # the node went on committing


async def test_a_reader_that_never_reads_is_dropped_after_the_send_timeout(autojump_clock):
    node = Node(ws_send_timeout_ms=100)
    async with trio.open_nursery() as nursery:
        ws = WebSocket()
        done = trio.Event()

        async def connection():
            await run_websocket(node.app, ws, "/v1/events")
            done.set()

        nursery.start_soon(connection)
        await ws.accept()  # then it stops reading
        await trio.testing.wait_all_tasks_blocked()
        await node.commit(transfer(1))
        with trio.fail_after(5):
            await done.wait()
    assert node.rejected("SLOW_SUBSCRIBER") == 1


async def test_subscriptions_over_the_cap_are_refused_with_1013():
    node = Node(ws_subscriptions_max=1)
    async with trio.open_nursery() as nursery:
        first = await _subscribe(nursery, node)
        second = await _subscribe(nursery, node)
        refusal = await second.message()
        assert await second.message() is None and second.close_code == 1013
        assert refusal == {"type": "error", "reason": "TOO_MANY_SUBSCRIPTIONS",
                           "detail": refusal["detail"]}
        assert node.metrics.registry.get_sample_value("qenex_rest_ws_subscribers") == 1
        await node.commit(transfer(1))  # the first subscriber is still served
        assert (await first.messages_until(_is_block(1)))[-1]["height"] == 1
        await first.disconnect()
    assert node.rejected("TOO_MANY_SUBSCRIPTIONS") == 1
    async with trio.open_nursery() as nursery:  # a freed slot can be used again
        again = await _subscribe(nursery, node)
        await node.commit(transfer(2))
        assert (await again.messages_until(_is_block(2)))[-1]["type"] == "block.committed"
        await again.disconnect()


@pytest.mark.parametrize("path,query,reason", [
    ("/v1/events", "from_height=abc", "BAD_REQUEST"),
    ("/v1/events", "from_height=1.5", "BAD_REQUEST"),
    ("/v1/events", "account=zz", "BAD_ADDRESS"),
    ("/v1/events", "colour=blue", "BAD_REQUEST"),
    ("/v1/other", "", "UNKNOWN_ROUTE"),
])
async def test_bad_subscriptions_are_closed_with_1008_and_a_reason(path, query, reason):
    node = Node()
    ws = WebSocket()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_websocket, node.app, ws, path, query)
        message = await ws.message()
        assert await ws.message() is None
    assert message["type"] == "error" and message["reason"] == reason
    assert ws.close_code == 1008 and node.rejected(reason) == 1
