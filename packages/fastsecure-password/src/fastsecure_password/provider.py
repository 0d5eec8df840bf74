"""The password provider: checks a login identifier and a password, with rate limits.

It issues no credential itself: a successful check hands over to the provider that does
(a session, JWT) through :meth:`fastsecure_password.PasswordAccounts.login`. It never
reads a request: a password arrives only as login data from the app's own form or body,
never from a header, and is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from fastsecure import AuthenticationProvider, AuthenticationResult, ConfigurationError
from fastsecure.accounts import UserRecord, UserStore
from fastsecure.ratelimit import Backoff, LimitState, MemoryRateLimiter, RateLimiter, address_key

from .events import PasswordLoginFailed, RateLimited
from .hashing import PasswordHasher
from .users import MemoryUserStore

if TYPE_CHECKING:
    from fastapi.security.base import SecurityBase
    from starlette.requests import HTTPConnection

MAX_INPUT = 4096
"""Characters of a presented password that are hashed at most; longer ones never match."""

DEVICE_MAX_AGE = 90 * 86400
"""Seconds a device cookie vouches for a browser (OWASP's "device cookies")."""


def normalize_login(login: str) -> str:
    """The default login normalization: NFKC, trimmed, case-folded.

    ``Zoë@Example.org`` and ``zoë@example.org `` are one account; an app with
    case-sensitive user names passes its own function.
    """
    return unicodedata.normalize("NFKC", login).strip().casefold()


@dataclass(frozen=True)
class LoginLimits:
    """The login's rate limits (progressive back-off on failures, see :mod:`fastsecure.ratelimit`).

    An attempt from a browser without a device cookie for the account counts against
    three keys: the client address (guessing across many accounts), the pair of account
    and address (guessing one account), and the account alone (guessing one account from
    many addresses). A browser that logged in to the account before holds a signed device
    cookie; its attempts count only against that device, so an attacker elsewhere who
    exhausts the account's keys slows down every other browser but never locks out the
    owner's own.

    Attributes:
        address: per client address, across accounts; a success takes its attempt back.
        account_address: per account and address; a success forgets it.
        account: per account, for browsers without a device cookie; a success forgets it.
        device: per trusted device; a success forgets it.
    """

    address: Backoff = field(default_factory=lambda: Backoff(20, 3600, 1, 900))
    account_address: Backoff = field(default_factory=lambda: Backoff(5, 900, 1, 900))
    account: Backoff = field(default_factory=lambda: Backoff(50, 3600, 1, 300))
    device: Backoff = field(default_factory=lambda: Backoff(10, 900, 1, 300))


class PasswordAuthenticationProvider(AuthenticationProvider):
    """Verifies ``{"login": ..., "password": ...}`` against a user store.

    ``authenticate`` returns a successful result with the account's ``user_id`` (and its
    record in ``metadata["user"]``) or a failed one that never says whether the account
    exists; a rate limit raises :class:`~fastsecure.RateLimitedError`. Optional keys:
    ``client_ip`` (the limiter's address key; pass
    :class:`fastsecure.ratelimit.ClientAddress` of the request) and ``device`` (the
    device cookie).

    Args:
        users: the user store (in memory by default).
        hasher: the password hasher (argon2id, bcrypt verifiable).
        limiter: where attempts are counted; share a Redis or SQL limiter between processes.
        limits: the back-off per key.
        require_verified: refuse accounts whose e-mail is not verified yet.
        device_secret: key of the device cookies (32+ random bytes); without one no cookie
            is issued and every browser counts as untrusted.
        normalize: login identifier normalization.
    """

    provider_type: ClassVar[str] = "password"

    def __init__(
        self,
        users: UserStore | None = None,
        *,
        hasher: PasswordHasher | None = None,
        limiter: RateLimiter | None = None,
        limits: LoginLimits | None = None,
        require_verified: bool = True,
        device_secret: str | bytes | None = None,
        normalize: Callable[[str], str] = normalize_login,
    ) -> None:
        self.users: UserStore = users if users is not None else MemoryUserStore()
        self.hasher = hasher or PasswordHasher()
        self.limiter: RateLimiter = limiter if limiter is not None else MemoryRateLimiter()
        self.limits = limits or LoginLimits()
        self.require_verified = require_verified
        self.normalize = normalize
        if isinstance(device_secret, str):
            device_secret = device_secret.encode()
        if device_secret is not None and len(device_secret) < 32:
            raise ConfigurationError("device_secret must be at least 32 bytes")
        self._device_key = device_secret

    def get_required_credentials(self) -> set[str]:
        return {"login", "password"}

    async def extract_credentials(self, connection: HTTPConnection) -> dict[str, Any] | None:
        """Never: a password is login data, not something a request presents."""
        return None

    def security_schemes(self) -> list[SecurityBase]:
        return []

    def challenge(self) -> str:
        return f'Password realm="{self.provider_name}"'

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        """Always False: a password check issues nothing that could be validated later."""
        return False

    # --- device cookies ------------------------------------------------------------------

    def _mac(self, login: str, nonce: str, issued: int) -> str:
        assert self._device_key is not None
        message = f"{login}\x00{nonce}\x00{issued}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self._device_key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue_device_token(self, login: str) -> str | None:
        """A device cookie value for a browser that just logged in (None without a secret)."""
        if self._device_key is None:
            return None
        nonce, issued = secrets.token_urlsafe(16), int(time.time())
        return f"{nonce}.{issued}.{self._mac(self.normalize(login), nonce, issued)}"

    def _device_id(self, token: object, login: str) -> str | None:
        """The device's id when ``token`` is a live device cookie for ``login``."""
        if self._device_key is None or not isinstance(token, str) or len(token) > 200:
            return None
        nonce, _, rest = token.partition(".")
        issued_text, _, mac = rest.partition(".")
        if not nonce or not issued_text.isdigit() or not mac:
            return None
        issued = int(issued_text)
        if not 0 <= time.time() - issued <= DEVICE_MAX_AGE:
            return None
        if not hmac.compare_digest(mac, self._mac(login, nonce, issued)):
            return None
        return nonce

    # --- the check -----------------------------------------------------------------------

    async def _refuse(self, flow: str, kind: str, state: LimitState) -> None:
        await self.emit_event(
            RateLimited(
                provider=self.provider_name,
                detail={"flow": flow, "key": kind, "retry_after": round(state.retry_after, 3)},
            )
        )
        state.enforce(f"{flow}:{kind}")

    async def _admit(self, login: str, client_ip: str, device: str | None) -> list[tuple[str, Any]]:
        """Count the attempt against each key; raise when one refuses (earlier ones refunded)."""
        address = address_key(client_ip or "unknown")
        if device is not None:
            keys = [("device", f"login:device:{device}", self.limits.device)]
        else:
            keys = [
                ("address", f"login:address:{address}", self.limits.address),
                (
                    "account_address",
                    f"login:pair:{login}\x00{address}",
                    self.limits.account_address,
                ),
                ("account", f"login:account:{login}", self.limits.account),
            ]
        counted: list[tuple[str, Any]] = []
        for kind, key, backoff in keys:
            state = await self.limiter.attempt(key, backoff)
            if not state.allowed:
                for _, (earlier, earlier_backoff) in counted:
                    await self.limiter.refund(earlier, earlier_backoff)
                await self._refuse("login", kind, state)
            counted.append((kind, (key, backoff)))
        return counted

    async def _succeeded(self, counted: list[tuple[str, Any]]) -> None:
        for kind, (key, backoff) in counted:
            if kind == "address":
                await self.limiter.refund(key, backoff)
            else:
                await self.limiter.reset(key)

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        raw_login, password = credentials.get("login"), credentials.get("password")
        if not isinstance(raw_login, str) or not isinstance(password, str):
            return self._fail("login and password must be strings")
        login = self.normalize(raw_login)
        if not login or len(login) > 320:
            return self._fail("invalid login")
        device = self._device_id(credentials.get("device"), login)
        counted = await self._admit(login, str(credentials.get("client_ip") or ""), device)
        user = await self.users.get_by_login(login)
        # An absurdly long input is checked against the dummy hash: same work, no match.
        stored = user.password_hash if user is not None and len(password) <= MAX_INPUT else None
        matches, new_hash = await self.hasher.verify(password[:MAX_INPUT], stored)
        if user is None or not matches:
            await self.emit_event(
                PasswordLoginFailed(
                    provider=self.provider_name,
                    user_id=user.user_id if user is not None else None,
                    detail={"reason": "invalid_credentials" if user else "unknown_account"},
                )
            )
            return self._fail("invalid login or password")
        await self._succeeded(counted)
        if new_hash is not None:
            refreshed = await self.users.set_password_hash(
                user.user_id, new_hash, bump_version=False
            )
            user = refreshed or user
        if self.require_verified and not user.verified:
            await self.emit_event(
                PasswordLoginFailed(
                    provider=self.provider_name,
                    user_id=user.user_id,
                    detail={"reason": "unverified"},
                )
            )
            return self._fail("e-mail address not verified", unverified=True)
        return AuthenticationResult(
            success=True,
            user_id=user.user_id,
            provider=self.provider_name,
            metadata={
                "user": user,
                "scopes": list(user.data.get("scopes") or []),
                "rehashed": new_hash is not None,
                # A factor result (RFC 8176 "pwd"): an issuer given it as ``factors``
                # records it, and factor requirements (``factors=["pwd", ...]``) read it.
                "amr": ["pwd"],
                "auth_time": int(time.time()),
            },
        )

    def _fail(self, error: str, **metadata: Any) -> AuthenticationResult:
        return AuthenticationResult.failure(error, provider=self.provider_name, **metadata)

    async def aclose(self) -> None:
        await self.limiter.aclose()
        await self.users.aclose()


def user_of(result: AuthenticationResult) -> UserRecord:
    """The account record a successful password check carries."""
    user = result.metadata.get("user")
    if not isinstance(user, UserRecord):
        raise TypeError("not a successful password check")
    return user


__all__ = ["LoginLimits", "PasswordAuthenticationProvider", "normalize_login", "user_of"]
