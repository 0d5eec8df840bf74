"""N processes call ``create_tables()`` at once on an empty database: every one starts.

Issue 25: with ``await store.create_tables()`` in the lifespan and four uvicorn workers,
4 of 8 starts died (``relation ... already exists``, a duplicate key on
``pg_type_typname_nsp_index``): ``create_all`` checks, then creates, and races across
processes. Here 4 processes are released together by a barrier, 3 times per backend,
each time on a fresh schema (PostgreSQL), database (MariaDB) or file (SQLite) that is
dropped afterwards; the shared servers are touched nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from fastsecure.stores import utcnow
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy.testing import MARIADB_URL, PG_URL, require_service

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

N = 4  # processes starting together
K = 3  # repetitions, each on an empty schema
WORKER = Path(__file__).with_name("create_tables_worker.py")


@asynccontextmanager
async def empty_database(
    backend: str, directory: Path
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A URL and engine options naming an empty schema/database/file of our own."""
    name = f"fsrace_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'{name}.db'}", {}
        return
    admin = create_async_engine(
        PG_URL if backend == "postgresql" else MARIADB_URL, isolation_level="AUTOCOMMIT"
    )
    kind = "SCHEMA" if backend == "postgresql" else "DATABASE"
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f"CREATE {kind} {name}")
        try:
            if backend == "postgresql":
                options = {"connect_args": {"server_settings": {"search_path": name}}}
                yield PG_URL, options
            else:
                yield MARIADB_URL.rsplit("/", 1)[0] + f"/{name}", {}
        finally:
            async with admin.connect() as conn:
                cascade = " CASCADE" if backend == "postgresql" else ""
                await conn.exec_driver_sql(f"DROP {kind} IF EXISTS {name}{cascade}")
    finally:
        await admin.dispose()


class Workers:
    """N long-lived worker processes; each round starts them together on one database."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self) -> None:
        for _ in range(N):
            self.processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(WORKER),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            )

    async def _send(self, line: str) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.write(line.encode() + b"\n")
            await process.stdin.drain()

    async def _read(self) -> list[str]:
        lines = []
        for process in self.processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), 120)
            lines.append(line.decode().strip() or f"exited {process.returncode}")
        return lines

    async def race(self, url: str, engine_options: dict[str, Any]) -> list[str]:
        """Every worker connects, then all are released at once into ``create_tables()``."""
        config = {"url": url, "prefix": "fastsecure_", "engine_options": engine_options}
        await self._send(json.dumps(config))
        ready = await self._read()
        assert ready == ["ready"] * N, ready
        await self._send("go")
        return await self._read()

    async def stop(self) -> None:
        for process in self.processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb", "sqlite"])
async def test_processes_starting_together_all_start(backend: str, tmp_path: Path) -> None:
    require_service(backend)
    workers = Workers()
    await workers.start()
    failed: list[str] = []
    try:
        for _ in range(K):
            async with empty_database(backend, tmp_path) as (url, options):
                failed += [o for o in await workers.race(url, options) if o != "ok"]
                store = DatabaseSessionStore(url, engine_options=options)
                try:  # the tables are there and complete
                    sid = "s" * 43
                    assert await store.create_session(1, sid, utcnow() + timedelta(hours=1), {})
                    assert await store.get_session(sid) is not None
                    assert not await store.is_revoked("jti", "family")
                finally:
                    await store.aclose()
    finally:
        await workers.stop()
    print(f"\nRACE {backend}: {N} processes x {K} repetitions, {len(failed)} failed starts")
    assert failed == [], failed
