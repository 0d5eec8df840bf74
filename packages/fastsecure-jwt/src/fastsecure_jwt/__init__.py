"""FastSecure JWT provider: access and refresh tokens with rotation, revocation and key rotation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from .jwks import JWKS_PATH as JWKS_PATH
    from .jwks import jwks_router as jwks_router
    from .provider import RESERVED_CLAIMS as RESERVED_CLAIMS
    from .provider import JWTAuthenticationProvider as JWTAuthenticationProvider
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "JWKS_PATH": ".jwks",
            "jwks_router": ".jwks",
            "RESERVED_CLAIMS": ".provider",
            "JWTAuthenticationProvider": ".provider",
        },
    )

__all__ = ["JWKS_PATH", "RESERVED_CLAIMS", "JWTAuthenticationProvider", "jwks_router"]
