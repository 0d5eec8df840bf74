"""The in-process token store, the default for a single-process app."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from .results import UserId
from .stores import AccessCheck, Rotation, TokenStore, as_utc, new_generation_id, utcnow

# Module globals: an Enum class attribute lookup costs more on the per-request path.
_VALID, _REVOKED, _STALE = AccessCheck.VALID, AccessCheck.REVOKED, AccessCheck.STALE


class MemoryTokenStore(TokenStore):
    """Token state in a dict: correct within one process, lost on restart.

    Each mutation is a single synchronous step between awaits, so it is atomic under
    asyncio. Its generation is born with the object, so after a restart every token
    issued before is refused (the revocations went with the old process). Use a Redis or
    SQL token store to share state between processes and keep logins across restarts.
    """

    store_type: ClassVar[str] = "memory"
    loss_safe: ClassVar[bool] = True
    tracks_users: ClassVar[bool] = True

    def __init__(self) -> None:
        self._revoked: dict[str, datetime] = {}
        self._families: dict[str, datetime] = {}
        self._used: dict[str, datetime] = {}
        # family id -> (current refresh jti, expiry): the allow-list of live logins
        self._live_families: dict[str, tuple[str, datetime]] = {}
        # family id -> user, and user -> family ids: whose logins a password reset ends.
        # An entry lives as long as its family does in _live_families.
        self._owners: dict[str, str] = {}
        self._by_user: dict[str, set[str]] = {}
        self._generation = new_generation_id()

    @staticmethod
    def _live(table: dict[str, datetime], key: str | None) -> bool:
        if key is None:
            return False
        expiry = table.get(key)
        if expiry is None:
            return False
        if expiry <= utcnow():
            table.pop(key, None)
            return False
        return True

    async def revoke_token(self, jti: str, expires_at: datetime) -> None:
        self._revoked[jti] = as_utc(expires_at)

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        self._families[family_id] = as_utc(expires_at)
        self._live_families.pop(family_id, None)
        self._unlist(family_id)

    def _unlist(self, family_id: str) -> None:
        user = self._owners.pop(family_id, None)
        if user is not None:
            families = self._by_user.get(user)
            if families is not None:
                families.discard(family_id)
                if not families:
                    del self._by_user[user]

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        return self._live(self._revoked, jti) or self._live(self._families, family_id)

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        if self._live(self._used, jti):
            return False
        self._used[jti] = as_utc(expires_at)
        return True

    async def start_family(
        self,
        family_id: str,
        refresh_jti: str,
        expires_at: datetime,
        *,
        user_id: UserId | None = None,
    ) -> str:
        self._live_families[family_id] = (refresh_jti, as_utc(expires_at))
        if user_id is not None:
            user = str(user_id)
            self._owners[family_id] = user
            self._by_user.setdefault(user, set()).add(family_id)
        return self._generation

    async def revoke_user_families(self, user_id: UserId, revoked_until: datetime) -> int:
        """No await inside: atomic under asyncio with every other call of this store."""
        families = self._by_user.pop(str(user_id), set())
        until, now = as_utc(revoked_until), utcnow()
        ended = 0
        for family_id in families:
            self._owners.pop(family_id, None)
            entry = self._live_families.pop(family_id, None)
            if entry is not None and entry[1] > now:
                ended += 1
            self._families[family_id] = max(until, self._families.get(family_id, until))
        return ended

    async def check_access(
        self, jti: str, family_id: str | None, generation: str | None
    ) -> AccessCheck:
        # Through is_revoked, so a subclass that wraps it (a test double) still sees it.
        if await self.is_revoked(jti, family_id):
            return _REVOKED
        if generation != self._generation:
            return _STALE
        return _VALID

    async def rotate_refresh(
        self,
        family_id: str,
        jti: str,
        new_jti: str,
        generation: str | None,
        expires_at: datetime,
        revoked_until: datetime,
    ) -> Rotation:
        if await self.is_revoked(jti, family_id):
            return Rotation.REVOKED
        # From here to the write, no await: the compare-and-set is atomic under asyncio.
        if generation != self._generation:
            return Rotation.STALE
        entry = self._live_families.get(family_id)
        if entry is None or entry[1] <= utcnow():
            self._live_families.pop(family_id, None)
            return Rotation.UNKNOWN
        if entry[0] != jti:
            self._families[family_id] = as_utc(revoked_until)
            del self._live_families[family_id]
            self._unlist(family_id)
            return Rotation.REUSED
        self._live_families[family_id] = (new_jti, as_utc(expires_at))
        return Rotation.ROTATED

    async def new_generation(self) -> str:
        self._generation = new_generation_id()
        self._live_families.clear()
        self._owners.clear()
        self._by_user.clear()
        return self._generation

    async def cleanup_expired_tokens(self) -> int:
        now = utcnow()
        removed = 0
        for table in (self._revoked, self._families, self._used):
            for key in [k for k, v in table.items() if v <= now]:
                del table[key]
                removed += 1
        for key in [k for k, (_, v) in self._live_families.items() if v <= now]:
            del self._live_families[key]
            removed += 1
        for family_id in [f for f in self._owners if f not in self._live_families]:
            self._unlist(family_id)
            removed += 1
        return removed
