"""Several processes start together on a store that has no generation yet: one is created.

Each round starts N processes that all wait for the same instant, then log someone in
(the first use of the generation); every process must read back the same generation.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from fastsecure_redis.testing import RedisServer, require_binaries

HERE = Path(__file__).resolve().parent
PROCESSES = 4
ROUNDS = 2
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    require_binaries()
    server = RedisServer(tmp_path / "redis", extra=("--appendonly", "no"))
    server.start()
    yield server
    server.stop()


def race(kind: str, url: str, prefix: str) -> set[str]:
    start_at = time.time() + 4.0  # time enough for every interpreter to import and connect
    worker = str(HERE / "first_start_worker.py")
    processes = [
        subprocess.Popen(
            [sys.executable, worker, kind, url, prefix, str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=HERE,
        )
        for _ in range(PROCESSES)
    ]
    generations = set()
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()[-2000:]
        generations.add(out.decode().strip())
    return generations


def test_redis_generation_created_once(own_redis: RedisServer) -> None:
    client = redis.Redis(host="127.0.0.1", port=own_redis.port)
    try:
        for _ in range(ROUNDS):
            client.flushdb()  # our own server: the store starts with no generation
            generations = race("redis", own_redis.url, "first:")
            assert len(generations) == 1, generations
            (key,) = client.keys("first:*gen")
            assert client.get(key) == generations.pop().encode()
    finally:
        client.close()


def test_postgres_generation_created_once() -> None:
    import asyncio

    from loss_app import build_store

    for _ in range(ROUNDS):
        prefix = "first_" + secrets.token_hex(4) + "_"
        generations = race("sql", POSTGRES_URL, prefix)
        store = build_store("sql", POSTGRES_URL, prefix)
        asyncio.run(store.drop_tables())
        asyncio.run(store.aclose())
        assert len(generations) == 1, generations
