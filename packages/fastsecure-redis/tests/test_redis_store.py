"""RedisSessionStore on the loopback Redis: discovery, the conformance kit, and Redis specifics."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError

from fastsecure import ConfigurationError, SessionStore, StoreUnavailableError, TokenStore
from fastsecure.stores import Rotation, hash_session_id, utcnow
from fastsecure.testing import assert_plugin_discovered
from fastsecure.testing.conformance import (
    SessionStoreConformance,
    StoreFailureConformance,
    TokenStoreConformance,
)
from fastsecure_redis import DEFAULT_TAG, RedisSessionStore, user_tag
from fastsecure_redis.testing import delete_prefix


async def dump_prefix(client: Redis | RedisCluster, prefix: str) -> str:
    """Every key under ``prefix`` with its value, as text (for the id-hashing check)."""
    parts: list[str] = []
    async for key in client.scan_iter(match=prefix + "*", count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        kind = await client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        parts.append(name)
        if kind == "string":
            value = await client.get(key)
            parts.append(value.decode() if isinstance(value, bytes) else value)
        elif kind == "zset":
            for member, score in await client.zrange(key, 0, -1, withscores=True):
                parts.append(f"{member.decode() if isinstance(member, bytes) else member} {score}")
        else:
            parts.append(f"<{kind}>")
    return "\n".join(parts)


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("redis", kinds={"session_store": ["redis"], "token_store": ["redis"]})


def test_importable_from_fastsecure() -> None:
    import fastsecure

    assert fastsecure.RedisSessionStore is RedisSessionStore
    assert issubclass(RedisSessionStore, SessionStore)
    assert issubclass(RedisSessionStore, TokenStore)
    assert RedisSessionStore.store_type == "redis"


async def indexed_families(store: TokenStore, user_id: str) -> int:
    """Entries in the user's family index (ZCARD: live or not yet pruned)."""
    assert isinstance(store, RedisSessionStore)
    return int(await store.client.zcard(store.user_families_key_name(user_id)))


async def forget_prefix(store: Any) -> Any:
    """The store's data lost: every key under its prefix deleted (never the shared server)."""
    assert isinstance(store, RedisSessionStore)
    await delete_prefix(store.client, store.prefix)
    return store


class TestRedisSessionStoreConformance(SessionStoreConformance):
    @pytest.fixture
    async def session_store(self, store: RedisSessionStore) -> RedisSessionStore:
        return store

    async def lose_session_data(self, store: SessionStore) -> SessionStore:
        return await forget_prefix(store)  # type: ignore[no-any-return]

    async def stored_text(self, store: SessionStore) -> str:
        assert isinstance(store, RedisSessionStore)
        return await dump_prefix(store.client, store.prefix)


class TestRedisTokenStoreConformance(TokenStoreConformance):
    async def lose_token_data(self, store: TokenStore) -> TokenStore:
        return await forget_prefix(store)  # type: ignore[no-any-return]

    async def indexed_families(self, store: TokenStore, user_id: str) -> int:
        return await indexed_families(store, user_id)

    @pytest.fixture
    async def token_store(self, store: RedisSessionStore) -> RedisSessionStore:
        return store


# --- construction -------------------------------------------------------------------------


async def test_construction_needs_no_server() -> None:
    store = RedisSessionStore(
        "redis://127.0.0.1:1/0", prefix="nowhere:", socket_connect_timeout=0.2
    )
    with pytest.raises(StoreUnavailableError):
        await store.get_session(store.generate_session_id(1))
    await store.aclose()


def test_url_and_client_are_exclusive() -> None:
    with pytest.raises(ConfigurationError):
        RedisSessionStore("redis://localhost", client=Redis(), prefix="p:")


def test_a_misspelled_client_option_fails_construction() -> None:
    """It used to construct, then fail every call with TypeError (401s, not a start-up error)."""
    with pytest.raises(ConfigurationError, match="socket_timout"):
        RedisSessionStore("redis://127.0.0.1:6379/0", prefix="p:", socket_timout=1)


