"""Presets against recorded discovery documents and tokens of each issuer's documented shape.

The recordings (``recordings/*.json``) hold each issuer's metadata document and the header
and claims of one of its access tokens; the tokens are signed at test time with a local
key served at the preset's JWKS URL, so the whole path (key fetch, selection, claim
checks, scope mapping) runs as it would against the issuer.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from fastsecure import ConfigurationError
from fastsecure_resource import ResourceServerProvider, presets
from fastsecure_resource.testing import generate_key, public_jwk

RECORDINGS = Path(__file__).parent / "recordings"
NAMES = ["auth0", "keycloak", "entra_id", "cognito", "okta"]


def recording(name: str) -> dict[str, Any]:
    return json.loads((RECORDINGS / f"{name}.json").read_text())  # type: ignore[no-any-return]


class Issuer:
    """Serves one local RSA key at a preset's JWKS URL and signs recorded claims with it."""

    def __init__(
        self, provider: ResourceServerProvider, kid: str, *, with_alg: bool = True
    ) -> None:
        self.key = generate_key("RS256")
        self.kid = kid
        jwk = public_jwk(self.key, "RS256", kid)
        if not with_alg:  # Entra's published keys carry no "alg"
            jwk.pop("alg")
        self.fetched: list[str] = []

        def handle(request: httpx.Request) -> httpx.Response:
            self.fetched.append(str(request.url))
            if str(request.url) == provider.jwks_uri:
                return httpx.Response(200, json={"keys": [jwk]})
            return httpx.Response(404)

        provider._http.use(httpx.AsyncClient(transport=httpx.MockTransport(handle)))

    def sign(self, header: dict[str, Any], claims: dict[str, Any], **changes: Any) -> str:
        now = int(time.time())
        body = {**claims, "iat": now - 5, "nbf": now - 5, "exp": now + 3600, **changes}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.key, algorithm="RS256", headers=header)


def build(name: str, **overrides: Any) -> tuple[ResourceServerProvider, Issuer, dict[str, Any]]:
    rec = recording(name)
    provider = getattr(presets, name)(**{**rec["preset"], **overrides})
    issuer = Issuer(provider, rec["header"]["kid"], with_alg=name != "entra_id")
    return provider, issuer, rec


@pytest.mark.parametrize("name", NAMES)
def test_preset_matches_the_recorded_discovery_document(name: str) -> None:
    provider, _, rec = build(name)
    discovery = rec["discovery"]
    assert provider.issuers == (discovery["issuer"],)
    assert provider.jwks_uri == discovery["jwks_uri"]
    assert provider.authorization_url == discovery["authorization_endpoint"]
    assert provider.token_url == discovery["token_endpoint"]


@pytest.mark.parametrize("name", NAMES)
async def test_recorded_token_shape_verifies_with_its_scopes(name: str) -> None:
    provider, issuer, rec = build(name)
    token = issuer.sign(rec["header"], rec["claims"])
    result = await provider.authenticate({"access_token": token})
    assert result.success, result.metadata
    assert result.user_id == rec["claims"]["sub"]
    assert sorted(result.scopes) == rec["scopes"]
    assert result.metadata["client_id"] == rec["client_id"]
    assert issuer.fetched == [provider.jwks_uri]  # no discovery: the preset knows the keys' URL


@pytest.mark.parametrize("name", NAMES)
async def test_recorded_token_for_another_audience_or_issuer_is_refused(name: str) -> None:
    provider, issuer, rec = build(name)
    audience_claim = "client_id" if name == "cognito" else "aud"
    for changes in (
        {audience_claim: "someone-else"},
        {"iss": rec["claims"]["iss"] + "x"},
        {"exp": int(time.time()) - 3600},
    ):
        token = issuer.sign(rec["header"], rec["claims"], **changes)
        assert not (await provider.authenticate({"access_token": token})).success, changes


async def test_auth0_rfc9068_profile_requires_at_jwt() -> None:
    provider, issuer, rec = build("auth0", rfc9068=True)
    assert not (
        await provider.authenticate({"access_token": issuer.sign(rec["header"], rec["claims"])})
    ).success
    token = issuer.sign(
        {**rec["header"], "typ": "at+jwt"}, rec["claims"], client_id=rec["client_id"], jti="j1"
    )
    assert (await provider.authenticate({"access_token": token})).success


async def test_keycloak_id_and_refresh_tokens_are_refused() -> None:
    provider, issuer, rec = build("keycloak")
    for typ in ("ID", "Refresh", None):
        token = issuer.sign(rec["header"], rec["claims"], typ=typ)
        result = await provider.authenticate({"access_token": token})
        assert not result.success and result.metadata["error"] == "invalid typ claim", typ


async def test_entra_multi_tenant_needs_an_allow_list_and_checks_tid_against_iss() -> None:
    rec = recording("entra_id")
    tenant = rec["claims"]["tid"]
    other = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    with pytest.raises(ConfigurationError):
        presets.entra_id(audience="a")  # neither single nor multi: refused, never "any tenant"
    with pytest.raises(ConfigurationError):
        presets.entra_id(audience="a", tenant_id=tenant, tenants=[tenant])
    with pytest.raises(ConfigurationError):
        presets.entra_id(audience="a", tenants=[])
    provider = presets.entra_id(audience=rec["preset"]["audience"], tenants=[tenant])
    multi = rec["multi_tenant_discovery"]
    assert provider.jwks_uri == multi["jwks_uri"]
    assert provider.authorization_url == multi["authorization_endpoint"]
    issuer = Issuer(provider, rec["header"]["kid"], with_alg=False)
    ok = issuer.sign(rec["header"], rec["claims"])
    assert (await provider.authenticate({"access_token": ok})).success
    other_iss = f"https://login.microsoftonline.com/{other}/v2.0"
    cases = {
        "another tenant": {"tid": other, "iss": other_iss},
        "tid not matching iss": {"tid": other},
        "iss not matching tid": {"iss": other_iss},
        "no tid": {"tid": None},
    }
    for what, changes in cases.items():
        result = await provider.authenticate(
            {"access_token": issuer.sign(rec["header"], rec["claims"], **changes)}
        )
        assert not result.success, what
    both = presets.entra_id(audience="a", tenants=[tenant, other])
    assert set(both.issuers) == {
        f"https://login.microsoftonline.com/{t}/v2.0" for t in (tenant, other)
    }
    v1 = presets.entra_id(audience="a", tenant_id=tenant, version=1)
    assert v1.issuers == (f"https://sts.windows.net/{tenant}/",)


async def test_cognito_refuses_id_tokens() -> None:
    provider, issuer, rec = build("cognito")
    id_token = issuer.sign(
        rec["header"], rec["claims"], token_use="id", client_id=None, aud=rec["client_id"]
    )
    assert not (await provider.authenticate({"access_token": id_token})).success
    wrong_use = issuer.sign(rec["header"], rec["claims"], token_use="id")
    result = await provider.authenticate({"access_token": wrong_use})
    assert result.metadata["error"] == "invalid token_use claim"


async def test_okta_requires_cid() -> None:
    provider, issuer, rec = build("okta")
    result = await provider.authenticate(
        {"access_token": issuer.sign(rec["header"], rec["claims"], cid=None)}
    )
    assert result.metadata["error"] == "missing required claim: cid"


def test_presets_pass_options_through() -> None:
    provider = presets.okta("acme.okta.com", leeway=5, unknown_kid_interval=10)
    assert provider.leeway == 5 and provider.jwks.unknown_kid_interval == 10
