"""Entry point ``redis``: registers :class:`RedisSessionStore` for both store roles.

One class serves as session store and token store; configuration that names ``redis``
for both roles gets one shared object (and one connection pool).
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .limiter import RedisRateLimiter
from .store import RedisSessionStore


@hookimpl
def fastsecure_register_session_stores(register: Register) -> None:
    """Offer ``redis`` as a session store type."""
    register("redis", RedisSessionStore)


@hookimpl
def fastsecure_register_token_stores(register: Register) -> None:
    """Offer ``redis`` as a token store type (the same class)."""
    register("redis", RedisSessionStore)


@hookimpl
def fastsecure_register_rate_limiters(register: Register) -> None:
    """Offer ``redis`` as a rate limiter type (one Lua script per decision)."""
    register("redis", RedisRateLimiter)
