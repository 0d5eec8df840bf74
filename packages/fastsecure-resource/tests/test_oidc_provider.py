"""Against a real authorization server: panva's oidc-provider, RFC 9068 tokens via RFC 8707."""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationResult
from fastsecure_resource import Introspection, ResourceServerProvider
from fastsecure_resource.testing import generate_key

sys.path.insert(0, str(Path(__file__).parent))
from resource_node_issuer import API, OPAQUE_API, NodeIssuer

pytestmark = pytest.mark.timeout(120)


def make_app(provider: ResourceServerProvider) -> FastAPI:
    manager = AuthenticationManager()
    manager.register_provider("issuer", provider)
    manager.add_requirement("/api/**", providers=["issuer"], scopes=["read"])
    manager.add_requirement("/admin/**", providers=["issuer"], scopes=["write"])
    app = FastAPI()

    @app.get("/api/me")
    @app.get("/admin/me")
    async def me(result: AuthenticationResult = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {
            "sub": result.user_id,
            "client_id": result.metadata["client_id"],
            "scopes": sorted(result.scopes),
        }

    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forged(issuer: NodeIssuer, kid: str) -> str:
    """A well-formed token for our issuer and audience, signed by an attacker's key."""
    now = int(time.time())
    claims = {
        "iss": issuer.issuer,
        "aud": API,
        "sub": "mallory",
        "client_id": "machine",
        "scope": "read write",
        "iat": now,
        "exp": now + 300,
        "jti": secrets.token_urlsafe(8),
    }
    return jwt.encode(
        claims, ATTACKER_KEY, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"}
    )


ATTACKER_KEY = generate_key("ES256")


async def test_client_credentials_tokens_call_protected_routes(node_issuer: NodeIssuer) -> None:
    provider = ResourceServerProvider(issuer=node_issuer.issuer, audience=API)
    app = make_app(provider)
    read = node_issuer.client_credentials("read")
    both = node_issuer.client_credentials("read write")
    async with client(app) as http:
        response = await http.get("/api/me", headers=bearer(read))
        assert response.status_code == 200, response.text
        assert response.json() == {"sub": "machine", "client_id": "machine", "scopes": ["read"]}
        assert (await http.get("/admin/me", headers=bearer(read))).status_code == 403
        assert (await http.get("/admin/me", headers=bearer(both))).status_code == 200
        assert (await http.get("/api/me")).status_code == 401
        assert (await http.get("/api/me", headers=bearer(read[:-4] + "AAAA"))).status_code == 401
        assert (
            await http.get("/api/me", headers=bearer(forged(node_issuer, "nope")))
        ).status_code == 401
    # One discovery, one key set for all of it.
    assert provider.metadata is not None and provider.metadata.fetches == 1
    assert provider.jwks.stats.fetches == 2  # the initial one and the forged kid's one
    await provider.aclose()


async def test_a_token_for_another_resource_is_refused(node_issuer: NodeIssuer) -> None:
    provider = ResourceServerProvider(
        issuer=node_issuer.issuer, audience="https://other.example.test"
    )
    app = make_app(provider)
    async with client(app) as http:
        token = node_issuer.client_credentials("read")
        assert (await http.get("/api/me", headers=bearer(token))).status_code == 401
    await provider.aclose()


async def test_authorization_code_tokens_call_protected_routes(node_issuer: NodeIssuer) -> None:
    provider = ResourceServerProvider(issuer=node_issuer.issuer, audience=API)
    app = make_app(provider)
    token = node_issuer.authorization_code("alice", "openid read")
    async with client(app) as http:
        response = await http.get("/api/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": "alice", "client_id": "webapp", "scopes": ["read"]}
    await provider.aclose()


async def test_opaque_tokens_are_introspected_and_cached(node_issuer: NodeIssuer) -> None:
    provider = ResourceServerProvider(
        issuer=node_issuer.issuer,
        audience=OPAQUE_API,
        introspection=Introspection("api", node_issuer.secret, cache_ttl=30),
    )
    app = make_app(provider)
    token = node_issuer.client_credentials("read", resource=OPAQUE_API)
    assert token.count(".") == 0
    before = node_issuer.stats()["introspection"]
    async with client(app) as http:
        for _ in range(5):
            response = await http.get("/api/me", headers=bearer(token))
            assert response.status_code == 200, response.text
        assert response.json()["sub"] == "machine"
        assert (await http.get("/api/me", headers=bearer("not-a-real-token"))).status_code == 401
    assert node_issuer.stats()["introspection"] - before == 2  # once per distinct token
    await provider.aclose()


async def test_key_rotation_is_picked_up_without_restart_or_a_fetch_per_request(
    node_issuer: NodeIssuer,
) -> None:
    provider = ResourceServerProvider(issuer=node_issuer.issuer, audience=API)
    app = make_app(provider)
    old_token = node_issuer.client_credentials()
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer(old_token))).status_code == 200
        new_kid = node_issuer.rotate()  # the issuer restarts with a new first key
        new_token = node_issuer.client_credentials()
        assert jwt.get_unverified_header(new_token)["kid"] == new_kid
        fetches = node_issuer.stats()["jwks"]  # a restarted issuer counts from 0
        for _ in range(20):
            assert (await http.get("/api/me", headers=bearer(new_token))).status_code == 200
        assert (await http.get("/api/me", headers=bearer(old_token))).status_code == 200
        assert node_issuer.stats()["jwks"] - fetches == 1
    assert provider.jwks.stats.by_reason == {"initial": 1, "unknown kid": 1}
    await provider.aclose()


