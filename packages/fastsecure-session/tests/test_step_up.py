"""Factors on a session: recorded at login from factor results, added by step_up()."""

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from fastsecure import AuthenticationManager, AuthenticationResult, StoreUnavailableError
from fastsecure.decision import INSUFFICIENT_USER_AUTHENTICATION
from fastsecure.events import AuthEvent, SessionRotated
from fastsecure.stores import utcnow
from fastsecure_session import FactorError, MemorySessionStore, SessionAuthenticationProvider

Make = Callable[..., SessionAuthenticationProvider]


def factor(user_id: Any, *amr: str, at: float | None = None) -> AuthenticationResult:
    """What a factor provider (password, TOTP, passkey) returns on success."""
    when = int(time.time()) if at is None else at
    return AuthenticationResult(
        success=True, user_id=user_id, provider="f", metadata={"amr": list(amr), "auth_time": when}
    )


async def test_login_records_its_factors(provider: SessionAuthenticationProvider) -> None:
    now = int(time.time())
    login = await provider.authenticate(
        {"user_id": 7, "factors": [factor(7, "pwd", at=now - 10), factor(7, "otp", at=now)]}
    )
    assert login.success
    verified = await provider.authenticate({"session_id": login.session_id})
    assert verified.metadata["amr"] == ["otp", "pwd"]
    assert verified.metadata["amr_times"] == {"pwd": now - 10, "otp": now}
    assert verified.metadata["auth_time"] == now


async def test_metadata_cannot_claim_factors(provider: SessionAuthenticationProvider) -> None:
    forged = {"amr": ["otp", "pwd"], "amr_times": {"otp": 4e9}, "auth_time": 4e9}
    login = await provider.authenticate(
        {"user_id": 7, "metadata": {**forged, "nested": dict(forged, plan="pro"), "plan": "x"}}
    )
    verified = await provider.authenticate({"session_id": login.session_id})
    meta = verified.metadata
    assert not {"amr", "amr_times", "auth_time"} & set(meta)
    assert meta["nested"] == {"plan": "pro"} and meta["plan"] == "x"  # the rest is kept


async def test_forged_factors_do_not_pass_a_factor_requirement(
    provider: SessionAuthenticationProvider,
) -> None:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("session", provider)
    requirement = manager.add_requirement("/secure", ["session"], factors=["otp"], max_age=300)
    now = int(time.time())
    claims = {"amr": ["otp"], "auth_time": now}
    forged = await provider.authenticate({"user_id": 7, "metadata": {**claims, "x": claims}})
    refused = await manager.engine.decide(
        requirement,
        {"session": {"session_id": forged.session_id}},
    )
    assert refused.reason == INSUFFICIENT_USER_AUTHENTICATION
    real = await provider.authenticate({"user_id": 7, "factors": [factor(7, "otp")]})
    allowed = await manager.engine.decide(
        requirement,
        {"session": {"session_id": real.session_id}},
    )
    assert allowed.allowed


@pytest.mark.parametrize(
    "bad",
    [
        AuthenticationResult.failure("wrong code"),
        factor(8, "pwd"),  # another user
        factor("7", "pwd"),  # the same digits, another type: another user
        factor(7),  # no method
        AuthenticationResult(success=True, user_id=7, metadata={"amr": "pwd"}),
        AuthenticationResult(success=True, user_id=7, metadata={"amr": ["pwd"], "auth_time": "x"}),
        {"success": True, "user_id": 7, "metadata": {"amr": ["pwd"]}},  # not a result
    ],
)
async def test_login_refuses_factors_it_cannot_trust(
    provider: SessionAuthenticationProvider, bad: Any
) -> None:
    with pytest.raises(FactorError):
        await provider.authenticate({"user_id": 7, "factors": [bad]})
    with pytest.raises(FactorError):
        await provider.authenticate({"user_id": 7, "factors": bad})  # not a list either
    assert await provider.list_sessions(7) == []


