"""The ``fastsecure`` entry point: registers the provider type ``jwt``."""

from __future__ import annotations

import fastsecure
from fastsecure.hookspecs import Register

from .provider import JWTAuthenticationProvider


@fastsecure.hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Register :class:`JWTAuthenticationProvider` as ``jwt``."""
    register("jwt", JWTAuthenticationProvider)
