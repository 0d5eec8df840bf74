"""FastSecure OAuth 2.0 and OpenID Connect providers: Google, GitHub, any OIDC issuer.

Also importable from ``fastsecure`` (``from fastsecure import GoogleAuthProvider``); import
from here for strict typing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from .clients.github import GitHubAuthProvider as GitHubAuthProvider
    from .clients.google import GoogleAuthProvider as GoogleAuthProvider
    from .exceptions import IDTokenError as IDTokenError
    from .exceptions import OAuthConfigurationError as OAuthConfigurationError
    from .exceptions import OAuthError as OAuthError
    from .exceptions import OAuthFlowError as OAuthFlowError
    from .exceptions import OAuthFlowUnavailableError as OAuthFlowUnavailableError
    from .exceptions import ProviderError as ProviderError
    from .flow import AccountStore as AccountStore
    from .flow import IssueLogin as IssueLogin
    from .flow import MemoryAccountStore as MemoryAccountStore
    from .flow import OAuthFlow as OAuthFlow
    from .flow import issue_with_provider as issue_with_provider
    from .flow import resolve_account as resolve_account
    from .flow import safe_next as safe_next
    from .oidc import OpenIDConnectProvider as OpenIDConnectProvider
    from .provider import OAuth2Provider as OAuth2Provider
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "GitHubAuthProvider": ".clients.github",
            "GoogleAuthProvider": ".clients.google",
            "IDTokenError": ".exceptions",
            "OAuthConfigurationError": ".exceptions",
            "OAuthError": ".exceptions",
            "OAuthFlowError": ".exceptions",
            "OAuthFlowUnavailableError": ".exceptions",
            "ProviderError": ".exceptions",
            "AccountStore": ".flow",
            "IssueLogin": ".flow",
            "MemoryAccountStore": ".flow",
            "OAuthFlow": ".flow",
            "issue_with_provider": ".flow",
            "resolve_account": ".flow",
            "safe_next": ".flow",
            "OpenIDConnectProvider": ".oidc",
            "OAuth2Provider": ".provider",
        },
    )

__version__ = "1.0.0"

__all__ = [
    "AccountStore",
    "GitHubAuthProvider",
    "GoogleAuthProvider",
    "IDTokenError",
    "IssueLogin",
    "MemoryAccountStore",
    "OAuth2Provider",
    "OAuthConfigurationError",
    "OAuthError",
    "OAuthFlow",
    "OAuthFlowError",
    "OAuthFlowUnavailableError",
    "OpenIDConnectProvider",
    "ProviderError",
    "issue_with_provider",
    "resolve_account",
    "safe_next",
]
