"""The ``fastsecure`` entry point: registers the provider type ``resource_server``.

By reference, so httpx and PyJWT are imported only by an app that uses it.
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``resource_server`` (provider type), imported on first use."""
    register(
        "resource_server",
        "fastsecure_resource.provider:ResourceServerProvider",
        summary="access tokens of an external OAuth 2.0 / OpenID Connect issuer",
    )
