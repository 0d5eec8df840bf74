"""The ``oauth`` plugin: provider types ``oauth2``, ``oidc``, ``google`` and ``github``.

Each class is its own factory (configuration passes its keyword options), registered by
reference so httpx is imported only by an app that uses one of them.
"""

from __future__ import annotations

from fastsecure import hookimpl
from fastsecure.hookspecs import Register


@hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Offer ``oauth2``, ``oidc``, ``google`` and ``github``, imported on first use."""
    register(
        "oauth2",
        "fastsecure_oauth.provider:OAuth2Provider",
        summary="any OAuth 2.0 authorization server",
    )
    register(
        "oidc",
        "fastsecure_oauth.oidc:OpenIDConnectProvider",
        summary="any OpenID Connect issuer",
    )
    register(
        "google",
        "fastsecure_oauth.clients.google:GoogleAuthProvider",
        summary="Sign in with Google",
    )
    register(
        "github",
        "fastsecure_oauth.clients.github:GitHubAuthProvider",
        summary="Sign in with GitHub",
    )
