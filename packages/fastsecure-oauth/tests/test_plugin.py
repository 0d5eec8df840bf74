import fastsecure
import fastsecure_oauth
from fastsecure.testing import assert_plugin_discovered


def test_plugin_discovered():
    assert_plugin_discovered("oauth", kinds={"provider": ["google", "github", "oidc", "oauth2"]})


def test_classes_importable_from_fastsecure():
    assert fastsecure.GoogleAuthProvider is fastsecure_oauth.GoogleAuthProvider
    assert fastsecure.GitHubAuthProvider is fastsecure_oauth.GitHubAuthProvider
    assert fastsecure.OpenIDConnectProvider is fastsecure_oauth.OpenIDConnectProvider
    assert fastsecure.OAuth2Provider is fastsecure_oauth.OAuth2Provider


def test_provider_types():
    assert fastsecure_oauth.OAuth2Provider.provider_type == "oauth2"
    assert fastsecure_oauth.OpenIDConnectProvider.provider_type == "oidc"
    assert fastsecure_oauth.GoogleAuthProvider.provider_type == "google"
    assert fastsecure_oauth.GitHubAuthProvider.provider_type == "github"


def test_exceptions_share_one_base():
    for exc in (
        fastsecure_oauth.ProviderError,
        fastsecure_oauth.IDTokenError,
        fastsecure_oauth.OAuthFlowError,
        fastsecure_oauth.OAuthConfigurationError,
    ):
        assert issubclass(exc, fastsecure_oauth.OAuthError)
    assert issubclass(fastsecure_oauth.OAuthError, fastsecure.FastSecureError)


def test_real_endpoints_are_the_defaults():
    google = fastsecure_oauth.GoogleAuthProvider("id", "secret", "https://app/cb")
    assert google.authorize_endpoint == "https://accounts.google.com/o/oauth2/v2/auth"
    assert google.access_token_endpoint == "https://oauth2.googleapis.com/token"
    assert google.revocation_endpoint == "https://oauth2.googleapis.com/revoke"
    assert google.jwks_uri == "https://www.googleapis.com/oauth2/v3/certs"
    assert set(google.accepted_issuers) == {"https://accounts.google.com", "accounts.google.com"}
    github = fastsecure_oauth.GitHubAuthProvider("id", "secret", "https://app/cb")
    assert github.authorize_endpoint == "https://github.com/login/oauth/authorize"
    assert github.access_token_endpoint == "https://github.com/login/oauth/access_token"
    assert github.userinfo_endpoint == "https://api.github.com/user"
    assert github.emails_endpoint == "https://api.github.com/user/emails"
    enterprise = fastsecure_oauth.GitHubAuthProvider(
        "id", "s", base_url="https://ghe.corp", api_base_url="https://ghe.corp/api/v3"
    )
    assert enterprise.authorize_endpoint == "https://ghe.corp/login/oauth/authorize"
    assert enterprise.userinfo_endpoint == "https://ghe.corp/api/v3/user"


def test_authorization_url_readme_shape():
    google = fastsecure_oauth.GoogleAuthProvider(
        "cid",
        "secret",
        "http://localhost:8000/auth/google/callback",
        authorization_params={"access_type": "offline", "prompt": "consent"},
    )
    url = google.get_authorization_url(state="random-secure-state")
    assert url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    for part in (
        "response_type=code",
        "client_id=cid",
        "state=random-secure-state",
        "scope=openid+email+profile",
        "access_type=offline",
        "redirect_uri=http%3A%2F%2Flocalhost%3A8000%2Fauth%2Fgoogle%2Fcallback",
    ):
        assert part in url


def test_security_schemes_and_challenge():
    github = fastsecure_oauth.GitHubAuthProvider("id", "secret")
    github.provider_name = "gh"
    assert github.security_schemes() == []  # request Bearer tokens are opt-in
    github = fastsecure_oauth.GitHubAuthProvider("id", "secret", accept_bearer_tokens=True)
    github.provider_name = "gh"
    [scheme] = github.security_schemes()
    assert scheme.scheme_name == "gh"
    assert scheme.auto_error is False
    assert (
        scheme.model.flows.authorizationCode.authorizationUrl
        == "https://github.com/login/oauth/authorize"
    )
    assert github.challenge() == 'Bearer realm="gh"'
    oidc = fastsecure_oauth.OpenIDConnectProvider(
        "id", issuer="https://issuer.example", accept_bearer_tokens=True
    )
    [scheme] = oidc.security_schemes()
    assert (
        scheme.model.openIdConnectUrl == "https://issuer.example/.well-known/openid-configuration"
    )


def test_unsafe_configuration_refused():
    import pytest

    with pytest.raises(fastsecure_oauth.OAuthConfigurationError):
        fastsecure_oauth.OpenIDConnectProvider(
            "id", issuer="https://i", id_token_algorithms=["HS256"]
        )
    with pytest.raises(fastsecure_oauth.OAuthConfigurationError):
        fastsecure_oauth.OAuth2Provider("id", authorize_endpoint="https://a")
    with pytest.raises(fastsecure_oauth.OAuthConfigurationError):
        fastsecure_oauth.OAuthFlow(fastsecure_oauth.GitHubAuthProvider("id", "s"), secret="short")
