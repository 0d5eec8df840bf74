"""The in-process token store, the default for a single-process app."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from .stores import TokenStore, as_utc, utcnow


class MemoryTokenStore(TokenStore):
    """Token state in a dict: correct within one process, lost on restart.

    Each mutation is a single synchronous step between awaits, so it is atomic under
    asyncio. Use a Redis or SQL token store to share state between processes.
    """

    store_type: ClassVar[str] = "memory"

    def __init__(self) -> None:
        self._revoked: dict[str, datetime] = {}
        self._families: dict[str, datetime] = {}
        self._used: dict[str, datetime] = {}

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

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        return self._live(self._revoked, jti) or self._live(self._families, family_id)

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        if self._live(self._used, jti):
            return False
        self._used[jti] = as_utc(expires_at)
        return True

    async def cleanup_expired_tokens(self) -> int:
        now = utcnow()
        removed = 0
        for table in (self._revoked, self._families, self._used):
            for key in [k for k, v in table.items() if v <= now]:
                del table[key]
                removed += 1
        return removed
