"""TOTP enrolments in the application's relational database, through SQLAlchemy's asyncio engine.

Needs the ``sqlalchemy`` extra and an async driver (aiosqlite, asyncpg, aiomysql). The
engine is the application's: this store never creates or disposes of one. Each atomic
operation of the contract is one conditional statement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

try:
    from sqlalchemy import (
        BigInteger,
        Column,
        Double,
        MetaData,
        String,
        Table,
        Text,
        delete,
        func,
        insert,
        or_,
        select,
        update,
    )
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.ext.asyncio import AsyncEngine
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "SqlTotpStore needs SQLAlchemy: pip install 'fastsecure-totp[sqlalchemy]'"
    ) from exc

from fastsecure import StoreUnavailableError
from fastsecure.results import UserId

from .store import TotpRecord, TotpStore

logger = logging.getLogger("fastsecure.totp")
T = TypeVar("T")
USER_ID_LENGTH = 255


def define_tables(metadata: MetaData, prefix: str = "fastsecure_") -> tuple[Table, Table]:
    """The enrolment and recovery-code tables, on the app's ``MetaData`` (for Alembic)."""
    enrolments = Table(
        f"{prefix}totp",
        metadata,
        Column("user_id", String(USER_ID_LENGTH), primary_key=True),
        Column("user_id_type", String(8), primary_key=True),
        Column("secret", Text, nullable=True),
        Column("pending_secret", Text, nullable=True),
        Column("pending_created_at", Double, nullable=True),
        Column("confirmed_at", Double, nullable=True),
        Column("last_step", BigInteger, nullable=True),
    )
    codes = Table(
        f"{prefix}totp_recovery_codes",
        metadata,
        Column("user_id", String(USER_ID_LENGTH), primary_key=True),
        Column("user_id_type", String(8), primary_key=True),
        Column("code_hash", String(64), primary_key=True),
    )
    return enrolments, codes


def _encode_user(user_id: UserId) -> tuple[str, str]:
    if isinstance(user_id, bool) or not isinstance(user_id, int | str):
        raise TypeError("user_id must be an int or a str")
    value, kind = (str(user_id), "int") if isinstance(user_id, int) else (user_id, "str")
    if len(value) > USER_ID_LENGTH:
        raise ValueError(f"user_id longer than {USER_ID_LENGTH} characters")
    return value, kind


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


class SqlTotpStore(TotpStore):
    """TOTP enrolments and recovery-code hashes in two tables of the app's database.

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
        self.enrolments, self.codes = define_tables(self.metadata, table_prefix)
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
        except (sa_exc.SQLAlchemyError, OSError, TimeoutError) as exc:
            logger.warning("fastsecure.totp: %s failed (%s)", operation, type(exc).__name__)
            raise StoreUnavailableError(f"TOTP store unavailable during {operation}") from exc

    def _user(self, table: Table, user_id: UserId) -> Any:
        user, kind = _encode_user(user_id)
        return (table.c.user_id == user) & (table.c.user_id_type == kind)

    async def get(self, user_id: UserId) -> TotpRecord | None:
        query = select(self.enrolments).where(self._user(self.enrolments, user_id))

        async def work() -> TotpRecord | None:
            async with self.engine.connect() as conn:
                row = (await conn.execute(query)).first()
            if row is None:
                return None
            return TotpRecord(
                secret=row.secret,
                pending_secret=row.pending_secret,
                pending_created_at=_dt(row.pending_created_at),
                confirmed_at=_dt(row.confirmed_at),
                last_step=None if row.last_step is None else int(row.last_step),
            )

        return await self._run("get", work)

    async def set_pending(self, user_id: UserId, secret: str, created_at: datetime) -> None:
        user, kind = _encode_user(user_id)
        values = {"pending_secret": secret, "pending_created_at": _ts(created_at)}
        where = self._user(self.enrolments, user_id)

        async def work() -> None:
            for _ in range(2):
                async with self.engine.begin() as conn:
                    changed = await conn.execute(
                        update(self.enrolments).where(where).values(values)
                    )
                    if changed.rowcount == 1:
                        return
                try:
                    async with self.engine.begin() as conn:
                        await conn.execute(
                            insert(self.enrolments).values(
                                user_id=user, user_id_type=kind, **values
                            )
                        )
                    return
                except sa_exc.IntegrityError:
                    continue  # inserted meanwhile by a parallel enrolment: update it
            raise StoreUnavailableError("TOTP store could not record the enrolment")

        await self._run("set_pending", work)

    async def confirm(
        self, user_id: UserId, secret: str, step: int, confirmed_at: datetime
    ) -> bool:
        c = self.enrolments.c
        statement = (
            update(self.enrolments)
            .where(self._user(self.enrolments, user_id), c.pending_secret == secret)
            .values(
                secret=secret,
                pending_secret=None,
                pending_created_at=None,
                confirmed_at=_ts(confirmed_at),
                last_step=step,
            )
        )
        return await self._changed_one("confirm", statement)

    async def use_step(self, user_id: UserId, step: int) -> bool:
        c = self.enrolments.c
        statement = (
            update(self.enrolments)
            .where(
                self._user(self.enrolments, user_id),
                c.secret.is_not(None),
                or_(c.last_step.is_(None), c.last_step < step),
            )
            .values(last_step=step)
        )
        return await self._changed_one("use_step", statement)

    async def _changed_one(self, operation: str, statement: Any) -> bool:
        async def work() -> bool:
            async with self.engine.begin() as conn:
                return (await conn.execute(statement)).rowcount == 1

        return await self._run(operation, work)

    async def delete(self, user_id: UserId) -> bool:
        async def work() -> bool:
            async with self.engine.begin() as conn:
                codes = await conn.execute(
                    delete(self.codes).where(self._user(self.codes, user_id))
                )
                enrolment = await conn.execute(
                    delete(self.enrolments).where(self._user(self.enrolments, user_id))
                )
            return bool(codes.rowcount or enrolment.rowcount)

        return await self._run("delete", work)

    async def replace_recovery_codes(self, user_id: UserId, code_hashes: Sequence[str]) -> None:
        user, kind = _encode_user(user_id)
        rows = [{"user_id": user, "user_id_type": kind, "code_hash": h} for h in set(code_hashes)]

        async def work() -> None:
            async with self.engine.begin() as conn:
                await conn.execute(delete(self.codes).where(self._user(self.codes, user_id)))
                if rows:
                    await conn.execute(insert(self.codes), rows)

        await self._run("replace_recovery_codes", work)

    async def use_recovery_code(self, user_id: UserId, code_hash: str) -> bool:
        statement = delete(self.codes).where(
            self._user(self.codes, user_id), self.codes.c.code_hash == code_hash
        )
        return await self._changed_one("use_recovery_code", statement)

    async def count_recovery_codes(self, user_id: UserId) -> int:
        query = select(func.count()).select_from(self.codes).where(self._user(self.codes, user_id))

        async def work() -> int:
            async with self.engine.connect() as conn:
                return int((await conn.execute(query)).scalar_one())

        return await self._run("count_recovery_codes", work)
