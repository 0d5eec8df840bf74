"""FastSecure JWT provider: access and refresh tokens with rotation, revocation and key rotation."""

from .jwks import JWKS_PATH as JWKS_PATH
from .jwks import jwks_router as jwks_router
from .provider import RESERVED_CLAIMS as RESERVED_CLAIMS
from .provider import JWTAuthenticationProvider as JWTAuthenticationProvider

__all__ = ["JWKS_PATH", "RESERVED_CLAIMS", "JWTAuthenticationProvider", "jwks_router"]
