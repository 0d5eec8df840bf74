"""Tokens record the factors of the login, from factor results only."""

from __future__ import annotations

import time

import pytest

from fastsecure import AuthenticationResult
from fastsecure.factors import FactorError, factors_of
from fastsecure_jwt import JWTAuthenticationProvider

SECRET = "a-test-secret-of-at-least-32-bytes!!"


def factor(user: object, amr: list[str], when: int) -> AuthenticationResult:
    return AuthenticationResult(
        success=True, user_id=user, provider="f", metadata={"amr": amr, "auth_time": when}
    )


async def test_factors_become_claims_that_verify_and_survive_a_refresh() -> None:
    jwt = JWTAuthenticationProvider(secret_key=SECRET)
    now = int(time.time())
    issued = await jwt.authenticate(
        {"user_id": 7, "factors": [factor(7, ["pwd"], now - 600), factor(7, ["otp"], now)]}
    )
    assert issued.success
    verified = await jwt.authenticate({"access_token": issued.access_token})
    assert verified.metadata["amr"] == ["otp", "pwd"]
    assert verified.metadata["amr_times"] == {"pwd": now - 600, "otp": now}
    assert verified.metadata["auth_time"] == now
    # Each factor keeps its own time: a fresh OTP does not make an old password fresh.
    assert factors_of(verified) == {"pwd": now - 600.0, "otp": float(now)}
    refreshed = await jwt.refresh_authentication({"refresh_token": issued.refresh_token})
    again = await jwt.authenticate({"access_token": refreshed.access_token})
    assert again.metadata["amr_times"] == verified.metadata["amr_times"]


@pytest.mark.parametrize(
    "metadata",
    [
        {"amr": ["hwk"]},
        {"auth_time": 1},
        {"amr_times": {"pwd": 1}},
        {"profile": {"amr": ["hwk"], "auth_time": 1}},  # core reads nested dicts too
    ],
)
async def test_metadata_cannot_claim_a_factor(metadata: dict[str, object]) -> None:
    jwt = JWTAuthenticationProvider(secret_key=SECRET)
    issued = await jwt.authenticate({"user_id": 7, "metadata": metadata})
    assert not issued.success and issued.access_token is None
    assert "factors=" in issued.metadata["error"]


@pytest.mark.parametrize(
    "factors",
    [
        [factor(8, ["otp"], 1)],  # another user's
        [factor("7", ["otp"], 1)],  # "7" is not 7
        [AuthenticationResult.failure("wrong code")],
        [AuthenticationResult(success=True, user_id=7, provider="f")],  # names no method
        factor(7, ["otp"], 1),  # not a list
    ],
)
async def test_a_factor_that_cannot_be_recorded_raises(factors: object) -> None:
    jwt = JWTAuthenticationProvider(secret_key=SECRET)
    with pytest.raises(FactorError):
        await jwt.authenticate({"user_id": 7, "factors": factors})


async def test_a_factor_time_in_the_future_counts_as_now() -> None:
    jwt = JWTAuthenticationProvider(secret_key=SECRET)
    issued = await jwt.authenticate({"user_id": 7, "factors": [factor(7, ["otp"], 2**40)]})
    verified = await jwt.authenticate({"access_token": issued.access_token})
    assert verified.metadata["auth_time"] <= int(time.time())
