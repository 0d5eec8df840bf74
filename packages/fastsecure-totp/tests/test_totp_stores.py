"""Every TotpStore keeps the contract: memory, SQLite, PostgreSQL, MariaDB and Redis alike."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest

from fastsecure import StoreUnavailableError
from fastsecure.ratelimit import Backoff
from fastsecure.testing import service_unavailable
from fastsecure_totp import MemoryTotpStore, SecretCipher, TotpProvider, TotpStore

PG_URL = os.environ.get(
    "FASTSECURE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "FASTSECURE_TEST_MARIADB_URL", "mysql+aiomysql://root@127.0.0.1:3306/test"
)
PORTS = {"postgresql": 5432, "mariadb": 3306, "redis": 6379}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


DRIVERS = {
    "sqlite": ("sqlalchemy", "aiosqlite"),
    "postgresql": ("sqlalchemy", "asyncpg"),
    "mariadb": ("sqlalchemy", "aiomysql"),
    "redis": ("redis",),
}


def _drivers(kind: str) -> None:
    """The optional extra's packages; absent only in an isolated run of this package alone."""
    for module in DRIVERS[kind]:
        pytest.importorskip(module, reason=f"{module} (the store's extra) is not installed")


def _require(port: int, what: str) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return
    except OSError:
        service_unavailable(f"{what} is not reachable on 127.0.0.1:{port}")


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TotpStore]:
    kind = request.param
    if kind == "memory":
        yield MemoryTotpStore()
        return
    _drivers(kind)
    if kind == "redis":
        _require(PORTS["redis"], "Redis")
        from redis.asyncio import Redis

        from fastsecure_totp.redis import RedisTotpStore

        client = Redis(host="127.0.0.1", port=6379)
        prefix = f"fsf-test:{secrets.token_hex(4)}:"
        try:
            yield RedisTotpStore(client, key_prefix=prefix)
        finally:
            keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
        return
    from sqlalchemy.ext.asyncio import create_async_engine

    from fastsecure_totp.sql import SqlTotpStore

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'totp.db'}"
    else:
        _require(PORTS[kind], kind)
        url = PG_URL if kind == "postgresql" else MARIADB_URL
    engine = create_async_engine(url)
    sql = SqlTotpStore(engine, table_prefix=f"fsf_{secrets.token_hex(4)}_")
    await sql.create_tables()
    try:
        yield sql
    finally:
        await sql.drop_tables()
        await engine.dispose()


async def test_enrolment_lifecycle(store: TotpStore) -> None:
    assert await store.get(42) is None
    await store.set_pending(42, "pending-1", NOW)
    record = await store.get(42)
    assert record is not None and record.pending_secret == "pending-1"
    assert record.pending_created_at == NOW and not record.enrolled
    assert not await store.confirm(42, "other", 10, NOW)
    assert await store.confirm(42, "pending-1", 10, NOW)
    record = await store.get(42)
    assert record is not None and record.secret == "pending-1" and record.last_step == 10
    assert record.pending_secret is None and record.confirmed_at == NOW
    # A new enrolment pends beside the confirmed secret.
    await store.set_pending(42, "pending-2", NOW)
    record = await store.get(42)
    assert record is not None and (record.secret, record.pending_secret) == (
        "pending-1",
        "pending-2",
    )
    assert await store.get("42") is None  # another user


async def test_steps_only_move_forward(store: TotpStore) -> None:
    assert not await store.use_step(42, 5)  # not enrolled
    await store.set_pending(42, "s", NOW)
    assert not await store.use_step(42, 5)  # pending only
    assert await store.confirm(42, "s", 10, NOW)
    assert not await store.use_step(42, 10)
    assert not await store.use_step(42, 9)
    assert await store.use_step(42, 11)
    results = await asyncio.gather(*(store.use_step(42, 12) for _ in range(10)))
    assert sum(results) == 1


async def test_recovery_codes(store: TotpStore) -> None:
    await store.replace_recovery_codes(42, ["a" * 64, "b" * 64, "c" * 64])
    assert await store.count_recovery_codes(42) == 3
    assert await store.use_recovery_code(42, "a" * 64)
    assert not await store.use_recovery_code(42, "a" * 64)
    assert not await store.use_recovery_code("42", "b" * 64)
    results = await asyncio.gather(*(store.use_recovery_code(42, "b" * 64) for _ in range(10)))
    assert sum(results) == 1
    await store.replace_recovery_codes(42, ["d" * 64])
    assert await store.count_recovery_codes(42) == 1
    assert not await store.use_recovery_code(42, "c" * 64)


async def test_delete(store: TotpStore) -> None:
    await store.set_pending(42, "s", NOW)
    await store.confirm(42, "s", 1, NOW)
    await store.replace_recovery_codes(42, ["a" * 64])
    assert await store.delete(42)
    assert await store.get(42) is None and await store.count_recovery_codes(42) == 0
    assert not await store.delete(42)


async def test_provider_on_each_store(store: TotpStore) -> None:
    clock = [1_700_000_010.0]
    provider = TotpProvider(
        SecretCipher.generate_key(),
        issuer="Example",
        store=store,
        clock=lambda: clock[0],
        backoff=Backoff(limit=50),
    )
    enrolment = await provider.begin_enrolment(42, "ada")
    app = pyotp.TOTP(enrolment.secret)
    assert await provider.confirm_enrolment(42, app.at(clock[0]))
    clock[0] += 30
    code = app.at(clock[0])
    results = await asyncio.gather(
        *(provider.authenticate({"user_id": 42, "code": code}) for _ in range(8))
    )
    assert sum(r.success for r in results) == 1
    recovery = await provider.generate_recovery_codes(42)
    assert (await provider.authenticate({"user_id": 42, "recovery_code": recovery[3]})).success
    assert await provider.remaining_recovery_codes(42) == 9


async def test_a_dead_backend_is_unavailable_not_invalid() -> None:
    _drivers("postgresql")
    _drivers("redis")
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import create_async_engine

    from fastsecure_totp.redis import RedisTotpStore
    from fastsecure_totp.sql import SqlTotpStore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = create_async_engine(
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none", connect_args={"timeout": 2}
    )
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=2)
    try:
        for dead in (SqlTotpStore(engine, operation_timeout=3), RedisTotpStore(client)):
            with pytest.raises(StoreUnavailableError):
                await dead.use_step(42, 1)
            provider = TotpProvider(SecretCipher.generate_key(), issuer="Example", store=dead)
            with pytest.raises(StoreUnavailableError):
                await provider.authenticate({"user_id": 42, "code": "123456"})
    finally:
        await engine.dispose()
        await client.aclose()
