"""The session provider: server-side sessions identified by an opaque cookie."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from fastsecure import (
    AuthenticationProvider,
    AuthenticationResult,
    FailureReason,
    SessionStore,
    StoreUnavailableError,
)
from fastsecure.credentials import single_cookie
from fastsecure.events import (
    SessionCreated,
    SessionEvicted,
    SessionRefused,
    SessionRevoked,
    SessionRotated,
)
from fastsecure.factors import (
    FACTOR_KEYS,
    FactorError,
    factor_claims,
    factor_times,
    recorded_times,
    without_factor_keys,
)
from fastsecure.results import UserId, normalize_scopes
from fastsecure.stores import SessionRecord, as_utc, hash_session_id, session_key, utcnow

from .cookies import (
    SameSite,
    check_cookie_name,
    clear_session_cookie,
    default_cookie_name,
    set_session_cookie,
)
from .csrf import CsrfGuard, CsrfMode
from .store import MemorySessionStore

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection
    from starlette.responses import Response

logger = logging.getLogger("fastsecure.session")
_T = TypeVar("_T")

LimitPolicy = Literal["evict_oldest", "refuse"]
# What the session records about the factors of the login (RFC 8176 methods, when each was
# last used, the latest of them): written only from factor results (login ``factors``,
# :meth:`SessionAuthenticationProvider.step_up`), never from caller metadata.
# Keys the provider owns in a session's metadata; login metadata cannot override them.
RESERVED_KEYS = (
    frozenset({"ip_address", "user_agent", "scopes", "created_at", "last_seen"}) | FACTOR_KEYS
)
MAX_SESSION_ID_LENGTH = 512
_MAX_TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionInfo:
    """One row of a "your devices" page; ``session_key`` revokes it, it is not a credential."""

    session_key: str
    ip_address: str | None
    user_agent: str | None
    created_at: datetime | None
    last_seen: datetime | None
    expires_at: datetime | None
    current: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings."""
        return {
            "session_key": self.session_key,
            "ip_address": self.ip_address,
            "user_agent": self.user_agent,
            "created_at": _iso(self.created_at),
            "last_seen": _iso(self.last_seen),
            "expires_at": _iso(self.expires_at),
            "current": self.current,
        }


def _custom_metadata(custom: dict[str, Any]) -> dict[str, Any]:
    """Login metadata without the provider's keys (factor keys one level down too)."""
    return without_factor_keys({k: v for k, v in custom.items() if k not in RESERVED_KEYS})


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _last_seen(record: SessionRecord) -> datetime | None:
    """Stores record activity either on the record or, by default, in the metadata."""
    metadata = record.get("metadata") or {}
    return _as_datetime(record.get("last_seen")) or _as_datetime(metadata.get("last_seen"))


