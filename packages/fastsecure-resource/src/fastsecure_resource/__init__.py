"""FastSecure resource server: verify access tokens from any OAuth 2.0 / OpenID Connect issuer."""

from . import claims as claims
from . import presets as presets
from .exceptions import IssuerUnavailableError as IssuerUnavailableError
from .exceptions import ResourceServerError as ResourceServerError
from .exceptions import TokenRejectedError as TokenRejectedError
from .introspection import Introspection as Introspection
from .jwks import JWKSCache as JWKSCache
from .provider import RFC9068_CLAIMS as RFC9068_CLAIMS
from .provider import ResourceServerProvider as ResourceServerProvider

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
