"""TOTP enrolments in Redis (single node or Cluster), on the application's ``redis.asyncio`` client.

Needs the ``redis`` extra. Per user, a hash holds the enrolment and a set the recovery-code
hashes; both keys share a hash tag, so a Cluster keeps them on one slot. The two
compare-and-set operations are Lua scripts: one round trip, atomic on the server.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

try:
    from redis import exceptions as redis_exc
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError("RedisTotpStore needs redis: pip install 'fastsecure-totp[redis]'") from exc

from fastsecure import StoreUnavailableError
from fastsecure.results import UserId

from .store import TotpRecord, TotpStore

logger = logging.getLogger("fastsecure.totp")
T = TypeVar("T")

# KEYS[1] enrolment hash; ARGV: secret, confirmed_at, step
_CONFIRM = """
if redis.call('HGET', KEYS[1], 'pending_secret') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[1], 'confirmed_at', ARGV[2], 'last_step', ARGV[3])
redis.call('HDEL', KEYS[1], 'pending_secret', 'pending_created_at')
return 1
"""
# KEYS[1] enrolment hash; ARGV: step
_USE_STEP = """
if redis.call('HEXISTS', KEYS[1], 'secret') == 0 then return 0 end
local last = redis.call('HGET', KEYS[1], 'last_step')
if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'last_step', ARGV[1])
return 1
"""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _dt(value: Any) -> datetime | None:
    text = _text(value)
    return None if text is None else datetime.fromtimestamp(float(text), UTC)


class RedisTotpStore(TotpStore):
    """TOTP enrolments and recovery-code hashes in Redis.

    Args:
        client: the application's ``redis.asyncio.Redis`` or ``RedisCluster``; closing it
            is the application's business.
        key_prefix: prefix of every key.
    """

    def __init__(self, client: Any, *, key_prefix: str = "fastsecure:totp:") -> None:
        self.client = client
        self.prefix = key_prefix
        self._confirm = client.register_script(_CONFIRM)
        self._use_step = client.register_script(_USE_STEP)

    def _keys(self, user_id: UserId) -> tuple[str, str]:
        if isinstance(user_id, bool) or not isinstance(user_id, int | str):
            raise TypeError("user_id must be an int or a str")
        # The user as a digest: any id is a safe key, and {tag} keeps both keys on one slot.
        tag = hashlib.sha256(
            f"{type(user_id).__name__}:{user_id}".encode("utf-8", "surrogatepass")
        ).hexdigest()[:32]
        return f"{self.prefix}{{{tag}}}", f"{self.prefix}{{{tag}}}:codes"

    async def _run(self, operation: str, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except (redis_exc.ConnectionError, redis_exc.TimeoutError, OSError) as exc:
            logger.warning("fastsecure.totp: %s failed (%s)", operation, type(exc).__name__)
            raise StoreUnavailableError(f"TOTP store unavailable during {operation}") from exc
        except redis_exc.RedisError as exc:
            logger.warning("fastsecure.totp: %s failed (%s)", operation, type(exc).__name__)
            raise StoreUnavailableError(f"TOTP store unavailable during {operation}") from exc

    async def get(self, user_id: UserId) -> TotpRecord | None:
        key, _ = self._keys(user_id)

        async def work() -> TotpRecord | None:
            raw = await self.client.hgetall(key)
            if not raw:
                return None
            fields = {_text(k): v for k, v in raw.items()}
            last = _text(fields.get("last_step"))
            return TotpRecord(
                secret=_text(fields.get("secret")),
                pending_secret=_text(fields.get("pending_secret")),
                pending_created_at=_dt(fields.get("pending_created_at")),
                confirmed_at=_dt(fields.get("confirmed_at")),
                last_step=None if last is None else int(last),
            )

        return await self._run("get", work)

    async def set_pending(self, user_id: UserId, secret: str, created_at: datetime) -> None:
        key, _ = self._keys(user_id)
        mapping = {"pending_secret": secret, "pending_created_at": repr(created_at.timestamp())}
        await self._run("set_pending", lambda: self.client.hset(key, mapping=mapping))

    async def confirm(
        self, user_id: UserId, secret: str, step: int, confirmed_at: datetime
    ) -> bool:
        key, _ = self._keys(user_id)
        args = [secret, repr(confirmed_at.timestamp()), str(step)]
        return bool(await self._run("confirm", lambda: self._confirm(keys=[key], args=args)))

    async def use_step(self, user_id: UserId, step: int) -> bool:
        key, _ = self._keys(user_id)
        return bool(
            await self._run("use_step", lambda: self._use_step(keys=[key], args=[str(step)]))
        )

    async def delete(self, user_id: UserId) -> bool:
        key, codes = self._keys(user_id)
        return bool(await self._run("delete", lambda: self.client.delete(key, codes)))

    async def replace_recovery_codes(self, user_id: UserId, code_hashes: Sequence[str]) -> None:
        _, codes = self._keys(user_id)

        async def work() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(codes)
                if code_hashes:
                    pipe.sadd(codes, *code_hashes)
                await pipe.execute()

        await self._run("replace_recovery_codes", work)

    async def use_recovery_code(self, user_id: UserId, code_hash: str) -> bool:
        _, codes = self._keys(user_id)
        removed = await self._run("use_recovery_code", lambda: self.client.srem(codes, code_hash))
        return int(removed) == 1

    async def count_recovery_codes(self, user_id: UserId) -> int:
        _, codes = self._keys(user_id)
        return int(await self._run("count_recovery_codes", lambda: self.client.scard(codes)))
