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
    AccessCheck,
    Rotation,
    SessionCreation,
    SessionRecord,
    SessionStore,
    TokenStore,
    as_utc,
    hash_session_id,
    new_generation_id,
    utcnow,
)

from . import _lua
from ._errors import FailureLog, ReplicasBehind

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
# A user-index entry is pruned at a login only this long after its family's expiry by the
# login's clock, so a clock ahead of the others cannot drop a live family's entry.
_PRUNE_MARGIN_MS = 5 * 60 * 1000
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
        wait_replicas: after every write that ends something (a logout, a revocation, a
            refresh-token rotation, a deleted or rotated session), wait until this many
            replicas acknowledged it (Redis ``WAIT``); fewer within ``wait_timeout`` is
            :class:`~fastsecure.StoreUnavailableError` (503: the logout may not survive a
            fail-over, so it is not reported done). ``0`` (the default) does not wait:
            the write is on the primary only until replication catches up. Single-node
            clients only (``WAIT`` must follow the write on its connection).
        wait_timeout: seconds ``WAIT`` may take; counted inside ``socket_timeout``.
        **client_options: passed to ``from_url`` (``ssl_*``, ``retry``...). A ``retry``
            given here replaces the default (one immediate retry on a connection error).
    """

    store_type: ClassVar[str] = "redis"
    loss_safe: ClassVar[bool] = True
    tracks_users: ClassVar[bool] = True

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
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
        **client_options: Any,
    ) -> None:
        if client is not None and url is not None:
            raise ConfigurationError("pass either a Redis URL or a client, not both")
        if socket_timeout <= 0:
            raise ConfigurationError("socket_timeout must be positive")
        if isinstance(wait_replicas, bool) or not isinstance(wait_replicas, int):
            raise ConfigurationError("wait_replicas must be an int")
        if wait_replicas < 0:
            raise ConfigurationError("wait_replicas must be >= 0")
        if wait_replicas and not 0 < wait_timeout < socket_timeout:
            raise ConfigurationError("wait_timeout must be positive and below socket_timeout")
        self.prefix = _check_prefix(prefix)
        self.wait_replicas = wait_replicas
        self._wait_ms = max(1, round(wait_timeout * 1000))
        # One hash tag for all token state: the generation is lost with what it guards.
        self._tokens = f"{self.prefix}{{t{hashlib.sha256(self.prefix.encode()).hexdigest()[:10]}}}:"
        self._generation_key = f"{self._tokens}gen"
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
        if self._cluster and wait_replicas:
            raise ConfigurationError(
                "wait_replicas needs a single-node client: on Cluster, WAIT cannot follow a "
                "write on its connection through redis-py's cluster client"
            )
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
        self._start_family = client.register_script(_lua.START_FAMILY)
        self._start_user_family = client.register_script(_lua.START_USER_FAMILY)
        self._revoke_user = client.register_script(_lua.REVOKE_USER)
        self._prune_user = client.register_script(_lua.PRUNE_USER)
        self._rotate_refresh = client.register_script(_lua.ROTATE_REFRESH)
        self._revoke_family = client.register_script(_lua.REVOKE_FAMILY)

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
        """``<prefix>{t<tag>}:<kind>:<name>``: every token key in one hash slot."""
        return f"{self._tokens}{kind}:{name}"

    def user_families_key_name(self, user_id: UserId) -> str:
        """The Redis key of a user's refresh-token families: ``<prefix>{t<tag>}:uf:<user>``.

        A sorted set of family ids scored by expiry, in the token keys' hash slot (the
        scripts that end a user's logins touch their families' keys). ``str(user_id)``:
        ``42`` and ``"42"`` are one user here, as in the tokens' ``sub``.
        """
        return self._token_key("uf", str(user_id))

    @property
    def generation_key_name(self) -> str:
        """The Redis key of the store generation (no expiry; never evict it)."""
        return self._generation_key

    async def _write(
        self, operation: str, script: Any | None, keys: list[str], args: list[Any]
    ) -> Any:
        """One write (a script, or the command in ``args`` when ``script`` is None).

        With ``wait_replicas``, ``WAIT`` follows on the same connection, and fewer
        acknowledgements than asked is a failure: a fail-over could lose the write, and a
        logout that can be undone is not reported done. Callers hold :meth:`_guard`.
        """
        if not self.wait_replicas:
            if script is None:
                return await self._client.execute_command(*args)
            return await script(keys=keys, args=args)
        async with self._client.pipeline(transaction=False) as pipe:
            if script is None:
                pipe.execute_command(*args)
            else:
                await script(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", self.wait_replicas, self._wait_ms)
            reply, acknowledged = await pipe.execute()
        if int(acknowledged) < self.wait_replicas:
            raise self._failures.unavailable(
                operation,
                ReplicasBehind(
                    f"{int(acknowledged)} of {self.wait_replicas} replicas acknowledged"
                ),
            )
        return reply

    async def _durable(
        self, operation: str, script: Any | None, keys: list[str], args: list[Any]
    ) -> Any:
        """:meth:`_write` as one bounded store call."""
        async with self._guard(operation):
            return await self._write(operation, script, keys, args)

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
        key = self.session_key_name(session_id)
        deleted = await self._durable("delete_session", None, [], ["DEL", key])
        return int(deleted) > 0

    async def delete_session_by_key(self, session_key: str) -> bool:
        """Delete by the ``session_key`` handle that :meth:`get_user_sessions` listed."""
        if not _HANDLE.match(session_key):
            return False
        key = self._key_of_handle(session_key)
        deleted = await self._durable("delete_session", None, [], ["DEL", key])
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
            reply = await self._write(
                "rotate_session",
                self._rotate,
                [
                    self._key_of_handle(old),
                    self._key_of_handle(new),
                    self.user_index_name(user_id),
                ],
                [self.prefix, old, new, int(utcnow().timestamp() * 1000)],
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
        reply = await self._durable(
            "delete_user_sessions",
            self._delete_user,
            [self.user_index_name(user_id)],
            [self.prefix],
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
        await self._durable(
            "revoke_token", None, [], ["SET", self._token_key("r", jti), b"1", "PX", ttl]
        )

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        """Unlist the family (allow-list, its user's index) and revoke it until ``expires_at``."""
        ttl = _ttl_ms(expires_at)
        if ttl <= 0:
            return
        await self._durable(
            "revoke_family",
            self._revoke_family,
            [
                self._token_key("a", family_id),
                self._token_key("f", family_id),
                self._token_key("o", family_id),
            ],
            [self._tokens, ttl, family_id],
        )

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        """One EXISTS over both keys (one hash slot, so one node on Cluster too)."""
        keys = [self._token_key("r", jti)]
        if family_id is not None:
            keys.append(self._token_key("f", family_id))
        async with self._guard("is_revoked"):
            found = await self._client.exists(*keys)
        return int(found) > 0

    async def check_access(
        self, jti: str, family_id: str | None, generation: str | None
    ) -> AccessCheck:
        """One MGET: the generation and both revocation keys, from one hash slot."""
        keys = [self._generation_key, self._token_key("r", jti)]
        if family_id is not None:
            keys.append(self._token_key("f", family_id))
        async with self._guard("check_access"):
            values = await self._client.mget(keys)
        if values[1] is not None or (family_id is not None and values[2] is not None):
            return AccessCheck.REVOKED
        current = values[0]
        if current is None or generation is None or _text(current) != generation:
            return AccessCheck.STALE
        return AccessCheck.VALID

    async def start_family(
        self,
        family_id: str,
        refresh_jti: str,
        expires_at: datetime,
        *,
        user_id: UserId | None = None,
    ) -> str:
        """Allow-list a login's family (one script that also creates the generation once).

        With ``user_id`` the same script lists the family in the user's index and records
        its owner, both expiring with the family.
        """
        ttl = max(_ttl_ms(expires_at), 1)
        keys = [self._generation_key, self._token_key("a", family_id)]
        args: list[Any] = [new_generation_id(), refresh_jti, ttl]
        script = self._start_family
        if user_id is not None:
            now_ms = int(utcnow().timestamp() * 1000)
            keys += [self._token_key("o", family_id), self.user_families_key_name(user_id)]
            args += [str(user_id), family_id, now_ms + ttl, now_ms - _PRUNE_MARGIN_MS]
            script = self._start_user_family
        async with self._guard("start_family"):
            generation = await script(keys=keys, args=args)
        return _text(generation)

    async def revoke_user_families(self, user_id: UserId, revoked_until: datetime) -> int:
        """End every family listed for the user in one script; returns how many were live.

        The script is atomic with the login and rotation scripts (one hash slot): a login
        is listed before it or started after it.
        """
        ttl = max(_ttl_ms(revoked_until), 1)
        reply = await self._durable(
            "revoke_user_families",
            self._revoke_user,
            [self.user_families_key_name(user_id)],
            [self._tokens, ttl],
        )
        return int(reply)

    async def rotate_refresh(
        self,
        family_id: str,
        jti: str,
        new_jti: str,
        generation: str | None,
        expires_at: datetime,
        revoked_until: datetime,
    ) -> Rotation:
        """Compare-and-set the family's current token in one script: one winner, ever."""
        if generation is None:
            return Rotation.STALE
        ttl = max(_ttl_ms(expires_at), 1)
        outcome = await self._durable(
            "rotate_refresh",
            self._rotate_refresh,
            [
                self._generation_key,
                self._token_key("a", family_id),
                self._token_key("f", family_id),
                self._token_key("o", family_id),
            ],
            [
                self._tokens,
                generation,
                jti,
                new_jti,
                ttl,
                max(_ttl_ms(revoked_until), 1),
                family_id,
                int(utcnow().timestamp() * 1000) + ttl,
            ],
        )
        return Rotation(_text(outcome))

    async def new_generation(self) -> str:
        """Replace the generation (every earlier token is refused) and end every session.

        For a restored backup or a replica promoted after it missed writes: logouts made
        since may be missing, so nothing issued before is trusted. Sessions are deleted
        by a SCAN over this prefix (a maintenance walk, not bounded by
        ``socket_timeout`` as a whole).
        """
        generation = new_generation_id()
        await self._durable("new_generation", None, [], ["SET", self._generation_key, generation])
        pattern = f"{_escape_glob(self.prefix)}{{*}}:[su]:*"
        async with self._guard("new_generation", bounded=False):
            async for key in self._client.scan_iter(match=pattern, count=500):
                await self._client.delete(key)
        return generation

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        """``SET NX PX``: exactly one caller wins; an expired token is never consumable."""
        ttl = _ttl_ms(expires_at)
        if ttl <= 0:
            return False
        async with self._guard("consume_refresh_token"):
            won = await self._client.set(self._token_key("u", jti), b"1", px=ttl, nx=True)
        return bool(won)

    async def cleanup_expired_tokens(self) -> int:
        """Prune users' family indexes of ended families; returns how many entries went.

        Every other token entry expires natively, and so does an index with its last
        family; this drops entries of families that expired or ended before the others.
        A maintenance walk (SCAN over the token keys' slot), bounded per command only.
        """
        pattern = f"{_escape_glob(self._tokens)}uf:*"
        removed = 0
        async with self._guard("cleanup_expired_tokens", bounded=False):
            async for index in self._client.scan_iter(match=pattern, count=500):
                removed += int(await self._prune_user(keys=[index], args=[self._tokens]))
        return removed

    # --- lifecycle ----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the connection pool if this store created it."""
        if self._owns_client:
            async with self._guard("aclose"):
                await self._client.aclose()
