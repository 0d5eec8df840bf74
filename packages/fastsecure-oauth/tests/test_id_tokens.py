"""ID token verification, PKCE, refresh, revocation and introspection against a strict OP
that signs with a test RSA key served from its own JWKS."""

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fastsecure_oauth import OpenIDConnectProvider
from fastsecure_oauth.flow import pkce_pair

APP = "http://app.test"


def provider_for(op, **kw: Any) -> OpenIDConnectProvider:
    return OpenIDConnectProvider(
        "test-client", "test-client-secret-value", f"{APP}/callback", issuer=op.issuer, **kw
    )


async def login_code(browser, provider, *, challenge=None, nonce=None, state="s") -> str:
    await provider.discover()
    url = provider.get_authorization_url(state=state, code_challenge=challenge, nonce=nonce)
    answer = await browser.get(url)
    assert answer.status_code == 302
    location = answer.headers["location"]
    return location.split("code=")[1].split("&")[0]


async def flow_login(browser) -> Any:
    start = await browser.get(f"{APP}/login")
    assert start.status_code == 302
    answer = await browser.get(start.headers["location"])  # the strict OP approves at once
    return await browser.get(answer.headers["location"])


async def test_flow_login_verifies_everything(test_op, make_app, browser_for):
    test_app = make_app(provider_for(test_op))
    answer = await flow_login(browser_for(test_app.app))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user_info"]["id"] == "bob"
    assert body["user_info"]["email_verified"] is True
    assert body["nonce"]


@pytest.mark.parametrize(
    ("tweak", "message"),
    [
        ({"claim_overrides": {"nonce": "not-the-one-we-sent"}}, "nonce"),
        ({"claim_overrides": {"aud": "another-client"}}, "audience"),
        ({"claim_overrides": {"exp": 1_000_000_000, "iat": 999_999_000}}, "expired"),
        ({"claim_overrides": {"iss": "https://evil.example"}}, "issuer"),
        ({"claim_overrides": {"azp": "another-client"}}, "azp"),
        ({"claim_overrides": {"aud": ["test-client", "other"]}}, "azp"),
        ({"claim_overrides": {"iat": 4_000_000_000, "exp": 4_000_000_300}}, "future"),
        ({"claim_overrides": {"iat": None}}, "invalid"),
        ({"id_token_mode": "none"}, "algorithm 'none'"),
        ({"id_token_mode": "hs256"}, "algorithm 'HS256'"),
        ({"id_token_mode": "omit"}, "no ID token"),
        ({"userinfo_sub": "mallory"}, "another subject"),
    ],
)
async def test_bad_id_tokens_fail_the_login(tweak, message, test_op, make_app, browser_for):
    for name, value in tweak.items():
        setattr(test_op, name, value)
    test_app = make_app(provider_for(test_op))
    answer = await flow_login(browser_for(test_app.app))
    assert answer.status_code == 401, answer.text
    assert message in answer.json()["detail"]
    assert test_app.issued == []


async def test_multiple_audiences_with_our_azp_pass(test_op, make_app, browser_for):
    test_op.claim_overrides = {"aud": ["test-client", "other"], "azp": "test-client"}
    answer = await flow_login(browser_for(make_app(provider_for(test_op)).app))
    assert answer.status_code == 200