def test_a_prefix_is_required() -> None:
    """Issue 12: two apps on one Redis DB shared "fastsecure:" and took each other's cookies."""
    with pytest.raises(ConfigurationError, match="each other's"):
        RedisSessionStore("redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="each other's"):
        RedisSessionStore(client=Redis())


@pytest.mark.parametrize("prefix", ["", "   ", "app{1}:", "}"])
def test_a_prefix_that_cannot_namespace_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisSessionStore("redis://127.0.0.1:6379/0", prefix=prefix)


def test_a_configured_store_without_prefix_fails_start_up() -> None:
    """The type configuration builds by name refuses to start without a prefix."""
    from fastsecure import AuthenticationManager

    factory = AuthenticationManager().plugins.get_type("session_store", "redis").factory
    with pytest.raises(ConfigurationError, match="prefix"):
        factory(url="redis://127.0.0.1:6379/0")


async def test_two_apps_on_one_database_do_not_share_sessions(redis_url: str, prefix: str) -> None:
    shop = RedisSessionStore(redis_url, prefix=prefix + "shop:")
    blog = RedisSessionStore(redis_url, prefix=prefix + "blog:")
    try:
        session_id = shop.generate_session_id(42)
        assert await shop.create_session(42, session_id, utcnow() + timedelta(hours=1), {})
        await shop.revoke_token("shop-jti", utcnow() + timedelta(hours=1))
        assert await shop.get_session(session_id) is not None
        assert await blog.get_session(session_id) is None, "a shop cookie must not log into blog"
        assert await blog.get_user_sessions(42) == []
        assert not await blog.is_revoked("shop-jti")
        assert await blog.consume_refresh_token("rt", utcnow() + timedelta(hours=1))
        assert await shop.consume_refresh_token("rt", utcnow() + timedelta(hours=1))
    finally:
        await delete_prefix(shop.client, prefix)
        await shop.aclose()
        await blog.aclose()


def test_a_retry_passed_through_options_is_honoured() -> None:
    """Issue 25: the Cluster branch overwrote a user's retry= with its own."""
    mine = Retry(NoBackoff(), 0)
    single = RedisSessionStore("redis://127.0.0.1:1/0", prefix="p:", retry=mine)
    assert isinstance(single.client, Redis)
    assert single.client.connection_pool.connection_kwargs["retry"] is mine
    cluster = RedisSessionStore("redis://127.0.0.1:1/0", prefix="p:", cluster=True, retry=mine)
    assert isinstance(cluster.client, RedisCluster)
    # The Cluster client keeps our policy: no retries (redis-py 5.2 has no get_retries()).
    assert cluster.client.retry._retries == 0


async def test_socket_timeout_bounds_the_whole_call_retries_included(redis_server: Any) -> None:
    """A retry policy that retries timeouts five times still answers within socket_timeout."""
    retry = Retry(NoBackoff(), 5, supported_errors=(RedisTimeoutError,))
    store = RedisSessionStore(redis_server.url, prefix="p:", socket_timeout=0.3, retry=retry)
    try:
        await store.is_revoked("warm")
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError):
            await store.is_revoked("jti")
        assert time.monotonic() - started < 0.3 + 0.5
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
        await store.aclose()


