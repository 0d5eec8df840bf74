"""Entry point ``sqlalchemy``: registers :class:`DatabaseSessionStore` for both store roles.

Configuration names it ``"sqlalchemy"`` or ``"database"``; one ``[stores]`` entry used as
both a session store and a token store is one object (the core builds it once).
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register

from .store import DatabaseSessionStore

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
