"""The TOTP factor: enrolment, replay-proof verification and recovery codes (RFC 6238)."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyotp
import segno

from fastsecure import AuthenticationProvider, AuthenticationResult, FailureReason
from fastsecure.ratelimit import Backoff, MemoryRateLimiter, RateLimiter
from fastsecure.results import UserId

from .crypto import KeyMaterial, SecretCipher
from .events import (
    RecoveryCodesGenerated,
    RecoveryCodeUsed,
    TotpDisabled,
    TotpEnrolled,
    TotpFailed,
    TotpVerified,
)
from .exceptions import NotEnrolledError, SecretDecryptionError
from .recovery import generate_recovery_code, hash_recovery_code, normalize_recovery_code
from .store import MemoryTotpStore, TotpStore

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection

logger = logging.getLogger("fastsecure.totp")

Digest = Literal["sha1", "sha256", "sha512"]
_DIGESTS: dict[str, Callable[[], Any]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
}
AMR = "otp"
"""RFC 8176 authentication method reference for one-time passwords (RFC 4226, RFC 6238)."""


@dataclass(frozen=True)
class TotpEnrolment:
    """What an enrolment page shows once: the secret, its otpauth:// URI and a QR code.

    It holds the plaintext secret: render it, never log or cache it (send the page with
    ``Cache-Control: no-store``).
    """

    secret: str
    uri: str

    def qr_svg(self, scale: int = 4) -> str:
        """The URI as an inline ``<svg>`` element for the enrolment page."""
        return str(segno.make(self.uri, error="m").svg_inline(scale=scale))

    def qr_png(self, scale: int = 5) -> bytes:
        """The URI as a PNG image."""
        out = io.BytesIO()
        segno.make(self.uri, error="m").save(out, kind="png", scale=scale)
        return out.getvalue()

    def __repr__(self) -> str:
        return "TotpEnrolment(secret=***, uri=***)"


def _context(user_id: UserId) -> str:
    return f"fastsecure-totp:{type(user_id).__name__}:{user_id}"


def _valid_user(user_id: object) -> bool:
    return not isinstance(user_id, bool) and isinstance(user_id, int | str) and user_id != ""


class TotpProvider(AuthenticationProvider):
    """A time-based one-time password as an authentication factor.

    It verifies codes for a user another step has already named (the password check in an
    ALL requirement, or the session being stepped up): ``authenticate({"user_id": ...,
    "code": "123456"})`` or ``{"user_id": ..., "recovery_code": "..."}``. It never reads a
    request: a code proves a login, the session or token it yields proves the requests.

    Args:
        encryption_key: key (or keys, newest first) secrets are encrypted with at rest; see
            :meth:`SecretCipher.generate_key`. Required: no default key exists.
        issuer: the name authenticator apps show next to the account.
        store: where enrolments live; :class:`MemoryTotpStore` by default (one process).
        digits, interval, digest: the code's shape. The defaults (6, 30 s, SHA-1) are what
            every authenticator app supports; others ignore the URI's parameters.
        valid_window: steps of clock drift accepted either side of now (1 = +-30 s).
        recovery_code_count: how many codes :meth:`generate_recovery_codes` makes.
        pending_minutes: how long an unconfirmed enrolment can still be confirmed.
        limiter: counts every check per user before it is judged (a
            :class:`~fastsecure.ratelimit.RateLimiter`); an in-process
            :class:`~fastsecure.ratelimit.MemoryRateLimiter` by default. Share a Redis or
            SQL limiter between processes, or each process allows its own attempts.
        backoff: attempts admitted back to back, then the progressive wait; by default 5,
            then 1 s doubling up to 15 minutes.
        clock: seconds since the epoch; for tests.
    """

    provider_type: ClassVar[str] = "totp"

    def __init__(
        self,
        encryption_key: KeyMaterial | Sequence[KeyMaterial],
        *,
        issuer: str,
        store: TotpStore | None = None,
        digits: int = 6,
        interval: int = 30,
        valid_window: int = 1,
        digest: Digest = "sha1",
        recovery_code_count: int = 10,
        pending_minutes: float = 15,
        limiter: RateLimiter | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer or ":" in issuer:
            raise ValueError("issuer must be non-empty and may not contain ':'")
        if digits not in (6, 7, 8):
            raise ValueError("digits must be 6, 7 or 8")
        if not 15 <= interval <= 120:
            raise ValueError("interval must be between 15 and 120 seconds")
        if not 0 <= valid_window <= 2:
            raise ValueError("valid_window must be 0, 1 or 2 steps")
        if digest not in _DIGESTS:
            raise ValueError("digest must be sha1, sha256 or sha512")
        if not 1 <= recovery_code_count <= 50:
            raise ValueError("recovery_code_count must be between 1 and 50")
        self.cipher = SecretCipher(encryption_key)
        self.issuer = issuer
        self.store: TotpStore = store if store is not None else MemoryTotpStore()
        self.digits = digits
        self.interval = interval
        self.valid_window = valid_window
        self.digest: Digest = digest
        self.recovery_code_count = recovery_code_count
        self.pending_ttl = timedelta(minutes=pending_minutes)
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryRateLimiter()
        self.backoff = backoff if backoff is not None else Backoff()
        self._clock = clock

    def get_required_credentials(self) -> set[str]:
        """A login passes ``user_id`` with ``code`` (or ``recovery_code``)."""
        return {"user_id", "code"}

    def _totp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(
            secret, digits=self.digits, interval=self.interval, digest=_DIGESTS[self.digest]
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- enrolment ---------------------------------------------------------------------

    async def begin_enrolment(self, user_id: UserId, account_name: str) -> TotpEnrolment:
        """Generate a secret for ``user_id`` and keep it, encrypted, until it is confirmed.

        A confirmed enrolment keeps working until :meth:`confirm_enrolment` replaces it.
        ``account_name`` (an email, a username) is what the authenticator app lists.
        """
        if not _valid_user(user_id):
            raise ValueError("user_id must be a non-empty str or an int")
        if not account_name or ":" in account_name:
            raise ValueError("account_name must be non-empty and may not contain ':'")
        secret = pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length
        await self.store.set_pending(
            user_id, self.cipher.encrypt(secret, context=_context(user_id)), self._now()
        )
        uri = self._totp(secret).provisioning_uri(name=account_name, issuer_name=self.issuer)
        return TotpEnrolment(secret=secret, uri=uri)

    async def confirm_enrolment(self, user_id: UserId, code: object) -> bool:
        """Confirm the pending enrolment with a first code from the app; True on success.

        The code's time step counts as used, so it cannot log in afterwards.
        """
        if not _valid_user(user_id):
            return False
        await self._count_attempt(user_id)
        record = await self.store.get(user_id)
        pending = None if record is None else record.pending_secret
        created = None if record is None else record.pending_created_at
        if pending is None or created is None or self._now() - created > self.pending_ttl:
            await self._failed(user_id, "no_pending_enrolment")
            return False
        try:
            secret = self.cipher.decrypt(pending, context=_context(user_id))
        except SecretDecryptionError:
            logger.error("fastsecure.totp: a pending secret could not be decrypted")
            return False
        step = self._match(secret, code)
        if step is None:
            await self._failed(user_id, "invalid_code")
            return False
        if not await self.store.confirm(user_id, pending, step, self._now()):
            await self._failed(user_id, "enrolment_replaced")
            return False
        await self.limiter.reset(self._limit_key(user_id))
        await self.emit_event(TotpEnrolled(provider=self.provider_name, user_id=user_id))
        return True

    async def is_enrolled(self, user_id: UserId) -> bool:
        """Whether the user has a confirmed TOTP secret."""
        record = await self.store.get(user_id)
        return record is not None and record.enrolled

    async def disable(self, user_id: UserId) -> bool:
        """Remove the user's enrolment and recovery codes; True when there was one."""
        removed = await self.store.delete(user_id)
        if removed:
            await self.emit_event(TotpDisabled(provider=self.provider_name, user_id=user_id))
        return removed

    async def generate_recovery_codes(self, user_id: UserId) -> list[str]:
        """Replace the user's recovery codes with new ones, returned in plain text once.

        Raises:
            NotEnrolledError: the user has no confirmed TOTP enrolment.
        """
        if not await self.is_enrolled(user_id):
            raise NotEnrolledError("recovery codes need a confirmed TOTP enrolment")
        codes = [generate_recovery_code() for _ in range(self.recovery_code_count)]
        hashes = [hash_recovery_code(normalize_recovery_code(c) or "") for c in codes]
        await self.store.replace_recovery_codes(user_id, hashes)
        await self.emit_event(
            RecoveryCodesGenerated(
                provider=self.provider_name, user_id=user_id, detail={"count": len(codes)}
            )
        )
        return codes

    async def remaining_recovery_codes(self, user_id: UserId) -> int:
        """How many unused recovery codes the user has left."""
        return await self.store.count_recovery_codes(user_id)

    # --- verification ------------------------------------------------------------------

    def _match(self, secret: str, code: object) -> int | None:
        """The time step ``code`` belongs to within the window, or None.

        Every step of the window is computed and compared in constant time, so the timing
        says nothing about which step (if any) matched.
        """
        if not isinstance(code, str):
            return None
        cleaned = code.replace(" ", "").strip()
        if len(cleaned) != self.digits or not cleaned.isascii() or not cleaned.isdigit():
            return None
        totp = self._totp(secret)
        current = totp.timecode(self._now())  # a datetime: pyotp < 2.10 takes nothing else
        matched = None
        for offset in range(-self.valid_window, self.valid_window + 1):
            step = current + offset
            if step >= 0 and hmac.compare_digest(totp.generate_otp(step), cleaned):
                matched = step if matched is None else matched
        return matched

    def _limit_key(self, user_id: UserId) -> str:
        return f"totp:{type(user_id).__name__}:{user_id}"

    async def _count_attempt(self, user_id: UserId) -> None:
        """Count the check before judging it; raises ``RateLimitedError`` when it must wait."""
        key = self._limit_key(user_id)
        state = await self.limiter.attempt(key, self.backoff)
        if not state.allowed:
            await self._failed(user_id, "rate_limited")
        state.enforce(key)

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        """Verify ``{"user_id", "code"}`` or ``{"user_id", "recovery_code"}``.

        Success carries ``metadata["amr"] == ["otp"]`` (RFC 8176) and
        ``metadata["auth_time"]`` (seconds since the epoch), and ``metadata["method"]``
        (``"totp"`` or ``"recovery_code"``). Raises :class:`~fastsecure.RateLimitedError`
        from the limiter and :class:`~fastsecure.StoreUnavailableError` from the store.
        """
        user_id = credentials.get("user_id")
        code = credentials.get("code")
        recovery = credentials.get("recovery_code")
        if not _valid_user(user_id) or (code is None and recovery is None):
            return AuthenticationResult.failure(
                "a TOTP check needs user_id and code",
                provider=self.provider_name,
                reason=FailureReason.MISSING_CREDENTIALS,
            )
        assert isinstance(user_id, int | str)
        await self._count_attempt(user_id)
        if code is not None:
            method, error = "totp", await self._check_code(user_id, code)
        else:
            method, error = "recovery_code", await self._check_recovery(user_id, recovery)
        if error is not None:
            await self._failed(user_id, error)
            return AuthenticationResult.failure(
                "invalid one-time code", provider=self.provider_name
            )
        await self.limiter.reset(self._limit_key(user_id))
        if method == "totp":
            await self.emit_event(TotpVerified(provider=self.provider_name, user_id=user_id))
        return AuthenticationResult(
            success=True,
            user_id=user_id,
            provider=self.provider_name,
            metadata={"amr": [AMR], "auth_time": int(self._clock()), "method": method},
        )

    async def _check_code(self, user_id: UserId, code: object) -> str | None:
        """None when ``code`` is valid and unused, else the reason it is not."""
        record = await self.store.get(user_id)
        if record is None or record.secret is None:
            return "not_enrolled"
        try:
            secret = self.cipher.decrypt(record.secret, context=_context(user_id))
        except SecretDecryptionError:
            logger.error("fastsecure.totp: a stored secret could not be decrypted")
            return "undecryptable"
        step = self._match(secret, code)
        if step is None:
            return "invalid_code"
        if not await self.store.use_step(user_id, step):
            return "replayed"
        return None

    async def _check_recovery(self, user_id: UserId, code: object) -> str | None:
        normalized = normalize_recovery_code(code)
        if normalized is None:
            return "invalid_recovery_code"
        if not await self.store.use_recovery_code(user_id, hash_recovery_code(normalized)):
            return "invalid_recovery_code"
        remaining = await self.store.count_recovery_codes(user_id)
        await self.emit_event(
            RecoveryCodeUsed(
                provider=self.provider_name, user_id=user_id, detail={"remaining": remaining}
            )
        )
        return None

    async def _failed(self, user_id: UserId, reason: str) -> None:
        await self.emit_event(
            TotpFailed(provider=self.provider_name, user_id=user_id, detail={"reason": reason})
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Always False: a code is single-use, so nothing this provider issues stays valid."""
        return False

    # --- request integration -------------------------------------------------------------

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """None: a code is checked at login or step-up, never read from each request."""
        return None

    def security_schemes(self) -> list[SecurityBase]:
        """None: no request presents a TOTP code, so OpenAPI has nothing to describe."""
        return []

    def challenge(self) -> str:
        """``OTP realm="<name>"``, naming the missing factor."""
        return f'OTP realm="{self.provider_name}"'

    async def aclose(self) -> None:
        """Close the store's connections."""
        await self.store.aclose()