async def test_forged_signature_refused(test_op, make_app, browser_for):
    provider = provider_for(test_op)
    await provider.discover()
    await provider._signing_key("k1", "RS256")  # the real k1 is cached
    # tokens now claim kid k1 but are signed by a key the issuer never published
    test_op.keys["k1"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    answer = await flow_login(browser_for(make_app(provider).app))
    assert answer.status_code == 401
    assert "signature" in answer.json()["detail"]


async def test_jwks_cached_refetched_on_unknown_kid_and_rate_limited(
    test_op, make_app, browser_for
):
    provider = provider_for(test_op, jwks_min_refresh_interval=0)
    test_app = make_app(provider)
    browser = browser_for(test_app.app)
    assert (await flow_login(browser)).status_code == 200
    assert (await flow_login(browser)).status_code == 200
    assert test_op.jwks_fetches == 1  # fetched once, cached
    # the issuer rotates to a new key: the unknown kid triggers one refetch
    test_op.keys["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    test_op.published = ["k1", "k2"]
    test_op.signing_kid = "k2"
    assert (await flow_login(browser)).status_code == 200
    assert test_op.jwks_fetches == 2
    # with a rate limit, a burst of unknown kids cannot hammer the issuer
    provider.jwks_min_refresh_interval = 3600
    test_op.keys["k3"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    test_op.signing_kid = "k3"  # never published
    for _ in range(3):
        answer = await flow_login(browser)
        assert answer.status_code == 401
        assert "no key" in answer.json()["detail"]
    assert test_op.jwks_fetches == 2
    await provider.aclose()


async def test_failing_jwks_refetch_is_rate_limited_too(test_op, make_app, browser_for):
    provider = provider_for(test_op, jwks_min_refresh_interval=3600)
    browser = browser_for(make_app(provider).app)
    assert (await flow_login(browser)).status_code == 200
    assert test_op.jwks_fetches == 1
    provider._jwks_fetched_at -= 7200  # an hour later, a refetch is allowed again
    test_op.jwks_status = 503  # ...but the issuer's JWKS endpoint is down
    test_op.keys["k9"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    test_op.signing_kid = "k9"  # tokens naming an unknown kid
    for _ in range(3):
        assert (await flow_login(browser)).status_code == 401
    assert test_op.jwks_fetches == 2  # one attempt, not one per token
    test_op.signing_kid = "k1"  # the cached keys still verify
    assert (await flow_login(browser)).status_code == 200
    await provider.aclose()


async def test_pkce_mismatch_is_refused_by_the_provider(test_op, browser_for):
    provider = provider_for(test_op)
    browser = browser_for(None)
    verifier, challenge = pkce_pair()
    other, _ = pkce_pair()
    code = await login_code(browser, provider, challenge=challenge)
    result = await provider.authenticate({"code": code, "code_verifier": other})
    assert not result.success
    assert "PKCE" in result.metadata["error"]
    code = await login_code(browser, provider, challenge=challenge)
    result = await provider.authenticate({"code": code})  # verifier missing
    assert not result.success
    code = await login_code(browser, provider, challenge=challenge)
    result = await provider.authenticate({"code": code, "code_verifier": verifier})
    assert result.success, result.metadata
    await provider.aclose()


async def test_nonce_checked_when_given_and_optional_otherwise(test_op, browser_for):
    provider = provider_for(test_op)
    browser = browser_for(None)
    code = await login_code(browser, provider, nonce="n-1")
    assert not (await provider.authenticate({"code": code, "nonce": "n-2"})).success
    code = await login_code(browser, provider, nonce="n-1")
    assert (await provider.authenticate({"code": code, "nonce": "n-1"})).success
    code = await login_code(browser, provider)  # the README flow: no nonce sent, none checked
    result = await provider.authenticate({"code": code, "metadata": {"tenant": "acme"}})
    assert result.success
    assert result.metadata["tenant"] == "acme"  # custom login metadata at the top level
    assert result.metadata["id_token_claims"]["sub"] == "bob"
    await provider.aclose()


async def test_refresh_and_revoke(test_op, browser_for):
    provider = provider_for(test_op)
    code = await login_code(browser_for(None), provider)
    result = await provider.authenticate({"code": code})
    assert result.expires_at is not None
    refreshed = await provider.refresh_authentication({"refresh_token": result.refresh_token})
    assert refreshed.success and refreshed.user_id == "bob"
    assert refreshed.refresh_token != result.refresh_token  # the OP rotates
    again = await provider.refresh_authentication({"refresh_token": result.refresh_token})
    assert not again.success
    assert provider.supports_refresh and provider.supports_revocation
    revoked = await provider.revoke_authentication(
        {"access_token": refreshed.access_token, "refresh_token": refreshed.refresh_token}
    )
    assert revoked is True
    assert set(test_op.revoked) == {refreshed.access_token, refreshed.refresh_token}
    assert await provider.validate_authentication({"access_token": refreshed.access_token}) is False
    assert (await provider.refresh_authentication({})).success is False
    await provider.aclose()


async def test_introspection_validates_and_rejects_other_clients_tokens(test_op, browser_for):
    provider = provider_for(test_op)
    await provider.discover()
    assert provider.introspection_endpoint == f"{test_op.issuer}/introspect"
    code = await login_code(browser_for(None), provider)
    token = (await provider.authenticate({"code": code})).access_token
    assert await provider.validate_authentication({"access_token": token}) is True
    verified = await provider.authenticate({"access_token": token})
    assert verified.success and verified.user_id == "bob"
    assert verified.metadata["oidc"]["scopes"] == ["email", "openid", "profile"]
    assert verified.metadata["scopes"] == []
    test_op.tokens[token]["client_id"] = "someone-else"  # a token minted for another app
    assert await provider.validate_authentication({"access_token": token}) is False
    refused = await provider.authenticate({"access_token": token})
    assert not refused.success and "another client" in refused.metadata["error"]
    await provider.aclose()
