from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure_jwt import JWTAuthenticationProvider


@pytest.fixture
def secret() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def provider(secret: str) -> JWTAuthenticationProvider:
    return JWTAuthenticationProvider(secret_key=secret)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key_2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def claims() -> Callable[..., dict[str, Any]]:
    """A complete, valid access-token claim set; keyword arguments override or (None) drop."""

    def make(**overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {
            "sub": "42",
            "iat": now,
            "exp": now + 600,
            "jti": secrets.token_urlsafe(8),
            "token_type": "access",
            "scopes": ["read"],
            "fid": "family-1",
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    return make


async def generation_of(provider: JWTAuthenticationProvider, family: str = "family-1") -> str:
    """The provider's token-store generation, for a hand-made token to carry (``gen``).

    A cooperating issuer records the login's family in the shared token store and puts
    the generation it gets back into the token, as the provider's own ``_issue`` does.
    """
    expires = datetime.now(UTC) + timedelta(hours=1)
    return await provider.token_store.start_family(family, "hand-made-refresh", expires)


@pytest.fixture
def gen_of() -> Callable[..., Awaitable[str]]:
    """``await gen_of(provider)``: the generation a hand-made token must carry."""
    return generation_of


def build_app(provider: JWTAuthenticationProvider) -> tuple[FastAPI, AuthenticationManager]:
    """The README's shape: login, protected data, refresh, logout."""
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    manager.add_requirement("/api/protected/*", providers=["jwt"], scopes=["read"])
    manager.add_requirement("/api/admin/*", providers=["jwt"], scopes=["admin"])
    manager.add_requirement("/auth/logout", providers=["jwt"])
    app = FastAPI()

    @app.post("/auth/login")
    async def login(user_id: int) -> dict[str, Any]:
        result = await manager.authenticate(
            "/api/protected/data", {"jwt": {"user_id": user_id, "scopes": ["read", "write"]}}
        )
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

    @app.post("/auth/refresh")
    async def refresh(body: dict[str, str]) -> dict[str, Any]:
        result = await manager.refresh_authentication(
            "jwt", {"refresh_token": body["refresh_token"]}
        )
        if not result.success:
            from fastapi import HTTPException

            raise HTTPException(401, "invalid refresh token")
        return {"access_token": result.access_token, "refresh_token": result.refresh_token}

    @app.post("/auth/logout")
    async def logout(
        body: dict[str, str], auth: AuthenticationResult = Depends(manager.requires_auth)
    ) -> dict[str, bool]:
        revoked = await manager.revoke_authentication("jwt", body)
        return {"revoked": revoked}

    @app.get("/api/protected/data")
    async def protected_data(
        auth: AuthenticationResult = Depends(manager.requires_auth),
    ) -> dict[str, Any]:
        return {"user_id": auth.user_id, "scopes": auth.metadata.get("scopes", [])}

    @app.get("/api/admin/panel")
    async def admin(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user_id": auth.user_id}

    return app, manager


@pytest.fixture(scope="session")
def make_app() -> Callable[[JWTAuthenticationProvider], tuple[FastAPI, AuthenticationManager]]:
    return build_app
