"""The stores a soak run can use, and how the harness reads each one directly.

- ``redis``: the shared loopback Redis under a key prefix of the run's own, or (for the
  fault cases) a ``redis-server`` of the harness's own with an fsync-always append-only
  file, so a crash loses nothing it acknowledged;
- ``cluster``: 3 masters + 3 replicas started by the harness
  (``fastsecure_redis.testing.start_cluster``), ``cluster-require-full-coverage no``;
- ``postgresql``: the shared loopback PostgreSQL under tables of the run's own, or a
  throw-away server (``fastsecure_sqlalchemy.testing.PostgresServer``) for the faults;
- ``sqlite``: one file, one process: the control.

Each backend counts every user's live sessions *in the store* (not through the app):
one atomic read per user on Redis (a Lua script over the user's index), one statement
(one snapshot) on SQL, sampled while the run goes on; and, at the end with the traffic
stopped, from the raw session records, which also finds a session its user's index
does not list (one the limit could not have seen).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from sqlalchemy import func, select

from fastsecure_redis import user_tag
from fastsecure_redis.testing import Cluster, RedisServer, require_binaries, start_cluster
from fastsecure_sqlalchemy import DatabaseSessionStore
from fastsecure_sqlalchemy.testing import PG_URL, PostgresServer, require_service

SHARED_REDIS = "redis://127.0.0.1:6379/0"

# Live sessions in one user's index, read atomically (one script, one slot): members whose
# session key still exists. The index's own format is documented in fastsecure-redis.
_COUNT_LUA = """
local n = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local sep = string.find(member, ':', 1, true)
  local key = ARGV[1] .. '{' .. string.sub(member, 1, sep - 1) .. '}:s:'
    .. string.sub(member, sep + 1)
  if redis.call('EXISTS', key) == 1 then n = n + 1 end
