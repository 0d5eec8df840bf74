"""The Redis session and token store (redis.asyncio), single node and Cluster."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, Union

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from fastsecure import ConfigurationError, StoreUnavailableError
from fastsecure.results import UserId
from fastsecure.stores import (
    SessionCreation,
    SessionRecord,
    SessionStore,
    TokenStore,
    as_utc,
    hash_session_id,
    utcnow,
)

from . import _lua
from ._errors import FailureLog

try:  # redis-py >= 5.0.1 ships the asyncio Retry here
    from redis.asyncio.retry import Retry
except ImportError:  # pragma: no cover - older redis-py
    from redis.retry import Retry  # type: ignore[assignment]

logger = logging.getLogger("fastsecure.redis")

RedisClient = Union["Redis", "RedisCluster"]

DEFAULT_TAG = "-"
"""Hash tag for session ids that carry none (minted outside :meth:`generate_session_id`)."""

# The tag follows the first dot of a URL-safe random part; anything after it is ignored
# for routing (it is still hashed into the key), so odd suffixes stay in the user's slot.
_TAGGED_ID = re.compile(r"\A[A-Za-z0-9_-]+\.([0-9a-f]{10})")
_HANDLE = re.compile(r"\A(-|[0-9a-f]{10}):([0-9a-f]{64})\Z")
_STAMP_WIDTH = 32  # len("2024-01-01T00:00:00.000000+00:00"), relied on by the TOUCH script
DRIVER_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)
"""What a store call may raise that means "Redis cannot answer" (all of it: 503)."""


def user_tag(user_id: UserId) -> str:
    """The Cluster hash tag of a user: the first 10 hex digits of SHA-256 of ``str(user_id)``.

    Ten hex digits spread users over all 16384 slots while keeping keys short; the tag is
    not secret (it only routes) and reveals nothing useful about the user id.
    """
    return hashlib.sha256(str(user_id).encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _stamp(value: datetime) -> str:
    text = as_utc(value).astimezone(UTC).isoformat(timespec="microseconds")
    if len(text) != _STAMP_WIDTH:
        raise ValueError(f"timestamp out of range: {text}")
    return text


def _ttl_ms(expires_at: datetime) -> int:
    """Milliseconds until ``expires_at`` by this process's clock.

    Relative expiry (PX) keeps the app's notion of time even when Redis's clock differs.
    """
    return math.ceil((as_utc(expires_at) - utcnow()).total_seconds() * 1000)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _escape_glob(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def _check_prefix(prefix: object) -> str:
    """An explicit, app-specific key prefix: the namespace that keeps apps' sessions apart."""
    if prefix is None:
        raise ConfigurationError(
            "RedisSessionStore needs prefix= (for example 'myapp:'), one per application: "
            "two apps that share a Redis database and a prefix accept each other's "
            "session cookies and see each other's revocations"
        )
    if not isinstance(prefix, str) or not prefix.strip():
        raise ConfigurationError("the Redis key prefix must be a non-empty string")
    if "{" in prefix or "}" in prefix:
        # A brace would become the hash tag of every key and pin the whole app to one
        # Cluster slot (and defeat the per-user tags the atomic scripts rely on).
        raise ConfigurationError("the Redis key prefix must not contain '{' or '}'")
    return prefix