class SessionAuthenticationProvider(AuthenticationProvider):
    """Server-side sessions: login creates one, the session cookie presents it.

    Args:
        session_store: where sessions live; an in-process :class:`MemorySessionStore` by
            default (one process only, lost on restart).
        session_timeout_minutes: absolute lifetime; 0 issues sessions that are already
            expired (they never validate).
        max_sessions_per_user: live sessions a user may hold; None for no limit.
        cleanup_expired: delete an expired session when it is presented.
        idle_timeout_minutes: end a session unused for this long; None for no idle limit.
        limit_policy: at the limit, ``"evict_oldest"`` (default) ends the oldest session;
            ``"refuse"`` refuses the login (Spring's ``maxSessionsPreventsLogin``).
        touch_interval_seconds: how often activity is written back, at most: by default
            ``min(60 s, idle timeout / 4)``; it must be shorter than the idle timeout. A
            session check is otherwise one store read.
        cookie_name, cookie_secure, cookie_samesite, cookie_domain, cookie_path: the
            session cookie, read by :meth:`extract_credentials` and written by
            :meth:`set_cookie`. ``cookie_secure=False`` is for local http development.
            Without ``cookie_name`` the name is ``__Host-session_id`` (Secure, ``/``, no
            ``Domain``), ``__Secure-session_id`` (Secure with a ``Domain`` or another
            path) or ``session_id`` (not Secure); see
            :func:`~fastsecure_session.default_cookie_name`.
        csrf_protection: check cookie-authenticated unsafe requests (on by default).
        csrf_mode: ``"origin"`` (Origin, else Referer, must be an allowed origin) or
            ``"double_submit"`` (a header must carry :func:`~fastsecure_session.csrf_token`).
        csrf_trusted_origins: origins allowed besides the request's own.
        csrf_header_name: the header carrying the double-submit token.
        csrf_cookie_name: the cookie :meth:`set_cookie` puts the token in (double-submit).
    """

    provider_type: ClassVar[str] = "session"

    def __init__(
        self,
        session_store: SessionStore | None = None,
        session_timeout_minutes: float = 30,
        max_sessions_per_user: int | None = 5,
        cleanup_expired: bool = True,
        idle_timeout_minutes: float | None = None,
        limit_policy: LimitPolicy = "evict_oldest",
        *,
        touch_interval_seconds: float | None = None,
        cookie_name: str | None = None,
        cookie_secure: bool = True,
        cookie_samesite: SameSite = "lax",
        cookie_domain: str | None = None,
        cookie_path: str = "/",
        csrf_protection: bool = True,
        csrf_mode: CsrfMode = "origin",
        csrf_trusted_origins: Iterable[str] = (),
        csrf_header_name: str = "X-CSRF-Token",
        csrf_cookie_name: str = "csrf_token",
    ) -> None:
        if session_timeout_minutes < 0:
            raise ValueError("session_timeout_minutes must be >= 0")
        if max_sessions_per_user is not None and max_sessions_per_user < 1:
            raise ValueError("max_sessions_per_user must be >= 1 or None")
        if idle_timeout_minutes is not None and idle_timeout_minutes <= 0:
            raise ValueError("idle_timeout_minutes must be > 0 or None")
        if limit_policy not in ("evict_oldest", "refuse"):
            raise ValueError(
                f"limit_policy must be 'evict_oldest' or 'refuse', not {limit_policy!r}"
            )
        if cookie_samesite not in ("lax", "strict", "none"):
            raise ValueError(
                f"cookie_samesite must be lax, strict or none, not {cookie_samesite!r}"
            )
        if cookie_samesite == "none" and not cookie_secure:
            raise ValueError("SameSite=None cookies must be Secure")
        self.store: SessionStore = (
            session_store if session_store is not None else MemorySessionStore()
        )
        self.session_timeout = timedelta(minutes=session_timeout_minutes)
        self.max_sessions = max_sessions_per_user
        self.cleanup_expired = cleanup_expired
        self.idle_timeout = (
            None if idle_timeout_minutes is None else timedelta(minutes=idle_timeout_minutes)
        )
        self.limit_policy = limit_policy
        if touch_interval_seconds is not None:
            self.touch_interval = timedelta(seconds=touch_interval_seconds)
        elif self.idle_timeout is not None:
            self.touch_interval = min(_MAX_TOUCH_INTERVAL, self.idle_timeout / 4)
        else:
            self.touch_interval = _MAX_TOUCH_INTERVAL
        if self.touch_interval < timedelta(0):
            raise ValueError("touch_interval_seconds must be >= 0")
        if self.idle_timeout is not None and self.touch_interval >= self.idle_timeout:
            # Activity would be recorded too late: a session in use would still idle out.
            raise ValueError("touch_interval_seconds must be shorter than the idle timeout")
        if cookie_name is None:
            cookie_name = default_cookie_name(
                secure=cookie_secure, path=cookie_path, domain=cookie_domain
            )
        check_cookie_name(cookie_name, secure=cookie_secure, path=cookie_path, domain=cookie_domain)
        self.cookie_name = cookie_name
        self.cookie_secure = cookie_secure
        self.cookie_samesite: SameSite = cookie_samesite
        self.cookie_domain = cookie_domain
        self.cookie_path = cookie_path
        self.csrf: CsrfGuard | None = (
            CsrfGuard(
                mode=csrf_mode, trusted_origins=csrf_trusted_origins, header_name=csrf_header_name
            )
            if csrf_protection
            else None
        )
        self.csrf_cookie_name = csrf_cookie_name
        self._store_down = False  # a raw store failure is logged once per outage
        self._touch_failing = False  # so is a failing activity write

    def get_required_credentials(self) -> set[str]:
        """A request presents ``session_id``; a login passes ``user_id`` instead."""
        return {"session_id"}

    # --- issue and verify ----------------------------------------------------------------

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Verify ``{"session_id": ...}``, or log in with ``{"user_id": ..., ...}``.

        A login takes ``user_id`` and optionally ``ip_address``, ``user_agent``,
        ``scopes``, ``metadata`` (custom values, returned at the top level of the result's
        metadata) and ``factors``: the successful results of the checks that proved this
        login (a password, a TOTP code, a passkey), each with ``metadata["amr"]`` and
        ``metadata["auth_time"]``. The session records them as ``amr``, ``amr_times`` and
        ``auth_time``, what factor requirements (``factors=``, ``max_age=``) read; those
        keys in ``metadata`` are dropped, so a caller cannot claim factors nobody checked.
        Raises :class:`FactorError` for a factor that is not a successful result for
        ``user_id``, and :class:`~fastsecure.StoreUnavailableError` when the store cannot
        answer.
        """
        if "session_id" in credentials:
            return await self._verify(credentials["session_id"])
        if "user_id" in credentials:
            return await self._login(credentials)
        return self._fail("no session_id or user_id given", FailureReason.MISSING_CREDENTIALS)

    def _fail(
        self, error: str, reason: FailureReason = FailureReason.INVALID_CREDENTIALS
    ) -> AuthenticationResult:
        return AuthenticationResult.failure(error, provider=self.provider_name, reason=reason)

    async def _login(self, credentials: dict[str, Any]) -> AuthenticationResult:
        user_id = credentials["user_id"]
        if isinstance(user_id, bool) or not isinstance(user_id, int | str) or user_id == "":
            return self._fail("user_id must be a non-empty str or an int")
        custom = credentials.get("metadata") or {}
        if not isinstance(custom, dict):
            return self._fail("metadata must be a dict")
        factors = credentials.get("factors") or ()
        if isinstance(factors, AuthenticationResult) or not isinstance(factors, list | tuple):
            raise FactorError("factors must be a list of AuthenticationResult")
        times = factor_times(factors, user_id)
        now = utcnow()
        expires_at = now + self.session_timeout
        metadata = _custom_metadata(custom)
        if times:
            metadata.update(factor_claims(times))
        metadata.update(
            ip_address=credentials.get("ip_address"),
            user_agent=credentials.get("user_agent"),
            scopes=normalize_scopes(credentials.get("scopes")),
            created_at=now.isoformat(),
        )
        if self.idle_timeout is not None and self.max_sessions is not None:
            await self._drop_idle_sessions(user_id, now)
        session_id = self.store.generate_session_id(user_id)
        if not isinstance(session_id, str) or len(session_id) < 43:
            raise TypeError("SessionStore.generate_session_id must return >= 256 bits, URL-safe")
        if self.session_timeout <= timedelta(0):
            # Born expired: never stored, so it can never validate.
            return self._success(user_id, session_id, expires_at, metadata)
        outcome = await self._store(
            "create_session_limited",
            self.store.create_session_limited(
                user_id,
                session_id,
                expires_at,
                metadata,
                max_sessions=self.max_sessions,
                evict_oldest=self.limit_policy == "evict_oldest",
            ),
        )
        for record in outcome.evicted:
            created = _as_datetime(record.get("created_at"))
            await self.emit_event(
                SessionEvicted(
                    provider=self.provider_name,
                    user_id=user_id,
                    detail={"reason": "max_sessions_per_user", "created_at": _iso(created)},
                )
            )
        if not outcome.created:
            if self.limit_policy == "refuse":
                await self.emit_event(
                    SessionRefused(
                        provider=self.provider_name,
                        user_id=user_id,
                        detail={
                            "reason": "session_limit_reached",
                            "max_sessions": self.max_sessions,
                        },
                    )
                )
                return self._fail(
                    f"session limit reached ({self.max_sessions} per user)", FailureReason.FORBIDDEN
                )
            return self._fail("the session could not be created")
        await self.emit_event(SessionCreated(provider=self.provider_name, user_id=user_id))
        return self._success(user_id, session_id, expires_at, metadata)

    def _success(
        self, user_id: UserId, session_id: str, expires_at: datetime, metadata: dict[str, Any]
    ) -> AuthenticationResult:
        # Values the store and this provider produced: no per-request re-validation.
        return AuthenticationResult.granted(
            user_id, self.provider_name, metadata, expires_at, session_id=session_id
        )

    def _idle(self, record: SessionRecord, now: datetime) -> bool:
        """Whether the session went unused longer than the idle timeout (never without one)."""
        if self.idle_timeout is None:
            return False
        seen = _last_seen(record) or _as_datetime(record.get("created_at"))
        return seen is None or now - seen > self.idle_timeout

    async def _drop_idle_sessions(self, user_id: UserId, now: datetime) -> None:
        """Delete the user's idled-out sessions so they do not count against the limit.

        Stores know only the absolute expiry; without this an idle session held its slot
        until then (``"refuse"`` locked the user out, ``"evict_oldest"`` ended an active
        session instead). One extra read per login, only with both an idle timeout and a
        limit.
        """
        for record in await self._store("get_user_sessions", self.store.get_user_sessions(user_id)):
            if self._idle(record, now):
                await self._store("delete_listed_session", self.store.delete_listed_session(record))

    async def _live_record(self, session_id: Any) -> tuple[SessionRecord | None, str]:
        """The session if it is live, else None and why; one store read."""
        if (
            not isinstance(session_id, str)
            or not session_id
            or len(session_id) > MAX_SESSION_ID_LENGTH
        ):
            return None, "malformed session id"
        # The one read whose failure is an outage (503): it decides whether the session is live.
        record = await self._store("get_session", self.store.get_session(session_id))
        if record is None:
            return None, "unknown or expired session"
        now = utcnow()
        expires_at = _as_datetime(record.get("expires_at"))
        expired = expires_at is None or expires_at <= now or self._idle(record, now)
        if expired:
            if self.cleanup_expired:
                try:
                    await self.store.delete_session(session_id)
                except Exception as exc:  # the answer is "expired" either way
                    logger.info(
                        "fastsecure.session: an expired session could not be deleted (%s)",
                        _cause(exc),
                    )
            return None, "session expired"
        return record, ""

    async def _verify(self, session_id: Any) -> AuthenticationResult:
        record, error = await self._live_record(session_id)
        if record is None or not isinstance(session_id, str):
            return self._fail(error)
        await self._maybe_touch(session_id, record)
        metadata = {k: v for k, v in (record.get("metadata") or {}).items() if k != "last_seen"}
        metadata["scopes"] = normalize_scopes(metadata.get("scopes"))
        return self._success(record["user_id"], session_id, record["expires_at"], metadata)

    async def _maybe_touch(self, session_id: str, record: SessionRecord) -> None:
        """Slide the idle window, writing at most once per ``touch_interval``; best-effort.

        The read already proved the session live, so a failed write (a read-only replica
        after a fail-over, a store down for writes, a raw driver error) never logs the
        user out: the touch is skipped, and logged once per outage, not once per request.
        A lost touch can only shorten the session by the idle timeout.
        """
        now = utcnow()
        seen = _last_seen(record) or _as_datetime(record.get("created_at"))
        if seen is not None and now - seen < self.touch_interval:
            return
        try:
            await self.store.touch_session(session_id, now)
        except Exception as exc:
            if not self._touch_failing:
                self._touch_failing = True
                logger.warning(
                    "fastsecure.session: could not record session activity (%s); sessions "
                    "still authenticate; logged once until a write succeeds",
                    _cause(exc),
                )
            return
        if self._touch_failing:
            self._touch_failing = False
            logger.warning("fastsecure.session: session activity is recorded again")

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Whether ``{"session_id": ...}`` names a live session; never logs anyone in."""
        if "session_id" not in auth_data:
            return False
        return (await self._verify(auth_data["session_id"])).success

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        """End the session ``{"session_id": ...}`` (logout); True when it existed."""
        session_id = auth_data.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            return False
        record = await self._store("get_session", self.store.get_session(session_id))
        if not await self._store("delete_session", self.store.delete_session(session_id)):
            return False
        await self.emit_event(
            SessionRevoked(
                provider=self.provider_name,
                user_id=None if record is None else record.get("user_id"),
                detail={"reason": "logout"},
            )
        )
        return True

    # --- session management --------------------------------------------------------------

    async def list_sessions(
        self, user_id: UserId, current_session_id: str | None = None
    ) -> list[SessionInfo]:
        """The user's live sessions, oldest first, for a "your devices" page.

        Sessions past their absolute expiry or idle timeout are left out.

        With ``current_session_id`` (the requester's own id) that session is flagged
        ``current``.
        """
        current_key = None
        if current_session_id:
            record = await self._store("get_session", self.store.get_session(current_session_id))
            if record is not None and record.get("user_id") == user_id:
                current_key = session_key(record) or hash_session_id(current_session_id)
        now = utcnow()
        infos = []
        for record in await self._store("get_user_sessions", self.store.get_user_sessions(user_id)):
            expires_at = _as_datetime(record.get("expires_at"))
            if (expires_at is not None and expires_at <= now) or self._idle(record, now):
                continue
            key = session_key(record)
            metadata = record.get("metadata") or {}
            infos.append(
                SessionInfo(
                    session_key=key,
                    ip_address=metadata.get("ip_address"),
                    user_agent=metadata.get("user_agent"),
                    created_at=_as_datetime(record.get("created_at")),
                    last_seen=_last_seen(record) or _as_datetime(record.get("created_at")),
                    expires_at=expires_at,
                    current=current_key is not None and hmac.compare_digest(key, current_key),
                )
            )
        infos.sort(key=lambda info: info.created_at or now)
        return infos

    async def revoke_session(self, user_id: UserId, key: str) -> bool:
        """End one of the user's sessions by its listed ``session_key``.

        Only a session belonging to ``user_id`` is ended, so a device page cannot be used
        to log out someone else. ``key`` usually comes from a URL: anything that is not a
        listed key (another type, non-ASCII text) is simply not found.
        """
        if not isinstance(key, str) or not key:
            return False
        wanted = key.encode("utf-8", "surrogatepass")
        records = await self._store("get_user_sessions", self.store.get_user_sessions(user_id))
        for record in records:
            listed = session_key(record)
            # Bytes: compare_digest raises TypeError on non-ASCII str.
            if listed and hmac.compare_digest(listed.encode("utf-8", "surrogatepass"), wanted):
                deleted = await self._store(
                    "delete_listed_session", self.store.delete_listed_session(record)
                )
                if deleted:
                    await self.emit_event(
                        SessionRevoked(
                            provider=self.provider_name, user_id=user_id, detail={"reason": "user"}
                        )
                    )
                    return True
                return False
        return False

    async def revoke_user_sessions(self, user_id: UserId) -> int:
        """End every session of the user (log out everywhere); returns how many."""
        count = await self._store("delete_user_sessions", self.store.delete_user_sessions(user_id))
        if count:
            await self.emit_event(
                SessionRevoked(
                    provider=self.provider_name,
                    user_id=user_id,
                    detail={"reason": "all", "count": count},
                )
            )
        return count

    async def rotate_session(self, session_id: str) -> AuthenticationResult:
        """Give a live session a new id, keeping its data; the old id stops working.

        Call it on privilege changes (after re-authentication, role change) against
        session fixation, then set the new id in the cookie.
        """
        record, error = await self._live_record(session_id)
        if record is None:
            return self._fail(error)
        user_id: UserId = record["user_id"]
        new_id = self.store.generate_session_id(user_id)
        if not await self._store("rotate_session", self.store.rotate_session(session_id, new_id)):
            return self._fail("the session could not be rotated")
        await self.emit_event(SessionRotated(provider=self.provider_name, user_id=user_id))
        metadata = {k: v for k, v in (record.get("metadata") or {}).items() if k != "last_seen"}
        metadata["scopes"] = normalize_scopes(metadata.get("scopes"))
        return self._success(user_id, new_id, record["expires_at"], metadata)

    async def step_up(self, session_id: str, factor: AuthenticationResult) -> AuthenticationResult:
        """Record a factor just checked on a live session, under a new session id.

        ``factor`` is the successful result of the check (a TOTP code, a passkey, a
        password typed again) for the session's user. The session keeps its user, scopes,
        lifetime and metadata; its ``amr`` becomes the sorted union, ``amr_times`` keeps
        each method's latest use and ``auth_time`` the latest of all. The id rotates (the
        old one stops working), so an id fixed or stolen before the step-up gains
        nothing; set the new one with :meth:`set_cookie`. A session that is not live (or
        is stepped up twice at once) gives a failed result.

        Raises:
            FactorError: ``factor`` is not a successful result for the session's user.
            StoreUnavailableError: the store cannot answer.
        """
        record, error = await self._live_record(session_id)
        if record is None:
            return self._fail(error)
        user_id: UserId = record["user_id"]
        added = factor_times([factor], user_id)  # refused before anything changes
        times = recorded_times(record.get("metadata") or {})
        for method, when in added.items():
            times[method] = max(times.get(method, when), when)
        metadata = {**(record.get("metadata") or {}), **factor_claims(times)}
        new_id = self.store.generate_session_id(user_id)
        # Rotate first: were the factor written first and the rotation to fail, the old id
        # (perhaps fixed by an attacker) would carry it.
        if not await self._store("rotate_session", self.store.rotate_session(session_id, new_id)):
            return self._fail("the session could not be rotated")
        if not await self._store("update_session", self.store.update_session(new_id, metadata)):
            return self._fail("the session ended during the step-up")
        await self.emit_event(
            SessionRotated(
                provider=self.provider_name,
                user_id=user_id,
                detail={"reason": "step_up", "amr": sorted(added)},
            )
        )
        metadata = {k: v for k, v in metadata.items() if k != "last_seen"}
        metadata["scopes"] = normalize_scopes(metadata.get("scopes"))
        return self._success(user_id, new_id, record["expires_at"], metadata)

    async def cleanup_expired_sessions(self) -> int:
        """Remove expired sessions from the store in bulk; for a periodic job."""
        return await self._store("cleanup_expired_sessions", self.store.cleanup_expired_sessions())

    # --- request integration ---------------------------------------------------------------

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """The session cookie as ``{"session_id": ...}``, after the CSRF check.

        Raises:
            AmbiguousCredentialsError: the cookie is sent twice, in one ``Cookie`` header or
                across several (400, even when both copies are the same live session: a
                sibling subdomain can toss in a cookie of its own).
            ForbiddenError: a cookie-authenticated unsafe request failed the CSRF check
                (``requires_auth`` answers 403).
        """
        session_id = single_cookie(connection, self.cookie_name)
        if not session_id:
            return None
        if self.csrf is not None:
            self.csrf.check(connection, session_id)
        return {"session_id": session_id}

    def security_schemes(self) -> list[SecurityBase]:
        """The session cookie, for OpenAPI."""
        from fastapi.security import APIKeyCookie

        return [
            APIKeyCookie(name=self.cookie_name, scheme_name=self.provider_name, auto_error=False)
        ]

    def challenge(self) -> str:
        """``Cookie realm="<name>"``.

        No HTTP authentication scheme is registered for cookies; this value names the
        mechanism so a client knows a session cookie is expected.
        """
        return f'Cookie realm="{self.provider_name}"'

    def set_cookie(self, response: Response, result: AuthenticationResult) -> None:
        """Set the session cookie (and, in double-submit mode, the CSRF cookie)."""
        set_session_cookie(
            response,
            result,
            cookie_name=self.cookie_name,
            secure=self.cookie_secure,
            samesite=self.cookie_samesite,
            domain=self.cookie_domain,
            path=self.cookie_path,
            csrf_cookie_name=self._csrf_cookie(),
        )

    def clear_cookie(self, response: Response) -> None:
        """Expire the session cookie (and the CSRF cookie) in the browser."""
        clear_session_cookie(
            response,
            cookie_name=self.cookie_name,
            secure=self.cookie_secure,
            samesite=self.cookie_samesite,
            domain=self.cookie_domain,
            path=self.cookie_path,
            csrf_cookie_name=self._csrf_cookie(),
        )

    def _csrf_cookie(self) -> str | None:
        if self.csrf is not None and self.csrf.mode == "double_submit":
            return self.csrf_cookie_name
        return None

    async def aclose(self) -> None:
        """Close the store's connections."""
        await self.store.aclose()

    async def _store(self, operation: str, pending: Awaitable[_T]) -> _T:
        """Await a session-store call; any failure is :class:`StoreUnavailableError`.

        First-party stores classify their driver errors themselves; a store that lets a
        raw one escape still gives 503, never a 500, a 401 for a valid session or a pass.
        A raw failure is logged once per outage, by the cause's type only (driver messages
        can quote parameters).
        """
        try:
            value = await pending
        except StoreUnavailableError:
            raise
        except Exception as exc:
            if not self._store_down:
                self._store_down = True
                logger.warning(
                    "fastsecure.session: session store %s failed (%s); 503 until it answers",
                    operation,
                    _cause(exc),
                )
            raise StoreUnavailableError(f"session store {operation} failed") from exc
        if self._store_down:
            self._store_down = False
            logger.warning("fastsecure.session: the session store answers again")
        return value


def _cause(exc: BaseException) -> str:
    """An exception's type for a log line; never its message, which may quote a session id."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}"
