"""Server-side sessions for FastSecure: the session provider and the in-memory store.

``from fastsecure_session import SessionAuthenticationProvider`` (or, untyped, from
``fastsecure``). Stores hash session ids inside, so every store method takes the id the
client holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from fastsecure.factors import FactorError as FactorError

    from .cookies import clear_session_cookie as clear_session_cookie
    from .cookies import default_cookie_name as default_cookie_name
    from .cookies import set_session_cookie as set_session_cookie
    from .csrf import CsrfGuard as CsrfGuard
    from .csrf import csrf_token as csrf_token
    from .provider import SessionAuthenticationProvider as SessionAuthenticationProvider
    from .provider import SessionInfo as SessionInfo
    from .store import MemorySessionStore as MemorySessionStore
else:
    # Discovery imports this package: its modules load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "clear_session_cookie": ".cookies",
            "default_cookie_name": ".cookies",
            "set_session_cookie": ".cookies",
            "CsrfGuard": ".csrf",
            "csrf_token": ".csrf",
            "FactorError": ".provider",
            "SessionAuthenticationProvider": ".provider",
            "SessionInfo": ".provider",
            "MemorySessionStore": ".store",
        },
    )

__all__ = [
    "CsrfGuard",
    "FactorError",
    "MemorySessionStore",
    "SessionAuthenticationProvider",
    "SessionInfo",
    "clear_session_cookie",
    "csrf_token",
    "default_cookie_name",
    "set_session_cookie",
]
