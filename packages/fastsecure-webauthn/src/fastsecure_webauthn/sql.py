"""Passkeys in the application's relational database, through SQLAlchemy's asyncio engine.

Needs the ``sqlalchemy`` extra and an async driver (aiosqlite, asyncpg, aiomysql). The
engine is the application's: this store never creates or disposes of one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

try:
    from sqlalchemy import (
        BigInteger,
        Boolean,
        Column,
        Double,
        Index,
        MetaData,
        String,
        Table,
        Text,
        delete,
        insert,
        select,
        update,
    )
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.engine import Row
    from sqlalchemy.ext.asyncio import AsyncEngine
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "SqlWebAuthnStore needs SQLAlchemy: pip install 'fastsecure-webauthn[sqlalchemy]'"
    ) from exc

from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from fastsecure import StoreUnavailableError
from fastsecure.results import UserId

from .store import Challenge, PasskeyCredential, WebAuthnStore, ceremony_key, credential_key

logger = logging.getLogger("fastsecure.webauthn")
T = TypeVar("T")
USER_ID_LENGTH = 255


def _b(data: bytes) -> str:
    # Binary values as base64url text: portable, and aiomysql mis-escapes bytes parameters.
    return bytes_to_base64url(data)


def define_tables(metadata: MetaData, prefix: str = "fastsecure_") -> tuple[Table, Table]:
    """The credentials and challenges tables, on the app's ``MetaData`` (for Alembic)."""
    credentials = Table(
        f"{prefix}webauthn_credentials",
        metadata,
        Column("credential_key", String(64), primary_key=True),  # SHA-256 hex of the id
        Column("credential_id", Text, nullable=False),
        Column("user_id", String(USER_ID_LENGTH), nullable=False),
        Column("user_id_type", String(8), nullable=False),
        Column("user_handle", String(128), nullable=False),
        Column("public_key", Text, nullable=False),
        Column("sign_count", BigInteger, nullable=False),
        Column("transports", String(255), nullable=False),
        Column("device_type", String(16), nullable=False),
        Column("backed_up", Boolean, nullable=False),
        Column("aaguid", String(36), nullable=False),
        Column("name", String(100), nullable=True),
        Column("created_at", Double, nullable=False),
        Column("last_used_at", Double, nullable=True),
        Index(f"ix_{prefix}webauthn_credentials_user", "user_id", "user_id_type"),
    )
    challenges = Table(
        f"{prefix}webauthn_challenges",
        metadata,
        Column("ceremony_key", String(64), primary_key=True),  # SHA-256 hex of the id
        Column("challenge", String(128), nullable=False),
        Column("purpose", String(16), nullable=False),
        Column("expires_at", Double, nullable=False),
        Column("user_id", String(USER_ID_LENGTH), nullable=True),
        Column("user_id_type", String(8), nullable=True),
        Column("user_handle", String(128), nullable=True),
        Index(f"ix_{prefix}webauthn_challenges_expires", "expires_at"),
    )
    return credentials, challenges


def _encode_user(user_id: UserId) -> tuple[str, str]:
    if isinstance(user_id, bool) or not isinstance(user_id, int | str):
        raise TypeError("user_id must be an int or a str")
    value, kind = (str(user_id), "int") if isinstance(user_id, int) else (user_id, "str")
    if len(value) > USER_ID_LENGTH:
        raise ValueError(f"user_id longer than {USER_ID_LENGTH} characters")
    return value, kind


def _decode_user(value: str, kind: str) -> UserId:
    return int(value) if kind == "int" else value


