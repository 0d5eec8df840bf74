"""Entry point ``sqlalchemy``: registers :class:`DatabaseSessionStore` for both store roles.

Configuration names it ``"sqlalchemy"`` or ``"database"``; one ``[stores]`` entry used as
both a session store and a token store is one object (the core builds it once).
Registered by reference: SQLAlchemy (about a second to import) is imported only by an
app that uses one of these types.
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

TYPE_NAMES = ("sqlalchemy", "database")
STORE = "fastsecure_sqlalchemy.store:DatabaseSessionStore"


@hookimpl
def fastsecure_register_session_stores(register: Register) -> None:
    """Offer the store as a session store under both names."""
    for name in TYPE_NAMES:
        register(name, STORE, summary="sessions in SQLite, PostgreSQL or MariaDB")


@hookimpl
def fastsecure_register_token_stores(register: Register) -> None:
    """Offer the same class as a token store, so one object can serve both roles."""
    for name in TYPE_NAMES:
        register(name, STORE, summary="revocations and refresh families in SQL")


@hookimpl
def fastsecure_register_rate_limiters(register: Register) -> None:
    """Offer the SQL rate limiter under both names."""
    for name in TYPE_NAMES:
        register(
            name,
            "fastsecure_sqlalchemy.limiter:DatabaseRateLimiter",
            summary="sliding windows in SQL",
        )


@hookimpl
def fastsecure_register_user_stores(register: Register) -> None:
    """Offer the SQL user store under both names."""
    for name in TYPE_NAMES:
        register(
            name,
            "fastsecure_sqlalchemy.users:DatabaseUserStore",
            summary="password accounts in SQL",
        )
