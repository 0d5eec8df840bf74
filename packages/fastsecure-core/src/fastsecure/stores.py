"""Storage contracts that storage plugins implement (one or both).

:class:`SessionStore` holds server-side sessions; :class:`TokenStore` holds JWT revocation
and refresh-token rotation state.

Every store method may raise :class:`~fastsecure.StoreUnavailableError` when the backend
cannot answer; it must never answer "valid" or "invalid" on a connection error.

Losing data may log users out, never back in: sessions and refresh-token families are
allow-listed (gone means refused), and a token store names its contents with a
*generation*, written once, that every token carries and every check compares, so a store
that forgot what it denied refuses everything issued before (see :class:`TokenStore`).
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import secrets
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from .results import UserId

SessionRecord = dict[str, Any]
"""A stored session: ``user_id``, ``created_at``, ``expires_at``, ``metadata``, ``last_seen``
and ``session_key``, an opaque handle for revoking one session from a device list that is
never a credential. First-party stores and the conformance kit require all of them; a
minimal custom store may omit ``last_seen`` and ``session_key`` (its ``session_id`` then
serves as the key)."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A naive datetime is taken as UTC (some databases drop the zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def hash_session_id(session_id: str) -> str:
    """The key first-party stores keep instead of the id itself.

    Session ids carry at least 256 bits from a CSPRNG, so a plain SHA-256 is not
    brute-forceable and a leaked store cannot be replayed.
    """
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def session_key(record: SessionRecord) -> str:
    """The handle that revokes one listed session; never a credential.

    The store's ``session_key`` when it gives one; for a minimal store that lists raw
    ``session_id`` values, their hash, so a device page never shows another device's id.
    """
    key = record.get("session_key")
    if key:
        return str(key)
    raw = record.get("session_id")
    return hash_session_id(str(raw)) if raw else ""


@dataclass(frozen=True)
class SessionCreation:
    """What :meth:`SessionStore.create_session_limited` did."""

    created: bool
    evicted: Sequence[SessionRecord] = field(default_factory=tuple)


class SessionStore(ABC):
    """Where server-side sessions live.

    A custom store implements the five abstract methods; the rest have defaults built on
    them. The defaults are correct but not atomic across processes: first-party stores
    override ``create_session_limited`` with one server-side step.

    Methods take the session id the client holds. Stores that hash ids hash inside.
    """

    store_type: ClassVar[str] = "custom"

    def generate_session_id(self, user_id: UserId) -> str:
        """A new session id: 256 bits from a CSPRNG, URL-safe.

        Providers ask the store, so a store may add routing information (the Redis store
        appends a hash-slot tag so a user's keys share one Cluster slot); the random part
        must keep at least 256 bits.
        """
        return secrets.token_urlsafe(32)

    @abstractmethod
    async def create_session(
        self, user_id: UserId, session_id: str, expires_at: datetime, metadata: dict[str, Any]
    ) -> bool:
        """Store a new session; True on success."""

    @abstractmethod
    async def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None when unknown (expired sessions may still be returned)."""

    @abstractmethod
    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        """Replace the session's metadata; True on success, False when it does not exist."""

    @abstractmethod
    async def delete_session(self, session_id: str) -> bool:
        """Remove the session; True when it existed."""

    @abstractmethod
    async def get_user_sessions(self, user_id: UserId) -> list[SessionRecord]:
        """Every stored session of the user."""

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
        """Create a session while keeping at most ``max_sessions`` live ones for the user.

        With ``evict_oldest`` the oldest live sessions make room; without it the login is
        refused (``created=False``) when the user is at the limit. This default is not
        atomic across processes; stores that can be atomic override it.
        """
        evicted: list[SessionRecord] = []
        if max_sessions is not None and max_sessions > 0:
            now = utcnow()
            live = []
            for record in await self.get_user_sessions(user_id):
                expiry = record.get("expires_at")
                if isinstance(expiry, datetime) and as_utc(expiry) <= now:
                    await self.delete_listed_session(record)
                else:
                    live.append(record)
            excess = len(live) - max_sessions + 1
            if excess > 0:
                if not evict_oldest:
                    return SessionCreation(created=False)
                live.sort(key=lambda r: as_utc(r.get("created_at") or now))
                for record in live[:excess]:
                    if await self.delete_listed_session(record):
                        evicted.append(record)
        created = await self.create_session(user_id, session_id, expires_at, metadata)
        return SessionCreation(created=created, evicted=tuple(evicted))

    async def touch_session(self, session_id: str, last_seen: datetime) -> bool:
        """Record activity for idle timeouts; providers call it at most once per interval."""
        record = await self.get_session(session_id)
        if record is None:
            return False
        metadata = dict(record.get("metadata") or {})
        metadata["last_seen"] = last_seen.isoformat()
        return await self.update_session(session_id, metadata)

    async def rotate_session(self, old_session_id: str, new_session_id: str) -> bool:
        """Give a live session a new id, keeping its data (regenerate on privilege change)."""
        record = await self.get_session(old_session_id)
        if record is None:
            return False
        created = await self.create_session(
            record["user_id"],
            new_session_id,
            record["expires_at"],
            dict(record.get("metadata") or {}),
        )
        if created:
            await self.delete_session(old_session_id)
        return created

    async def delete_session_by_key(self, session_key: str) -> bool:
        """Remove a session by the ``session_key`` that ``get_user_sessions`` listed."""
        return await self.delete_session(session_key)

    async def delete_listed_session(self, record: SessionRecord) -> bool:
        """Remove a session that ``get_user_sessions`` returned.

        By its ``session_key`` where the store lists one, else by its raw ``session_id``
        (a minimal store), so callers never need to know which kind of store this is.
        """
        if record.get("session_key"):
            return await self.delete_session_by_key(str(record["session_key"]))
        raw = record.get("session_id")
        return bool(raw) and await self.delete_session(str(raw))

    async def delete_user_sessions(self, user_id: UserId) -> int:
        """Remove every session of the user (log out everywhere); returns how many."""
        count = 0
        for record in await self.get_user_sessions(user_id):
            if await self.delete_listed_session(record):
                count += 1
        return count

    async def cleanup_expired_sessions(self) -> int:
        """Remove expired sessions in bulk (a periodic job); returns how many."""
        return 0

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called on application shutdown."""


def new_generation_id() -> str:
    """A fresh store generation: 48 bits from a CSPRNG, URL-safe (8 characters).

    Not a secret and not unique across stores: it only has to differ from the store's
    previous generation (a repeat has odds of 2**-48). Short, because every token carries
    it and every verification pays for each byte of a token.
    """
    return secrets.token_urlsafe(6)


class AccessCheck(enum.Enum):
    """What :meth:`TokenStore.check_access` found for one access token."""

    VALID = "valid"
    REVOKED = "revoked"
    """The token's ``jti`` or its family is revoked."""
    STALE = "stale"
    """The token carries no generation, or another one than the store's: issued before
    the store lost (or was told to forget) its data, so its revocations cannot be known."""