class SqlWebAuthnStore(WebAuthnStore):
    """Passkeys and ceremony challenges in two tables of the app's database.

    Args:
        engine: the application's ``AsyncEngine`` (SQLite, PostgreSQL, MariaDB/MySQL).
        table_prefix: prefix of the table names.
        operation_timeout: seconds one call may take; past it, or on any database error,
            :class:`~fastsecure.StoreUnavailableError` (HTTP 503).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        table_prefix: str = "fastsecure_",
        operation_timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.metadata = MetaData()
        self.credentials, self.challenges = define_tables(self.metadata, table_prefix)
        self._timeout = operation_timeout

    async def create_tables(self) -> None:
        """Create the tables if missing (apps with migrations use :func:`define_tables`)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    async def drop_tables(self) -> None:
        """Drop the tables (tests)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.drop_all)

    async def _run(self, operation: str, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await asyncio.wait_for(work(), self._timeout)
        except (sa_exc.OperationalError, sa_exc.InterfaceError, OSError, TimeoutError) as exc:
            logger.warning("fastsecure.webauthn: %s failed (%s)", operation, type(exc).__name__)
            raise StoreUnavailableError(f"passkey store unavailable during {operation}") from exc
        except sa_exc.DBAPIError as exc:
            if isinstance(exc, sa_exc.IntegrityError):
                raise
            logger.warning("fastsecure.webauthn: %s failed (%s)", operation, type(exc).__name__)
            raise StoreUnavailableError(f"passkey store unavailable during {operation}") from exc

    def _credential(self, row: Row[Any]) -> PasskeyCredential:
        return PasskeyCredential(
            credential_id=base64url_to_bytes(row.credential_id),
            user_id=_decode_user(row.user_id, row.user_id_type),
            user_handle=base64url_to_bytes(row.user_handle),
            public_key=base64url_to_bytes(row.public_key),
            sign_count=int(row.sign_count),
            transports=tuple(json.loads(row.transports)),
            device_type=row.device_type,
            backed_up=bool(row.backed_up),
            aaguid=row.aaguid,
            name=row.name,
            created_at=float(row.created_at),
            last_used_at=None if row.last_used_at is None else float(row.last_used_at),
        )

    async def add_credential(self, credential: PasskeyCredential) -> bool:
        user, kind = _encode_user(credential.user_id)
        values = {
            "credential_key": credential_key(credential.credential_id),
            "credential_id": _b(credential.credential_id),
            "user_id": user,
            "user_id_type": kind,
            "user_handle": _b(credential.user_handle),
            "public_key": _b(credential.public_key),
            "sign_count": credential.sign_count,
            "transports": json.dumps(list(credential.transports)),
            "device_type": credential.device_type,
            "backed_up": credential.backed_up,
            "aaguid": credential.aaguid,
            "name": credential.name,
            "created_at": credential.created_at,
            "last_used_at": credential.last_used_at,
        }

        async def work() -> bool:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(insert(self.credentials).values(**values))
            except sa_exc.IntegrityError:
                return False
            return True

        return await self._run("add_credential", work)

    async def get_credential(self, credential_id: bytes) -> PasskeyCredential | None:
        query = select(self.credentials).where(
            self.credentials.c.credential_key == credential_key(credential_id)
        )

        async def work() -> PasskeyCredential | None:
            async with self.engine.connect() as conn:
                row = (await conn.execute(query)).first()
            return None if row is None else self._credential(row)

        return await self._run("get_credential", work)

    async def list_credentials(self, user_id: UserId) -> list[PasskeyCredential]:
        user, kind = _encode_user(user_id)
        c = self.credentials.c
        query = (
            select(self.credentials)
            .where(c.user_id == user, c.user_id_type == kind)
            .order_by(c.created_at, c.credential_key)
        )

        async def work() -> list[PasskeyCredential]:
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            return [self._credential(row) for row in rows]

        return await self._run("list_credentials", work)

    async def update_sign_count(
        self, credential_id: bytes, old: int, new: int, backed_up: bool, used_at: float
    ) -> bool:
        c = self.credentials.c
        statement = (
            update(self.credentials)
            .where(c.credential_key == credential_key(credential_id), c.sign_count == old)
            .values(sign_count=new, backed_up=backed_up, last_used_at=used_at)
        )

        async def work() -> bool:
            async with self.engine.begin() as conn:
                return (await conn.execute(statement)).rowcount == 1

        return await self._run("update_sign_count", work)

    async def delete_credential(self, user_id: UserId, credential_id: bytes) -> bool:
        user, kind = _encode_user(user_id)
        c = self.credentials.c
        statement = delete(self.credentials).where(
            c.credential_key == credential_key(credential_id),
            c.user_id == user,
            c.user_id_type == kind,
        )

        async def work() -> bool:
            async with self.engine.begin() as conn:
                return (await conn.execute(statement)).rowcount == 1

        return await self._run("delete_credential", work)

    async def put_challenge(self, ceremony_id: str, challenge: Challenge) -> None:
        user, kind = (None, None) if challenge.user_id is None else _encode_user(challenge.user_id)
        statement = insert(self.challenges).values(
            ceremony_key=ceremony_key(ceremony_id),
            challenge=_b(challenge.challenge),
            purpose=challenge.purpose,
            expires_at=challenge.expires_at,
            user_id=user,
            user_id_type=kind,
            user_handle=None if challenge.user_handle is None else _b(challenge.user_handle),
        )

        async def work() -> None:
            async with self.engine.begin() as conn:
                await conn.execute(statement)

        await self._run("put_challenge", work)

    async def take_challenge(self, ceremony_id: str) -> Challenge | None:
        key = ceremony_key(ceremony_id)
        ch = self.challenges.c

        async def work() -> Challenge | None:
            async with self.engine.begin() as conn:
                if self.engine.dialect.delete_returning:
                    # One statement: the row goes to whoever deletes it, and to no one else.
                    taken = delete(self.challenges).where(ch.ceremony_key == key)
                    row = (await conn.execute(taken.returning(*ch))).first()
                else:
                    query = select(self.challenges).where(ch.ceremony_key == key)
                    row = (await conn.execute(query)).first()
                    if row is not None:
                        # Only the caller whose DELETE removed the row may use it.
                        deleted = await conn.execute(
                            delete(self.challenges).where(ch.ceremony_key == key)
                        )
                        row = row if deleted.rowcount == 1 else None
            if row is None:
                return None
            return Challenge(
                challenge=base64url_to_bytes(row.challenge),
                purpose=row.purpose,
                expires_at=float(row.expires_at),
                user_id=None
                if row.user_id is None
                else _decode_user(row.user_id, row.user_id_type),
                user_handle=None
                if row.user_handle is None
                else base64url_to_bytes(row.user_handle),
            )

        return await self._run("take_challenge", work)

    async def cleanup_expired_challenges(self, now: float) -> int:
        """Delete challenges that expired before ``now``; for a periodic job."""
        statement = delete(self.challenges).where(self.challenges.c.expires_at <= now)

        async def work() -> int:
            async with self.engine.begin() as conn:
                return int((await conn.execute(statement)).rowcount)

        return await self._run("cleanup_expired_challenges", work)
