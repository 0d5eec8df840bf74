"""The ``oauth`` plugin: provider types ``oauth2``, ``oidc``, ``google`` and ``github``."""

from __future__ import annotations

import fastsecure
from fastsecure.hookspecs import Register

from .clients.github import GitHubAuthProvider
from .clients.google import GoogleAuthProvider
from .oidc import OpenIDConnectProvider
from .provider import OAuth2Provider


@fastsecure.hookimpl
def fastsecure_register_providers(register: Register) -> None:
    """Each class is its own factory: configuration passes its keyword options."""
    register("oauth2", OAuth2Provider)
    register("oidc", OpenIDConnectProvider)
    register("google", GoogleAuthProvider)
    register("github", GitHubAuthProvider)
