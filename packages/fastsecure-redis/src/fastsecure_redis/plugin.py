"""Entry point ``redis``: registers :class:`RedisSessionStore` for both store roles.

One class serves as session store and token store; configuration that names ``redis``
for both roles gets one shared object (and one connection pool). Registered by reference:
redis-py is imported only by an app that uses the store.
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

STORE = "fastsecure_redis.store:RedisSessionStore"


@hookimpl
def fastsecure_register_session_stores(register: Register) -> None:
    """Offer ``redis`` as a session store type."""
    register("redis", STORE, summary="sessions in Redis, shared by processes")


@hookimpl
def fastsecure_register_token_stores(register: Register) -> None:
    """Offer ``redis`` as a token store type (the same class)."""
    register("redis", STORE, summary="revocations and refresh families in Redis")


@hookimpl
def fastsecure_register_rate_limiters(register: Register) -> None:
    """Offer ``redis`` as a rate limiter type (one Lua script per decision)."""
    register(
        "redis",
        "fastsecure_redis.limiter:RedisRateLimiter",
        summary="sliding windows in Redis, one script per decision",
    )
