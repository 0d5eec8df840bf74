"""The TOTP store contract, and the in-memory store for development and tests.

A store keeps, per user, the encrypted confirmed secret, an encrypted secret being
enrolled, the last accepted time step and the hashes of unused recovery codes. Two
operations must be atomic, because they are what makes a code single-use:

* :meth:`TotpStore.use_step` accepts a time step only if it is later than the last one
  accepted (a compare-and-set). SQL: ``UPDATE ... SET last_step = :s WHERE user = :u AND
  secret IS NOT NULL AND (last_step IS NULL OR last_step < :s)`` and one row changed.
  Redis: a Lua script comparing and setting a hash field.
* :meth:`TotpStore.use_recovery_code` removes a hash and says whether it was there. SQL:
  ``DELETE ... WHERE user = :u AND code_hash = :h`` and one row deleted. Redis: ``SREM``.

Two parallel requests with the same code therefore get one success between them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from fastsecure.results import UserId


@dataclass(frozen=True)
class TotpRecord:
    """What a store keeps for one user; secrets are ciphertexts from :class:`SecretCipher`."""

    secret: str | None = None
    pending_secret: str | None = None
    pending_created_at: datetime | None = None
    confirmed_at: datetime | None = None
    last_step: int | None = None

    @property
    def enrolled(self) -> bool:
        """Whether a confirmed secret exists."""
        return self.secret is not None


class TotpStore(ABC):
    """Where TOTP enrolments and recovery codes live.

    Every method may raise :class:`~fastsecure.StoreUnavailableError` when the backend
    cannot answer: an outage is never read as "valid" or "invalid".
    """

    @abstractmethod
    async def get(self, user_id: UserId) -> TotpRecord | None:
        """The user's record, or None."""

    @abstractmethod
    async def set_pending(self, user_id: UserId, secret: str, created_at: datetime) -> None:
        """Store a secret being enrolled, keeping any confirmed one until it is confirmed."""

    @abstractmethod
    async def confirm(
        self, user_id: UserId, secret: str, step: int, confirmed_at: datetime
    ) -> bool:
        """Atomically make the pending secret the confirmed one, if it is still ``secret``.

        ``step`` (the time step of the confirming code) becomes the last used step. False
        when another enrolment replaced the pending secret meanwhile.
        """

    @abstractmethod
    async def use_step(self, user_id: UserId, step: int) -> bool:
        """Atomically accept ``step`` if it is later than the last accepted one."""

    @abstractmethod
    async def delete(self, user_id: UserId) -> bool:
        """Remove the enrolment and the recovery codes; True when anything existed."""

    @abstractmethod
    async def replace_recovery_codes(self, user_id: UserId, code_hashes: Sequence[str]) -> None:
        """Replace the user's recovery-code hashes with ``code_hashes``."""

    @abstractmethod
    async def use_recovery_code(self, user_id: UserId, code_hash: str) -> bool:
        """Atomically remove one recovery-code hash; True when it was there."""

    @abstractmethod
    async def count_recovery_codes(self, user_id: UserId) -> int:
        """How many unused recovery codes the user has."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called when the provider closes."""


def _key(user_id: UserId) -> tuple[str, str]:
    # 42 and "42" are different users, as in the session stores.
    return (type(user_id).__name__, str(user_id))


@dataclass
class _Entry:
    record: TotpRecord = field(default_factory=TotpRecord)
    codes: set[str] = field(default_factory=set)


class MemoryTotpStore(TotpStore):
    """One process's dictionary: for development and tests, lost on restart.

    Every method runs without an ``await`` between its read and its write, so each is
    atomic within the event loop.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    async def get(self, user_id: UserId) -> TotpRecord | None:
        entry = self._entries.get(_key(user_id))
        if entry is None or (entry.record == TotpRecord() and not entry.codes):
            return None
        return entry.record

    async def set_pending(self, user_id: UserId, secret: str, created_at: datetime) -> None:
        entry = self._entries.setdefault(_key(user_id), _Entry())
        entry.record = replace(entry.record, pending_secret=secret, pending_created_at=created_at)

    async def confirm(
        self, user_id: UserId, secret: str, step: int, confirmed_at: datetime
    ) -> bool:
        entry = self._entries.get(_key(user_id))
        if entry is None or entry.record.pending_secret != secret:
            return False
        entry.record = TotpRecord(secret=secret, confirmed_at=confirmed_at, last_step=step)
        return True

    async def use_step(self, user_id: UserId, step: int) -> bool:
        entry = self._entries.get(_key(user_id))
        if entry is None or entry.record.secret is None:
            return False
        last = entry.record.last_step
        if last is not None and last >= step:
            return False
        entry.record = replace(entry.record, last_step=step)
        return True

    async def delete(self, user_id: UserId) -> bool:
        return self._entries.pop(_key(user_id), None) is not None

    async def replace_recovery_codes(self, user_id: UserId, code_hashes: Sequence[str]) -> None:
        self._entries.setdefault(_key(user_id), _Entry()).codes = set(code_hashes)

    async def use_recovery_code(self, user_id: UserId, code_hash: str) -> bool:
        entry = self._entries.get(_key(user_id))
        if entry is None or code_hash not in entry.codes:
            return False
        entry.codes.discard(code_hash)
        return True

    async def count_recovery_codes(self, user_id: UserId) -> int:
        entry = self._entries.get(_key(user_id))
        return 0 if entry is None else len(entry.codes)
