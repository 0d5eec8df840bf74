"""FastSecure resource server: verify access tokens from any OAuth 2.0 / OpenID Connect issuer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from . import claims as claims
    from . import presets as presets
    from .exceptions import IssuerUnavailableError as IssuerUnavailableError
    from .exceptions import ResourceServerError as ResourceServerError
    from .exceptions import TokenRejectedError as TokenRejectedError
    from .introspection import Introspection as Introspection
    from .jwks import JWKSCache as JWKSCache
    from .provider import RFC9068_CLAIMS as RFC9068_CLAIMS
    from .provider import ResourceServerProvider as ResourceServerProvider
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "IssuerUnavailableError": ".exceptions",
            "ResourceServerError": ".exceptions",
            "TokenRejectedError": ".exceptions",
            "Introspection": ".introspection",
            "JWKSCache": ".jwks",
            "RFC9068_CLAIMS": ".provider",
            "ResourceServerProvider": ".provider",
        },
        submodules=("claims", "presets"),
    )

__all__ = [
    "RFC9068_CLAIMS",
    "Introspection",
    "IssuerUnavailableError",
    "JWKSCache",
    "ResourceServerError",
    "ResourceServerProvider",
    "TokenRejectedError",
    "claims",
    "presets",
]
