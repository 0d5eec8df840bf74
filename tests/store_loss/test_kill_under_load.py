"""Two uvicorn workers on our own Redis, under load; Redis killed and restarted empty.

Before the run the clients log out, rotate, trigger reuse detection and end sessions;
during it they keep presenting those dead credentials (and live ones) while Redis is
killed and restarted without persistence. Any 200 for a dead credential is one revived
(issue 20 measured 565 in 25 s before the fix); it must be 0. No answer may be a 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fastsecure_redis.testing import RedisServer, require_binaries

HERE = Path(__file__).resolve().parent
WORKERS = 2
CLIENTS = 8
DURATION = 8.0  # seconds of load
KILL_AT = 2.5  # seconds into the load
DOWN_FOR = 0.5  # seconds Redis stays dead
REPORT = os.environ.get("FASTSECURE_LOSS_REPORT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_binaries()
    server = RedisServer(tmp_path / "redis", extra=("--appendonly", "no"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_url(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "LOSS_STORE": "redis",
        "LOSS_URL": redis_server.url,
        "LOSS_PREFIX": "loadloss:",
    }
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "loss_app:create_app_from_env", "--factory",
            "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(WORKERS), "--log-level", "warning",
            # Longer than httpx's 5 s idle expiry: the client closes an idle connection
            # first, so the server never drops one as it is reused (a false "error").
            "--timeout-keep-alive", "30",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        pids: set[int] = set()
        while len(pids) < WORKERS:
            assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the workers did not start"
            try:
                pids.add(httpx.get(url + "/health", timeout=2).json()["pid"])
            except (httpx.HTTPError, ValueError):
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


async def prepare(c: httpx.AsyncClient) -> dict[str, list[str]]:
    """Dead and live credentials, made through the app (both workers serve these calls)."""
    creds: dict[str, list[str]] = {k: [] for k in ("dead_access", "dead_refresh", "dead_session")}
    creds["live_access"] = []
    for user in range(12):
        tokens = (await c.post("/login/jwt", json={"user_id": user})).json()
        if user % 3 == 0:  # logged out
            assert (
                await c.post("/logout/jwt", json={"access_token": tokens["access_token"]})
            ).json()
            creds["dead_access"].append(tokens["access_token"])
            creds["dead_refresh"].append(tokens["refresh_token"])
        elif user % 3 == 1:  # rotated, then the spent token replayed: the family is revoked
            successor = (await c.post("/refresh/jwt", json=tokens)).json()
            replay = await c.post("/refresh/jwt", json={"refresh_token": tokens["refresh_token"]})
            assert replay.status_code == 401
            creds["dead_access"] += [tokens["access_token"], successor["access_token"]]
            creds["dead_refresh"] += [tokens["refresh_token"], successor["refresh_token"]]
        else:
            creds["live_access"].append(tokens["access_token"])
        sid = (await c.post("/login/session", json={"user_id": 100 + user})).json()["session_id"]
        assert (await c.post("/logout/session", json={"session_id": sid})).json()["revoked"]
        creds["dead_session"].append(sid)
    return creds


async def present(c: httpx.AsyncClient, kind: str, credential: str) -> int:
    if kind == "dead_refresh":
        response = await c.post("/refresh/jwt", json={"refresh_token": credential})
    elif kind == "dead_session":
        response = await c.get("/session/me", headers={"Cookie": f"session_id={credential}"})
    else:
        response = await c.get("/jwt/me", headers={"Authorization": f"Bearer {credential}"})
    return response.status_code


async def test_nothing_revoked_comes_back(app_url: str, redis_server: RedisServer) -> None:
    statuses: Counter[tuple[str, int]] = Counter()
    errors = 0
    async with httpx.AsyncClient(base_url=app_url, timeout=10) as c:
        creds = await prepare(c)
        for kind, values in creds.items():  # sanity before the fault
            for value in values:
                assert await present(c, kind, value) == (200 if kind == "live_access" else 401)

        stop = time.monotonic() + DURATION
        choices = [(kind, value) for kind, values in creds.items() for value in values]

        async def client(seed: int) -> None:
            nonlocal errors
            rng = random.Random(seed)
            while time.monotonic() < stop:
                kind, value = rng.choice(choices)
                try:
                    statuses[(kind, await present(c, kind, value))] += 1
                except httpx.HTTPError:
                    errors += 1

        async def fault() -> None:
            await asyncio.sleep(KILL_AT)
            await asyncio.to_thread(redis_server.stop)
            await asyncio.sleep(DOWN_FOR)
            await asyncio.to_thread(redis_server.start)

        await asyncio.gather(fault(), *(client(n) for n in range(CLIENTS)))

        fresh = (await c.post("/login/jwt", json={"user_id": 999})).json()
        assert await present(c, "live_access", fresh["access_token"]) == 200

    revived = sum(
        n for (kind, status), n in statuses.items() if kind != "live_access" and status == 200
    )
    server_errors = sum(n for (_, status), n in statuses.items() if status >= 500 and status != 503)
    summary = {f"{kind} {status}": n for (kind, status), n in sorted(statuses.items())}
    if REPORT:
        report = json.dumps({"revived": revived, "statuses": summary}, indent=2)
        await asyncio.to_thread(Path(REPORT).write_text, report)
    print("statuses:", summary)
    assert sum(statuses.values()) > 200, f"too little load to mean anything: {summary}"
    assert revived == 0, f"{revived} dead credentials accepted: {summary}"
    assert statuses[("live_access", 401)] > 0, "the live tokens must be refused after the loss"
    assert server_errors == 0 and errors == 0, summary
