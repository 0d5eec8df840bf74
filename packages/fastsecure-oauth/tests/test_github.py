"""GitHub against a local server answering GitHub's documented shapes."""

import pytest

from fastsecure_oauth import GitHubAuthProvider

APP = "http://app.test"


@pytest.fixture
def provider(github):
    p = GitHubAuthProvider(
        "test-client",
        "test-client-secret-value",
        f"{APP}/callback",
        base_url=github.url,
        api_base_url=github.url + "/api",
    )
    return p


async def code_for(browser, provider, login="octocat") -> str:
    answer = await browser.get(provider.get_authorization_url(state="st", extras={"login": login}))
    return answer.headers["location"].split("code=")[1].split("&")[0]


async def test_public_email_user(provider, browser_for):
    result = await provider.authenticate({"code": await code_for(browser_for(None), provider)})
    assert result.success, result.metadata
    info = result.metadata["user_info"]
    assert result.user_id == "583231" and info["id"] == "583231"
    assert info["login"] == "octocat"
    assert info["email"] == "octocat@github.com" and info["email_verified"] is True
    assert info["name"] == "The Octocat"
    assert info["picture"] == "https://avatars.githubusercontent.com/u/583231"
    assert info["provider"] == "github"
    assert info["raw_user_info"]["login"] == "octocat"
    # GitHub's own scopes (commas parsed) are GitHub's, never the app's.
    assert result.metadata["github"]["scopes"] == ["read:user", "user:email"]
    assert result.metadata["scopes"] == []
    assert result.refresh_token is None


async def test_private_email_comes_from_user_emails(provider, browser_for):
    result = await provider.authenticate(
        {"code": await code_for(browser_for(None), provider, "hidden")}
    )
    info = result.metadata["user_info"]
    assert info["email"] == "hidden@example.org"  # the primary verified one, not the other
    assert info["email_verified"] is True
    assert info["name"] == "hidden"  # no display name: the login stands in


async def test_unreadable_emails_mean_unverified(github, provider, browser_for):
    github.emails["octocat"] = "forbidden"
    result = await provider.authenticate({"code": await code_for(browser_for(None), provider)})
    assert result.success
    assert result.metadata["user_info"]["email"] == "octocat@github.com"
    assert result.metadata["user_info"]["email_verified"] is False
    github.emails["hidden"] = [{"email": "x@example.org", "primary": True, "verified": False}]
    result = await provider.authenticate(
        {"code": await code_for(browser_for(None), provider, "hidden")}
    )
    assert result.metadata["user_info"]["email"] is None


async def test_bad_code_answered_200_with_error_is_a_failed_login(provider):
    result = await provider.authenticate({"code": "not-a-real-code"})
    assert not result.success
    assert "bad_verification_code" in result.metadata["error"]
    assert "incorrect or expired" in result.metadata["error"]


async def test_wrong_client_secret(github, browser_for):
    p = GitHubAuthProvider(
        "test-client",
        "wrong",
        f"{APP}/callback",
        base_url=github.url,
        api_base_url=github.url + "/api",
    )
    result = await p.authenticate({"code": await code_for(browser_for(None), p)})
    assert not result.success and "incorrect_client_credentials" in result.metadata["error"]


async def test_user_endpoint_error(github, provider, browser_for):
    github.user_status = 502
    result = await provider.authenticate({"code": await code_for(browser_for(None), provider)})
    assert not result.success and "HTTP 502" in result.metadata["error"]


async def test_bearer_validation_scopes_and_revocation(github, provider, browser_for):
    token = (
        await provider.authenticate({"code": await code_for(browser_for(None), provider)})
    ).access_token
    assert token.startswith("gho_")
    assert await provider.validate_authentication({"access_token": token}) is True
    presented = await provider.authenticate({"access_token": token})
    assert presented.success and presented.user_id == "583231"
    assert presented.metadata["github"]["scopes"] == ["read:user", "user:email"]  # X-OAuth-Scopes
    assert presented.metadata["scopes"] == []
    assert await provider.revoke_authentication({"access_token": token}) is True
    assert github.revoked == [token]
    assert await provider.validate_authentication({"access_token": token}) is False
    assert await provider.revoke_authentication({"access_token": token}) is False
    assert await provider.validate_authentication({}) is False


async def test_full_flow_through_app(provider, make_app, browser_for):
    flow_app = make_app(provider)
    browser = browser_for(flow_app.app)
    start = await browser.get(f"{APP}/login", params={"next": "/repos"})
    back = (await browser.get(start.headers["location"])).headers["location"]
    answer = await browser.get(back)
    assert answer.status_code == 200
    assert answer.json()["user_info"]["login"] == "octocat"
    assert answer.json()["next"] == "/repos"


async def test_only_the_primary_verified_address_counts_as_verified(github, provider, browser_for):
    github.emails["octocat"] = [
        {"email": "octocat@github.com", "primary": False, "verified": True},
        {"email": "main@example.org", "primary": True, "verified": True},
    ]
    result = await provider.authenticate({"code": await code_for(browser_for(None), provider)})
    info = result.metadata["user_info"]
    assert (info["email"], info["email_verified"]) == ("main@example.org", True)
    # the public address is a verified secondary one, the primary is unverified: no link
    github.emails["octocat"][1]["verified"] = False
    result = await provider.authenticate({"code": await code_for(browser_for(None), provider)})
    info = result.metadata["user_info"]
    assert (info["email"], info["email_verified"]) == ("octocat@github.com", False)
