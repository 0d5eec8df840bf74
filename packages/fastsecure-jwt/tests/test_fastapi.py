"""Through a FastAPI app: requires_auth, the README walkthrough, fuzzing, WebSockets, logs."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Depends, FastAPI, WebSocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import HTTPConnection

from fastsecure import (
    AuthenticationManager,
    AuthenticationResult,
    MemoryTokenStore,
    StoreUnavailableError,
)
from fastsecure_jwt import JWTAuthenticationProvider


@pytest.fixture
async def client(
    provider: JWTAuthenticationProvider, make_app: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app, _ = make_app(provider)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_readme_walkthrough_end_to_end(client: httpx.AsyncClient) -> None:
    # Login.
    tokens = (await client.post("/auth/login", params={"user_id": 42})).json()
    # Protected call.
    response = await client.get("/api/protected/data", headers=bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.json() == {"user_id": 42, "scopes": ["read", "write"]}
    # Refresh.
    refreshed = (
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    assert refreshed["access_token"] != tokens["access_token"]
    assert (
        await client.get("/api/protected/data", headers=bearer(refreshed["access_token"]))
    ).status_code == 200
    # The old refresh token is refused (and its reuse ends the login).
    old = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert old.status_code == 401
    assert (
        await client.get("/api/protected/data", headers=bearer(refreshed["access_token"]))
    ).status_code == 401

    # Logout: a second login, then revoke its tokens.
    tokens = (await client.post("/auth/login", params={"user_id": 7})).json()
    assert (
        await client.get("/api/protected/data", headers=bearer(tokens["access_token"]))
    ).status_code == 200
    logout = await client.post("/auth/logout", json=tokens, headers=bearer(tokens["access_token"]))
    assert logout.json() == {"revoked": True}
    after = await client.get("/api/protected/data", headers=bearer(tokens["access_token"]))
    # RFC 6750 section 3: a presented token that is refused says so.
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    assert (
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 401


async def test_missing_and_wrong_scheme_give_401_with_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    # RFC 6750 section 3: no error code when no bearer token was presented; an empty one
    # was presented and is refused as invalid_token.
    for headers, challenge in (
        ({}, "Bearer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer"}, 'Bearer error="invalid_token"'),
        ({"Authorization": ""}, "Bearer"),
    ):
        response = await client.get("/api/protected/data", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == challenge, headers


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_scheme_is_case_insensitive(
    provider: JWTAuthenticationProvider, client: httpx.AsyncClient, scheme: str
) -> None:
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    response = await client.get(
        "/api/protected/data", headers={"Authorization": f"{scheme}   {issued.access_token}"}
    )
    assert response.status_code == 200


async def test_lacking_scope_is_403(
    provider: JWTAuthenticationProvider, client: httpx.AsyncClient
) -> None:
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    assert (
        await client.get("/api/admin/panel", headers=bearer(issued.access_token))
    ).status_code == 403


async def test_a_refresh_token_as_bearer_is_401(
    provider: JWTAuthenticationProvider, client: httpx.AsyncClient
) -> None:
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    assert (
        await client.get("/api/protected/data", headers=bearer(issued.refresh_token))
    ).status_code == 401  # type: ignore[arg-type]


async def test_expired_token_is_401(secret: str, make_app: Any) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, access_token_expire_minutes=0)
    app, _ = make_app(provider)
    issued = await provider.authenticate({"user_id": 1, "scopes": ["read"]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (
            await c.get("/api/protected/data", headers=bearer(issued.access_token))
        ).status_code == 401  # type: ignore[arg-type]


class _DownStore(MemoryTokenStore):
    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        raise StoreUnavailableError("redis down")


async def test_store_outage_is_503(secret: str, make_app: Any) -> None:
    issuer = JWTAuthenticationProvider(secret_key=secret)
    app, _ = make_app(JWTAuthenticationProvider(secret_key=secret, token_store=_DownStore()))
    issued = await issuer.authenticate({"user_id": 1, "scopes": ["read"]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/api/protected/data", headers=bearer(issued.access_token))  # type: ignore[arg-type]
        assert response.status_code == 503
        # A forged token is refused before the store is asked.
        assert (await c.get("/api/protected/data", headers=bearer("a.b.c"))).status_code == 401


async def test_openapi_documents_an_http_bearer_jwt_scheme(
    provider: JWTAuthenticationProvider, make_app: Any
) -> None:
    app, _ = make_app(provider)
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes == {"jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    assert provider.challenge() == "Bearer"


def _connection(
    headers: dict[str, str] | None = None, query: bytes = b"", kind: str = "http"
) -> HTTPConnection:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return HTTPConnection({"type": kind, "headers": raw, "query_string": query, "path": "/"})


async def test_extract_credentials(provider: JWTAuthenticationProvider) -> None:
    assert await provider.extract_credentials(_connection()) is None
    assert await provider.extract_credentials(_connection({"Authorization": "Basic abc"})) is None
    assert await provider.extract_credentials(_connection({"Authorization": "Bearer abc"})) == {
        "access_token": "abc"
    }
    assert await provider.extract_credentials(_connection({"Authorization": "Bearer "})) == {
        "access_token": ""
    }
    # A query parameter counts only on WebSockets.
    assert await provider.extract_credentials(_connection(query=b"access_token=abc")) is None
    ws = _connection(query=b"access_token=abc", kind="websocket")
    assert await provider.extract_credentials(ws) == {"access_token": "abc"}
    # Login fields never come from a request.
    found = await provider.extract_credentials(
        _connection({"Authorization": "Bearer x"}, b"user_id=1")
    )
    assert found == {"access_token": "x"}


def _ws_app(provider: JWTAuthenticationProvider) -> FastAPI:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    manager.add_requirement("/ws", providers=["jwt"])
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket, auth: AuthenticationResult = Depends(manager.requires_auth_websocket)
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user_id": auth.user_id})
        await websocket.close()

    return app


# WebSockets need Starlette's TestClient, which warns about its httpx backend.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
async def test_websocket_accepts_the_query_parameter(provider: JWTAuthenticationProvider) -> None:
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    issued = await provider.authenticate({"user_id": 5})
    with TestClient(_ws_app(provider)) as client:
        with client.websocket_connect(f"/ws?access_token={issued.access_token}") as ws:
            assert ws.receive_json() == {"user_id": 5}
        with client.websocket_connect("/ws", headers=bearer(issued.access_token)) as ws:  # type: ignore[arg-type]
            assert ws.receive_json() == {"user_id": 5}
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/ws?access_token=bad") as ws,
        ):
            ws.receive_json()
        assert closed.value.code == 1008


# --- fuzzing ---------------------------------------------------------------------------

_header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=300
)


@pytest.fixture(scope="module", params=["one-key", "several-keys"])
def fuzz_target(request: pytest.FixtureRequest, make_app: Any, ec_key: Any) -> Any:
    if request.param == "one-key":
        provider = JWTAuthenticationProvider(
            secret_key=secrets.token_urlsafe(32), issuer="https://i", audience="a"
        )
    else:  # the key is chosen from the header before PyJWT runs
        provider = JWTAuthenticationProvider(
            secrets.token_urlsafe(32),
            algorithm="ES256",
            algorithms=["ES256", "HS256"],
            private_key=ec_key,
            public_keys={"old": ec.generate_private_key(ec.SECP256R1()).public_key()},
            issuer="https://i",
            audience="a",
        )
    app, _ = make_app(provider)
    loop = asyncio.new_event_loop()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    issued = loop.run_until_complete(provider.authenticate({"user_id": 1, "scopes": ["read"]}))
    yield client, loop, issued.access_token
    loop.run_until_complete(client.aclose())
    loop.close()


def _refused(header: str) -> int:
    """401; 400 when a Bearer header holds more than one credential (RFC 9110 allows one).

    Another scheme's header is not this provider's credential at all ("0 0 0" is 401).
    """
    scheme, _, param = header.strip().partition(" ")
    two = any(sep in param.strip() for sep in ", \t")
    return 400 if scheme.lower() == "bearer" and two else 401


def _status(target: Any, header: str) -> int:
    client, loop, _ = target
    response = loop.run_until_complete(
        client.get("/api/protected/data", headers={"Authorization": header.encode("latin-1")})
    )
    return int(response.status_code)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=_header_text)
def test_fuzz_any_authorization_header_is_401(fuzz_target: Any, header: str) -> None:
    assert _status(fuzz_target, header) == _refused(header)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scheme=st.sampled_from(["Bearer ", "bearer ", "BEARER  "]), token=_header_text)
def test_fuzz_any_bearer_value_is_401(fuzz_target: Any, scheme: str, token: str) -> None:
    assert _status(fuzz_target, scheme + token) == _refused(scheme + token)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_mutated_real_tokens_are_401(fuzz_target: Any, data: st.DataObject) -> None:
    token: str = fuzz_target[2]
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(_header_text.filter(lambda t: t != token[position : position + 1]))
    mutated = token[:position] + replacement + token[position + 1 :]
    if mutated.strip() == token or mutated.rstrip("=") == token:
        return  # padding and whitespace are accepted encodings of the same token
    if _decodes_to_the_same_token(mutated.strip(), token):
        return  # e.g. the unused low bits of a segment's last base64url character
    assert _status(fuzz_target, "Bearer " + mutated) == _refused("Bearer " + mutated)


def _decodes_to_the_same_token(candidate: str, token: str) -> bool:
    """Whether the verifier's own base64url decoding sees exactly the original token."""
    from jwt.utils import base64url_decode

    ours, theirs = candidate.split("."), token.split(".")
    if len(ours) != len(theirs):
        return False
    try:
        return all(
            base64url_decode(a) == base64url_decode(b) for a, b in zip(ours, theirs, strict=True)
        )
    except (ValueError, TypeError):
        return False


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "jku", "b64"]),
        st.from_type(object).filter(
            lambda v: isinstance(v, str | int | float | bool | list | dict | type(None))
        )
        | st.text(max_size=10),
        max_size=4,
    ),
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=8,
    ),
)
def test_fuzz_structured_tokens_are_401(
    fuzz_target: Any, header: dict[str, Any], payload: Any
) -> None:
    import base64
    import json

    def seg(value: Any) -> str:
        try:
            raw = json.dumps(value).encode()
        except (TypeError, ValueError):
            raw = b"{}"
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    token = f"{seg(header)}.{seg(payload)}.{seg('sig')}"
    assert _status(fuzz_target, "Bearer " + token) == 401