async def test_step_up_merges_factors_and_rotates(
    provider: SessionAuthenticationProvider, events: list[AuthEvent]
) -> None:
    now = int(time.time())
    login = await provider.authenticate(
        {
            "user_id": 7,
            "scopes": ["read"],
            "user_agent": "Firefox",
            "metadata": {"plan": "pro"},
            "factors": [factor(7, "pwd", at=now - 600)],
        }
    )
    assert login.session_id
    stepped = await provider.step_up(login.session_id, factor(7, "otp", at=now))
    assert stepped.success and stepped.session_id and stepped.session_id != login.session_id
    assert stepped.expires_at == login.expires_at  # a step-up is not a new login
    assert not await provider.validate_authentication({"session_id": login.session_id})

    verified = await provider.authenticate({"session_id": stepped.session_id})
    meta = verified.metadata
    assert verified.user_id == 7 and meta["scopes"] == ["read"]
    assert meta["plan"] == "pro" and meta["user_agent"] == "Firefox"
    assert meta["created_at"] == login.metadata["created_at"]
    assert meta["amr"] == ["otp", "pwd"]
    assert meta["amr_times"] == {"pwd": now - 600, "otp": now}
    assert meta["auth_time"] == now
    assert {k: meta[k] for k in ("amr", "amr_times", "auth_time")} == {
        k: stepped.metadata[k] for k in ("amr", "amr_times", "auth_time")
    }
    rotated = [e for e in events if isinstance(e, SessionRotated)]
    assert rotated[-1].detail == {"reason": "step_up", "amr": ["otp"]}
    assert len(await provider.list_sessions(7)) == 1

    # The same method again moves its time forward, never back.
    again = await provider.step_up(stepped.session_id, factor(7, "otp", "pwd", at=now - 5))
    meta = (await provider.authenticate({"session_id": again.session_id})).metadata
    assert meta["amr_times"] == {"pwd": now - 5, "otp": now}


async def test_a_future_auth_time_counts_as_now(provider: SessionAuthenticationProvider) -> None:
    login = await provider.authenticate({"user_id": 7})
    assert login.session_id
    stepped = await provider.step_up(login.session_id, factor(7, "otp", at=time.time() + 3600))
    assert stepped.metadata["auth_time"] <= time.time()


async def test_step_up_of_a_session_without_factors(
    provider: SessionAuthenticationProvider,
) -> None:
    login = await provider.authenticate({"user_id": "ada"})
    assert login.session_id
    stepped = await provider.step_up(login.session_id, factor("ada", "hwk"))
    assert stepped.metadata["amr"] == ["hwk"]


async def test_a_session_is_stepped_up_once(provider: SessionAuthenticationProvider) -> None:
    login = await provider.authenticate({"user_id": 7})
    assert login.session_id
    first = await provider.step_up(login.session_id, factor(7, "otp"))
    second = await provider.step_up(login.session_id, factor(7, "otp"))
    assert first.success and not second.success
    assert len(await provider.list_sessions(7)) == 1


@pytest.mark.parametrize(
    "bad", [AuthenticationResult.failure("wrong code"), factor(8, "otp"), factor(7)]
)
async def test_step_up_refuses_a_bad_factor_and_changes_nothing(
    provider: SessionAuthenticationProvider, bad: AuthenticationResult
) -> None:
    login = await provider.authenticate({"user_id": 7, "factors": [factor(7, "pwd")]})
    assert login.session_id
    with pytest.raises(FactorError):
        await provider.step_up(login.session_id, bad)
    still = await provider.authenticate({"session_id": login.session_id})
    assert still.success and still.metadata["amr"] == ["pwd"]


async def test_step_up_of_a_dead_session_fails(make_provider: Make) -> None:
    provider = make_provider(idle_timeout_minutes=1)
    login = await provider.authenticate({"user_id": 7})
    assert login.session_id
    await provider.store.touch_session(login.session_id, utcnow() - timedelta(minutes=2))
    assert not (await provider.step_up(login.session_id, factor(7, "otp"))).success
    assert not (await provider.step_up("no-such-session", factor(7, "otp"))).success


class BrokenUpdates(MemorySessionStore):
    async def update_session(self, session_id: str, metadata: dict[str, Any]) -> bool:
        raise ConnectionError("store down")


async def test_store_errors_are_store_unavailable(make_provider: Make) -> None:
    provider = make_provider(session_store=BrokenUpdates())
    login = await provider.authenticate({"user_id": 7})
    assert login.session_id
    with pytest.raises(StoreUnavailableError):
        await provider.step_up(login.session_id, factor(7, "otp"))
    # The factor never reached the old id: it was rotated away before the write.
    assert not await provider.validate_authentication({"session_id": login.session_id})
