"""RedisRateLimiter: the limiter conformance suite on one Redis and on a Cluster, and outages."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from fastsecure import StoreUnavailableError
from fastsecure.ratelimit import Backoff, RateLimit, RateLimiter
from fastsecure.testing.conformance_accounts import RateLimiterConformance
from fastsecure_redis.limiter import RedisRateLimiter
from fastsecure_redis.testing import Cluster, RedisServer, delete_prefix


class TestRedisRateLimiter(RateLimiterConformance):
    @pytest.fixture
    async def rate_limiter(self, redis_url: str) -> AsyncIterator[RateLimiter]:
        prefix = f"fstest-rl-{secrets.token_hex(4)}:"
        limiter = RedisRateLimiter(redis_url, prefix=prefix)
        yield limiter
        client = Redis.from_url(redis_url)
        await delete_prefix(client, prefix)
        await client.aclose()
        await limiter.aclose()


class TestRedisClusterRateLimiter(RateLimiterConformance):
    @pytest.fixture
    async def rate_limiter(self, redis_cluster: Cluster) -> AsyncIterator[RateLimiter]:
        limiter = RedisRateLimiter(redis_cluster.url, cluster=True, prefix="rl:")
        yield limiter
        await limiter.aclose()


async def test_keys_hold_no_address_and_expire(redis_url: str) -> None:
    prefix = f"fstest-rl-{secrets.token_hex(4)}:"
    limiter = RedisRateLimiter(redis_url, prefix=prefix)
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        await limiter.hit("login:address:203.0.113.9", RateLimit(5, 30))
        await limiter.attempt("login:account:zoe@example.org", Backoff(5, 60))
        keys = [k async for k in client.scan_iter(match=prefix + "*")]
        assert len(keys) == 2
        assert not any("203.0.113" in k or "zoe" in k for k in keys)
        assert all(0 < ttl <= 60_000 for ttl in [await client.pttl(k) for k in keys])
        await limiter.reset("login:account:zoe@example.org")
        assert len([k async for k in client.scan_iter(match=prefix + "*")]) == 1
    finally:
        await delete_prefix(client, prefix)
        await client.aclose()
        await limiter.aclose()


async def test_an_outage_is_store_unavailable_never_allowed(redis_server: RedisServer) -> None:
    # The fixture started a private server; killing it is the outage.
    limiter = RedisRateLimiter(redis_server.url, socket_timeout=1)
    try:
        assert (await limiter.hit("k", RateLimit(1, 10))).allowed
        redis_server.stop()
        for name, call in (
            ("hit", lambda: limiter.hit("k", RateLimit(1, 10))),
            ("attempt", lambda: limiter.attempt("k", Backoff())),
            ("refund", lambda: limiter.refund("k", Backoff())),
            ("reset", lambda: limiter.reset("k")),
        ):
            with pytest.raises(StoreUnavailableError):  # noqa: PT012 - names the failing call
                await call()
                pytest.fail(f"{name} did not raise")
    finally:
        await limiter.aclose()
