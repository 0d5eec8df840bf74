"""Per-request cost of core's ``requires_auth`` against a bare FastAPI endpoint.

Calls the ASGI app in-process with a prepared scope (no HTTP client in the loop, so the
figures are the server-side cost). Prints µs per request; asserts nothing about time.

    python benchmarks/bench_core.py [--requests 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

from asgi_timing import microseconds_per_request
from fastapi import Depends, FastAPI, Header, HTTPException

from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult


class KeyProvider(AuthenticationProvider):
    def __init__(self) -> None:
        self.keys = {"k": "alice"}

    def get_required_credentials(self) -> set[str]:
        return {"api_key"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        user = self.keys.get(credentials.get("api_key", ""))
        if user is None:
            return AuthenticationResult.failure("bad key", provider=self.provider_name)
        return AuthenticationResult(success=True, user_id=user, provider=self.provider_name)

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return auth_data.get("api_key") in self.keys


def build(patterns: int = 1000) -> FastAPI:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("key", KeyProvider())
    manager.add_requirement("/fs/**", ["key"])
    for i in range(patterns):  # other requirements: lookup cost must not grow with them
        manager.add_requirement(f"/tenant{i}/api/*", ["key"])
    keys = {"k": "alice"}

    async def handwritten(x_api_key: str | None = Header(None)) -> str:
        user = keys.get(x_api_key or "")
        if user is None:
            raise HTTPException(401)
        return user

    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return {"ok": "1"}

    @app.get("/hand")
    async def hand(user: str = Depends(handwritten)) -> dict[str, str]:
        return {"ok": user}

    @app.get("/fs/data")
    async def fs(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, str]:
        return {"ok": str(auth.user_id)}

    return app


async def measure(app: FastAPI, path: str, n: int) -> float:
    return await microseconds_per_request(app, path, [(b"x-api-key", b"k")], n)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    app = build()
    for path in ("/bare", "/hand", "/fs/data"):
        await measure(app, path, 500)  # warm-up
    results: dict[str, list[float]] = {"/bare": [], "/hand": [], "/fs/data": []}
    for _ in range(args.rounds):
        for path in results:
            results[path].append(await measure(app, path, args.requests))
    bare = statistics.median(results["/bare"])
    for label, path in (
        ("bare endpoint", "/bare"),
        ("hand-written header dependency", "/hand"),
        ("requires_auth (1001 patterns)", "/fs/data"),
    ):
        median = statistics.median(results[path])
        print(f"{label:<34} {median:7.1f} µs/request  (+{median - bare:5.1f} over bare)")
    for count in (0, 10_000):
        other = build(count)
        await measure(other, "/fs/data", 500)
        runs = [await measure(other, "/fs/data", args.requests) for _ in range(args.rounds)]
        median = statistics.median(runs)
        label = f"requires_auth ({count + 1} patterns)"
        print(f"{label:<34} {median:7.1f} µs/request  (+{median - bare:5.1f} over bare)")


if __name__ == "__main__":
    asyncio.run(main())
