"""Serving the JWK Set so other services can verify our tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response

if TYPE_CHECKING:
    from .provider import JWTAuthenticationProvider

JWKS_PATH = "/.well-known/jwks.json"


def jwks_router(
    provider: JWTAuthenticationProvider, *, path: str = JWKS_PATH, max_age: int = 300
) -> APIRouter:
    """An ``APIRouter`` answering ``GET /.well-known/jwks.json`` with ``provider.jwks()``.

    ``app.include_router(jwks_router(provider))``. The set is computed once; ``max_age``
    lets verifiers cache it, short enough that a newly added key is picked up before it
    signs (publish the new public key first, switch ``signing_kid`` after).
    """
    router = APIRouter()
    keys = provider.jwks()
    cache_control = f"public, max-age={max_age}"

    @router.get(path, include_in_schema=False)
    async def jwks(response: Response) -> dict[str, Any]:
        response.headers["Cache-Control"] = cache_control
        return keys

    return router
