"""``wait_replicas``: a logout is reported done only once replicas hold it (our own servers)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from fastsecure import ConfigurationError, StoreUnavailableError
from fastsecure.stores import AccessCheck, Rotation, utcnow
from fastsecure_redis import RedisSessionStore
from fastsecure_redis.testing import RedisServer, require_binaries


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    require_binaries()
    primary = RedisServer(
        tmp_path / "primary", extra=("--appendonly", "no", "--repl-diskless-sync-delay", "0")
    )
    primary.start()
    replica = RedisServer(
        tmp_path / "replica",
        extra=("--appendonly", "no", "--replicaof", "127.0.0.1", str(primary.port)),
    )
    replica.start()
    client = redis.Redis(host="127.0.0.1", port=primary.port)
    deadline = time.monotonic() + 20
    while (client.info("replication").get("slave0") or {}).get("state") != "online":
        assert time.monotonic() < deadline, "the replica did not attach"
        time.sleep(0.05)
    client.close()
    yield primary, replica
    replica.stop()
    primary.stop()


@pytest.fixture
async def durable_store(
    primary_and_replica: tuple[RedisServer, RedisServer],
) -> AsyncIterator[RedisSessionStore]:
    primary, _ = primary_and_replica
    store = RedisSessionStore(
        primary.url, prefix="durable:", wait_replicas=1, wait_timeout=1.5, socket_timeout=3.0
    )
    yield store
    await store.aclose()


@pytest.mark.asyncio
async def test_writes_that_end_something_wait_for_the_replica(
    durable_store: RedisSessionStore, primary_and_replica: tuple[RedisServer, RedisServer]
) -> None:
    _, replica = primary_and_replica
    later = utcnow() + timedelta(hours=1)
    generation = await durable_store.start_family("fam", "rt1", later)
    assert (
        await durable_store.rotate_refresh("fam", "rt1", "rt2", generation, later, later)
        is Rotation.ROTATED
    )
    await durable_store.revoke_token("jti", later)
    assert await durable_store.check_access("jti", "fam", generation) is AccessCheck.REVOKED
    sid = durable_store.generate_session_id(1)
    assert await durable_store.create_session(1, sid, later, {})
    assert await durable_store.delete_session(sid)
    # The replica holds what the primary acknowledged as durable.
    mirror = redis.Redis(host="127.0.0.1", port=replica.port)
    try:
        assert mirror.get(durable_store.generation_key_name) == generation.encode()
        assert mirror.exists(durable_store.session_key_name(sid)) == 0
    finally:
        mirror.close()

    replica.stop()  # now no replica can acknowledge: the logout is not reported done
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        await durable_store.revoke_family("fam", later)
    assert time.monotonic() - started < 3.0  # wait_timeout + a margin for a busy machine
    with pytest.raises(StoreUnavailableError):
        await durable_store.delete_user_sessions(1)
    with pytest.raises(StoreUnavailableError):
        await durable_store.revoke_user_families(1, later)
    # Reads and logins do not wait: they stay available.
    assert await durable_store.check_access("other", None, generation) is AccessCheck.VALID
    assert await durable_store.start_family("fam2", "rt", later) == generation


def test_wait_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        RedisSessionStore("redis://127.0.0.1:1/0", prefix="p:", wait_replicas=-1)
    with pytest.raises(ConfigurationError):
        RedisSessionStore(
            "redis://127.0.0.1:1/0", prefix="p:", wait_replicas=1, wait_timeout=3, socket_timeout=2
        )
    with pytest.raises(ConfigurationError, match="Cluster"):
        RedisSessionStore("redis://127.0.0.1:1/0", prefix="p:", cluster=True, wait_replicas=1)
