"""``AuthenticationMiddleware``: the path requirements enforced app-wide, before routing."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from .connection import EngineOwner, decide_request, route_path
from .responses import send_answer


class AuthenticationMiddleware:
    """Enforces path requirements app-wide, before routing; paths without one pass.

    ``app.add_middleware(AuthenticationMiddleware, manager=auth_manager)``. The allowing
    Decision is left in ``scope["fastsecure.auth"]`` and reused by ``requires_auth``.
    """

    def __init__(self, app: ASGIApp, manager: EngineOwner) -> None:
        self.app = app
        self.manager = manager
        self.engine = manager.engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        resolution = self.engine.resolve(route_path(scope))
        if resolution.refusal is not None:
            await send_answer(resolution.refusal, scope["type"], send)
            return
        if resolution.requirement is not None:
            decision = await decide_request(
                self.engine,
                HTTPConnection(scope, receive),
                resolution.requirement,
                resolution.pattern,
            )
            if not decision.allowed:
                await send_answer(decision, scope["type"], send)
                return
        await self.app(scope, receive, send)


__all__ = ["AuthenticationMiddleware"]
