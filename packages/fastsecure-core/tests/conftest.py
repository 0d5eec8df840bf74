"""Providers for core's tests: small, honest implementations of the contract."""

from __future__ import annotations

import secrets
from typing import Any, Dict, Set

import pytest

from fastsecure import (
    AuthenticationManager,
    AuthenticationProvider,
    AuthenticationResult,
    StoreUnavailableError,
)
from fastsecure.results import normalize_scopes
from fastsecure.testing import register_plugin as register_plugin


class APIKeyAuthProvider(AuthenticationProvider):
    """Copied verbatim from the README."""

    def __init__(self, api_keys: Dict[str, str]):
        self.api_keys = api_keys

    def get_required_credentials(self) -> Set[str]:
        return {"api_key"}

    async def authenticate(self, credentials: Dict[str, Any]) -> AuthenticationResult:
        api_key = credentials.get("api_key")

        if api_key not in self.api_keys:
            return AuthenticationResult(
                success=False, provider=self.provider_name, metadata={"error": "Invalid API key"}
            )

        return AuthenticationResult(
            success=True,
            provider=self.provider_name,
            user_id=self.api_keys[api_key],
            metadata={"api_key": api_key},
        )

    async def validate_authentication(self, auth_data: Dict[str, Any]) -> bool:
        return auth_data.get("api_key") in self.api_keys


class TokenProvider(AuthenticationProvider):
    """Issues opaque tokens on login and verifies them from ``Authorization: Token <t>``."""

    provider_type = "token"

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[Any, list[str], dict[str, Any]]] = {}
        self.calls = 0

    def get_required_credentials(self) -> set[str]:
        return {"user_id"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        self.calls += 1
        token = credentials.get("token")
        if token is not None:
            found = self.tokens.get(token)
            if found is None:
                return AuthenticationResult.failure("unknown token", provider=self.provider_name)
            user_id, scopes, meta = found
            return AuthenticationResult(
                success=True,
                user_id=user_id,
                provider=self.provider_name,
                access_token=token,
                metadata={**meta, "scopes": scopes},
            )
        if "user_id" not in credentials:
            return AuthenticationResult.failure(
                "Missing required credentials", provider=self.provider_name
            )
        token = secrets.token_urlsafe(16)
        scopes = normalize_scopes(credentials.get("scopes"))
        meta = dict(credentials.get("metadata") or {})
        self.tokens[token] = (credentials["user_id"], scopes, meta)
        return AuthenticationResult(
            success=True,
            user_id=credentials["user_id"],
            provider=self.provider_name,
            access_token=token,
            metadata={**meta, "scopes": scopes},
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return auth_data.get("token") in self.tokens

    async def revoke_authentication(self, auth_data: dict[str, Any]) -> bool:
        return self.tokens.pop(auth_data.get("token", ""), None) is not None

    async def extract_credentials(self, connection: Any) -> dict[str, Any] | None:
        header = connection.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "token" or not value:
            return None
        return {"token": value.strip()}

    def security_schemes(self) -> list[Any]:
        from fastapi.security import APIKeyHeader

        return [
            APIKeyHeader(name="Authorization", scheme_name=self.provider_name, auto_error=False)
        ]

    def challenge(self) -> str:
        return "Token"


class SessionLikeProvider(TokenProvider):
    """The same, but from a cookie, to exercise ALL with two transports."""

    provider_type = "cookie"

    def __init__(self, *, down: bool = False) -> None:
        super().__init__()
        self.down = down

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        if self.down:
            raise StoreUnavailableError("store down")
        result = await super().authenticate(credentials)
        if result.success:
            result.session_id, result.access_token = result.access_token, None
        return result

    async def extract_credentials(self, connection: Any) -> dict[str, Any] | None:
        value = connection.cookies.get("sid")
        return {"token": value} if value else None

    def security_schemes(self) -> list[Any]:
        from fastapi.security import APIKeyCookie

        return [APIKeyCookie(name="sid", scheme_name=self.provider_name, auto_error=False)]

    def challenge(self) -> str:
        return 'Cookie realm="sid"'


@pytest.fixture
def token_provider() -> TokenProvider:
    return TokenProvider()


@pytest.fixture
def cookie_provider() -> SessionLikeProvider:
    return SessionLikeProvider()


@pytest.fixture
def manager(
    token_provider: TokenProvider, cookie_provider: SessionLikeProvider
) -> AuthenticationManager:
    m = AuthenticationManager()
    m.register_provider("token", token_provider)
    m.register_provider("cookie", cookie_provider)
    m.register_provider("apikey", APIKeyAuthProvider({"key1": "user1", "key2": "user2"}))
    return m