# --- logs ------------------------------------------------------------------------------


async def test_no_token_or_secret_reaches_a_log(
    caplog: pytest.LogCaptureFixture, secret: str, make_app: Any, recwarn: pytest.WarningsRecorder
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = JWTAuthenticationProvider(secret_key=secret)
    app, _ = make_app(provider)
    seen: list[str] = [secret]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        tokens = (await c.post("/auth/login", params={"user_id": 1})).json()
        seen += [tokens["access_token"], tokens["refresh_token"]]
        await c.get("/api/protected/data", headers=bearer(tokens["access_token"]))
        await c.get("/api/admin/panel", headers=bearer(tokens["access_token"]))
        await c.get("/api/protected/data", headers=bearer(tokens["refresh_token"]))
        forged = tokens["access_token"][:-4] + "AAAA"
        seen.append(forged)
        await c.get("/api/protected/data", headers=bearer(forged))
        new = (
            await c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        ).json()
        seen += [new["access_token"], new["refresh_token"]]
        await c.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})  # reuse
        await c.post("/auth/logout", json=new, headers=bearer(new["access_token"]))
    expired = JWTAuthenticationProvider(secret_key=secret, access_token_expire_minutes=0)
    old = await expired.authenticate({"user_id": 2})
    seen.append(old.access_token)  # type: ignore[arg-type]
    await expired.authenticate({"access_token": old.access_token})
    JWTAuthenticationProvider(secret_key="short-secret-value")
    assert caplog.records, "the flows above log something (reuse detection at least)"
    text = caplog.text + " ".join(str(w.message) for w in recwarn)
    for value in [*seen, "short-secret-value"]:
        assert value not in text
        for part in value.split("."):
            if len(part) > 16:
                assert part not in text
