"""The runtime backend's event subscribers are bounded: one that stops reading is ended
with WATCH_LAGGED (the NodeBackend promise gRPC's WatchEvents and /v1/events rely on),
not with a clean end of stream that looks like "nothing more happened"."""
from __future__ import annotations

import pytest
import trio
import trio.testing

from consensus.api import EngineStatus
from qenex_node.api.backend import BackendRefusal
from qenex_node.runtime.backend import SUBSCRIBER_QUEUE_MAX, NodeIdentity, RuntimeBackend
from qenex_node.runtime.metrics import NodeMetrics
from tests.unit.ledger_helpers import CHAIN
from tests.unit.test_evidence_api import replica, storage  # noqa: F401  (fixture)


async def test_a_subscriber_that_stops_reading_ends_with_watch_lagged(storage):  # noqa: F811
    backend = RuntimeBackend(identity=NodeIdentity(0, CHAIN, "tendermint"), storage=storage,
                             replica=replica(), metrics=NodeMetrics(),
                             peers_connected=lambda: 0, is_ready=lambda: True)
    received = []

    async def subscriber():
        with pytest.raises(BackendRefusal) as info:
            async for event in backend.watch(0):
                received.append(event)
        assert info.value.reason == "WATCH_LAGGED"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(subscriber)
        await trio.testing.wait_all_tasks_blocked()
        # Published from synchronous driver callbacks: the reader gets no turn. It was
        # already waiting, so it takes one event at once and the queue holds the rest.
        for view in range(SUBSCRIBER_QUEUE_MAX + 2):
            backend.on_driver_event(None, EngineStatus("tendermint", "follower", view, 1, 0))
    assert len(received) == SUBSCRIBER_QUEUE_MAX + 1  # what fitted is delivered, then the error
