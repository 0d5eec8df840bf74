"""Requirements that demand factors and freshness (step-up), and per-requirement rate limits.

Both are outcomes of the same Decision, answered by the same table: 401
``insufficient_user_authentication`` (RFC 9470) and 429 with ``Retry-After``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager, AuthenticationProvider, AuthenticationResult
from fastsecure.engine import factors_of
from fastsecure.ratelimit import RateLimit
from fastsecure.testing import authenticated_as


class Login(AuthenticationProvider):
    """``Authorization: Bearer amr=pwd+otp;at=<epoch>`` describes the login it stands for."""

    provider_type = "login"

    def __init__(self, challenge: str = "Bearer") -> None:
        self._challenge = challenge

    def get_required_credentials(self) -> set[str]:
        return {"token"}

    async def extract_credentials(self, connection: Any) -> dict[str, Any] | None:
        header = connection.headers.get("authorization", "")
        return {"token": header[7:]} if header.startswith("Bearer ") else None

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        fields = dict(part.split("=", 1) for part in credentials["token"].split(";"))
        return AuthenticationResult(
            success=True,
            user_id="u",
            provider=self.provider_name,
            metadata={"amr": fields["amr"].split("+"), "auth_time": float(fields["at"])},
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return True

    def challenge(self) -> str:
        return self._challenge


def app_for(manager: AuthenticationManager) -> FastAPI:
    app = FastAPI()
    manager.install(app)

    @app.get("/account/security/keys")
    async def keys(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    @app.get("/search")
    async def search(auth: Any = Depends(manager.requires_auth)) -> dict[str, Any]:
        return {"user": auth.user_id}

    return app


def manager_with_rules(challenge: str = "Bearer") -> AuthenticationManager:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("login", Login(challenge))
    manager.add_requirement(
        "/account/security/**", ["login"], factors=["pwd", ["otp", "hwk", "swk"]], max_age=300
    )
    manager.add_requirement("/search", ["login"], rate_limit=RateLimit(limit=3, window=60))
    return manager


def bearer(amr: str, age: float = 0.0) -> dict[str, str]:
    return {"Authorization": f"Bearer amr={amr};at={time.time() - age}"}


async def test_step_up_demands_every_factor_group_and_freshness() -> None:
    app = app_for(manager_with_rules())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        weak = await client.get("/account/security/keys", headers=bearer("pwd"))
        assert weak.status_code == 401
        assert weak.json() == {"detail": "Additional authentication required"}
        assert weak.headers["www-authenticate"] == (
            'Bearer error="insufficient_user_authentication", max_age=300'
        )
        strong = await client.get("/account/security/keys", headers=bearer("pwd+otp"))
        assert strong.status_code == 200
        passkey = await client.get("/account/security/keys", headers=bearer("pwd+hwk"))
        assert passkey.status_code == 200
        stale = await client.get("/account/security/keys", headers=bearer("pwd+otp", age=301))
        assert stale.status_code == 401
        no_password = await client.get("/account/security/keys", headers=bearer("otp"))
        assert no_password.status_code == 401


@pytest.mark.parametrize(
    ("challenge", "expected"),
    [
        ("Bearer", 'Bearer error="insufficient_user_authentication", max_age=300'),
        (
            'Bearer realm="api"',
            'Bearer realm="api", error="insufficient_user_authentication", max_age=300',
        ),
        (
            'Cookie realm="session"',
            'Cookie realm="session", error="insufficient_user_authentication", max_age=300',
        ),
        ("ApiKey", 'ApiKey error="insufficient_user_authentication", max_age=300'),
    ],
)
async def test_every_scheme_s_challenge_says_step_up(challenge: str, expected: str) -> None:
    """A session-only (or API-key) client tells "log in again" from "add a factor" too."""
    app = app_for(manager_with_rules(challenge))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        weak = await client.get("/account/security/keys", headers=bearer("pwd"))
        assert weak.status_code == 401
        assert weak.headers["www-authenticate"] == expected
        absent = await client.get("/account/security/keys")
        assert absent.status_code == 401
        assert absent.headers["www-authenticate"] == challenge  # not logged in: no step-up


async def test_authenticated_as_carries_factors_for_step_up_tests() -> None:
    manager = manager_with_rules()
    app = app_for(manager)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with authenticated_as(manager, "alice", factors=["pwd"]):
            assert (await client.get("/account/security/keys")).status_code == 401
        with authenticated_as(manager, "alice", factors=["pwd", "otp"]):
            assert (await client.get("/account/security/keys")).status_code == 200
        old = time.time() - 3600
        with authenticated_as(manager, "alice", factors=["pwd", "otp"], auth_time=old):
            assert (await client.get("/account/security/keys")).status_code == 401


def test_factors_unite_across_the_providers_of_an_all_result() -> None:
    result = AuthenticationResult(
        success=True,
        user_id=1,
        metadata={
            "password": {"amr": ["pwd"], "auth_time": 100},
            "totp": {"amr": ["otp"], "amr_times": {"otp": 200}},
        },
    )
    assert factors_of(result) == {"pwd": 100.0, "otp": 200.0}


async def test_rate_limit_per_client_address_is_a_429_with_retry_after() -> None:
    app = app_for(manager_with_rules())
    one = httpx.ASGITransport(app=app, client=("203.0.113.1", 4000))
    other = httpx.ASGITransport(app=app, client=("203.0.113.2", 4000))
    async with httpx.AsyncClient(transport=one, base_url="http://t") as client:
        statuses = [
            (await client.get("/search", headers=bearer("pwd"))).status_code for _ in "1234"
        ]
        assert statuses == [200, 200, 200, 429]
        limited = await client.get("/search", headers=bearer("pwd"))
        assert limited.json() == {"detail": "Too many attempts"}
        assert int(limited.headers["retry-after"]) >= 1
        # Counting happens before any provider runs: a guessing loop is limited too.
        assert (await client.get("/search")).status_code == 429
    async with httpx.AsyncClient(transport=other, base_url="http://t") as client:
        assert (await client.get("/search", headers=bearer("pwd"))).status_code == 200
    assert "429" in app.openapi()["paths"]["/search"]["get"]["responses"]
    assert "429" not in app.openapi()["paths"]["/account/security/keys"]["get"]["responses"]


def test_configuration_by_name_carries_factors_and_limits() -> None:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("login", Login())
    from fastsecure.config import build_manager

    built = build_manager(
        {
            "requirements": [
                {
                    "path": "/admin/**",
                    "providers": ["login"],
                    "factors": ["pwd", ["otp", "hwk"]],
                    "max_age": 600,
                    "rate_limit": {"limit": 10, "window": 60},
                }
            ]
        },
        cls=_Prebuilt(manager),
    )
    requirement = built.get_requirement("/admin/x")
    assert requirement is not None
    assert requirement.factors == (frozenset({"pwd"}), frozenset({"otp", "hwk"}))
    assert requirement.max_age == 600
    assert requirement.rate_limit == RateLimit(10, 60.0)


class _Prebuilt:
    """A ``cls`` for build_manager that hands back a manager with providers registered."""

    def __init__(self, manager: AuthenticationManager) -> None:
        self.manager = manager

    def __call__(self, **_: Any) -> AuthenticationManager:
        return self.manager