async def test_cached_keys_keep_serving_while_the_issuer_is_down(node_issuer: NodeIssuer) -> None:
    provider = ResourceServerProvider(issuer=node_issuer.issuer, audience=API, timeout=2)
    app = make_app(provider)
    first, second = node_issuer.client_credentials(), node_issuer.client_credentials("read write")
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer(first))).status_code == 200
        node_issuer.stop()
        assert (await http.get("/api/me", headers=bearer(first))).status_code == 200
        assert (await http.get("/admin/me", headers=bearer(second))).status_code == 200
        # An unknown kid cannot be looked up: refused, and quickly.
        started = time.monotonic()
        assert (
            await http.get("/api/me", headers=bearer(forged(node_issuer, "x")))
        ).status_code == 401
        assert time.monotonic() - started < 2 + 3
    # A provider that never saw the keys cannot judge: 503, never 401, never a pass.
    fresh = ResourceServerProvider(issuer=node_issuer.issuer, audience=API, timeout=2)
    async with client(make_app(fresh)) as http:
        response = await http.get("/api/me", headers=bearer(first))
        assert response.status_code == 503
        assert response.headers.get("retry-after")
    await provider.aclose()
    await fresh.aclose()


async def test_a_forged_kid_flood_costs_the_issuer_one_fetch(node_issuer: NodeIssuer) -> None:
    provider = ResourceServerProvider(issuer=node_issuer.issuer, audience=API)
    app = make_app(provider)
    good = node_issuer.client_credentials()
    async with client(app) as http:
        assert (await http.get("/api/me", headers=bearer(good))).status_code == 200
        before = node_issuer.stats()["jwks"]
        tokens = [forged(node_issuer, secrets.token_urlsafe(6)) for _ in range(300)]
        # Sequential, then concurrent: neither makes more than one refetch per interval.
        for token in tokens[:100]:
            assert (await http.get("/api/me", headers=bearer(token))).status_code == 401
        answers = await asyncio.gather(
            *(http.get("/api/me", headers=bearer(token)) for token in tokens[100:])
        )
        assert {a.status_code for a in answers} == {401}
        assert (await http.get("/api/me", headers=bearer(good))).status_code == 200
        flood_fetches = node_issuer.stats()["jwks"] - before
    assert flood_fetches == 1, flood_fetches
    assert provider.jwks.stats.unknown_kid_rejections == 300
    await provider.aclose()


async def test_concurrent_first_requests_share_one_discovery_and_one_fetch(
    node_issuer: NodeIssuer,
) -> None:
    provider = ResourceServerProvider(issuer=node_issuer.issuer, audience=API)
    app = make_app(provider)
    token = node_issuer.client_credentials()
    async with client(app) as http:
        answers = await asyncio.gather(
            *(http.get("/api/me", headers=bearer(token)) for _ in range(50))
        )
    assert {a.status_code for a in answers} == {200}
    assert node_issuer.stats()["jwks"] == 1
    assert provider.metadata is not None and provider.metadata.fetches == 1
    await provider.aclose()
