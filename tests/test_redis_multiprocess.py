"""Two app processes (uvicorn) sharing one Redis: sessions, logouts and JWT revocations.

Each process runs tests/redis_multiprocess_app.py with its own RedisSessionStore; only
Redis connects them, so anything one process does must be seen by the other.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from fastsecure.testing import service_unavailable

REDIS_URL = os.environ.get("FASTSECURE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HERE = Path(__file__).parent

pytestmark = pytest.mark.services


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        service_unavailable(f"Redis at {REDIS_URL} is unreachable: {type(exc).__name__}")
    prefix = f"fstest-mp-{secrets.token_hex(4)}:"
    yield prefix
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def servers(prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two uvicorn processes on loopback ports running the same app."""
    env = {
        **os.environ,
        "FASTSECURE_TEST_REDIS_URL": REDIS_URL,
        "FASTSECURE_TEST_REDIS_PREFIX": prefix,
        "FASTSECURE_TEST_JWT_SECRET": secrets.token_urlsafe(48),
    }
    logs = tmp_path_factory.mktemp("uvicorn")
    processes: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for n in range(2):
            port = _free_port()
            log = (logs / f"app{n}.log").open("wb")
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "uvicorn", "redis_multiprocess_app:app",
                        "--app-dir", str(HERE), "--host", "127.0.0.1", "--port", str(port),
                        "--log-level", "warning",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for url, process in zip(urls, processes, strict=True):
            while True:
                if process.poll() is not None:
                    pytest.fail(f"app process exited: {(logs / 'app0.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("app process did not start in 30 s")
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_two_distinct_processes(servers: list[str]) -> None:
    pids = {httpx.get(f"{url}/health").json()["pid"] for url in servers}
    assert len(pids) == 2


def test_session_created_in_a_is_valid_in_b_and_logout_in_a_ends_it_in_b(
    servers: list[str],
) -> None:
    a, b = servers
    session_id = httpx.post(f"{a}/login/session", json={"user_id": 11}).json()["session_id"]
    cookies = {"session_id": session_id}
    in_b = httpx.get(f"{b}/session/me", cookies=cookies)
    assert in_b.status_code == 200
    assert in_b.json()["user_id"] == 11
    assert httpx.post(f"{a}/logout/session", json={"session_id": session_id}).json() == {
        "revoked": True
    }
    assert httpx.get(f"{b}/session/me", cookies=cookies).status_code == 401
    assert httpx.get(f"{a}/session/me", cookies=cookies).status_code == 401


def test_session_limit_holds_across_processes(servers: list[str]) -> None:
    ids = [
        httpx.post(f"{servers[n % 2]}/login/session", json={"user_id": "erin"}).json()["session_id"]
        for n in range(6)
    ]
    alive = [
        sid
        for sid in ids
        if httpx.get(f"{servers[0]}/session/me", cookies={"session_id": sid}).status_code == 200
    ]
    assert alive == ids[-3:], "max_sessions_per_user=3 evicts the oldest, whichever process"


def test_jwt_revoked_in_a_is_refused_in_b(servers: list[str]) -> None:
    a, b = servers
    tokens = httpx.post(f"{a}/login/jwt", json={"user_id": 12}).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert httpx.get(f"{b}/jwt/me", headers=bearer).json()["user_id"] == 12
    assert httpx.post(f"{a}/revoke/jwt", json={"access_token": tokens["access_token"]}).json() == {
        "revoked": True
    }
    assert httpx.get(f"{b}/jwt/me", headers=bearer).status_code == 401
    assert httpx.get(f"{a}/jwt/me", headers=bearer).status_code == 401


def test_refresh_token_is_single_use_across_processes(servers: list[str]) -> None:
    a, b = servers
    tokens = httpx.post(f"{a}/login/jwt", json={"user_id": 13}).json()
    refreshed = httpx.post(f"{a}/refresh/jwt", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    replay = httpx.post(f"{b}/refresh/jwt", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401, "a used refresh token is refused by the other process"
    # The replay revoked the whole family, in both processes.
    fresh = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert httpx.get(f"{a}/jwt/me", headers=fresh).status_code == 401
    assert httpx.get(f"{b}/jwt/me", headers=fresh).status_code == 401
