"""The exceptions of fastsecure-resource; all derive from :class:`ResourceServerError`."""

from __future__ import annotations

from fastsecure import FastSecureError, InvalidCredentialsError, StoreUnavailableError


class ResourceServerError(FastSecureError):
    """Base class of this package's exceptions."""


class IssuerUnavailableError(ResourceServerError, StoreUnavailableError):
    """The issuer's metadata, keys or introspection endpoint could not be used.

    A :class:`~fastsecure.StoreUnavailableError`, so a request answers 503 rather than 401:
    a token is never judged while the keys to judge it are missing.
    """


class TokenRejectedError(ResourceServerError, InvalidCredentialsError):
    """An access token was refused (HTTP 401); the message is ours and safe to show."""


__all__ = ["IssuerUnavailableError", "ResourceServerError", "TokenRejectedError"]
