"""FastSecure: pluggable authentication for FastAPI.

Core holds the manager, requirements, strategies and contracts. Providers and stores come
from plugin distributions; their classes are importable from here when installed
(``from fastsecure import JWTAuthenticationProvider``). For strict typing, import them
from their own package (``from fastsecure_jwt import JWTAuthenticationProvider``).
"""

from __future__ import annotations

import importlib
from typing import Any

from .events import AuthEvent as AuthEvent
from .exceptions import AmbiguousCredentialsError as AmbiguousCredentialsError
from .exceptions import AuthenticationError as AuthenticationError
from .exceptions import BadRequestError as BadRequestError
from .exceptions import ConfigurationError as ConfigurationError
from .exceptions import DuplicateTypeNameError as DuplicateTypeNameError
from .exceptions import FastSecureError as FastSecureError
from .exceptions import ForbiddenError as ForbiddenError
from .exceptions import InsufficientScopeError as InsufficientScopeError
from .exceptions import InvalidCredentialsError as InvalidCredentialsError
from .exceptions import PluginError as PluginError
from .exceptions import ProviderNotFoundError as ProviderNotFoundError
from .exceptions import RateLimitedError as RateLimitedError
from .exceptions import StoreUnavailableError as StoreUnavailableError
from .hookspecs import hookimpl as hookimpl
from .manager import AuthenticationManager as AuthenticationManager
from .memory_tokens import MemoryTokenStore as MemoryTokenStore
from .plugins import PluginManager as PluginManager
from .providers import AuthenticationProvider as AuthenticationProvider
from .results import AuthenticationRequirement as AuthenticationRequirement
from .results import AuthenticationResult as AuthenticationResult
from .results import AuthStrategy as AuthStrategy
from .results import FailureReason as FailureReason
from .stores import SessionStore as SessionStore
from .stores import TokenStore as TokenStore
from .strategies import AllAuthStrategy as AllAuthStrategy
from .strategies import AnyAuthStrategy as AnyAuthStrategy
from .strategies import AuthenticationStrategy as AuthenticationStrategy

__version__ = "1.1.0"

# name -> (module, distribution that provides it)
_LAZY: dict[str, tuple[str, str]] = {
    "JWTAuthenticationProvider": ("fastsecure_jwt", "fastsecure-jwt"),
    "SessionAuthenticationProvider": ("fastsecure_session", "fastsecure-session"),
    "MemorySessionStore": ("fastsecure_session", "fastsecure-session"),
    "RedisSessionStore": ("fastsecure_redis", "fastsecure-redis"),
    "DatabaseSessionStore": ("fastsecure_sqlalchemy", "fastsecure-sqlalchemy"),
    "GoogleAuthProvider": ("fastsecure_oauth", "fastsecure-oauth"),
    "GitHubAuthProvider": ("fastsecure_oauth", "fastsecure-oauth"),
    "OpenIDConnectProvider": ("fastsecure_oauth", "fastsecure-oauth"),
    "OAuth2Provider": ("fastsecure_oauth", "fastsecure-oauth"),
    "PasswordAuthenticationProvider": ("fastsecure_password", "fastsecure-password"),
    "TotpProvider": ("fastsecure_totp", "fastsecure-totp"),
    "WebAuthnProvider": ("fastsecure_webauthn", "fastsecure-webauthn"),
    "ResourceServerProvider": ("fastsecure_resource", "fastsecure-resource"),
}


def __getattr__(name: str) -> Any:
    """Plugin classes on demand (PEP 562), with an ImportError that says what to install."""
    try:
        module_name, distribution = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'fastsecure' has no attribute {name!r}") from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the plugin is installed but one of its own imports is missing
        raise ImportError(
            f"{name} is provided by the {distribution} distribution, which is not installed: "
            f"pip install {distribution}",
            name=module_name,
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "AllAuthStrategy",
    "AmbiguousCredentialsError",
    "AnyAuthStrategy",
    "AuthEvent",
    "AuthStrategy",
    "AuthenticationError",
    "AuthenticationManager",
    "AuthenticationProvider",
    "AuthenticationRequirement",
    "AuthenticationResult",
    "AuthenticationStrategy",
    "BadRequestError",
    "ConfigurationError",
    "DuplicateTypeNameError",
    "FailureReason",
    "FastSecureError",
    "ForbiddenError",
    "InsufficientScopeError",
    "InvalidCredentialsError",
    "MemoryTokenStore",
    "PluginError",
    "PluginManager",
    "ProviderNotFoundError",
    "RateLimitedError",
    "SessionStore",
    "StoreUnavailableError",
    "TokenStore",
    "hookimpl",
]
