"""The passkey store contract, and the in-memory store for development and tests.

A store keeps registered credentials (public keys, never secrets) and the challenges of
ceremonies in progress. Two operations must be atomic:

* :meth:`WebAuthnStore.take_challenge` hands a challenge out once: a second take (a
  replayed response) finds nothing. SQL: read the row, then ``DELETE`` it and proceed only
  if one row was deleted. Redis: ``GETDEL``.
* :meth:`WebAuthnStore.update_sign_count` is a compare-and-set on the signature counter,
  so two assertions racing cannot both move it. SQL: ``UPDATE ... WHERE credential = :c
  AND sign_count = :old``.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Literal

from fastsecure.results import UserId

Purpose = Literal["registration", "authentication"]


def ceremony_key(ceremony_id: str) -> str:
    """What a store keys a challenge by: a SHA-256 of the ceremony id, never the id."""
    return hashlib.sha256(ceremony_id.encode("utf-8", "surrogatepass")).hexdigest()


def credential_key(credential_id: bytes) -> str:
    """A fixed-length key for a credential id (ids may be up to 1023 bytes)."""
    return hashlib.sha256(credential_id).hexdigest()


@dataclass(frozen=True)
class PasskeyCredential:
    """One registered passkey.

    Attributes:
        credential_id: the authenticator's id for it (raw bytes).
        user_id: the application's user.
        user_handle: the random WebAuthn ``user.id`` given at registration (never the
            application's user id, which an authenticator would store and show).
        public_key: the COSE public key that verifies its assertions.
        sign_count: the last signature counter seen (0 for authenticators without one).
        transports: hints for the browser (``usb``, ``internal``, ``hybrid``...).
        device_type: ``single_device`` (bound to one authenticator) or ``multi_device``
            (a synced passkey); fixed at registration.
        backed_up: whether the authenticator last said the key is backed up.
        aaguid: the authenticator model, when it said.
        name: a label the user gave it.
        created_at, last_used_at: seconds since the epoch.
    """

    credential_id: bytes
    user_id: UserId
    user_handle: bytes
    public_key: bytes
    sign_count: int
    transports: tuple[str, ...] = ()
    device_type: str = "single_device"
    backed_up: bool = False
    aaguid: str = ""
    name: str | None = None
    created_at: float = field(default_factory=time.time)
    last_used_at: float | None = None


@dataclass(frozen=True)
class Challenge:
    """A ceremony in progress: what was asked, of whom, until when."""

    challenge: bytes
    purpose: Purpose
    expires_at: float
    user_id: UserId | None = None
    user_handle: bytes | None = None


class WebAuthnStore(ABC):
    """Where passkeys and ceremony challenges live.

    Every method may raise :class:`~fastsecure.StoreUnavailableError` when the backend
    cannot answer.
    """

    @abstractmethod
    async def add_credential(self, credential: PasskeyCredential) -> bool:
        """Store a new credential; False when its id is already registered (to anyone)."""

    @abstractmethod
    async def get_credential(self, credential_id: bytes) -> PasskeyCredential | None:
        """The credential with this id, or None."""

    @abstractmethod
    async def list_credentials(self, user_id: UserId) -> list[PasskeyCredential]:
        """The user's credentials, oldest first."""

    @abstractmethod
    async def update_sign_count(
        self, credential_id: bytes, old: int, new: int, backed_up: bool, used_at: float
    ) -> bool:
        """Atomically record a use if the counter is still ``old``; True when recorded."""

    @abstractmethod
    async def delete_credential(self, user_id: UserId, credential_id: bytes) -> bool:
        """Remove one of the user's credentials; True when it existed and was theirs."""

    @abstractmethod
    async def put_challenge(self, ceremony_id: str, challenge: Challenge) -> None:
        """Remember a ceremony's challenge (keyed by :func:`ceremony_key`)."""

    @abstractmethod
    async def take_challenge(self, ceremony_id: str) -> Challenge | None:
        """Atomically remove and return a ceremony's challenge; None if absent.

        The provider checks ``expires_at`` with its own clock; a store may drop expired
        challenges earlier.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called when the provider closes."""


def _user_key(user_id: UserId) -> tuple[str, str]:
    return (type(user_id).__name__, str(user_id))


class MemoryWebAuthnStore(WebAuthnStore):
    """One process's dictionaries: for development and tests, lost on restart.

    Each method runs without an ``await`` between its read and its write: atomic within
    the event loop.

    Args:
        max_challenges: ceremonies kept at most; past it the expired go first, then the
            oldest, so a flood of option requests costs bounded memory.
    """

    def __init__(self, *, max_challenges: int = 10_000) -> None:
        self._credentials: dict[str, PasskeyCredential] = {}
        self._challenges: dict[str, Challenge] = {}
        self._max_challenges = max_challenges

    async def add_credential(self, credential: PasskeyCredential) -> bool:
        key = credential_key(credential.credential_id)
        if key in self._credentials:
            return False
        self._credentials[key] = credential
        return True

    async def get_credential(self, credential_id: bytes) -> PasskeyCredential | None:
        return self._credentials.get(credential_key(credential_id))

    async def list_credentials(self, user_id: UserId) -> list[PasskeyCredential]:
        wanted = _user_key(user_id)
        found = [c for c in self._credentials.values() if _user_key(c.user_id) == wanted]
        return sorted(found, key=lambda c: c.created_at)

    async def update_sign_count(
        self, credential_id: bytes, old: int, new: int, backed_up: bool, used_at: float
    ) -> bool:
        key = credential_key(credential_id)
        current = self._credentials.get(key)
        if current is None or current.sign_count != old:
            return False
        self._credentials[key] = replace(
            current, sign_count=new, backed_up=backed_up, last_used_at=used_at
        )
        return True

    async def delete_credential(self, user_id: UserId, credential_id: bytes) -> bool:
        key = credential_key(credential_id)
        current = self._credentials.get(key)
        if current is None or _user_key(current.user_id) != _user_key(user_id):
            return False
        del self._credentials[key]
        return True

    async def put_challenge(self, ceremony_id: str, challenge: Challenge) -> None:
        if len(self._challenges) >= self._max_challenges:
            now = time.time()
            for stale in [k for k, v in self._challenges.items() if v.expires_at <= now]:
                del self._challenges[stale]
            while len(self._challenges) >= self._max_challenges:
                del self._challenges[next(iter(self._challenges))]
        self._challenges[ceremony_key(ceremony_id)] = challenge

    async def take_challenge(self, ceremony_id: str) -> Challenge | None:
        return self._challenges.pop(ceremony_key(ceremony_id), None)