class Rotation(enum.Enum):
    """What :meth:`TokenStore.rotate_refresh` did with a presented refresh token."""

    ROTATED = "rotated"
    """The token was its family's current one; the family now names the new token."""
    REUSED = "reused"
    """The family names another token: this one was spent. The family is now revoked."""
    REVOKED = "revoked"
    """The family was revoked already (logout, or an earlier reuse)."""
    UNKNOWN = "unknown"
    """The store has no record of the family: expired, or lost with the store's data."""
    STALE = "stale"
    """The token's generation is not the store's (see :attr:`AccessCheck.STALE`)."""


class TokenStore(ABC):
    """Shared state for token providers: revoked token ids and refresh-token families.

    Entries carry their own expiry, the expiry of the token they describe, so the store
    never grows without bound.

    **Surviving data loss.** A deny-list forgets what it denied when the store loses data
    (a restart without persistence, ``FLUSHDB``, a lagging replica promoted, a restored
    backup). Two rules keep a loss from logging anyone back in:

    * Refresh tokens are allow-listed: :meth:`start_family` records each login's family
      naming its current refresh token, and :meth:`rotate_refresh` accepts only that
      token. A family the store does not know is refused.
    * The store has a *generation*, a random marker written once when the store is
      first used (create-if-absent, safe with many processes starting together).
      :meth:`start_family` returns it, tokens carry it, and :meth:`check_access` reads it
      in the same round trip as the revocation entries: a store that lost its data has
      no marker or a new one, so every token issued before is :attr:`AccessCheck.STALE`.

    A store that keeps these in one place (one Redis hash slot, one database) loses them
    together. The methods below have defaults built on the four abstract ones, so an
    older custom store keeps working, but without this protection; ``loss_safe`` says
    whether a store overrides them (first-party stores do).

    **Ending a user's logins.** A password reset must end every login of the user, and a
    token names its family, not its user's other families. So :meth:`start_family` also
    records whose family it is (``user_id``), and :meth:`revoke_user_families` ends every
    live family of that user. The rule, for a family started while a revoke runs: it is
    either ended by that revoke or still listed for the user afterwards, so the next
    revoke ends it; a family whose ``start_family`` returned before the revoke began is
    always ended. Index entries expire with their family (rotation renews both). Stores
    that do this set ``tracks_users`` (first-party stores do); for any other,
    :func:`records_users` is False and a provider asked to end a user's tokens refuses
    instead of reporting nothing ended.
    """

    store_type: ClassVar[str] = "custom"
    loss_safe: ClassVar[bool] = False
    """True when the store implements generations and allow-listed families itself."""
    tracks_users: ClassVar[bool] = False
    """True when :meth:`start_family` records each family's user and
    :meth:`revoke_user_families` ends them (a password reset's "log out everywhere")."""

    @abstractmethod
    async def revoke_token(self, jti: str, expires_at: datetime) -> None:
        """Mark one token id revoked until ``expires_at``."""

    @abstractmethod
    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        """Mark a whole refresh-token family revoked until ``expires_at``.

        A store with allow-listed families also forgets the family's current token, so
        neither its access tokens nor its refresh token pass again.
        """

    @abstractmethod
    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        """Whether the token id, or its family, is revoked: one round trip."""

    @abstractmethod
    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        """Atomically mark a refresh token used: True the first time, False ever after.

        Two concurrent calls with the same id must never both get True.
        """

    async def start_family(
        self,
        family_id: str,
        refresh_jti: str,
        expires_at: datetime,
        *,
        user_id: UserId | None = None,
    ) -> str:
        """Record a new login: ``family_id`` is live until ``expires_at``, ``refresh_jti`` current.

        Creates the generation marker when the store has none (one atomic
        create-if-absent), in the same step where the backend allows it. With ``user_id``
        a store that ``tracks_users`` also lists the family under ``str(user_id)``, in the
        same step, until the family expires (:meth:`rotate_refresh` renews the entry).
        Providers pass ``user_id`` only to stores whose ``start_family`` accepts it
        (:func:`records_users`), so a custom store that overrides the older
        three-argument form keeps working.

        Returns:
            The store's generation, for the tokens of this login to carry. The default
            returns ``""``: no generation (a store that does not implement it).
        """
        return ""

    async def check_access(
        self, jti: str, family_id: str | None, generation: str | None
    ) -> AccessCheck:
        """Whether an access token may pass: its revocation entries and the generation.

        One round trip on the per-request path: the entries for ``jti`` and
        ``family_id`` and the store's generation, read together. A ``generation`` that is
        missing or differs from the store's is :attr:`AccessCheck.STALE`, and so is any
        token when the store has no generation at all (it lost its data). The default
        checks :meth:`is_revoked` only.
        """
        if await self.is_revoked(jti, family_id):
            return AccessCheck.REVOKED
        return AccessCheck.VALID

    async def rotate_refresh(
        self,
        family_id: str,
        jti: str,
        new_jti: str,
        generation: str | None,
        expires_at: datetime,
        revoked_until: datetime,
    ) -> Rotation:
        """Exchange the family's current refresh token ``jti`` for ``new_jti``, atomically.

        Exactly one of any number of concurrent calls with the same ``jti`` gets
        :attr:`Rotation.ROTATED`; the family then lives until ``expires_at``. A ``jti``
        that is not the family's current one revokes the family until ``revoked_until``
        (:attr:`Rotation.REUSED`). The default builds this from :meth:`is_revoked`,
        :meth:`consume_refresh_token` and :meth:`revoke_family` (a deny-list: not safe
        against data loss).
        """
        if await self.is_revoked(jti, family_id):
            return Rotation.REVOKED
        if await self.consume_refresh_token(jti, expires_at):
            return Rotation.ROTATED
        await self.revoke_family(family_id, revoked_until)
        return Rotation.REUSED

    async def revoke_user_families(self, user_id: UserId, revoked_until: datetime) -> int:
        """End every live family that :meth:`start_family` listed for ``str(user_id)``.

        Each family is revoked until ``revoked_until`` (its access tokens fail
        :meth:`check_access`, its refresh token :meth:`rotate_refresh`) and leaves the
        allow-list and the user's index, atomically with respect to :meth:`start_family`
        and :meth:`rotate_refresh` (see the class docs for the rule). Families of other
        users, and the user's later logins, are untouched.

        Returns:
            How many live families were ended.

        Raises:
            NotImplementedError: the store keeps no index from users to families (the
                default); ``tracks_users`` is False.
        """
        raise NotImplementedError(f"{type(self).__name__} keeps no index of users' families")

    async def new_generation(self) -> str:
        """Start a new generation: every token issued before is refused from now on.

        For an operator who restored an older backup or promoted a replica known to have
        missed writes: the store cannot tell what it forgot, so it forgets everything.
        Returns the new generation. Stores without generations raise
        :class:`NotImplementedError`.
        """
        raise NotImplementedError(f"{type(self).__name__} has no store generation")

    async def cleanup_expired_tokens(self) -> int:
        """Remove expired entries in bulk; returns how many."""
        return 0

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called on application shutdown."""


def records_users(store: TokenStore) -> bool:
    """Whether ``store`` can end a user's families (``TokenStore.revoke_user_families``).

    It needs ``tracks_users`` and a ``start_family`` that takes ``user_id``: a subclass
    of a first-party store that overrides ``start_family`` in the older three-argument
    form inherits ``tracks_users`` but records nobody; checking the signature too keeps
    a "log out everywhere" from missing its logins silently.
    """
    if not store.tracks_users:
        return False
    try:
        parameters = inspect.signature(store.start_family).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        (p.name == "user_id" and p.kind is not p.POSITIONAL_ONLY) or p.kind is p.VAR_KEYWORD
        for p in parameters
    )