class RedisSessionStore(SessionStore, TokenStore):
    """Sessions, revoked token ids and refresh-token families in Redis.

    One object serves both roles, so a session provider and a JWT provider can share a
    connection pool. Values are JSON; session keys hold ``sha256(session id)``, never the
    id; every key expires natively.

    Args:
        url: a ``redis://`` or ``rediss://`` URL, used when ``client`` is not given. The
            connection is opened lazily on first use, so constructing needs no server.
        client: an existing ``redis.asyncio.Redis`` or ``RedisCluster``; the caller keeps
            ownership (``aclose`` does not close it).
        prefix: prepended to every key; required, one per application. Two apps on one
            Redis database with the same prefix would accept each other's session
            cookies, so there is no default. No ``{`` or ``}`` (Cluster hash tags).
        socket_timeout: seconds one store call may take, all of it: the wait for a
            pooled connection, every retry and the Cluster slot-map refresh included;
            past it the call raises :class:`~fastsecure.StoreUnavailableError` (503).
            Also each socket read's timeout.
        socket_connect_timeout: seconds a connection attempt may take.
        cluster: build a ``RedisCluster`` from ``url`` instead of a single-node client.
        max_connections: connection pool size (per node on Cluster). When all are busy a
            caller waits for one, within its ``socket_timeout``, so a burst queues
            instead of failing.
        **client_options: passed to ``from_url`` (``ssl_*``, ``retry``...). A ``retry``
            given here replaces the default (one immediate retry on a connection error).
    """

    store_type: ClassVar[str] = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Redis | RedisCluster | None = None,
        prefix: str | None = None,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        cluster: bool = False,
        max_connections: int = 50,
        **client_options: Any,
    ) -> None:
        if client is not None and url is not None:
            raise ConfigurationError("pass either a Redis URL or a client, not both")
        if socket_timeout <= 0:
            raise ConfigurationError("socket_timeout must be positive")
        self.prefix = _check_prefix(prefix)
        self._owns_client = client is None
        self._gate: asyncio.Semaphore | None = None
        self._deadline = socket_timeout
        self._init_lock = asyncio.Lock()
        if client is None:
            options: dict[str, Any] = {
                "socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_connect_timeout,
                # One immediate retry on a dropped connection (a pooled socket that died
                # with a restart; on Cluster, after re-reading the slot map). Never on a
                # timeout, never with back-off: the call's deadline is socket_timeout.
                "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                **client_options,
            }
            url = url or "redis://localhost:6379/0"
            if cluster:
                client = RedisCluster.from_url(url, max_connections=max_connections, **options)
            else:
                pool = BlockingConnectionPool.from_url(
                    url, max_connections=max_connections, timeout=socket_timeout, **options
                )
                try:
                    # Builds without connecting: a misspelled option fails start-up here
                    # instead of every later call (as RedisCluster's constructor does).
                    pool.make_connection()  # type: ignore[no-untyped-call]
                except TypeError as exc:
                    raise ConfigurationError(f"Redis client options: {exc}") from None
                client = Redis.from_pool(pool)
        self._client: Redis | RedisCluster = client
        self._cluster = isinstance(client, RedisCluster)
        if self._cluster:
            # redis-py's Cluster pools raise when full instead of waiting; this gate makes
            # a burst queue as the single-node BlockingConnectionPool does.
            self._gate = asyncio.Semaphore(max_connections)
        self._failures = FailureLog("redis")
        # Registered once: each call sends EVALSHA and loads the source only on NOSCRIPT.
        self._create = client.register_script(_lua.CREATE)
        self._list = client.register_script(_lua.LIST)
        self._prune = client.register_script(_lua.PRUNE)
        self._delete_user = client.register_script(_lua.DELETE_USER)
        self._rotate = client.register_script(_lua.ROTATE)
        self._touch = client.register_script(_lua.TOUCH)
        self._update = client.register_script(_lua.UPDATE)

    @asynccontextmanager
    async def _guard(self, operation: str, *, bounded: bool = True) -> AsyncIterator[None]:
        """One store call: bounded by ``socket_timeout`` as a whole, failures mapped to 503.

        The deadline covers everything the call waits on (the Cluster gate, the slot-map
        load, redis-py's retries and their refreshes), so the configured timeout is the
        answer time whatever the retry policy. Every driver error becomes
        :class:`~fastsecure.StoreUnavailableError` through :mod:`._errors`.
        """
        try:
            async with asyncio.timeout(self._deadline if bounded else None):
                if self._gate is None:
                    yield
                else:
                    if getattr(self._client, "_initialize", False):
                        await self._initialize_cluster()
                    async with self._gate:
                        yield
        except StoreUnavailableError:
            raise
        except DRIVER_ERRORS as exc:
            raise self._failures.unavailable(operation, exc) from exc
        if self._failures.failing:
            self._failures.recovered()

    async def _initialize_cluster(self) -> None:
        # redis-py's Cluster client races when many first commands arrive before it has
        # read the slot map; load it once, behind a lock, before the first command.
        # It flags itself for re-initialisation after a topology error, so check each time.
        async with self._init_lock:
            if getattr(self._client, "_initialize", False):
                assert isinstance(self._client, RedisCluster)
                await self._client.initialize()

    @property
    def client(self) -> Redis | RedisCluster:
        """The redis.asyncio client in use."""
        return self._client

    # --- keys ---------------------------------------------------------------------------

    def _session_tag(self, session_id: str) -> str:
        match = _TAGGED_ID.match(session_id)
        return match.group(1) if match else DEFAULT_TAG

    def _handle(self, session_id: str) -> str:
        return f"{self._session_tag(session_id)}:{hash_session_id(session_id)}"

    def _key_of_handle(self, handle: str) -> str:
        tag, _, digest = handle.partition(":")
        return f"{self.prefix}{{{tag}}}:s:{digest}"

    def session_key_name(self, session_id: str) -> str:
        """The Redis key of a session id: ``<prefix>{<tag>}:s:<sha256 of the id>``."""
        return self._key_of_handle(self._handle(session_id))

    def user_index_name(self, user_id: UserId) -> str:
        """The Redis key of a user's session index (a sorted set scored by creation time).

        The user id is JSON-encoded so ``42`` and ``"42"`` stay different users.
        """
        return f"{self.prefix}{{{user_tag(user_id)}}}:u:{json.dumps(user_id)}"

    def _token_key(self, kind: str, name: str) -> str:
        return f"{self.prefix}t:{kind}:{name}"

    def _same_slot(self, user_id: UserId, *session_ids: str) -> None:
        """On Cluster, refuse ids whose tag does not route them to the user's slot.

        Lua needs every key in one slot; an id minted without :meth:`generate_session_id`
        would put the session in another slot than the user's index.
        """
        if not self._cluster:
            return
        expected = user_tag(user_id)
        if any(self._session_tag(sid) != expected for sid in session_ids):
            raise ConfigurationError(
                "on Redis Cluster, session ids must come from "
                "RedisSessionStore.generate_session_id(user_id) so a user's keys share a slot"
            )

    # --- sessions -----------------------------------------------------------------------

    def generate_session_id(self, user_id: UserId) -> str:
        """256 random bits, URL-safe, plus ``.<tag>`` naming the user's hash slot.

        The tag routes the session key to the slot of the user's index, so Lua scripts
        stay atomic on Cluster while a lookup stays one GET.
        """
        return f"{secrets.token_urlsafe(32)}.{user_tag(user_id)}"

    def _encode(
        self,
        user_id: UserId,
        created_at: datetime,
        expires_at: datetime,
        metadata: dict[str, Any],
    ) -> str:
        # Field order matters: the TOUCH and UPDATE scripts edit the first and last field.
        created = _stamp(created_at)
        return (
            f'{{"last_seen":"{created}","created_at":"{created}",'
            f'"expires_at":"{_stamp(expires_at)}","user_id":{json.dumps(user_id)},'
            f'"metadata":{self._dump(metadata)}}}'
        )

    @staticmethod
    def _dump(metadata: dict[str, Any]) -> str:
        return json.dumps(metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def _decode(self, handle: str, raw: bytes | str | None) -> SessionRecord | None:
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return {
                "user_id": data["user_id"],
                "created_at": datetime.fromisoformat(data["created_at"]),
                "expires_at": datetime.fromisoformat(data["expires_at"]),
                "last_seen": datetime.fromisoformat(data["last_seen"]),
                "metadata": data["metadata"],
                "session_key": handle,
            }
        except (ValueError, KeyError, TypeError):
            logger.error("unreadable session record under handle %s", handle)
            return None

    async def create_session(
        self, user_id: UserId, session_id: str, expires_at: datetime, metadata: dict[str, Any]
    ) -> bool:
        """Store a new session with native expiry and index it; False on an id collision."""
        result = await self.create_session_limited(
            user_id, session_id, expires_at, metadata, max_sessions=None
        )
        return result.created

    async def create_session_limited(
        self,
        user_id: UserId,
        session_id: str,
        expires_at: datetime,
        metadata: dict[str, Any],
        *,
        max_sessions: int | None,
        evict_oldest: bool = True,
    ) -> SessionCreation:
        """Create a session and enforce ``max_sessions`` in one Lua script (atomic).

        The script prunes the user's index of dead ids, then evicts the oldest live
        sessions (or refuses), then stores the new one: concurrent logins from any number
        of processes cannot exceed the limit.
        """
        self._same_slot(user_id, session_id)
        now = utcnow()
        handle = self._handle(session_id)
        value = self._encode(user_id, now, expires_at, metadata)
        # An already-expired session is stored for 1 ms: it exists, then expires natively.
        ttl = max(_ttl_ms(expires_at), 1)
        async with self._guard("create_session"):
            reply = await self._create(
                keys=[self.user_index_name(user_id), self._key_of_handle(handle)],
                args=[
                    self.prefix,
                    handle,
                    value,
                    ttl,
                    int(now.timestamp() * 1000),
                    max_sessions if max_sessions and max_sessions > 0 else 0,
                    "1" if evict_oldest else "0",
                ],
            )
        evicted = []
        for i in range(1, len(reply) - 1, 2):
            record = self._decode(_text(reply[i]), reply[i + 1])
            if record is not None:
                evicted.append(record)
        return SessionCreation(created=int(reply[0]) == 1, evicted=tuple(evicted))

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """One GET; expired sessions are gone (Redis expires them natively)."""
        handle = self._handle(session_id)
        async with self._guard("get_session"):
            raw = await self._client.get(self._key_of_handle(handle))
        return self._decode(handle, raw)

    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        """Replace the metadata in place, keeping the expiry; False when the id is unknown."""
        document = self._dump(metadata)
        async with self._guard("update_session"):
            reply = await self._update(keys=[self.session_key_name(session_id)], args=[document])
        return int(reply) == 1

    async def touch_session(self, session_id: str, last_seen: datetime) -> bool:
        """Record ``last_seen`` in one round trip; the provider calls it once per interval."""
        async with self._guard("touch_session"):
            reply = await self._touch(
                keys=[self.session_key_name(session_id)], args=[_stamp(last_seen)]
            )
        return int(reply) == 1

    async def delete_session(self, session_id: str) -> bool:
        """One DEL; the user index drops the id on its next prune."""
        async with self._guard("delete_session"):
            deleted = await self._client.delete(self.session_key_name(session_id))
        return int(deleted) > 0

    async def delete_session_by_key(self, session_key: str) -> bool:
        """Delete by the ``session_key`` handle that :meth:`get_user_sessions` listed."""
        if not _HANDLE.match(session_key):
            return False
        async with self._guard("delete_session"):
            deleted = await self._client.delete(self._key_of_handle(session_key))
        return int(deleted) > 0

    async def rotate_session(self, old_session_id: str, new_session_id: str) -> bool:
        """Move a live session to a new id, keeping data, creation time and expiry.

        One GET learns the user (its index key); one Lua step then copies, deletes the old
        key and re-indexes atomically.
        """
        old, new = self._handle(old_session_id), self._handle(new_session_id)
        async with self._guard("rotate_session"):
            record = self._decode(old, await self._client.get(self._key_of_handle(old)))
            if record is None:
                return False
            user_id = record["user_id"]
            self._same_slot(user_id, old_session_id, new_session_id)
            reply = await self._rotate(
                keys=[
                    self._key_of_handle(old),
                    self._key_of_handle(new),
                    self.user_index_name(user_id),
                ],
                args=[self.prefix, old, new, int(utcnow().timestamp() * 1000)],
            )
        return int(reply) == 1

    async def get_user_sessions(self, user_id: UserId) -> list[SessionRecord]:
        """The user's live sessions, oldest first; dead ids are pruned on the way."""
        async with self._guard("get_user_sessions"):
            reply = await self._list(keys=[self.user_index_name(user_id)], args=[self.prefix])
        records = []
        for i in range(0, len(reply) - 1, 2):
            record = self._decode(_text(reply[i]), reply[i + 1])
            if record is not None:
                records.append(record)
        return records

    async def delete_user_sessions(self, user_id: UserId) -> int:
        """Log out everywhere in one Lua step; returns how many live sessions went."""
        async with self._guard("delete_user_sessions"):
            reply = await self._delete_user(
                keys=[self.user_index_name(user_id)], args=[self.prefix]
            )
        return int(reply)

    async def cleanup_expired_sessions(self) -> int:
        """Prune every user index of expired or deleted ids; returns how many were removed.

        Session keys expire natively; only the indexes need this. SCAN walks every
        primary on Cluster; each index is pruned by one script on its own slot.
        """
        pattern = f"{_escape_glob(self.prefix)}{{*}}:u:*"
        removed = 0
        # A maintenance walk over every index: each command is bounded, the walk is not.
        async with self._guard("cleanup_expired_sessions", bounded=False):
            async for index in self._client.scan_iter(match=pattern, count=500):
                removed += int(await self._prune(keys=[index], args=[self.prefix]))
        return removed

    # --- tokens -------------------------------------------------------------------------

    async def revoke_token(self, jti: str, expires_at: datetime) -> None:
        """Mark ``jti`` revoked until ``expires_at`` (nothing to do once it has passed)."""
        ttl = _ttl_ms(expires_at)
        if ttl <= 0:
            return
        async with self._guard("revoke_token"):
            await self._client.set(self._token_key("r", jti), b"1", px=ttl)

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        """Mark a refresh-token family revoked until ``expires_at``."""
        ttl = _ttl_ms(expires_at)
        if ttl <= 0:
            return
        async with self._guard("revoke_family"):
            await self._client.set(self._token_key("f", family_id), b"1", px=ttl)

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        """One EXISTS over both keys (on Cluster redis-py runs one per slot, concurrently)."""
        keys = [self._token_key("r", jti)]
        if family_id is not None:
            keys.append(self._token_key("f", family_id))
        async with self._guard("is_revoked"):
            found = await self._client.exists(*keys)
        return int(found) > 0

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        """``SET NX PX``: exactly one caller wins; an expired token is never consumable."""
        ttl = _ttl_ms(expires_at)
        if ttl <= 0:
            return False
        async with self._guard("consume_refresh_token"):
            won = await self._client.set(self._token_key("u", jti), b"1", px=ttl, nx=True)
        return bool(won)

    async def cleanup_expired_tokens(self) -> int:
        """Nothing to do: token entries expire natively; returns 0."""
        return 0

    # --- lifecycle ----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool if this store created it."""
        if self._owns_client:
            async with self._guard("aclose"):
                await self._client.aclose()
