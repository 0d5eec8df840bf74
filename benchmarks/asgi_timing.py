"""Timing requests sent straight to an ASGI app: the server-side cost, no HTTP client."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from fastsecure.testing import http_scope


async def microseconds_per_request(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int
) -> float:
    """Send ``n`` GET requests to ``path``; every one must answer 200."""
    scope = http_scope(path, headers)
    statuses: Counter[int] = Counter()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[message["status"]] += 1

    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - start
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: unexpected statuses {dict(statuses)}")
    return elapsed / n * 1e6
