"""Drive an ASGI app in-process under trio, as hypercorn would: no sockets, real app."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import trio


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get(b"content-type", b"").decode()

    def json(self) -> Any:
        return json.loads(self.body)


async def http(app: Any, method: str, path: str, body: bytes = b"", query: str = "",
               headers: list[tuple[bytes, bytes]] | None = None,
               chunk_bytes: int = 0) -> HttpAnswer:
    """One request; `chunk_bytes` > 0 sends the body in pieces without a Content-Length."""
    if headers is None:
        headers = [(b"content-type", b"application/json")]
        if not chunk_bytes:
            headers.append((b"content-length", str(len(body)).encode()))
    chunks = [body[i:i + chunk_bytes] for i in range(0, len(body), chunk_bytes)] \
        if chunk_bytes else [body]
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode(),
             "headers": headers, "http_version": "1.1", "scheme": "http"}
    pending = list(enumerate(chunks))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            index, chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        await trio.sleep_forever()  # a client that keeps the connection open
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return HttpAnswer(start["status"], dict(start["headers"]), body_out)


class WebSocket:
    """The client side of one in-process ASGI WebSocket connection.

    The app's messages pass through an unbuffered channel: while the test does not read,
    the app's `send` blocks, as a socket write blocks when a client stops reading."""

    def __init__(self) -> None:
        self.to_app_send, self.to_app = trio.open_memory_channel[dict[str, Any]](16)
        self.from_app_send, self.from_app = trio.open_memory_channel[dict[str, Any]](0)
        self.accepted = False
        self.close_code: int | None = None

    async def receive_app(self) -> dict[str, Any]:
        return await self.to_app.receive()

    async def send_app(self, message: dict[str, Any]) -> None:
        await self.from_app_send.send(message)

    async def accept(self) -> None:
        event = await self.from_app.receive()
        assert event["type"] == "websocket.accept", event
        self.accepted = True

    async def message(self) -> dict[str, Any] | None:
        """The next JSON message, or None once the app closed (see close_code)."""
        while True:
            try:
                event = await self.from_app.receive()
            except trio.EndOfChannel:
                return None
            if event["type"] == "websocket.accept":
                self.accepted = True
            elif event["type"] == "websocket.close":
                self.close_code = event.get("code", 1000)
                return None
            elif event["type"] == "websocket.send":
                return json.loads(event["text"])

    async def messages_until(self, predicate: Any) -> list[dict[str, Any]]:
        seen = []
        while True:
            message = await self.message()
            if message is None:
                return seen
            seen.append(message)
            if predicate(message):
                return seen

    async def disconnect(self) -> None:
        await self.to_app_send.send({"type": "websocket.disconnect", "code": 1000})


async def run_websocket(app: Any, ws: WebSocket, path: str, query: str = "") -> None:
    """Run the app for one connection; for `nursery.start_soon`."""
    scope = {"type": "websocket", "path": path, "query_string": query.encode(), "headers": [],
             "scheme": "ws", "http_version": "1.1", "subprotocols": []}
    await ws.to_app_send.send({"type": "websocket.connect"})
    async with ws.from_app_send:
        await app(scope, ws.receive_app, ws.send_app)
