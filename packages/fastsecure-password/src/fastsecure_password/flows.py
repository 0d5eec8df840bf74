"""The account flows as plain async methods: register, verify, resend, forgot, reset, change, login.

Apps put their own pages in front of these (or mount :func:`fastsecure_password.fastapi.
password_router`). Every answer that could tell whether an account exists is the same
either way: registration, resending a verification link and asking for a reset return
nothing, and the work that differs (looking the account up, minting a token, sending
mail) happens after the answer, in the background.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from fastsecure import AuthenticationRequirement, AuthenticationResult, FastSecureError
from fastsecure.accounts import AccountToken, UserExistsError, UserRecord, UserStore
from fastsecure.events import LoginFailed, LoginSucceeded
from fastsecure.ratelimit import Backoff, RateLimit, RateLimiter, address_key
from fastsecure.results import UserId

from .events import (
    AccountRegistered,
    AccountTokenRefused,
    EmailVerified,
    PasswordChanged,
    PasswordRejected,
    PasswordResetRequested,
    RateLimited,
    RegistrationRefused,
)
from .mail import Mailer
from .policy import PasswordPolicy, PasswordRejectedError
from .provider import PasswordAuthenticationProvider, user_of

if TYPE_CHECKING:
    from fastsecure import AuthenticationManager

logger = logging.getLogger("fastsecure.password")

VERIFY, RESET = "verify", "reset"


class InvalidTokenError(FastSecureError):
    """A verification or reset token is unknown, used, expired or outdated (HTTP 400)."""


class WrongPasswordError(FastSecureError):
    """The current password given to change it is wrong (HTTP 403)."""


class LoginRefusedError(FastSecureError):
    """A login failed; ``unverified`` tells the one case the user can fix (HTTP 401)."""

    def __init__(self, message: str, *, unverified: bool = False) -> None:
        self.unverified = unverified
        super().__init__(message)


def hash_token(purpose: str, token: str) -> str:
    """How an account token is stored: SHA-256 of purpose and token (256 random bits)."""
    return hashlib.sha256(f"{purpose}:{token}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class FlowLimits:
    """Rate limits of the flows besides login (login's are on the provider).

    Attributes:
        register: registrations per client address (429 when exceeded).
        request_mail: reset and verification requests per client address (429).
        mail_per_account: mails per account; beyond it requests are answered as usual
            but send nothing, so nobody can flood an inbox and the answer reveals nothing.
        token: failed token uses per client address (progressive back-off).
        change: wrong current passwords per account (progressive back-off).
    """

    register: RateLimit = field(default_factory=lambda: RateLimit(10, 3600))
    request_mail: RateLimit = field(default_factory=lambda: RateLimit(5, 900))
    mail_per_account: RateLimit = field(default_factory=lambda: RateLimit(3, 3600))
    token: Backoff = field(default_factory=lambda: Backoff(10, 3600, 1, 300))
    change: Backoff = field(default_factory=lambda: Backoff(5, 900, 1, 900))


@dataclass(frozen=True)
class MailTemplates:
    """The account mails; subclass and override a method to word them your way.

    Attributes:
        sender: the ``From`` address.
        app_name: how the mails name the app.
        verify_url: the page that takes a verification token (``?token=`` is appended).
        reset_url: the page that takes a reset token.
        login_url: where the "already registered" mail sends people.
    """

    sender: str
    app_name: str
    verify_url: str
    reset_url: str
    login_url: str

    @staticmethod
    def _link(base: str, token: str) -> str:
        return f"{base}{'&' if '?' in base else '?'}token={token}"

    def _message(self, to: str, subject: str, body: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        return message

    def verify(self, user: UserRecord, to: str, token: str, ttl: timedelta) -> EmailMessage:
        """The verification link."""
        hours = max(1, round(ttl.total_seconds() / 3600))
        return self._message(
            to,
            f"Confirm your e-mail address for {self.app_name}",
            f"Open this link to confirm your address (valid {hours} h, once):\n\n"
            f"{self._link(self.verify_url, token)}\n\n"
            "If you did not sign up, ignore this message.",
        )

    def reset(self, user: UserRecord, to: str, token: str, ttl: timedelta) -> EmailMessage:
        """The reset link."""
        minutes = max(1, round(ttl.total_seconds() / 60))
        return self._message(
            to,
            f"Reset your {self.app_name} password",
            f"Open this link to choose a new password (valid {minutes} min, once):\n\n"
            f"{self._link(self.reset_url, token)}\n\n"
            "If you did not ask for this, ignore this message: your password stays.",
        )

    def already_registered(self, user: UserRecord, to: str) -> EmailMessage:
        """Someone tried to register with an address that has an account."""
        return self._message(
            to,
            f"Someone tried to sign up to {self.app_name} with your address",
            f"You already have an account. Sign in at {self.login_url}; if you forgot "
            'your password, use "Forgot password" there. If it was not you, ignore this.',
        )

    def password_changed(self, user: UserRecord, to: str) -> EmailMessage:
        """The password was changed; every session was ended."""
        return self._message(
            to,
            f"Your {self.app_name} password was changed",
            "Your password was changed and every session was signed out. If this was not "
            f"you, reset your password now at {self.login_url}.",
        )


Revoker = Callable[[UserId], Awaitable[int]]


class PasswordAccounts:
    """Password accounts of one app: the provider, a mailer and the flows.

    Args:
        manager: the app's manager; the password provider must be registered in it (its
            events reach ``fastsecure_on_event`` that way).
        mailer: where account mail goes (:class:`~fastsecure_password.OutboxMailer` in
            tests, :class:`~fastsecure_password.SMTPMailer` in production).
        templates: the mails' sender, wording and links.
        provider: the registered password provider's name.
        issue_with: the provider that issues the credential after a password check
            (``"session"``, ``"jwt"``).
        policy: what new passwords must satisfy.
        limits: the flows' rate limits (login's are on the provider).
        verify_ttl, reset_ttl: how long a link works.
        background_mail: send after answering (default), so a known and an unknown
            address take the same time; ``False`` sends before returning.
    """

    def __init__(
        self,
        manager: AuthenticationManager,
        *,
        mailer: Mailer,
        templates: MailTemplates,
        provider: str = "password",
        issue_with: str = "session",
        policy: PasswordPolicy | None = None,
        limits: FlowLimits | None = None,
        verify_ttl: timedelta = timedelta(hours=24),
        reset_ttl: timedelta = timedelta(minutes=30),
        background_mail: bool = True,
    ) -> None:
        found = manager.get_provider(provider)
        if not isinstance(found, PasswordAuthenticationProvider):
            raise TypeError(f"provider {provider!r} is not a PasswordAuthenticationProvider")
        self.manager = manager
        self.provider = found
        self.mailer = mailer
        self.templates = templates
        self.issue_with = issue_with
        self.policy = policy or PasswordPolicy()
        self.limits = limits or FlowLimits()
        self.verify_ttl = verify_ttl
        self.reset_ttl = reset_ttl
        self.background_mail = background_mail
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def users(self) -> UserStore:
        """The user store (the provider's)."""
        return self.provider.users

    @property
    def limiter(self) -> RateLimiter:
        """The rate limiter (the provider's)."""
        return self.provider.limiter

    # --- plumbing -----------------------------------------------------------------------

    async def _emit(self, event: Any) -> None:
        await self.provider.emit_event(event)

    async def _hit(self, flow: str, kind: str, key: str, rate: RateLimit) -> None:
        state = await self.limiter.hit(key, rate)
        if not state.allowed:
            await self._emit(
                RateLimited(
                    provider=self.provider.provider_name,
                    detail={"flow": flow, "key": kind, "retry_after": round(state.retry_after, 3)},
                )
            )
            state.enforce(f"{flow}:{kind}")

    async def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the answer (or now, without background mail); log, never raise."""

        async def guarded() -> None:
            try:
                await work
            except Exception as exc:
                logger.warning("fastsecure: account mail work failed: %s", type(exc).__name__)

        if not self.background_mail:
            await guarded()
            return
        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for mail work scheduled so far (tests; application shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def aclose(self) -> None:
        """Finish pending mail and close the mailer."""
        await self.flush()
        await self.mailer.aclose()

    async def _check_policy(self, password: object, login: str | None, user: UserId | None) -> str:
        try:
            return await self.policy.check(password, login=login)
        except PasswordRejectedError as exc:
            await self._emit(
                PasswordRejected(
                    provider=self.provider.provider_name,
                    user_id=user,
                    detail={"reason": exc.reason},
                )
            )
            raise

    async def _mail_allowed(self, login: str) -> bool:
        state = await self.limiter.hit(f"mail:account:{login}", self.limits.mail_per_account)
        return bool(state.allowed)

    async def _issue_token(self, user: UserRecord, purpose: str, ttl: timedelta) -> str:
        token = secrets.token_urlsafe(32)
        await self.users.save_token(
            AccountToken(
                token_hash=hash_token(purpose, token),
                purpose=purpose,
                user_id=user.user_id,
                credential_version=user.credential_version,
                expires_at=datetime.now(UTC) + ttl,
            )
        )
        return token

    async def _send_verification(self, user: UserRecord) -> None:
        if user.email is None or not await self._mail_allowed(user.login):
            return
        token = await self._issue_token(user, VERIFY, self.verify_ttl)
        await self.mailer.send(self.templates.verify(user, user.email, token, self.verify_ttl))

    async def _use_token(
        self, purpose: str, token: object, client_ip: str
    ) -> tuple[UserRecord, str]:
        """The account a token belongs to, consuming it; raises InvalidTokenError."""
        key = f"token:address:{address_key(client_ip or 'unknown')}"
        state = await self.limiter.attempt(key, self.limits.token)
        if not state.allowed:
            await self._emit(
                RateLimited(
                    provider=self.provider.provider_name,
                    detail={"flow": purpose, "key": "address", "retry_after": state.retry_after},
                )
            )
            state.enforce(f"{purpose}:address")
        reason, user = "unknown", None
        if isinstance(token, str) and 20 <= len(token) <= 100:
            stored = await self.users.consume_token(hash_token(purpose, token))
            if stored is not None:
                user = await self.users.get_user(stored.user_id)
                if stored.expires_at <= datetime.now(UTC):
                    reason = "expired"
                elif user is None or user.credential_version != stored.credential_version:
                    reason = "outdated"
                else:
                    await self.limiter.refund(key, self.limits.token)
                    return user, key
        await self._emit(
            AccountTokenRefused(
                provider=self.provider.provider_name,
                user_id=user.user_id if user is not None else None,
                detail={"purpose": purpose, "reason": reason},
            )
        )
        raise InvalidTokenError("This link is invalid or has expired.")

    # --- revoking everything ------------------------------------------------------------

    def revokers(self) -> dict[str, Revoker]:
        """Every registered provider's "end all of this user's credentials" method.

        Session providers have ``revoke_user_sessions(user_id)``; token providers have
        ``revoke_user_tokens(user_id)`` (``fastsecure-jwt`` ends every refresh-token
        family of the user, and refuses when its token store cannot list them).
        """
        found: dict[str, Revoker] = {}
        for name, provider in self.manager.providers.items():
            for method in ("revoke_user_sessions", "revoke_user_tokens"):
                revoke = getattr(provider, method, None)
                if callable(revoke):
                    found[f"{name}.{method}"] = revoke
        return found

    async def end_everything(self, user_id: UserId) -> dict[str, int]:
        """End every session and token family of the user; counts by provider method.

        Every revoker runs even when one fails (a token store that is down does not keep
        the sessions alive too); the first failure is raised afterwards.
        """
        ended, failed = await self._end_all(user_id)
        if failed:
            raise next(iter(failed.values()))
        return ended

    async def _end_all(self, user_id: UserId) -> tuple[dict[str, int], dict[str, Exception]]:
        ended: dict[str, int] = {}
        failed: dict[str, Exception] = {}
        for name, revoke in self.revokers().items():
            try:
                ended[name] = int(await revoke(user_id))
            except Exception as exc:
                failed[name] = exc
        return ended, failed

    # --- the flows ----------------------------------------------------------------------

    async def register(
        self,
        login: str,
        password: str,
        *,
        client_ip: str,
        email: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Create an account and mail a verification link.

        Returns nothing whether the login was free or taken: a taken login gets an
        "already registered" mail instead, so only the address's owner learns anything.
        The password is hashed either way (equal work).

        Raises:
            PasswordRejectedError: the password fails the policy (before any lookup).
            RateLimitedError: too many registrations from this address.
        """
        await self._hit(
            "register",
            "address",
            f"register:address:{address_key(client_ip)}",
            self.limits.register,
        )
        normalized = self.provider.normalize(login)
        if not normalized or len(normalized) > 320:
            raise PasswordRejectedError("invalid_login", "Enter a valid login.")
        await self._check_policy(password, normalized, None)
        address = email if email is not None else (normalized if "@" in normalized else None)
        password_hash = await self.provider.hasher.hash(password)
        try:
            user = await self.users.create_user(normalized, password_hash, email=address, data=data)
        except UserExistsError:
            await self._later(self._already_registered(normalized))
            return
        await self._emit(
            AccountRegistered(provider=self.provider.provider_name, user_id=user.user_id)
        )
        await self._later(self._send_verification(user))

    async def _already_registered(self, login: str) -> None:
        existing = await self.users.get_by_login(login)
        await self._emit(
            RegistrationRefused(
                provider=self.provider.provider_name,
                user_id=existing.user_id if existing else None,
                detail={"reason": "exists"},
            )
        )
        if existing is not None and existing.email and await self._mail_allowed(existing.login):
            await self.mailer.send(self.templates.already_registered(existing, existing.email))

    async def verify_email(self, token: str, *, client_ip: str) -> UserRecord:
        """Mark the address verified; the link works once, and dies with an address change.

        Raises:
            InvalidTokenError: unknown, used, expired or outdated token.
            RateLimitedError: too many bad tokens from this address.
        """
        user, _ = await self._use_token(VERIFY, token, client_ip)
        if not await self.users.mark_verified(user.user_id, user.credential_version):
            raise InvalidTokenError("This link is invalid or has expired.")
        await self._emit(EmailVerified(provider=self.provider.provider_name, user_id=user.user_id))
        refreshed = await self.users.get_user(user.user_id)
        return refreshed or user

    async def resend_verification(self, login: str, *, client_ip: str) -> None:
        """Mail a new verification link when the account exists and is unverified.

        Returns nothing in every case; the lookup happens after the answer.
        """
        await self._hit(
            "resend", "address", f"mail:address:{address_key(client_ip)}", self.limits.request_mail
        )
        normalized = self.provider.normalize(login)

        async def work() -> None:
            user = await self.users.get_by_login(normalized)
            if user is not None and not user.verified:
                await self._send_verification(user)

        await self._later(work())

    async def forgot_password(self, login: str, *, client_ip: str) -> None:
        """Mail a reset link when the account exists; returns nothing in every case."""
        await self._hit(
            "forgot", "address", f"mail:address:{address_key(client_ip)}", self.limits.request_mail
        )
        normalized = self.provider.normalize(login)

        async def work() -> None:
            user = await self.users.get_by_login(normalized)
            await self._emit(
                PasswordResetRequested(
                    provider=self.provider.provider_name,
                    user_id=user.user_id if user is not None else None,
                )
            )
            if user is None or user.email is None or not await self._mail_allowed(user.login):
                return
            token = await self._issue_token(user, RESET, self.reset_ttl)
            await self.mailer.send(self.templates.reset(user, user.email, token, self.reset_ttl))

        await self._later(work())

    async def reset_password(self, token: str, new_password: str, *, client_ip: str) -> UserRecord:
        """Set a new password from a reset link; every session and token family ends.

        The link works once, for ``reset_ttl``, and dies when the password changes. Using
        it also proves the address, so the account counts as verified.

        Raises:
            PasswordRejectedError: checked before the link is used up.
            InvalidTokenError: unknown, used, expired or outdated token.
            RateLimitedError: too many bad tokens from this address.
        """
        await self._check_policy(new_password, None, None)
        user, _ = await self._use_token(RESET, token, client_ip)
        return await self._set_password(user, new_password, "reset")

    async def change_password(
        self, user_id: UserId, current_password: str, new_password: str
    ) -> UserRecord:
        """Change the password of a logged-in user, who must give the current one.

        Every session and token family ends, the current one included: issue a new
        credential afterwards if the user should stay logged in.

        Raises:
            WrongPasswordError: the current password is wrong.
            PasswordRejectedError: the new one fails the policy.
            RateLimitedError: too many wrong current passwords.
        """
        key = f"change:account:{user_id}"
        state = await self.limiter.attempt(key, self.limits.change)
        if not state.allowed:
            await self._emit(
                RateLimited(
                    provider=self.provider.provider_name,
                    user_id=user_id,
                    detail={"flow": "change", "key": "account", "retry_after": state.retry_after},
                )
            )
            state.enforce("change:account")
        user = await self.users.get_user(user_id)
        ok, _ = await self.provider.hasher.verify(
            current_password if isinstance(current_password, str) else "",
            user.password_hash if user is not None else None,
        )
        if user is None or not ok:
            raise WrongPasswordError("The current password is wrong.")
        await self.limiter.reset(key)
        await self._check_policy(new_password, user.login, user.user_id)
        return await self._set_password(user, new_password, "change")

    async def _set_password(self, user: UserRecord, password: str, how: str) -> UserRecord:
        if how == "reset":
            await self._check_policy(password, user.login, user.user_id)
        new_hash = await self.provider.hasher.hash(password)
        updated = await self.users.set_password_hash(user.user_id, new_hash, bump_version=True)
        if updated is None:
            raise InvalidTokenError("This account no longer exists.")
        if how == "reset" and not updated.verified:
            await self.users.mark_verified(updated.user_id, updated.credential_version)
            updated = await self.users.get_user(updated.user_id) or updated
        ended, failed = await self._end_all(user.user_id)
        detail: dict[str, Any] = {"how": how, "ended": ended}
        if failed:
            detail["failed"] = sorted(failed)
        await self._emit(
            PasswordChanged(
                provider=self.provider.provider_name, user_id=user.user_id, detail=detail
            )
        )
        if updated.email:
            await self._later(self._notify_changed(updated, updated.email))
        if failed:
            # The password did change (and the owner is told); the caller learns that
            # some logins may live on: 503 for a store that could not answer.
            raise next(iter(failed.values()))
        return updated

    async def _notify_changed(self, user: UserRecord, to: str) -> None:
        await self.mailer.send(self.templates.password_changed(user, to))

    async def check_password(
        self, login: str, password: str, *, client_ip: str, device: str | None = None
    ) -> AuthenticationResult:
        """The password check alone (rate-limited); raises :class:`LoginRefusedError`."""
        checked = await self.provider.authenticate(
            {"login": login, "password": password, "client_ip": client_ip, "device": device}
        )
        if not checked.success:
            await self.manager.emit(
                LoginFailed(
                    provider=self.provider.provider_name,
                    detail={"reason": "invalid_credentials"},
                )
            )
            raise LoginRefusedError(
                "Wrong login or password.", unverified=bool(checked.metadata.get("unverified"))
            )
        return checked

    async def login(
        self,
        login: str,
        password: str,
        *,
        client_ip: str,
        device: str | None = None,
        issue_with: str | None = None,
        issue_data: Mapping[str, Any] | None = None,
    ) -> AuthenticationResult:
        """Check the password, then let ``issue_with`` issue the credential (via the manager).

        Args:
            login: the login identifier the user typed.
            password: the password the user typed.
            client_ip: the client's address (``ClientAddress(...)(request)``).
            device: the device cookie, when the browser sent one.
            issue_with: the issuing provider (default: the one given at construction).
            issue_data: more login data for it (``user_agent``, ``ip_address``,
                ``metadata``); ``user_id`` and ``scopes`` come from the account.

        Returns:
            The issuing provider's result (a session id, a token pair); its metadata also
            holds ``"user"``, the account.

        Raises:
            LoginRefusedError: wrong login or password, or (``unverified``) an account
                whose address is not verified yet.
            RateLimitedError: too many attempts (429 with ``Retry-After``).
        """
        checked = await self.check_password(login, password, client_ip=client_ip, device=device)
        user = user_of(checked)
        issuer = issue_with or self.issue_with
        extra = dict(issue_data or {})
        data: dict[str, Any] = {
            **extra,
            "user_id": user.user_id,
            "scopes": list(checked.scopes),
            # The session or token records the password as a factor (amr "pwd").
            "factors": [checked, *extra.get("factors", ())],
        }
        issued = await self.manager.evaluate(AuthenticationRequirement([issuer]), {issuer: data})
        if not issued.success:
            raise LoginRefusedError(str(issued.metadata.get("error") or "login refused"))
        await self.ensure_unchanged(checked, issued, issuer=issuer)
        await self.manager.emit(
            LoginSucceeded(provider=issuer, user_id=user.user_id, detail={"method": "password"})
        )
        issued.metadata["user"] = user
        return issued

    async def ensure_unchanged(
        self, checked: AuthenticationResult, issued: AuthenticationResult, *, issuer: str
    ) -> None:
        """Refuse a login whose password was reset or changed while it was being issued.

        A reset bumps the account's credential version and then ends every login of the
        user. A login that checked the old password just before can issue its session or
        token just after that end, and would outlive the reset. Reading the version once
        the credential exists closes the gap: a bump before this read is seen here, and a
        bump after it is followed by a revoke that finds the new credential.

        :meth:`login` calls this; call it yourself after :meth:`check_password` when your
        app issues the credential (``issuer``: the provider's name). On a changed password
        it revokes ``issued`` and raises :class:`LoginRefusedError`; when the user store
        cannot answer it revokes ``issued`` and re-raises.
        """
        before = user_of(checked)
        try:
            now = await self.users.get_user(before.user_id)
        except Exception:
            await self._revoke_issued(issued, issuer)
            raise
        if now is not None and now.credential_version == before.credential_version:
            return
        await self._revoke_issued(issued, issuer)
        await self.manager.emit(
            LoginFailed(
                provider=self.provider.provider_name,
                user_id=before.user_id,
                detail={"reason": "password_changed_during_login"},
            )
        )
        raise LoginRefusedError("Wrong login or password.")

    async def _revoke_issued(self, issued: AuthenticationResult, issuer: str) -> None:
        fields = ("session_id", "access_token", "refresh_token")
        data = {name: value for name in fields if (value := getattr(issued, name)) is not None}
        if data:
            await self.manager.revoke_authentication(issuer, data)

    def device_token(self, login: str) -> str | None:
        """A device cookie value for a browser that just logged in (see ``LoginLimits``)."""
        return self.provider.issue_device_token(login)


__all__ = [
    "FlowLimits",
    "InvalidTokenError",
    "LoginRefusedError",
    "MailTemplates",
    "PasswordAccounts",
    "WrongPasswordError",
    "hash_token",
]
