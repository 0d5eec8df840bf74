"""The exceptions of fastsecure-oauth; all derive from :class:`OAuthError`.

Providers never let these escape ``authenticate``: they become failed results. The flow
helper turns :class:`OAuthFlowError` into the HTTP answer (it is an ``HTTPException``).
"""

from __future__ import annotations

from fastapi import HTTPException

from fastsecure import FastSecureError, StoreUnavailableError

RETRY_AFTER_SECONDS = 5


class OAuthError(FastSecureError):
    """Base class of every fastsecure-oauth exception.

    Args:
        message: what went wrong, safe to show: never a token, code or secret.
        provider: the provider's registered name, when known.
    """

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        self.provider = provider
        super().__init__(message)


class OAuthConfigurationError(OAuthError, ValueError):
    """The provider is configured inconsistently (a missing endpoint, an unusable option)."""


class ProviderError(OAuthError):
    """The provider could not be reached or answered something unusable.

    Covers timeouts, refused connections, TLS failures, HTTP errors and malformed JSON.
    ``status_code`` is the provider's HTTP status when it answered at all, ``error`` its
    OAuth error code (``invalid_grant``, ``bad_verification_code``) when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        super().__init__(message, provider=provider)


class IDTokenError(OAuthError):
    """An OpenID Connect ID token failed verification (signature, iss, aud, exp, nonce...)."""


class OAuthFlowError(OAuthError, HTTPException):
    """A login through :class:`~fastsecure_oauth.OAuthFlow` cannot go on; an HTTP answer.

    400: the browser's side is wrong (state, cookie, ``next``); 401: the provider refused
    the login or the exchange failed; 403: the app refused the account; 503: the identity
    provider's metadata could not be fetched.
    """

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        provider: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Not OAuthError.__init__: its super() call would reach HTTPException.__init__ with
        # the message as the status code, which older Starlette rejects.
        HTTPException.__init__(self, status_code=status_code, detail=detail, headers=headers)
        self.provider = provider

    def __str__(self) -> str:
        return str(self.detail)


class OAuthFlowUnavailableError(OAuthFlowError, StoreUnavailableError):
    """The login cannot be completed because a store failed (accounts, sessions, tokens).

    Both an :class:`OAuthFlowError` (503 with ``Retry-After`` as an ``HTTPException``) and a
    :class:`~fastsecure.StoreUnavailableError`, so an app's handler for store outages
    answers it like every other one.
    """

    def __init__(self, detail: str, *, provider: str | None = None) -> None:
        super().__init__(
            503, detail, provider=provider, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )


__all__ = [
    "IDTokenError",
    "OAuthConfigurationError",
    "OAuthError",
    "OAuthFlowError",
    "OAuthFlowUnavailableError",
    "ProviderError",
]