end
return n
"""


@dataclass
class Backend:
    """A store for one run: started, read, cleaned up."""

    kind: str
    timeout: float = 1.0
    pool: int = 10
    own: bool = False  # a server of the harness's own (fault cases), never the shared one
    wait_replicas: int = 0  # Redis: WAIT for this many replicas after logouts, revocations
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="soak-")))
    prefix: str = ""
    url: str = ""
    redis_server: RedisServer | None = None
    cluster: Cluster | None = None
    postgres: PostgresServer | None = None
    _client: Any = None
    _store: DatabaseSessionStore | None = None

    @property
    def max_processes(self) -> int | None:
        """SQLite is the single-process control."""
        return 1 if self.kind == "sqlite" else None

    def start(self) -> None:
        """Start what the run needs and pick a prefix no other run uses."""
        run = uuid.uuid4().hex[:8]
        if self.kind in ("redis", "cluster"):
            self.prefix = f"soak:{run}:"
            if self.kind == "cluster":
                require_binaries()
                self.cluster = start_cluster(
                    self.directory / "cluster", replicas=1, require_full_coverage=False
                )
                self.url = self.cluster.url
            elif self.own:
                require_binaries()
                self.redis_server = RedisServer(
                    self.directory / "redis",
                    extra=("--appendonly", "yes", "--appendfsync", "always"),
                )
                self.redis_server.start()
                self.url = self.redis_server.url
            else:
                self._require_shared_redis()
                self.url = SHARED_REDIS
        elif self.kind == "postgresql":
            self.prefix = f"soak_{run}_"
            if self.own:
                self.postgres = PostgresServer()
                self.postgres.init()
                with (self.postgres.data / "postgresql.auto.conf").open("a") as conf:
                    conf.write("max_connections = 120\n")  # 4 processes x pool, and psql
                self.postgres.start()
                self.postgres.sql("CREATE ROLE app LOGIN")  # not a superuser
                self.postgres.sql("CREATE DATABASE app OWNER app")
                self.url = self.postgres.url(database="app", user="app")
            else:
                require_service("postgresql")
                self.url = PG_URL
        elif self.kind == "sqlite":
            self.prefix = f"soak_{run}_"
            self.url = f"sqlite+aiosqlite:///{self.directory / 'soak.db'}"
        else:
            raise ValueError(f"unknown store {self.kind!r}")

    def _require_shared_redis(self) -> None:
        from fastsecure.testing import service_unavailable

        client = redis.Redis.from_url(SHARED_REDIS, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        except redis.RedisError as exc:
            service_unavailable(f"Redis at {SHARED_REDIS} is unreachable: {type(exc).__name__}")
        finally:
            client.close()

    def app_env(self, secret: str, limit: int) -> dict[str, str]:
        """The environment of every app process."""
        return {
            "SOAK_STORE": self.kind,
            "SOAK_URL": self.url,
            "SOAK_PREFIX": self.prefix,
            "SOAK_TIMEOUT": str(self.timeout),
            "SOAK_POOL": str(self.pool),
            "SOAK_MAX_SESSIONS": str(limit),
            "SOAK_JWT_SECRET": secret,
            "SOAK_WAIT_REPLICAS": str(self.wait_replicas),
        }

    # --- reading the store directly ------------------------------------------------------

    async def open(self) -> None:
        """Open the harness's own client to the store (after the app created the tables)."""
        if self.kind == "redis":
            self._client = AsyncRedis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        elif self.kind == "cluster":
            self._client = AsyncRedisCluster.from_url(
                self.url, socket_timeout=1, socket_connect_timeout=1
            )
        else:
            self._store = DatabaseSessionStore(
                self.url, table_prefix=self.prefix, operation_timeout=2, connect_timeout=1
            )

    async def close(self) -> None:
        """Close the harness's client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    def _index(self, user: int) -> str:
        return f"{self.prefix}{{{user_tag(user)}}}:u:{json.dumps(user)}"

    async def live_sessions(self, users: list[int] | None) -> dict[int, int]:
        """Live sessions per user, each count one atomic read of the store.

        On SQL one statement counts every user (``users=None``: all of them, not only the
        run's); on Redis each listed user's index is read by one script.
        """
        if self._store is not None:
            sessions = self._store.tables.sessions
            now = datetime.now(UTC)
            stmt = (
                select(sessions.c.user_id, func.count())
                .where(sessions.c.expires_at > now)
                .group_by(sessions.c.user_id)
            )
            async with self._store.engine.connect() as conn:
                rows = (await conn.execute(stmt)).all()
            counts = {int(u): int(n) for u, n in rows if u.isdigit()}
            return counts if users is None else {u: counts.get(u, 0) for u in users}
        assert users is not None, "Redis counts per user"
        script = self._client.register_script(_COUNT_LUA)
        gate = asyncio.Semaphore(32)

        async def one(user: int) -> tuple[int, int]:
            async with gate:
                return user, int(await script(keys=[self._index(user)], args=[self.prefix]))

        return dict(await asyncio.gather(*(one(u) for u in users)))

    async def session_records(self) -> Counter[int]:
        """Every session record in the store, counted per user (traffic must be stopped)."""
        if self._store is not None:
            return Counter(await self.live_sessions(None))
        counts: Counter[int] = Counter()
        pattern = f"{self.prefix}{{*}}:s:*"
        clients = await self._node_clients()
        try:
            for client in clients:
                async for key in client.scan_iter(match=pattern, count=1000):
                    raw = await client.get(key)
                    if raw is not None:
                        counts[int(json.loads(raw)["user_id"])] += 1
        finally:
            if self.kind == "cluster":
                for client in clients:
                    await client.aclose()
        return counts

    async def _node_clients(self) -> list[AsyncRedis]:
        if self.kind != "cluster":
            return [self._client]
        assert self.cluster is not None
        return [
            AsyncRedis(host="127.0.0.1", port=port, socket_timeout=2)
            for port in self.cluster.masters()
        ]

    # --- clean-up ------------------------------------------------------------------------

    async def drop(self) -> None:
        """Remove the run's keys or tables from a shared server."""
        if self.kind == "redis" and not self.own and self._client is not None:
            async for key in self._client.scan_iter(match=self.prefix + "*", count=1000):
                await self._client.delete(key)
        elif self.kind == "postgresql" and not self.own and self._store is not None:
            await self._store.drop_tables()

    def stop(self) -> None:
        """Stop the servers this backend started and delete its files."""
        try:
            if self.cluster is not None:
                self.cluster.resume()
                self.cluster.stop()
            if self.redis_server is not None:
                if self.redis_server.process is not None:
                    os.kill(self.redis_server.process.pid, signal.SIGCONT)
                self.redis_server.stop()
            if self.postgres is not None:
                self.postgres.destroy()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def new_secret() -> str:
    """A JWT signing key for one run."""
    return secrets.token_urlsafe(48)
