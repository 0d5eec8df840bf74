"""Provider outages and garbage: always a failed result or a clear 4xx/503, never a 500."""

import logging
import time

import pytest

from fastsecure_oauth import GitHubAuthProvider, OAuth2Provider, OpenIDConnectProvider

APP = "http://app.test"


def oauth2_at(base: str, **kw) -> OAuth2Provider:
    return OAuth2Provider(
        "test-client",
        "test-client-secret-value",
        f"{APP}/callback",
        authorize_endpoint=base + "/authorize",
        access_token_endpoint=base + "/token",
        userinfo_endpoint=base + "/userinfo",
        revocation_endpoint=base + "/revoke",
        **kw,
    )


def closed_url(h) -> str:
    return f"http://127.0.0.1:{h.free_port()}"


@pytest.mark.parametrize("call", ["code", "token", "validate", "refresh", "revoke"])
async def test_provider_down(call, h):
    provider = oauth2_at(closed_url(h))
    if call == "code":
        result = await provider.authenticate({"code": "c"})
        assert not result.success and "could not connect" in result.metadata["error"]
    elif call == "token":
        result = await provider.authenticate({"access_token": "t"})
        assert not result.success and "could not connect" in result.metadata["error"]
    elif call == "validate":
        assert await provider.validate_authentication({"access_token": "t"}) is False
    elif call == "refresh":
        assert not (await provider.refresh_authentication({"refresh_token": "r"})).success
    else:
        assert await provider.revoke_authentication({"access_token": "t"}) is False
    await provider.aclose()


async def test_provider_slow(slow_server):
    provider = oauth2_at(slow_server, timeout=0.5)
    started = time.monotonic()
    result = await provider.authenticate({"code": "c"})
    assert time.monotonic() - started < 2
    assert not result.success
    assert result.metadata["error"] == "code exchange: the provider did not answer within 0.5s"
    assert await provider.validate_authentication({"access_token": "t"}) is False
    await provider.aclose()


async def test_timeout_bounds_the_whole_call_not_each_read(trickle_server):
    provider = oauth2_at(trickle_server, timeout=0.5)
    started = time.monotonic()
    result = await provider.authenticate({"code": "c"})
    assert time.monotonic() - started < 1.5
    assert not result.success
    assert result.metadata["error"] == "code exchange: the provider did not answer within 0.5s"
    await provider.aclose()


async def test_tls_failure(not_tls_server):
    provider = oauth2_at(not_tls_server)
    result = await provider.authenticate({"code": "c"})
    assert not result.success and "TLS failure" in result.metadata["error"]
    await provider.aclose()


@pytest.mark.parametrize(
    ("mode", "message"), [("badjson", "malformed JSON"), ("http500", "HTTP 500")]
)
async def test_token_endpoint_garbage(mode, message, test_op, browser_for):
    provider = OpenIDConnectProvider(
        "test-client", "test-client-secret-value", f"{APP}/callback", issuer=test_op.issuer
    )
    await provider.discover()
    answer = await browser_for(None).get(provider.get_authorization_url(state="s"))
    code = answer.headers["location"].split("code=")[1].split("&")[0]
    test_op.token_mode = mode
    result = await provider.authenticate({"code": code})
    assert not result.success and message in result.metadata["error"]
    await provider.aclose()


async def test_discovery_down_is_503_at_login_and_failed_result_at_callback(
    h, make_app, browser_for
):
    provider = OpenIDConnectProvider("test-client", "s", f"{APP}/callback", issuer=closed_url(h))
    flow_app = make_app(provider)
    answer = await browser_for(flow_app.app).get(f"{APP}/login")
    assert answer.status_code == 503
    assert "could not connect" in answer.json()["detail"]
    result = await provider.authenticate({"code": "c"})
    assert not result.success and "discovery" in result.metadata["error"]
    assert await provider.validate_authentication({"access_token": "t"}) is False
    await provider.aclose()


async def test_provider_down_at_callback_is_401_not_500(github, make_app, browser_for):
    provider = GitHubAuthProvider(
        "test-client",
        "test-client-secret-value",
        f"{APP}/callback",
        base_url=github.url,
        api_base_url=github.url + "/api",
    )
    flow_app = make_app(provider)
    browser = browser_for(flow_app.app)
    start = await browser.get(f"{APP}/login")
    back = (await browser.get(start.headers["location"])).headers["location"]
    provider.access_token_endpoint = "http://127.0.0.1:9/login/oauth/access_token"
    answer = await browser.get(back)
    assert answer.status_code == 401
    assert "could not connect" in answer.json()["detail"]


async def test_secrets_and_tokens_never_logged(caplog, github, browser_for):
    caplog.set_level(logging.DEBUG)
    provider = GitHubAuthProvider(
        "test-client",
        "test-client-secret-value",
        f"{APP}/callback",
        base_url=github.url,
        api_base_url=github.url + "/api",
    )
    code_answer = await browser_for(None).get(provider.get_authorization_url(state="st"))
    code = code_answer.headers["location"].split("code=")[1].split("&")[0]
    result = await provider.authenticate({"code": code})
    await provider.authenticate({"code": code})  # replay: logged as a failure
    await provider.authenticate({"access_token": "gho_forged_token_value"})
    await provider.validate_authentication({"access_token": "gho_forged_token_value"})
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("fastsecure"))
    assert ours  # failures are logged...
    for secret in ("test-client-secret-value", code, result.access_token, "gho_forged_token_value"):
        assert secret not in ours  # ...without what they were about
    await provider.aclose()


async def test_malformed_credentials(github):
    provider = GitHubAuthProvider(
        "test-client", "s", base_url=github.url, api_base_url=github.url + "/api"
    )
    assert not (await provider.authenticate({"code": 42})).success
    assert not (await provider.authenticate({"access_token": ""})).success
    missing = await provider.authenticate({})
    assert not missing.success and missing.failure_reason.value == "missing_credentials"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"access_token": "t\u00e9"}, "malformed access token"),
        ({"access_token": "t\u20ac"}, "malformed access token"),
        ({"access_token": "t\nx"}, "malformed access token"),
        ({"expires_in": "9" * 5000}, None),
        ({"expires_in": 10**20}, None),
        ({"expires_in": "99999999999999"}, None),
    ],
)
async def test_hostile_token_response_is_a_failed_result_not_an_exception(
    changes, error, scripted_op
):
    scripted_op.token_body.update(changes)
    provider = oauth2_at(scripted_op.url)
    result = await provider.authenticate({"code": "c"})
    if error is None:
        assert result.success and result.expires_at is None
    else:
        assert not result.success and error in result.metadata["error"]
    refreshed = await provider.refresh_authentication({"refresh_token": "r"})
    assert refreshed.success is (error is None)
    await provider.aclose()


@pytest.mark.parametrize("token", ["t\u00e9", "t\u20ac", "a\tb"])
async def test_presented_non_ascii_token_is_malformed(token, scripted_op):
    provider = oauth2_at(scripted_op.url)
    result = await provider.authenticate({"access_token": token})
    assert not result.success and "malformed" in result.metadata["error"]
    await provider.aclose()