async def test_given_client_is_used_and_left_open(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    store = RedisSessionStore(client=client, prefix=prefix)
    try:
        session_id = store.generate_session_id("bob")
        assert await store.create_session("bob", session_id, utcnow() + timedelta(hours=1), {})
        record = await store.get_session(session_id)
        assert record is not None
        assert record["user_id"] == "bob"
        assert [r["user_id"] for r in await store.get_user_sessions("bob")] == ["bob"]
        await store.aclose()
        assert await client.ping() is True, "aclose must not close a caller's client"
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()


# --- key layout ---------------------------------------------------------------------------


async def test_key_layout_and_json_values(store: RedisSessionStore) -> None:
    session_id = store.generate_session_id(42)
    random_part, tag = session_id.split(".")
    assert len(random_part) == 43
    assert tag == user_tag(42)
    assert await store.create_session(42, session_id, utcnow() + timedelta(hours=1), {"k": "v"})
    key = f"{store.prefix}{{{tag}}}:s:{hash_session_id(session_id)}"
    raw = await store.client.get(key)
    assert raw is not None
    assert session_id.encode() not in raw
    document = json.loads(raw)
    assert document["user_id"] == 42
    assert document["metadata"] == {"k": "v"}
    assert 3590 * 1000 < await store.client.pttl(key) <= 3600 * 1000
    index = f"{store.prefix}{{{tag}}}:u:42"
    members = await store.client.zrange(index, 0, -1)
    assert members == [f"{tag}:{hash_session_id(session_id)}".encode()]
    assert 3590 * 1000 < await store.client.pttl(index) <= 3600 * 1000


async def test_int_and_str_user_ids_are_different_users(store: RedisSessionStore) -> None:
    await store.create_session(7, store.generate_session_id(7), utcnow() + timedelta(hours=1), {})
    await store.create_session(
        "7", store.generate_session_id("7"), utcnow() + timedelta(hours=1), {}
    )
    assert [type(r["user_id"]) for r in await store.get_user_sessions(7)] == [int]
    assert [type(r["user_id"]) for r in await store.get_user_sessions("7")] == [str]


async def test_untagged_ids_use_the_default_tag_on_a_single_node(store: RedisSessionStore) -> None:
    session_id = "plain-id-without-a-routing-tag-0123456789abcdef"
    assert await store.create_session(5, session_id, utcnow() + timedelta(hours=1), {})
    key = f"{store.prefix}{{{DEFAULT_TAG}}}:s:{hash_session_id(session_id)}"
    assert await store.client.exists(key) == 1
    assert (await store.get_session(session_id) or {}).get("user_id") == 5
    listed = await store.get_user_sessions(5)
    assert [r["session_key"].split(":")[0] for r in listed] == [DEFAULT_TAG]
    assert await store.delete_user_sessions(5) == 1


async def test_user_index_never_keeps_dead_ids(store: RedisSessionStore) -> None:
    soon = utcnow() + timedelta(milliseconds=300)
    for _ in range(20):
        await store.create_session(3, store.generate_session_id(3), soon, {})
    deleted = store.generate_session_id(3)
    await store.create_session(3, deleted, utcnow() + timedelta(hours=1), {})
    await store.delete_session(deleted)
    index = store.user_index_name(3)
    assert await store.client.zcard(index) == 21
    await asyncio.sleep(0.5)
    kept = store.generate_session_id(3)
    await store.create_session(3, kept, utcnow() + timedelta(hours=1), {})
    assert await store.client.zcard(index) == 1, "each write prunes expired and deleted ids"
    assert await store.cleanup_expired_sessions() == 0


async def test_index_expires_with_its_last_session(store: RedisSessionStore) -> None:
    await store.create_session(4, store.generate_session_id(4), utcnow() + timedelta(seconds=1), {})
    await store.create_session(
        4, store.generate_session_id(4), utcnow() + timedelta(seconds=30), {}
    )
    await store.create_session(4, store.generate_session_id(4), utcnow() + timedelta(seconds=2), {})
    ttl = await store.client.pttl(store.user_index_name(4))
    assert 29_000 < ttl <= 30_000, "the index lives as long as its longest session, no longer"


async def test_touch_edits_only_last_seen(store: RedisSessionStore) -> None:
    user_id = 2**62 + 1  # would lose precision in any float-based JSON codec
    metadata = {"big": 2**61 + 3, "f": 0.1, "text": ',"metadata":{"x":1}'}
    session_id = store.generate_session_id(user_id)
    await store.create_session(user_id, session_id, utcnow() + timedelta(hours=1), metadata)
    before = await store.client.pttl(store.session_key_name(session_id))
    seen = utcnow() + timedelta(minutes=5)
    assert await store.touch_session(session_id, seen) is True
    record = await store.get_session(session_id)
    assert record is not None
    assert record["last_seen"] == seen
    assert record["metadata"] == metadata
    assert record["user_id"] == user_id
    assert await store.client.pttl(store.session_key_name(session_id)) <= before
    assert await store.update_session(session_id, {"big": 2**63}) is True
    record = await store.get_session(session_id)
    assert record is not None
    assert record["metadata"] == {"big": 2**63}
    assert record["last_seen"] == seen


async def test_get_user_sessions_is_oldest_first(store: RedisSessionStore) -> None:
    for n in range(4):
        await store.create_session(
            8, store.generate_session_id(8), utcnow() + timedelta(hours=1), {"n": n}
        )
        await asyncio.sleep(0.005)
    assert [r["metadata"]["n"] for r in await store.get_user_sessions(8)] == [0, 1, 2, 3]


async def test_rotation_keeps_creation_order(store: RedisSessionStore) -> None:
    first = store.generate_session_id(9)
    await store.create_session(9, first, utcnow() + timedelta(hours=1), {"n": 0})
    await asyncio.sleep(0.005)
    await store.create_session(
        9, store.generate_session_id(9), utcnow() + timedelta(hours=1), {"n": 1}
    )
    rotated = store.generate_session_id(9)
    assert await store.rotate_session(first, rotated)
    outcome = await store.create_session_limited(
        9, store.generate_session_id(9), utcnow() + timedelta(hours=1), {"n": 2}, max_sessions=2
    )
    assert [r["metadata"]["n"] for r in outcome.evicted] == [0]
    assert await store.get_session(rotated) is None


async def test_delete_session_by_key_rejects_non_handles(store: RedisSessionStore) -> None:
    session_id = store.generate_session_id(1)
    await store.create_session(1, session_id, utcnow() + timedelta(hours=1), {})
    assert await store.delete_session_by_key(session_id) is False
    assert await store.delete_session_by_key("*") is False
    assert await store.get_session(session_id) is not None


async def test_id_collision_is_refused(store: RedisSessionStore) -> None:
    session_id = store.generate_session_id(1)
    assert await store.create_session(1, session_id, utcnow() + timedelta(hours=1), {"a": 1})
    assert not await store.create_session(1, session_id, utcnow() + timedelta(hours=1), {"a": 2})
    assert (await store.get_session(session_id) or {})["metadata"] == {"a": 1}


async def test_expired_tokens_are_not_consumable(store: RedisSessionStore) -> None:
    assert await store.consume_refresh_token("j", utcnow() - timedelta(seconds=1)) is False
    await store.revoke_token("j", utcnow() - timedelta(seconds=1))
    assert await store.is_revoked("j") is False


# --- one round trip on the hot path -------------------------------------------------------


async def commandstats(client: Redis) -> dict[str, int]:
    info = await client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


async def test_session_check_is_one_get(redis_server: Any) -> None:
    # A private server: other suites share 6379 and would move its counters.
    store = RedisSessionStore(redis_server.url, prefix="p:")
    session_id = store.generate_session_id(1)
    await store.create_session(1, session_id, utcnow() + timedelta(hours=1), {})
    observer = Redis.from_url(redis_server.url)
    try:
        await store.get_session(session_id)  # warm the pool
        before = await commandstats(observer)
        for _ in range(50):
            assert await store.get_session(session_id) is not None
        after = await commandstats(observer)
    finally:
        await observer.aclose()
        await store.aclose()
    calls = delta(before, after)
    calls.pop("info", None)
    assert calls == {"get": 50}, calls


async def test_is_revoked_is_one_exists(redis_server: Any) -> None:
    store = RedisSessionStore(redis_server.url, prefix="p:")
    observer = Redis.from_url(redis_server.url)
    try:
        await store.is_revoked("warm")
        before = await commandstats(observer)
        for _ in range(20):
            assert await store.is_revoked("a", "family") is False
        after = await commandstats(observer)
    finally:
        await observer.aclose()
        await store.aclose()
    calls = delta(before, after)
    calls.pop("info", None)
    assert calls == {"exists": 20}, calls


async def test_a_users_logins_are_ended_by_one_script(redis_server: Any) -> None:
    store = RedisSessionStore(redis_server.url, prefix="p:")
    observer = Redis.from_url(redis_server.url)
    later = utcnow() + timedelta(hours=1)
    try:
        await store.start_family("warm", "rt", later, user_id=1)
        await store.revoke_user_families("nobody", later)  # loads the script
        before = await commandstats(observer)
        for n in range(5):
            await store.start_family(f"family-{n}", "rt", later, user_id=1)
        assert await store.revoke_user_families(1, later) == 6
        after = await commandstats(observer)
    finally:
        await observer.aclose()
        await store.aclose()
    calls = delta(before, after)
    calls.pop("info", None)
    # EVALSHA, and the commands the scripts run: no round trip per family from the client.
    assert calls.pop("evalsha") == 6, calls
    scripted = {"get", "set", "del", "zadd", "zrange", "zremrangebyscore", "pttl", "pexpire"}
    assert set(calls) <= scripted, calls


async def test_user_family_keys_live_with_the_family(store: RedisSessionStore) -> None:
    soon, later = utcnow() + timedelta(seconds=60), utcnow() + timedelta(hours=1)
    generation = await store.start_family("fam", "rt1", soon, user_id=42)
    index = store.user_families_key_name(42)
    assert index == store.user_families_key_name("42")
    assert index.startswith(store.generation_key_name.removesuffix("gen"))
    owner = store.generation_key_name.removesuffix("gen") + "o:fam"
    assert await store.client.get(owner) == b"42"
    assert 50_000 < await store.client.pttl(index) <= 60_000
    assert 50_000 < await store.client.pttl(owner) <= 60_000
    # A rotation renews the family, and its owner and index entry with it.
    assert await store.rotate_refresh("fam", "rt1", "rt2", generation, later, later) is (
        Rotation.ROTATED
    )
    assert 3590_000 < await store.client.pttl(index) <= 3600_000
    assert 3590_000 < await store.client.pttl(owner) <= 3600_000
    score = await store.client.zscore(index, "fam")
    assert abs(score - later.timestamp() * 1000) < 5_000
    # A logout unlists it; the index goes with its last family.
    await store.revoke_family("fam", later)
    assert await store.client.exists(index, owner) == 0
    assert await store.revoke_user_families(42, later) == 0


# --- failure ------------------------------------------------------------------------------


@pytest.fixture
async def dead_store() -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore(
        "redis://127.0.0.1:1/0", prefix="p:", socket_connect_timeout=0.2, socket_timeout=0.2
    )
    yield store
    await store.aclose()


class TestUnreachableRedis(StoreFailureConformance):
    """Nothing listens: every method is a 503, within socket_timeout and a margin."""

    failure_bound = 0.2 + 0.5

    @pytest.fixture
    async def failing_store(self, dead_store: RedisSessionStore) -> RedisSessionStore:
        return dead_store


class TestPausedRedis(StoreFailureConformance):
    """The server accepts but answers nothing (CLIENT PAUSE): 503 within the deadline."""

    failure_bound = 0.3 + 0.5

    @pytest.fixture
    async def failing_store(self, redis_server: Any) -> AsyncIterator[RedisSessionStore]:
        store = RedisSessionStore(redis_server.url, prefix="paused:", socket_timeout=0.3)
        await store.is_revoked("warm the pool")
        os.kill(redis_server.process.pid, signal.SIGSTOP)
        try:
            yield store
        finally:
            os.kill(redis_server.process.pid, signal.SIGCONT)
            await store.aclose()


async def test_paused_server_times_out_as_unavailable(redis_server: Any) -> None:
    store = RedisSessionStore(redis_server.url, socket_timeout=0.3, prefix="p:")
    admin = Redis.from_url(redis_server.url)
    try:
        session_id = store.generate_session_id(1)
        await store.create_session(1, session_id, utcnow() + timedelta(hours=1), {})
        await admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")
        with pytest.raises(StoreUnavailableError):
            await store.get_session(session_id)
        await asyncio.sleep(1.5)
        assert await store.get_session(session_id) is not None, "recovers by itself"
    finally:
        await store.aclose()
        await admin.aclose()


async def test_recovers_after_a_crash_and_restart(redis_server: Any) -> None:
    store = RedisSessionStore(
        redis_server.url, prefix="p:", socket_timeout=0.5, socket_connect_timeout=0.5
    )
    try:
        session_id = store.generate_session_id(1)
        await store.create_session(1, session_id, utcnow() + timedelta(hours=1), {})
        await store.revoke_token("jti", utcnow() + timedelta(hours=1))
        redis_server.stop()
        with pytest.raises(StoreUnavailableError):
            await store.get_session(session_id)
        with pytest.raises(StoreUnavailableError):
            await store.is_revoked("jti")
        redis_server.start()
        assert await store.get_session(session_id) is not None
        assert await store.is_revoked("jti") is True
    finally:
        await store.aclose()


# --- Cluster ------------------------------------------------------------------------------


async def test_cluster_refuses_ids_outside_the_users_slot(redis_cluster: Any) -> None:
    store = RedisSessionStore(redis_cluster.url, cluster=True, prefix="fstest-refuse:")
    try:
        with pytest.raises(ConfigurationError):
            await store.create_session(1, "untagged-id", utcnow() + timedelta(hours=1), {})
        with pytest.raises(ConfigurationError):
            await store.create_session(
                1, store.generate_session_id(2), utcnow() + timedelta(hours=1), {}
            )
        assert await store.get_session("untagged-id") is None
    finally:
        await store.aclose()


@pytest.fixture
async def cluster_store(redis_cluster: Any, prefix: str) -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore(redis_cluster.url, cluster=True, prefix=prefix)
    yield store
    await delete_prefix(store.client, prefix)
    await store.aclose()


class TestRedisClusterSessionStoreConformance(SessionStoreConformance):
    @pytest.fixture
    async def session_store(self, cluster_store: RedisSessionStore) -> RedisSessionStore:
        return cluster_store

    async def lose_session_data(self, store: SessionStore) -> SessionStore:
        return await forget_prefix(store)  # type: ignore[no-any-return]

    async def stored_text(self, store: SessionStore) -> str:
        assert isinstance(store, RedisSessionStore)
        return await dump_prefix(store.client, store.prefix)


class TestRedisClusterTokenStoreConformance(TokenStoreConformance):
    async def lose_token_data(self, store: TokenStore) -> TokenStore:
        return await forget_prefix(store)  # type: ignore[no-any-return]

    async def indexed_families(self, store: TokenStore, user_id: str) -> int:
        return await indexed_families(store, user_id)

    @pytest.fixture
    async def token_store(
        self, redis_cluster: Any, prefix: str
    ) -> AsyncIterator[RedisSessionStore]:
        client = RedisCluster.from_url(redis_cluster.url)  # a caller-owned client
        yield RedisSessionStore(client=client, prefix=prefix)
        await delete_prefix(client, prefix)
        await client.aclose()


async def test_cluster_keeps_user_families_in_the_token_slot(
    cluster_store: RedisSessionStore,
) -> None:
    client = cluster_store.client
    assert isinstance(client, RedisCluster)
    later = utcnow() + timedelta(hours=1)
    for user in range(10):
        await cluster_store.start_family(f"f{user}", "rt", later, user_id=user)
        token_node = client.get_node_from_key(cluster_store.generation_key_name)
        assert client.get_node_from_key(cluster_store.user_families_key_name(user)) is token_node
    assert await cluster_store.revoke_user_families(3, later) == 1


async def test_cluster_spreads_users_over_the_masters(cluster_store: RedisSessionStore) -> None:
    client = cluster_store.client
    assert isinstance(client, RedisCluster)
    owners = set()
    for user in range(30):
        session_id = cluster_store.generate_session_id(user)
        await cluster_store.create_session(user, session_id, utcnow() + timedelta(hours=1), {})
        session_node = client.get_node_from_key(cluster_store.session_key_name(session_id))
        index_node = client.get_node_from_key(cluster_store.user_index_name(user))
        assert session_node is index_node, "a user's keys share one slot"
        owners.add(session_node.name)
    assert len(owners) == 3, "users land on every master"
