"""Strategies combine the providers of a requirement: ANY (first success wins) and ALL.

Both ship in core and are registered through ``fastsecure_register_strategies``, the same
hook a plugin uses to add its own.

ANY tries the required providers in the listed order. A provider whose credential is
absent is skipped; one whose credential is rejected does not end the evaluation either:
the next provider is tried, because each provider verifies its own credential in full
and a rejected bearer token is no evidence against a valid session cookie. A provider
that authenticates without the required scopes lets the next one try; if none grants
them, the answer is 403 rather than 401.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .exceptions import (
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    InsufficientScopeError,
    RateLimitedError,
    StoreUnavailableError,
)
from .results import AuthenticationRequirement, AuthenticationResult, FailureReason

if TYPE_CHECKING:
    from .providers import AuthenticationProvider

logger = logging.getLogger("fastsecure")

Credentials = Mapping[str, Mapping[str, Any] | None]


class ProviderLookup(Protocol):
    """What a strategy sees of the engine: find a provider, run one (and have it recorded).

    A strategy never sees the manager. Strategies written for 1.0 that call only
    ``get_provider`` keep working: this is the object passed where they expect it.
    """

    def get_provider(self, name: str) -> AuthenticationProvider:
        """The provider registered under ``name``."""
        ...

    async def run(self, name: str, credentials: Mapping[str, Any]) -> AuthenticationResult:
        """Run provider ``name`` on its credentials through :func:`run_provider`."""
        ...


async def run_provider(
    provider: AuthenticationProvider, name: str, credentials: Mapping[str, Any]
) -> AuthenticationResult:
    """Call one provider, turning every failure into a failed result but three.

    A store outage (503), a rate limit (429) and an unjudgeable request (400) end the
    evaluation: no other provider's answer could change them. Anything else a provider
    raises is a rejected credential: a bug must fail closed, never grant, never answer 500.
    """
    try:
        result: object = await provider.authenticate(dict(credentials))
    except (StoreUnavailableError, RateLimitedError, BadRequestError):
        raise
    except Exception as exc:
        return provider_error(name, exc)
    return checked_result(name, result)


def provider_error(name: str, exc: Exception) -> AuthenticationResult:
    """The failed result for what a provider raised (see :func:`run_provider`)."""
    if isinstance(exc, ForbiddenError):
        return AuthenticationResult.failure(
            str(exc) or "forbidden", provider=name, reason=FailureReason.FORBIDDEN
        )
    if isinstance(exc, InsufficientScopeError):
        return AuthenticationResult.failure(
            str(exc) or "insufficient scope", provider=name, reason=FailureReason.INSUFFICIENT_SCOPE
        )
    if isinstance(exc, AuthenticationError):
        return AuthenticationResult.failure(str(exc) or "invalid credentials", provider=name)
    # Type only: an exception message may quote the credential.
    logger.error("fastsecure: provider %r raised %s", name, type(exc).__name__)
    return AuthenticationResult.failure("authentication provider error", provider=name)


def checked_result(name: str, result: object) -> AuthenticationResult:
    """What a provider returned, if it is a usable result (see :func:`run_provider`)."""
    if type(result) is not AuthenticationResult and not isinstance(result, AuthenticationResult):
        logger.error("fastsecure: provider %r returned %s", name, type(result).__name__)
        return AuthenticationResult.failure("authentication provider error", provider=name)
    if result.success and result.user_id is None:
        return AuthenticationResult.failure("provider authenticated no user", provider=name)
    return result


def missing_scopes(requirement: AuthenticationRequirement, granted: frozenset[str]) -> list[str]:
    """The required scopes that ``granted`` lacks, sorted."""
    return sorted(requirement.scopes - granted) if requirement.scopes else []


def _error_of(name: str, result: AuthenticationResult) -> str:
    return f"{name}: {result.metadata.get('error') or 'authentication failed'}"


class AuthenticationStrategy(ABC):
    """How the providers of a requirement combine into one result."""

    name: ClassVar[str]

    @abstractmethod
    async def authenticate(
        self,
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        credentials: Credentials,
    ) -> AuthenticationResult:
        """Evaluate ``requirement`` against ``credentials`` (provider name -> its dict)."""

    async def validate(
        self,
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        auth_data: Credentials,
    ) -> bool:
        """Whether previously issued credentials still satisfy the requirement."""
        checks = [
            await providers.get_provider(name).validate_authentication(dict(data))
            for name in requirement.providers
            if (data := auth_data.get(name))
        ]
        return bool(checks) and all(checks)

    @staticmethod
    async def add_optional(
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        credentials: Credentials,
        result: AuthenticationResult,
    ) -> None:
        """Try the optional providers whose credentials are present; add their metadata.

        They never fail the requirement nor satisfy it alone; a different user or an
        outage of their store is ignored.
        """
        for name in requirement.optional:
            creds = credentials.get(name)
            if not creds:
                continue
            try:
                extra = await providers.run(name, creds)
            except StoreUnavailableError:
                logger.warning("fastsecure: optional provider %r unavailable; ignored", name)
                continue
            if extra.success and str(extra.user_id) == str(result.user_id):
                result.metadata[name] = extra.metadata


class AnyAuthStrategy(AuthenticationStrategy):
    """The first required provider, in the listed order, that succeeds with the scopes wins."""

    name: ClassVar[str] = "any"

    async def authenticate(
        self,
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        credentials: Credentials,
    ) -> AuthenticationResult:
        errors: list[str] = []
        presented = False
        lacked_scope = False
        forbidden = False
        for name in requirement.providers:
            creds = credentials.get(name)
            if not creds:
                errors.append(f"Missing credentials for provider: {name}")
                continue
            presented = True
            result = await providers.run(name, creds)
            if not result.success:
                errors.append(_error_of(name, result))
                forbidden = forbidden or result.failure_reason is FailureReason.FORBIDDEN
                continue
            required = requirement.scopes
            if required:
                granted = result.scopes
                if not required <= granted:
                    lacked_scope = True
                    lacking = ", ".join(sorted(required - granted))
                    errors.append(f"{name}: missing required scopes: {lacking}")
                    continue
                result.metadata["scopes"] = sorted(granted)
            elif not isinstance(result.metadata.get("scopes"), list):
                result.metadata["scopes"] = sorted(result.scopes)
            if requirement.optional:
                await self.add_optional(providers, requirement, credentials, result)
            return result
        if lacked_scope:
            reason = FailureReason.INSUFFICIENT_SCOPE
            error = "Insufficient scope"
        elif forbidden:
            reason = FailureReason.FORBIDDEN
            error = "Forbidden"
        elif presented:
            reason = FailureReason.INVALID_CREDENTIALS
            error = "Invalid authentication credentials"
        else:
            reason = FailureReason.MISSING_CREDENTIALS
            error = "Not authenticated"
        return AuthenticationResult.failure(error, provider="any", reason=reason, errors=errors)

    async def validate(
        self,
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        auth_data: Credentials,
    ) -> bool:
        for name in requirement.providers:
            data = auth_data.get(name)
            if data and await providers.get_provider(name).validate_authentication(dict(data)):
                return True
        return False


class AllAuthStrategy(AuthenticationStrategy):
    """Every required provider must succeed, for the same user.

    The combined result has ``provider == "all"``, every credential issued (tokens from
    one provider, a session id from another), each provider's metadata under its name
    and the union of granted scopes under ``metadata["scopes"]``.
    """

    name: ClassVar[str] = "all"

    async def authenticate(
        self,
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        credentials: Credentials,
    ) -> AuthenticationResult:
        missing = [
            f"Missing credentials for required provider: {name}"
            for name in requirement.providers
            if not credentials.get(name)
        ]
        if missing:
            # Checked before any provider runs, so a login never issues half its credentials.
            reason = (
                FailureReason.MISSING_CREDENTIALS
                if len(missing) == len(requirement.providers)
                else FailureReason.INVALID_CREDENTIALS
            )
            return AuthenticationResult.failure(
                "Not authenticated", provider="all", reason=reason, errors=missing
            )
        results: dict[str, AuthenticationResult] = {}
        for name in requirement.providers:
            creds = credentials[name]
            assert creds is not None
            result = await providers.run(name, creds)
            if not result.success:
                reason = result.failure_reason or FailureReason.INVALID_CREDENTIALS
                return AuthenticationResult.failure(
                    "Invalid authentication credentials",
                    provider="all",
                    reason=reason,
                    errors=[_error_of(name, result)],
                )
            results[name] = result
        users = {str(r.user_id) for r in results.values()}
        if len(users) > 1:
            return AuthenticationResult.failure(
                "Providers authenticated different users",
                provider="all",
                errors=["Providers authenticated different users"],
            )
        combined = self.combine(results)
        lacking = missing_scopes(requirement, combined.scopes)
        if lacking:
            return AuthenticationResult.failure(
                "Insufficient scope",
                provider="all",
                reason=FailureReason.INSUFFICIENT_SCOPE,
                errors=[f"missing required scopes: {', '.join(lacking)}"],
            )
        if requirement.optional:
            await self.add_optional(providers, requirement, credentials, combined)
        return combined

    @staticmethod
    def combine(results: Mapping[str, AuthenticationResult]) -> AuthenticationResult:
        """Merge successful results into one, keeping every credential issued."""
        ordered = list(results.values())

        def first(attr: str) -> Any:
            return next((v for r in ordered if (v := getattr(r, attr)) is not None), None)

        expiries = [r.expires_at for r in ordered if r.expires_at is not None]
        scopes: set[str] = set()
        for r in ordered:
            scopes |= r.scopes
        metadata: dict[str, Any] = {name: r.metadata for name, r in results.items()}
        metadata["scopes"] = sorted(scopes)
        metadata["providers"] = list(results)
        return AuthenticationResult(
            success=True,
            user_id=ordered[0].user_id,
            access_token=first("access_token"),
            refresh_token=first("refresh_token"),
            session_id=first("session_id"),
            expires_at=min(expiries) if expiries else None,
            provider="all",
            metadata=metadata,
        )

    async def validate(
        self,
        providers: ProviderLookup,
        requirement: AuthenticationRequirement,
        auth_data: Credentials,
    ) -> bool:
        for name in requirement.providers:
            data = auth_data.get(name)
            provider = providers.get_provider(name)
            if not data or not await provider.validate_authentication(dict(data)):
                return False
        return True
