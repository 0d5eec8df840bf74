"""The ``fastsecure`` entry point: registers the provider type ``jwt``.

By reference: discovery imports this module in every app that has the package installed,
and PyJWT is imported only by an app that uses the provider.
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``jwt`` (provider type), imported on first use."""
    register(
        "jwt",
        "fastsecure_jwt.provider:JWTAuthenticationProvider",
        summary="JWT access and refresh tokens, revocation, key rotation",
    )
