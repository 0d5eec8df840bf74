"""Per-request cost of ``Depends(manager.requires_auth)`` with the JWT provider.

Compares, in one process through httpx's ASGITransport (no network):

1. a bare endpoint;
2. a hand-written dependency: ``HTTPBearer`` + ``jwt.decode`` (what an app would write);
3. ``Depends(manager.requires_auth)`` with :class:`JWTAuthenticationProvider` (HS256,
   in-memory token store, so it also checks revocation).

It then times the verification alone, without HTTP: ``jwt.decode`` against
``provider.authenticate({"access_token": t})`` (which adds the claim checks, the revocation
lookup and the result object).

Run: ``python packages/fastsecure-jwt/benchmarks/bench_requires_auth.py [requests] [runs]``.
Prints the median µs per request over the runs, as CPU time of this process (stable on a
busy machine) and as wall-clock time; no assertions, timings vary by machine.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time
import warnings
from typing import Any

import httpx
import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure_jwt import JWTAuthenticationProvider

SECRET = secrets.token_urlsafe(32)
bearer = HTTPBearer()


async def hand_written(
    credentials: HTTPAuthorizationCredentials = Depends(bearer),
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(credentials.credentials, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        raise HTTPException(401, "Invalid token", headers={"WWW-Authenticate": "Bearer"}) from None
    return claims


def build() -> tuple[FastAPI, AuthenticationManager, JWTAuthenticationProvider]:
    provider = JWTAuthenticationProvider(secret_key=SECRET)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    manager.add_requirement("/fastsecure", providers=["jwt"], scopes=["read"])
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, Any]:
        return {"user_id": 1}

    @app.get("/hand")
    async def hand(claims: dict[str, Any] = Depends(hand_written)) -> dict[str, Any]:
        return {"user_id": claims["sub"]}

    @app.get("/fastsecure")
    async def protected(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    return app, manager, provider


async def measure(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per request."""
    for _ in range(max(200, n // 10)):  # warm-up
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await client.get(path, headers=headers)
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


async def main(n: int, runs: int) -> None:
    app, _, provider = build()
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    headers = {"Authorization": f"Bearer {issued.access_token}"}
    cases = {
        "bare endpoint": ("/bare", {}),
        "hand-written HTTPBearer + jwt.decode": ("/hand", headers),
        "Depends(manager.requires_auth), jwt": ("/fastsecure", headers),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench"
    ) as client:
        for _ in range(runs):
            for name, (path, hdrs) in cases.items():  # interleaved, so drift hits every case alike
                results[name].append(await measure(client, path, hdrs, n))
    print(
        f"{n} requests x {runs} runs, median µs/request (python {sys.version.split()[0]}, PyJWT {jwt.__version__})"
    )
    for column, label in ((0, "CPU time"), (1, "wall clock")):
        bare = statistics.median(r[column] for r in results["bare endpoint"])
        print(f" {label}:")
        for name, values in results.items():
            median = statistics.median(r[column] for r in values)
            extra = "" if name == "bare endpoint" else f"  (+{median - bare:6.1f} over bare)"
            print(f"  {name:40s} {median:8.1f}{extra}")

    print(" verification alone, CPU µs/call (best of 5 x 20000):")
    token: str = issued.access_token  # type: ignore[assignment]
    for name, call in (
        ("jwt.decode", lambda: jwt.decode(token, SECRET, algorithms=["HS256"])),
        ("provider.authenticate (coroutine run)", None),
    ):
        best = float("inf")
        for _ in range(5):
            start = time.process_time()
            for _ in range(20000):
                if call is None:
                    await provider.authenticate({"access_token": token})
                else:
                    call()
            best = min(best, (time.process_time() - start) / 20000 * 1e6)
        print(f"  {name:40s} {best:8.1f}")


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 3000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 5,
        )
    )
