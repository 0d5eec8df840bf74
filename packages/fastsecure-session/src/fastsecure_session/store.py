"""The in-process session store, the default for development and single-process apps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from fastsecure.results import UserId
from fastsecure.stores import (
    SessionCreation,
    SessionRecord,
    SessionStore,
    as_utc,
    hash_session_id,
    utcnow,
)


@dataclass
class _Entry:
    user_id: UserId
    created_at: datetime
    expires_at: datetime
    metadata: str  # JSON, so values behave exactly as in the Redis and SQL stores
    last_seen: datetime | None = None

    def record(self, key: str) -> SessionRecord:
        return {
            "user_id": self.user_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_seen": self.last_seen,
            "metadata": json.loads(self.metadata),
            "session_key": key,
        }


class MemorySessionStore(SessionStore):
    """Sessions in a dict: correct within one process, lost on restart.

    Keys are :func:`~fastsecure.stores.hash_session_id` of the id, never the id, like
    every first-party store; the ``session_key`` listed for a device page is that hash.
    Metadata is kept as JSON so it round-trips exactly as it would through Redis or SQL.
    Every mutation runs without an ``await`` between check and write, so it is atomic
    under asyncio, including :meth:`create_session_limited`. Use the Redis or SQLAlchemy
    store to share sessions between processes.
    """

    store_type: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}
        # user id -> session keys in creation order (dict as an ordered set)
        self._by_user: dict[UserId, dict[str, None]] = {}

    def _live(self, key: str, now: datetime | None = None) -> _Entry | None:
        entry = self._sessions.get(key)
        if entry is None:
            return None
        if entry.expires_at <= (now or utcnow()):
            self._remove(key)
            return None
        return entry

    def _remove(self, key: str) -> _Entry | None:
        entry = self._sessions.pop(key, None)
        if entry is not None:
            keys = self._by_user.get(entry.user_id)
            if keys is not None:
                keys.pop(key, None)
                if not keys:
                    del self._by_user[entry.user_id]
        return entry

    def _insert(self, user_id: UserId, key: str, expires_at: datetime, metadata: str) -> bool:
        if self._live(key) is not None:
            return False
        self._sessions[key] = _Entry(user_id, utcnow(), as_utc(expires_at), metadata)
        self._by_user.setdefault(user_id, {})[key] = None
        return True

    def _user_keys(self, user_id: UserId) -> list[str]:
        now = utcnow()
        return [key for key in list(self._by_user.get(user_id, ())) if self._live(key, now)]

    async def create_session(
        self, user_id: UserId, session_id: str, expires_at: datetime, metadata: dict[str, Any]
    ) -> bool:
        """Store a new session; False when the id is already in use."""
        return self._insert(user_id, hash_session_id(session_id), expires_at, json.dumps(metadata))

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
        """Create a session keeping at most ``max_sessions`` live ones, in one atomic step."""
        encoded = json.dumps(metadata)
        key = hash_session_id(session_id)
        evicted: list[SessionRecord] = []
        if max_sessions is not None and max_sessions > 0:
            keys = self._user_keys(user_id)
            excess = len(keys) - max_sessions + 1
            if excess > 0:
                if not evict_oldest:
                    return SessionCreation(created=False)
                keys.sort(key=lambda k: self._sessions[k].created_at)
                for old in keys[:excess]:
                    entry = self._remove(old)
                    if entry is not None:
                        evicted.append(entry.record(old))
        return SessionCreation(
            created=self._insert(user_id, key, expires_at, encoded), evicted=tuple(evicted)
        )

    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The live session, or None (expired ones are dropped on access)."""
        key = hash_session_id(session_id)
        entry = self._live(key)
        return None if entry is None else entry.record(key)

    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        """Replace the metadata of a live session."""
        entry = self._live(hash_session_id(session_id))
        if entry is None:
            return False
        entry.metadata = json.dumps(metadata)
        return True

    async def delete_session(self, session_id: str) -> bool:
        """Remove the session; True when it existed."""
        return self._remove(hash_session_id(session_id)) is not None

    async def get_user_sessions(self, user_id: UserId) -> list[SessionRecord]:
        """The user's live sessions, oldest first."""
        return [self._sessions[key].record(key) for key in self._user_keys(user_id)]

    async def touch_session(self, session_id: str, last_seen: datetime) -> bool:
        """Record activity without rewriting the metadata."""
        entry = self._live(hash_session_id(session_id))
        if entry is None:
            return False
        entry.last_seen = as_utc(last_seen)
        return True

    async def rotate_session(self, old_session_id: str, new_session_id: str) -> bool:
        """Move a live session to a new id in one step; the old id stops working at once."""
        old_key, new_key = hash_session_id(old_session_id), hash_session_id(new_session_id)
        entry = self._live(old_key)
        if entry is None or old_key == new_key or self._live(new_key) is not None:
            return False
        self._remove(old_key)
        self._sessions[new_key] = entry
        self._by_user.setdefault(entry.user_id, {})[new_key] = None
        return True

    async def delete_session_by_key(self, session_key: str) -> bool:
        """Remove the session listed under ``session_key`` (its hash)."""
        return self._remove(session_key) is not None

    async def delete_user_sessions(self, user_id: UserId) -> int:
        """Remove every session of the user; returns how many were live."""
        keys = self._user_keys(user_id)
        for key in keys:
            self._remove(key)
        return len(keys)

    async def cleanup_expired_sessions(self) -> int:
        """Remove every expired session; returns how many."""
        now = utcnow()
        expired = [key for key, entry in self._sessions.items() if entry.expires_at <= now]
        for key in expired:
            self._remove(key)
        return len(expired)
