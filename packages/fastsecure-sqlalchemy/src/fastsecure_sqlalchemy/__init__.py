"""FastSecure's relational store: sessions and token revocation on SQLite, PostgreSQL, MariaDB.

``DatabaseSessionStore`` implements both :class:`fastsecure.SessionStore` and
:class:`fastsecure.TokenStore`. The tables are plain SQLAlchemy Core objects: create them
with ``await store.create_tables()`` or add :data:`metadata` (or :func:`define_tables` on
your own ``MetaData``) to your Alembic migrations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from .schema import DEFAULT_PREFIX as DEFAULT_PREFIX
    from .schema import StoreTables as StoreTables
    from .schema import define_tables as define_tables
    from .schema import metadata as metadata
    from .schema import revoked_families_table as revoked_families_table
    from .schema import revoked_tokens_table as revoked_tokens_table
    from .schema import session_locks_table as session_locks_table
    from .schema import sessions_table as sessions_table
    from .schema import used_refresh_tokens_table as used_refresh_tokens_table
    from .store import DatabaseSessionStore as DatabaseSessionStore
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "DEFAULT_PREFIX": ".schema",
            "StoreTables": ".schema",
            "define_tables": ".schema",
            "metadata": ".schema",
            "revoked_families_table": ".schema",
            "revoked_tokens_table": ".schema",
            "session_locks_table": ".schema",
            "sessions_table": ".schema",
            "used_refresh_tokens_table": ".schema",
            "DatabaseSessionStore": ".store",
        },
    )

__all__ = [
    "DEFAULT_PREFIX",
    "DatabaseSessionStore",
    "StoreTables",
    "define_tables",
    "metadata",
    "revoked_families_table",
    "revoked_tokens_table",
    "session_locks_table",
    "sessions_table",
    "used_refresh_tokens_table",
]
