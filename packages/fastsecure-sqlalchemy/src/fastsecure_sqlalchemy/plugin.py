"""Entry point ``sqlalchemy``: registers :class:`DatabaseSessionStore` for both store roles.

Configuration names it ``"sqlalchemy"`` or ``"database"``; one ``[stores]`` entry used as
both a session store and a token store is one object (the core builds it once).
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .limiter import DatabaseRateLimiter
from .store import DatabaseSessionStore
from .users import DatabaseUserStore

TYPE_NAMES = ("sqlalchemy", "database")


@hookimpl
def fastsecure_register_session_stores(register: Register) -> None:
    """Offer the store as a session store under both names."""
    for name in TYPE_NAMES:
        register(name, DatabaseSessionStore)


@hookimpl
def fastsecure_register_token_stores(register: Register) -> None:
    """Offer the same class as a token store, so one object can serve both roles."""
    for name in TYPE_NAMES:
        register(name, DatabaseSessionStore)


@hookimpl
def fastsecure_register_rate_limiters(register: Register) -> None:
    """Offer the SQL rate limiter under both names."""
    for name in TYPE_NAMES:
        register(name, DatabaseRateLimiter)


@hookimpl
def fastsecure_register_user_stores(register: Register) -> None:
    """Offer the SQL user store under both names."""
    for name in TYPE_NAMES:
        register(name, DatabaseUserStore)
