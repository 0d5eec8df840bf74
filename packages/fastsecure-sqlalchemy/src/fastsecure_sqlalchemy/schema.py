"""The tables, as SQLAlchemy Core ``Table`` objects an app can add to its own metadata.

``metadata`` holds them under the default ``fastsecure_`` prefix, ready for
``target_metadata`` in Alembic's ``env.py``. :func:`define_tables` puts them, under any
prefix, on a ``MetaData`` of the app's choosing (for one ``create_all`` or one Alembic
history with the app's own tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects import mysql

DEFAULT_PREFIX = "fastsecure_"

# Index names are "ix_" + prefix + up to 30 characters; PostgreSQL stops at 63.
_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,29}")

# MySQL/MariaDB DATETIME keeps whole seconds unless told otherwise, and evict-oldest
# orders sessions by creation time, so keep microseconds there.
Timestamp = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

# MySQL's TEXT stops at 64 KiB; session metadata may be larger.
JsonText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

HASH_LENGTH = 64
"""Length of a hex SHA-256: the stored form of session ids and token ids."""

USER_ID_LENGTH = 255


@dataclass(frozen=True)
class StoreTables:
    """The eight tables of one store, all under one prefix on one ``MetaData``.

    Attributes:
        sessions: one row per session, keyed by the SHA-256 of the session id.
        session_locks: one row per user that ever logged in; the row lock that serializes
            a user's logins on MySQL/MariaDB (and dialects without advisory locks).
        revoked_tokens: revoked JWT ids (hashed) with the token's expiry.
        revoked_families: revoked refresh-token families (hashed) with their expiry.
        used_refresh_tokens: refresh-token ids (hashed) already exchanged (by stores and
            custom providers that use ``consume_refresh_token``).
        refresh_families: live logins (hashed family id) and the hash of each one's
            current refresh token: the allow-list that refresh rotation checks.
        token_generation: one row, the store generation every token carries; a store
            whose tables were emptied or restored has none or another, so earlier tokens
            are refused.
        user_families: whose login each family is (SHA-256 of ``str(user_id)`` and of the
            family id), expiring with the family, so a password reset can end every
            login of a user (``revoke_user_families``). A table of its own: a deployment
            that predates it gets it from ``create_tables`` (or one Alembic
            ``create_table``), with no change to the tables it has.
    """

    metadata: MetaData
    prefix: str
    sessions: Table
    session_locks: Table
    revoked_tokens: Table
    revoked_families: Table
    used_refresh_tokens: Table
    refresh_families: Table
    token_generation: Table
    user_families: Table

    @property
    def all(self) -> tuple[Table, ...]:
        """Every table, in creation order."""
        return (
            self.sessions,
            self.session_locks,
            self.revoked_tokens,
            self.revoked_families,
            self.used_refresh_tokens,
            self.refresh_families,
            self.token_generation,
            self.user_families,
        )


def _expiring(metadata: MetaData, name: str, key: str) -> Table:
    return Table(
        name,
        metadata,
        Column(key, String(HASH_LENGTH), primary_key=True),
        Column("expires_at", Timestamp, nullable=False),
        Index(f"ix_{name}_expires_at", "expires_at"),
    )


def define_tables(metadata: MetaData, *, prefix: str = DEFAULT_PREFIX) -> StoreTables:
    """Define the store's tables on ``metadata``, their names starting with ``prefix``.

    Args:
        metadata: the app's ``MetaData`` (or a fresh one); the tables join it, so the app's
            ``metadata.create_all`` and Alembic autogenerate see them.
        prefix: prepended to every table and index name; letters, digits and ``_``.

    Returns:
        The tables, to pass to ``DatabaseSessionStore(..., tables=...)``.

    Raises:
        ValueError: the prefix is not a plain SQL identifier.
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "table prefix must be letters, digits and '_' (at most 30), not starting with a digit"
        )
    sessions = Table(
        f"{prefix}sessions",
        metadata,
        Column("id_hash", String(HASH_LENGTH), primary_key=True),
        Column("user_id", String(USER_ID_LENGTH), nullable=False),
        # "int" or "str": the type the app gave, so an int user id comes back an int.
        Column("user_id_type", String(8), nullable=False),
        Column("created_at", Timestamp, nullable=False),
        Column("expires_at", Timestamp, nullable=False),
        Column("last_seen", Timestamp, nullable=True),
        Column("data", JsonText, nullable=False),
        Index(f"ix_{prefix}sessions_user_id", "user_id", "user_id_type"),
        Index(f"ix_{prefix}sessions_expires_at", "expires_at"),
    )
    session_locks = Table(
        f"{prefix}session_locks",
        metadata,
        Column("user_key", String(HASH_LENGTH), primary_key=True),
    )
    return StoreTables(
        metadata=metadata,
        prefix=prefix,
        sessions=sessions,
        session_locks=session_locks,
        revoked_tokens=_expiring(metadata, f"{prefix}revoked_tokens", "jti_hash"),
        revoked_families=_expiring(metadata, f"{prefix}revoked_families", "family_hash"),
        used_refresh_tokens=_expiring(metadata, f"{prefix}used_refresh_tokens", "jti_hash"),
        refresh_families=Table(
            f"{prefix}refresh_families",
            metadata,
            Column("family_hash", String(HASH_LENGTH), primary_key=True),
            Column("current_hash", String(HASH_LENGTH), nullable=False),
            Column("expires_at", Timestamp, nullable=False),
            Index(f"ix_{prefix}refresh_families_expires_at", "expires_at"),
        ),
        token_generation=Table(
            f"{prefix}token_generation",
            metadata,
            # Always 1: the primary key makes "create if absent" one atomic insert.
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("generation", String(HASH_LENGTH), nullable=False),
            Column("created_at", Timestamp, nullable=False),
        ),
        user_families=Table(
            f"{prefix}user_families",
            metadata,
            Column("family_hash", String(HASH_LENGTH), primary_key=True),
            # Hashed like every token-table key: fixed width, any length of user id.
            Column("user_hash", String(HASH_LENGTH), nullable=False),
            Column("expires_at", Timestamp, nullable=False),
            Index(f"ix_{prefix}user_families_user_hash", "user_hash"),
            Index(f"ix_{prefix}user_families_expires_at", "expires_at"),
        ),
    )


metadata = MetaData()
"""The store's tables under the default prefix; ``target_metadata`` for Alembic."""

tables = define_tables(metadata)
sessions_table = tables.sessions
session_locks_table = tables.session_locks
revoked_tokens_table = tables.revoked_tokens
revoked_families_table = tables.revoked_families
used_refresh_tokens_table = tables.used_refresh_tokens
refresh_families_table = tables.refresh_families
token_generation_table = tables.token_generation
user_families_table = tables.user_families
