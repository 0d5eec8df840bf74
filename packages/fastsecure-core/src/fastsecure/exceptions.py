"""The exceptions FastSecure raises; every one derives from :class:`FastSecureError`."""

from __future__ import annotations

from collections.abc import Iterable


class FastSecureError(Exception):
    """Base class of every FastSecure exception, so callers can catch ours and only ours."""


class AuthenticationError(FastSecureError):
    """A presented credential was rejected.

    Providers raise it (or return a failed result) when a credential is present but
    invalid; returning ``None``-like "not mine" is reserved for absent credentials.
    """


class InvalidCredentialsError(AuthenticationError):
    """The credential is malformed, forged, expired or revoked."""


class InsufficientScopeError(AuthenticationError):
    """The principal is known but lacks a required scope (HTTP 403)."""


class ForbiddenError(AuthenticationError):
    """The request is refused whatever its credential says, e.g. a failed CSRF check (HTTP 403).

    Providers may raise it from ``extract_credentials`` or ``authenticate``.
    """


class BadRequestError(AuthenticationError):
    """The request cannot be judged safely, whatever its credentials (HTTP 400).

    A path the router and the matcher would read differently, or credentials that two
    parties in the chain could read differently, is refused outright: never a guess.
    """


class AmbiguousCredentialsError(BadRequestError):
    """A credential was presented more than once (two ``Authorization`` headers, two cookies).

    A proxy in front may pick one and the app another, and a sibling subdomain can toss in
    a cookie of its own; so it is refused even when both copies are valid or equal.
    """


class RateLimitedError(FastSecureError):
    """Too many attempts: answered 429 with ``Retry-After``.

    Args:
        retry_after: seconds until a new attempt can succeed.
        key: what was limited (for logs and events; never a credential).
    """

    def __init__(self, retry_after: float, key: str | None = None) -> None:
        self.retry_after = max(0.0, float(retry_after))
        self.key = key
        super().__init__(f"rate limited; retry after {self.retry_after:.0f}s")


class ProviderNotFoundError(FastSecureError, KeyError):
    """A requirement or call named a provider that is not registered."""

    def __init__(self, name: str, available: Iterable[str] = (), hint: str | None = None) -> None:
        self.name = name
        self.available = sorted(available)
        self.hint = hint
        message = f"Authentication provider {name!r} is not registered"
        message += f"; available: {', '.join(self.available) or 'none'}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __str__(self) -> str:
        # KeyError would repr() the message; keep it readable.
        return str(self.args[0])


class StoreUnavailableError(FastSecureError):
    """A backing store could not answer (down, timed out, pool exhausted).

    Stores raise this instead of driver exceptions; ``requires_auth`` turns it into
    HTTP 503 so an outage never reads as "valid" or "invalid".
    """


class ConfigurationError(FastSecureError, ValueError):
    """The manager's configuration is inconsistent or names something unknown."""


class PluginError(FastSecureError):
    """A plugin failed to load or registered something inconsistent."""

    def __init__(self, message: str, *, plugin: str | None = None, distribution: str | None = None):
        self.plugin = plugin
        self.distribution = distribution
        super().__init__(message)


class DuplicateTypeNameError(PluginError):
    """Two plugins registered the same provider, store or strategy type name."""
