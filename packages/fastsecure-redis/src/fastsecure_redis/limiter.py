"""The Redis rate limiter: each decision is one round trip, one Lua script on one key.

A script runs atomically on the server, so N processes hitting one key never admit more
than the limit; Redis's own clock (``TIME``) times the waits, so processes whose clocks
disagree still agree on them. Keys are ``<prefix>{<sha256 of the key>}:<kind>``: no address
or e-mail is written to Redis, and one key maps to one Cluster slot (a hash tag).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from fastsecure import ConfigurationError, StoreUnavailableError
from fastsecure.ratelimit import Backoff, LimitState, RateLimit, RateLimiter, hashed_key

logger = logging.getLogger("fastsecure.redis")

_DRIVER_ERRORS = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)

# KEYS[1]; ARGV: limit, window (ms). Returns {count, ms left in the window}.
HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {count, ttl}
"""

# KEYS[1]; ARGV: limit, window (ms), base delay (ms), max delay (ms).
# Returns {admitted (0/1), count, ms to wait}.
ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local base, maxd = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'c', 'b')
local count, blocked = tonumber(state[1]) or 0, tonumber(state[2]) or 0
if blocked > now then
  return {0, count, blocked - now}
end
count = count + 1
local delay = 0
if count >= limit then
  local doublings = math.min(count - limit, 40)
  delay = math.min(maxd, base * 2 ^ doublings)
  delay = math.floor(delay)
end
local until_ms = 0
if delay > 0 then until_ms = now + delay end
redis.call('HSET', KEYS[1], 'c', count, 'b', until_ms)
redis.call('PEXPIRE', KEYS[1], math.max(window, delay))
return {1, count, 0}
"""

# KEYS[1]; ARGV: limit. Takes one attempt back; lifts the wait below the limit.
REFUND = """
local count = tonumber(redis.call('HGET', KEYS[1], 'c') or '0') or 0
if count <= 0 then return 0 end
count = count - 1
if count < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'c', count, 'b', 0)
else
  redis.call('HSET', KEYS[1], 'c', count)
end
return count
"""


class RedisRateLimiter(RateLimiter):
    """Rate limits shared by every process that uses one Redis (or Redis Cluster).

    Args:
        url: a ``redis://`` or ``rediss://`` URL, used when ``client`` is not given;
            connected lazily.
        client: an existing ``redis.asyncio.Redis`` or ``RedisCluster`` (the caller keeps
            ownership: ``aclose`` leaves it open).
        prefix: prepended to every key.
        socket_timeout: seconds one call may take before it counts as an outage (503).
        cluster: build a ``RedisCluster`` from ``url``.
    """

    limiter_type: ClassVar[str] = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        prefix: str = "fastsecure:rl:",
        socket_timeout: float = 2.0,
        cluster: bool = False,
        **client_options: Any,
    ) -> None:
        if client is not None and url is not None:
            raise ConfigurationError("pass either a Redis URL or a client, not both")
        self._owns_client = client is None
        if client is None:
            options: dict[str, Any] = {
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_timeout,
                **client_options,
            }
            url = url or "redis://localhost:6379/0"
            client = (
                RedisCluster.from_url(url, **options) if cluster else Redis.from_url(url, **options)
            )
        self._client: Redis | RedisCluster = client
        self.prefix = prefix
        self._hit = client.register_script(HIT)
        self._attempt = client.register_script(ATTEMPT)
        self._refund = client.register_script(REFUND)

    def _key(self, kind: str, key: str) -> str:
        # One hash tag for both kinds of a key: ``reset`` deletes them in one Cluster slot.
        return f"{self.prefix}{{{hashed_key(key)}}}:{kind}"

    async def _run(self, operation: str, call: Any) -> Any:
        try:
            return await call
        except _DRIVER_ERRORS as exc:
            logger.warning("redis rate limiter %s failed: %s", operation, type(exc).__name__)
            raise StoreUnavailableError(
                f"Redis rate limiter {operation} failed ({type(exc).__name__})"
            ) from exc

    async def hit(self, key: str, rate: RateLimit) -> LimitState:
        window_ms = max(1, int(rate.window * 1000))
        count, ttl = await self._run(
            "hit", self._hit(keys=[self._key("h", key)], args=[rate.limit, window_ms])
        )
        count = int(count)
        if count <= rate.limit:
            return LimitState(True, count, rate.limit - count)
        return LimitState(False, count, 0, max(1, int(ttl)) / 1000)

    async def attempt(self, key: str, backoff: Backoff) -> LimitState:
        admitted, count, wait = await self._run(
            "attempt",
            self._attempt(
                keys=[self._key("b", key)],
                args=[
                    backoff.limit,
                    max(1, int(backoff.window * 1000)),
                    max(1, int(backoff.base_delay * 1000)),
                    max(1, int(backoff.max_delay * 1000)),
                ],
            ),
        )
        count = int(count)
        if int(admitted):
            return LimitState(True, count, max(0, backoff.limit - count))
        return LimitState(False, count, 0, int(wait) / 1000)

    async def refund(self, key: str, backoff: Backoff) -> None:
        await self._run("refund", self._refund(keys=[self._key("b", key)], args=[backoff.limit]))

    async def reset(self, key: str) -> None:
        await self._run("reset", self._client.delete(self._key("b", key), self._key("h", key)))

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


__all__ = ["RedisRateLimiter"]
