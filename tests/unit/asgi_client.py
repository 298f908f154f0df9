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
