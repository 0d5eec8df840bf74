"""Fixtures: the loopback Redis, private redis-server processes, and a 3-master Cluster."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from fastsecure_redis import RedisSessionStore
from fastsecure_redis.testing import delete_prefix
from fastsecure_redis.testing import redis_cluster as redis_cluster
from fastsecure_redis.testing import redis_server as redis_server
from fastsecure_redis.testing import redis_url as redis_url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"fstest-{secrets.token_hex(4)}:"


@pytest.fixture
async def store(redis_url: str, prefix: str) -> AsyncIterator[RedisSessionStore]:
    """A RedisSessionStore on the shared Redis under a private prefix, cleaned up after."""
    store = RedisSessionStore(redis_url, prefix=prefix)
    yield store
    await delete_prefix(store.client, prefix)
    await store.aclose()
