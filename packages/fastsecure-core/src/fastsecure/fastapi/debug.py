"""The development-only explain endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..trace import explain
from .connection import EngineOwner, presented_credentials


def debug_router(manager: EngineOwner, *, enabled: bool) -> APIRouter:
    """A development-only endpoint explaining why a request would get 401 or 403.

    ``app.include_router(debug_router(auth_manager, enabled=settings.debug))`` adds
    ``GET /-/fastsecure/explain?path=/api/x``: the decision trace for the calling request's
    own credentials against ``path``. With ``enabled=False`` (the production setting) the
    router is empty. Never expose it in production: it tells a caller how it was judged.
    """
    router = APIRouter(include_in_schema=False)
    if not enabled:
        return router
    engine = manager.engine

    @router.get("/-/fastsecure/explain")
    async def explain_endpoint(request: Request, path: str = "/") -> dict[str, Any]:
        credentials = await presented_credentials(engine, request, tuple(engine.providers))
        return (await explain(engine, path, credentials)).as_dict()

    return router


__all__ = ["debug_router"]
