"""Issue 12 and 21 regressions: ambiguous bearer tokens, logout ending the login, a failing
token store giving StoreUnavailableError (503) and never a raw error, and tokens carrying
only the documented required claims."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from fastsecure import (
    AmbiguousCredentialsError,
    AuthenticationManager,
    AuthenticationResult,
    MemoryTokenStore,
    StoreUnavailableError,
)
from fastsecure.testing import raw_request
from fastsecure_jwt import JWTAuthenticationProvider

BuildApp = Callable[[JWTAuthenticationProvider], tuple[FastAPI, AuthenticationManager]]


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


# --- ambiguous credentials ----------------------------------------------------------------

# Each row: the Authorization header lines of one request, built from a valid token ``t``
# and a garbage one. Every row is refused with 400, even when every copy is the same valid
# token: a proxy may read one and the app another.
AMBIGUOUS: dict[str, Callable[[str], list[bytes]]] = {
    "two headers, same valid token": lambda t: [b"Bearer " + t.encode()] * 2,
    "two headers, valid first": lambda t: [b"Bearer " + t.encode(), b"Bearer garbage"],
    "two headers, valid last": lambda t: [b"Bearer garbage", b"Bearer " + t.encode()],
    "two headers, other scheme first": lambda t: [b"Basic YTpi", b"Bearer " + t.encode()],
    "two credentials in one header": lambda t: [f"Bearer {t}, Bearer {t}".encode()],
    "two tokens in one header": lambda t: [f"Bearer {t} {t}".encode()],
    "token then comma": lambda t: [f"Bearer {t},".encode()],
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
async def test_ambiguous_bearer_tokens_are_400(
    case: str, provider: JWTAuthenticationProvider, make_app: BuildApp
) -> None:
    app, _ = make_app(provider)
    token = (await provider.authenticate({"user_id": 1, "scopes": ["read"]})).access_token
    assert token is not None
    one = [(b"authorization", b"Bearer " + token.encode())]
    assert await raw_request(app, "/api/protected/data", one) == 200
    lines = [(b"authorization", value) for value in AMBIGUOUS[case](token)]
    assert await raw_request(app, "/api/protected/data", lines) == 400


def _ws(query: bytes, headers: list[tuple[bytes, bytes]] = []) -> HTTPConnection:  # noqa: B006
    return HTTPConnection({"type": "websocket", "headers": headers, "query_string": query})


async def test_websocket_token_presented_twice_is_ambiguous(
    provider: JWTAuthenticationProvider,
) -> None:
    with pytest.raises(AmbiguousCredentialsError):
        await provider.extract_credentials(_ws(b"access_token=a&access_token=a"))
    with pytest.raises(AmbiguousCredentialsError):
        await provider.extract_credentials(
            _ws(b"access_token=a", [(b"authorization", b"Bearer a")])
        )
    assert await provider.extract_credentials(_ws(b"access_token=a")) == {"access_token": "a"}


# --- logout ends the login ----------------------------------------------------------------


async def test_logout_with_the_access_token_ends_the_login(
    provider: JWTAuthenticationProvider, make_app: BuildApp
) -> None:
    """The docs' logout revokes the family: the login's refresh token can no longer refresh."""
    app, _ = make_app(provider)
    async with _client(app) as client:
        pair = (await client.post("/auth/login", params={"user_id": 7})).json()
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        logout = await client.post(
            "/auth/logout", json={"access_token": pair["access_token"]}, headers=bearer
        )
        assert logout.json() == {"revoked": True}
        assert (await client.get("/api/protected/data", headers=bearer)).status_code == 401
        refreshed = await client.post(
            "/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 401


async def test_logout_reaches_access_tokens_issued_by_earlier_refreshes(
    provider: JWTAuthenticationProvider,
) -> None:
    first = await provider.authenticate({"user_id": 7})
    second = await provider.refresh_authentication({"refresh_token": first.refresh_token})
    assert second.success
    assert await provider.revoke_authentication({"access_token": first.access_token})
    for token in (first.access_token, second.access_token):
        assert not (await provider.authenticate({"access_token": token})).success
    refreshed = await provider.refresh_authentication({"refresh_token": second.refresh_token})
    assert not refreshed.success and refreshed.metadata["error"] == "token revoked"


async def test_revoke_access_token_keeps_the_login(provider: JWTAuthenticationProvider) -> None:
    login = await provider.authenticate({"user_id": 7})
    assert await provider.revoke_access_token(login.access_token)  # type: ignore[arg-type]
    assert not (await provider.authenticate({"access_token": login.access_token})).success
    assert (await provider.refresh_authentication({"refresh_token": login.refresh_token})).success


# --- a failing token store ----------------------------------------------------------------


class ConnectionLost(Exception):
    """Stands in for a driver error a custom store lets escape (not a FastSecure error)."""


class FailingTokenStore(MemoryTokenStore):
    """The memory store, made to fail every call: ``"unavailable"`` raises
    StoreUnavailableError as a first-party store does, ``"raw"`` a raw driver-like error."""

    def __init__(self) -> None:
        super().__init__()
        self.mode: str | None = None

    def _maybe_fail(self) -> None:
        if self.mode == "unavailable":
            raise StoreUnavailableError("token store down")
        if self.mode == "raw":
            raise ConnectionLost("server closed the connection unexpectedly")

    async def revoke_token(self, jti: str, expires_at: datetime) -> None:
        self._maybe_fail()
        await super().revoke_token(jti, expires_at)

    async def revoke_family(self, family_id: str, expires_at: datetime) -> None:
        self._maybe_fail()
        await super().revoke_family(family_id, expires_at)

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        self._maybe_fail()
        return await super().is_revoked(jti, family_id)

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        self._maybe_fail()
        return await super().consume_refresh_token(jti, expires_at)


OPERATIONS: dict[str, Callable[[JWTAuthenticationProvider, AuthenticationResult], Any]] = {
    "verify": lambda p, t: p.authenticate({"access_token": t.access_token}),
    "validate access": lambda p, t: p.validate_authentication({"access_token": t.access_token}),
    "validate refresh": lambda p, t: p.validate_authentication({"refresh_token": t.refresh_token}),
    "refresh": lambda p, t: p.refresh_authentication({"refresh_token": t.refresh_token}),
    "logout (access)": lambda p, t: p.revoke_authentication({"access_token": t.access_token}),
    "logout (refresh)": lambda p, t: p.revoke_authentication({"refresh_token": t.refresh_token}),
    "revoke one access token": lambda p, t: p.revoke_access_token(t.access_token),
}


@pytest.mark.parametrize("mode", ["unavailable", "raw"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
async def test_every_operation_raises_store_unavailable(
    operation: str, mode: str, secret: str
) -> None:
    store = FailingTokenStore()
    provider = JWTAuthenticationProvider(secret_key=secret, token_store=store)
    issued = await provider.authenticate({"user_id": 1})
    store.mode = mode
    with pytest.raises(StoreUnavailableError) as raised:
        await OPERATIONS[operation](provider, issued)
    if mode == "raw":
        assert isinstance(raised.value.__cause__, ConnectionLost)
    store.mode = None
    assert (await provider.authenticate({"access_token": issued.access_token})).success


async def test_a_raw_store_error_is_503_over_http_and_logged_once(
    secret: str, make_app: BuildApp, caplog: pytest.LogCaptureFixture
) -> None:
    store = FailingTokenStore()
    provider = JWTAuthenticationProvider(secret_key=secret, token_store=store)
    app, _ = make_app(provider)
    async with _client(app) as client:
        pair = (await client.post("/auth/login", params={"user_id": 7})).json()
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        store.mode = "raw"
        with caplog.at_level(logging.WARNING, logger="fastsecure.jwt"):
            for _ in range(3):
                answer = await client.get("/api/protected/data", headers=bearer)
                assert answer.status_code == 503  # not 401: the token is valid
                assert answer.headers["retry-after"]
        outage = [r for r in caplog.records if r.name == "fastsecure.jwt"]
        assert len(outage) == 1 and "ConnectionLost" in outage[0].getMessage()
        assert "server closed" not in outage[0].getMessage()  # no driver text, no parameters
        store.mode = None
        assert (await client.get("/api/protected/data", headers=bearer)).status_code == 200


# --- the documented required claims suffice ---------------------------------------------------


def _minimal(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "exp": now + 300,
        "iat": now,
        "jti": secrets.token_urlsafe(8),
        "sub": "ada",
        "token_type": "access",
    }
    return {**claims, **extra}


async def test_a_token_with_only_the_required_claims_verifies(secret: str, gen_of: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    token = jwt.encode(_minimal(gen=await gen_of(provider)), secret, algorithm="HS256")
    verified = await provider.authenticate({"access_token": token})
    assert verified.success and verified.user_id == "ada"
    assert verified.metadata["scopes"] == [] and verified.scopes == set()


async def test_required_claims_with_issuer_and_audience(secret: str, gen_of: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, issuer="https://i", audience="api")
    gen = await gen_of(provider)
    token = jwt.encode(_minimal(iss="https://i", aud="api", gen=gen), secret, algorithm="HS256")
    assert (await provider.authenticate({"access_token": token})).success
    for missing in ("iss", "aud"):
        claims = {k: v for k, v in _minimal(iss="https://i", aud="api").items() if k != missing}
        refused = await provider.authenticate(
            {"access_token": jwt.encode(claims, secret, algorithm="HS256")}
        )
        assert refused.metadata["error"] == f"missing required claim: {missing}"


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "token_type", "gen"])
async def test_each_documented_claim_stays_required(secret: str, missing: str, gen_of: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    complete = _minimal(gen=await gen_of(provider))
    assert (
        await provider.authenticate({"access_token": jwt.encode(complete, secret, "HS256")})
    ).success  # the control: with every claim it passes
    claims = {k: v for k, v in complete.items() if k != missing}
    refused = await provider.authenticate(
        {"access_token": jwt.encode(claims, secret, algorithm="HS256")}
    )
    assert not refused.success


async def test_a_familyless_token_is_revoked_by_jti_only(secret: str, gen_of: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    gen = await gen_of(provider)
    token = jwt.encode(_minimal(scopes=["read"], gen=gen), secret, algorithm="HS256")
    assert (await provider.authenticate({"access_token": token})).scopes == {"read"}
    assert await provider.revoke_authentication({"access_token": token})
    assert not (await provider.authenticate({"access_token": token})).success


@pytest.mark.parametrize(
    "claims",
    [
        {"scopes": "read"},
        {"scopes": [1]},
        {"fid": 7},
        {"fid": ""},
        {"jti": 7},
    ],
    ids=["scopes-string", "scopes-ints", "fid-int", "fid-empty", "jti-int"],
)
async def test_optional_claims_present_must_be_well_formed(
    secret: str, claims: dict[str, Any]
) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    token = jwt.encode(_minimal(**claims), secret, algorithm="HS256")
    assert not (await provider.authenticate({"access_token": token})).success


async def test_a_refresh_token_needs_its_family(secret: str) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    token = jwt.encode(_minimal(token_type="refresh"), secret, algorithm="HS256")
    refused = await provider.refresh_authentication({"refresh_token": token})
    assert refused.metadata["error"] == "missing required claim: fid"


async def test_minimal_tokens_pass_requires_auth(secret: str, gen_of: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret)
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    manager.add_requirement("/me", providers=["jwt"])
    app = FastAPI()

    @app.get("/me")
    async def me(auth: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id, "scopes": sorted(auth.scopes)}

    token = jwt.encode(_minimal(gen=await gen_of(provider)), secret, algorithm="HS256")
    async with _client(app) as client:
        answer = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json() == {"user": "ada", "scopes": []}
