"""The web face of FastSecure: the only FastAPI/Starlette-aware part of core.

- :mod:`.connection`: request -> path and presented credentials -> the engine's Decision
- :mod:`.dependencies`: ``requires_auth``, ``optional_auth``, ``requires(...)``, WebSockets
- :mod:`.middleware`: ``AuthenticationMiddleware``
- :mod:`.responses`: the one Decision -> HTTP / WebSocket table, exception handlers
- :mod:`.debug`: the development-only explain endpoint
"""

from __future__ import annotations

from .connection import SCOPE_KEY as SCOPE_KEY
from .connection import decide_request as decide_request
from .connection import presented_credentials as presented_credentials
from .connection import route_path as route_path
from .debug import debug_router as debug_router
from .dependencies import AuthDependency as AuthDependency
from .dependencies import DocumentedScheme as DocumentedScheme
from .dependencies import WebSocketAuthDependency as WebSocketAuthDependency
from .dependencies import auth_dependency as auth_dependency
from .dependencies import dependency_signature as dependency_signature
from .middleware import AuthenticationMiddleware as AuthenticationMiddleware
from .openapi import auth_responses as auth_responses
from .responses import http_answer as http_answer
from .responses import install_exception_handlers as install_exception_handlers
from .responses import websocket_close as websocket_close

__all__ = [
    "SCOPE_KEY",
    "AuthDependency",
    "AuthenticationMiddleware",
    "DocumentedScheme",
    "WebSocketAuthDependency",
    "auth_dependency",
    "auth_responses",
    "debug_router",
    "decide_request",
    "dependency_signature",
    "http_answer",
    "install_exception_handlers",
    "presented_credentials",
    "route_path",
    "websocket_close",
]
