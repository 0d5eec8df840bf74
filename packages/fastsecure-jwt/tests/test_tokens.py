"""Issuing, verifying, refreshing and revoking: the behaviour the README promises."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

import fastsecure
from fastsecure import AuthenticationManager, FailureReason, MemoryTokenStore, StoreUnavailableError
from fastsecure.events import AuthEvent, RefreshTokenReused
from fastsecure_jwt import RESERVED_CLAIMS, JWTAuthenticationProvider


async def login(provider: JWTAuthenticationProvider, user_id: Any = 42, **extra: Any) -> Any:
    result = await provider.authenticate({"user_id": user_id, "scopes": ["read", "write"], **extra})
    assert result.success, result.metadata
    return result


async def test_issue_returns_tokens_expiry_and_scopes(provider: JWTAuthenticationProvider) -> None:
    before = datetime.now(UTC)
    result = await login(provider)
    assert result.access_token and result.refresh_token
    assert result.access_token != result.refresh_token
    assert result.user_id == 42 and isinstance(result.user_id, int)
    assert result.provider == "jwt"
    assert result.metadata["scopes"] == ["read", "write"]
    assert result.expires_at is not None
    expected = before + timedelta(minutes=30)
    assert abs((result.expires_at - expected).total_seconds()) <= 2


async def test_claims_an_app_can_decode_with_pyjwt(provider: JWTAuthenticationProvider) -> None:
    result = await provider.authenticate({"user_id": 42, "scopes": "write read"})
    assert provider.secret_key is not None
    access = jwt.decode(result.access_token, provider.secret_key, algorithms=[provider.algorithm])
    refresh = jwt.decode(result.refresh_token, provider.secret_key, algorithms=[provider.algorithm])
    assert access["sub"] == "42"
    assert access["token_type"] == "access" and refresh["token_type"] == "refresh"
    assert access["scopes"] == ["read", "write"]
    assert isinstance(access["exp"], int) and isinstance(access["iat"], int)
    assert access["exp"] - access["iat"] == 30 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 86400
    assert access["jti"] != refresh["jti"]
    assert access["fid"] == refresh["fid"]


async def test_verify_returns_the_principal(provider: JWTAuthenticationProvider) -> None:
    issued = await login(provider, metadata={"role": "admin", "tenant": 7})
    result = await provider.authenticate({"access_token": issued.access_token})
    assert result.success
    assert result.user_id == 42 and isinstance(result.user_id, int)
    assert result.metadata["scopes"] == ["read", "write"]
    assert result.metadata["role"] == "admin" and result.metadata["tenant"] == 7
    assert result.metadata["claims"]["sub"] == "42"
    assert result.expires_at == issued.expires_at


@pytest.mark.parametrize("user_id", ["alice", "42", "007", 0, 10**20, -5])
async def test_user_id_keeps_its_type(provider: JWTAuthenticationProvider, user_id: Any) -> None:
    issued = await login(provider, user_id=user_id)
    assert issued.user_id == user_id and type(issued.user_id) is type(user_id)
    verified = await provider.authenticate({"access_token": issued.access_token})
    assert verified.user_id == user_id and type(verified.user_id) is type(user_id)
    refreshed = await provider.refresh_authentication({"refresh_token": issued.refresh_token})
    assert refreshed.user_id == user_id and type(refreshed.user_id) is type(user_id)


@pytest.mark.parametrize("user_id", [True, None, "", 4.2, ["a"]])
async def test_invalid_user_ids_are_refused(
    provider: JWTAuthenticationProvider, user_id: Any
) -> None:
    result = await provider.authenticate({"user_id": user_id})
    assert not result.success and result.access_token is None


async def test_custom_metadata_becomes_claims_at_the_top_level(
    provider: JWTAuthenticationProvider,
) -> None:
    issued = await login(provider, metadata={"role": "editor", "teams": ["a", "b"]})
    assert issued.metadata["role"] == "editor"
    decoded = jwt.decode(issued.access_token, provider.secret_key, algorithms=["HS256"])  # type: ignore[arg-type]
    assert decoded["role"] == "editor" and decoded["teams"] == ["a", "b"]
    verified = await provider.authenticate({"access_token": issued.access_token})
    assert verified.metadata["teams"] == ["a", "b"]


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS | {"claims", "error"}))
async def test_metadata_cannot_override_registered_claims(
    provider: JWTAuthenticationProvider, name: str
) -> None:
    result = await provider.authenticate({"user_id": 1, "metadata": {name: "forged"}})
    assert not result.success
    assert name in result.metadata["error"]


async def test_metadata_must_be_json(provider: JWTAuthenticationProvider) -> None:
    result = await provider.authenticate({"user_id": 1, "metadata": {"when": object()}})
    assert not result.success and "JSON" in result.metadata["error"]


async def test_metadata_too_large_for_a_verifiable_token_fails_the_login(
    provider: JWTAuthenticationProvider,
) -> None:
    # Verification refuses tokens over MAX_TOKEN_LENGTH before parsing them; issuing one
    # used to succeed and hand out tokens that could never be used ("malformed token").
    result = await provider.authenticate({"user_id": 1, "metadata": {"blob": "x" * 20_000}})
    assert not result.success
    assert "too large" in result.metadata["error"]
    fits = await login(provider, metadata={"blob": "x" * 4_000})
    assert (await provider.authenticate({"access_token": fits.access_token})).success


async def test_zero_minutes_gives_an_already_expired_token(secret: str) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, access_token_expire_minutes=0)
    issued = await login(provider)
    assert issued.expires_at is not None and issued.expires_at <= datetime.now(UTC)
    result = await provider.authenticate({"access_token": issued.access_token})
    assert not result.success
    assert "expired" in result.metadata["error"]


async def test_expired_token_error_says_expired(
    provider: JWTAuthenticationProvider, claims: Any
) -> None:
    now = int(time.time())
    token = jwt.encode(claims(iat=now - 120, exp=now - 60), provider.secret_key, algorithm="HS256")  # type: ignore[arg-type]
    result = await provider.authenticate({"access_token": token})
    assert not result.success and "expired" in result.metadata["error"]


async def test_leeway_tolerates_clock_skew(secret: str, claims: Any, gen_of: Any) -> None:
    now = int(time.time())
    strict = JWTAuthenticationProvider(secret_key=secret)
    lenient = JWTAuthenticationProvider(
        secret_key=secret, leeway=30, token_store=strict.token_store
    )
    gen = await gen_of(strict)
    token = jwt.encode(claims(iat=now - 120, exp=now - 5, gen=gen), secret, algorithm="HS256")
    assert not (await strict.authenticate({"access_token": token})).success
    assert (await lenient.authenticate({"access_token": token})).success


async def test_validate_authentication(provider: JWTAuthenticationProvider) -> None:
    issued = await login(provider)
    assert await provider.validate_authentication({"access_token": issued.access_token})
    assert await provider.validate_authentication({"refresh_token": issued.refresh_token})
    assert not await provider.validate_authentication({"access_token": issued.refresh_token})
    assert not await provider.validate_authentication({"refresh_token": issued.access_token})
    assert not await provider.validate_authentication({"access_token": "garbage"})
    assert not await provider.validate_authentication({})


async def test_missing_credentials(provider: JWTAuthenticationProvider) -> None:
    result = await provider.authenticate({})
    assert not result.success and result.failure_reason is FailureReason.MISSING_CREDENTIALS
    refresh = await provider.refresh_authentication({})
    assert not refresh.success and refresh.failure_reason is FailureReason.MISSING_CREDENTIALS


async def test_a_presented_token_is_verified_never_exchanged(
    provider: JWTAuthenticationProvider,
) -> None:
    result = await provider.authenticate({"access_token": "not-a-token", "user_id": 1})
    assert not result.success and result.access_token is None


@pytest.mark.parametrize(
    "value", [123, b"bytes", None, ["a.b.c"], {"t": 1}, "", "a.b.c", "x" * 20000]
)
async def test_non_token_values_fail_cleanly(
    provider: JWTAuthenticationProvider, value: Any
) -> None:
    if value is None:
        result = await provider.authenticate({"access_token": value})
        assert result.failure_reason is FailureReason.MISSING_CREDENTIALS
        return
    result = await provider.authenticate({"access_token": value})
    assert not result.success and result.metadata["error"]


# --- refresh rotation ------------------------------------------------------------------


async def test_refresh_issues_a_new_pair_in_the_same_family(
    provider: JWTAuthenticationProvider,
) -> None:
    issued = await login(provider, metadata={"role": "admin"})
    refreshed = await provider.refresh_authentication({"refresh_token": issued.refresh_token})
    assert refreshed.success
    assert refreshed.access_token not in (None, issued.access_token)
    assert refreshed.refresh_token not in (None, issued.refresh_token)
    assert (
        refreshed.metadata["scopes"] == ["read", "write"] and refreshed.metadata["role"] == "admin"
    )
    old = jwt.decode(issued.refresh_token, provider.secret_key, algorithms=["HS256"])  # type: ignore[arg-type]
    new = jwt.decode(refreshed.access_token, provider.secret_key, algorithms=["HS256"])  # type: ignore[arg-type]
    assert old["fid"] == new["fid"]
    assert (await provider.authenticate({"access_token": refreshed.access_token})).success


async def test_the_manager_refreshes_through_the_provider(
    provider: JWTAuthenticationProvider,
) -> None:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("jwt", provider)
    manager.add_requirement("/api/*", providers=["jwt"])
    issued = await manager.authenticate("/api/x", {"jwt": {"user_id": 5}})
    refreshed = await manager.refresh_authentication("jwt", {"refresh_token": issued.refresh_token})
    assert refreshed.success and refreshed.user_id == 5


async def test_a_refresh_token_is_single_use(provider: JWTAuthenticationProvider) -> None:
    issued = await login(provider)
    assert (await provider.refresh_authentication({"refresh_token": issued.refresh_token})).success
    again = await provider.refresh_authentication({"refresh_token": issued.refresh_token})
    assert not again.success and "already used" in again.metadata["error"]


async def test_reuse_revokes_the_whole_family_with_its_access_tokens(
    provider: JWTAuthenticationProvider,
) -> None:
    events: list[AuthEvent] = []

    async def sink(event: AuthEvent) -> None:
        events.append(event)

    provider.bind_event_sink(sink)
    first = await login(provider)
    second = await provider.refresh_authentication({"refresh_token": first.refresh_token})
    third = await provider.refresh_authentication({"refresh_token": second.refresh_token})
    assert third.success
    other_login = await login(provider)

    stolen = await provider.refresh_authentication({"refresh_token": first.refresh_token})
    assert not stolen.success

    for token in (first.access_token, second.access_token, third.access_token):
        result = await provider.authenticate({"access_token": token})
        assert not result.success and result.metadata["error"] == "token revoked"
    assert not (
        await provider.refresh_authentication({"refresh_token": third.refresh_token})
    ).success
    # Another login (another family) is untouched.
    assert (await provider.authenticate({"access_token": other_login.access_token})).success
    reused = [e for e in events if isinstance(e, RefreshTokenReused)]
    assert len(reused) == 1 and reused[0].user_id == 42 and reused[0].provider == "jwt"
    assert all(t not in repr(reused[0]) for t in (first.refresh_token, first.access_token))


async def test_reuse_reaches_the_event_hook_through_the_manager(
    provider: JWTAuthenticationProvider,
) -> None:
    seen: list[AuthEvent] = []

    class Audit:
        @fastsecure.hookimpl
        def fastsecure_on_event(self, event: AuthEvent) -> None:
            seen.append(event)

    manager = AuthenticationManager(autoload=False, extra_plugins=[Audit()])
    manager.register_provider("tokens", provider)
    issued = await provider.authenticate({"user_id": 3})
    assert (
        await manager.refresh_authentication("tokens", {"refresh_token": issued.refresh_token})
    ).success
    assert not (
        await manager.refresh_authentication("tokens", {"refresh_token": issued.refresh_token})
    ).success
    names = [event.name for event in seen]
    assert names == ["token.refreshed", "token.reuse_detected"]
    assert seen[1].provider == "tokens" and seen[1].user_id == 3


class _SlowStore(MemoryTokenStore):
    """Yields to the event loop inside every call, so concurrent refreshes interleave."""

    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        await asyncio.sleep(0)
        return await super().is_revoked(jti, family_id)

    async def consume_refresh_token(self, jti: str, expires_at: datetime) -> bool:
        await asyncio.sleep(0)
        return await super().consume_refresh_token(jti, expires_at)


@pytest.mark.parametrize("racers", [2, 10])
async def test_racing_refreshes_never_yield_two_valid_successors(secret: str, racers: int) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, token_store=_SlowStore())
    issued = await login(provider)
    results = await asyncio.gather(
        *(
            provider.refresh_authentication({"refresh_token": issued.refresh_token})
            for _ in range(racers)
        )
    )
    assert sum(r.success for r in results) <= 1
    valid = [
        r
        for r in results
        if r.success and (await provider.authenticate({"access_token": r.access_token})).success
    ]
    valid_refresh = [
        r
        for r in results
        if r.success and await provider.validate_authentication({"refresh_token": r.refresh_token})
    ]
    assert len(valid) <= 1 and len(valid_refresh) <= 1


# --- revocation ------------------------------------------------------------------------


async def test_revoking_one_access_token_only(provider: JWTAuthenticationProvider) -> None:
    issued = await login(provider)
    assert await provider.revoke_access_token(issued.access_token)
    result = await provider.authenticate({"access_token": issued.access_token})
    assert not result.success and result.metadata["error"] == "token revoked"
    # The refresh token of the same login still works: only that jti was revoked.
    assert (await provider.refresh_authentication({"refresh_token": issued.refresh_token})).success
    assert not await provider.revoke_access_token("garbage")
    assert not await provider.revoke_access_token(issued.refresh_token)


async def test_revoking_a_refresh_token_ends_the_login(provider: JWTAuthenticationProvider) -> None:
    issued = await login(provider)
    assert await provider.revoke_authentication({"refresh_token": issued.refresh_token})
    assert not (
        await provider.refresh_authentication({"refresh_token": issued.refresh_token})
    ).success
    assert not (await provider.authenticate({"access_token": issued.access_token})).success


async def test_revocation_lasts_until_natural_expiry(provider: JWTAuthenticationProvider) -> None:
    store = MemoryTokenStore()
    provider = JWTAuthenticationProvider(secret_key=provider.secret_key, token_store=store)
    issued = await login(provider)
    await provider.revoke_authentication({"access_token": issued.access_token})
    claims = jwt.decode(issued.access_token, provider.secret_key, algorithms=["HS256"])  # type: ignore[arg-type]
    assert store._revoked[claims["jti"]] == datetime.fromtimestamp(claims["exp"], UTC)


async def test_revoke_ignores_tokens_that_do_not_verify(
    provider: JWTAuthenticationProvider, secret: str
) -> None:
    other = JWTAuthenticationProvider(secret_key=secret + "-other")
    foreign = await login(other)
    assert not await provider.revoke_authentication({"access_token": foreign.access_token})
    assert not await provider.revoke_authentication({"access_token": "garbage"})
    assert not await provider.revoke_authentication(
        {"refresh_token": (await login(provider)).access_token}
    )
    assert not await provider.revoke_authentication({})


async def test_revoking_an_expired_token_records_no_jti_but_ends_its_login(secret: str) -> None:
    store = MemoryTokenStore()
    provider = JWTAuthenticationProvider(
        secret_key=secret, access_token_expire_minutes=0, token_store=store
    )
    issued = await login(provider)
    assert await provider.revoke_authentication({"access_token": issued.access_token})
    assert store._revoked == {}
    # The refresh token outlives the access token: logging out still ends the login.
    assert not (
        await provider.refresh_authentication({"refresh_token": issued.refresh_token})
    ).success


async def test_two_instances_sharing_a_token_store(secret: str) -> None:
    """Two processes sharing a store: what one revokes, the other refuses."""
    store = MemoryTokenStore()
    one = JWTAuthenticationProvider(secret_key=secret, token_store=store)
    two = JWTAuthenticationProvider(secret_key=secret, token_store=store)
    assert one.token_store is two.token_store is store
    issued = await login(one)
    assert (await two.authenticate({"access_token": issued.access_token})).success
    await one.revoke_authentication({"access_token": issued.access_token})
    assert not (await two.authenticate({"access_token": issued.access_token})).success

    second = await login(one)
    assert (await one.refresh_authentication({"refresh_token": second.refresh_token})).success
    replay = await two.refresh_authentication({"refresh_token": second.refresh_token})
    assert not replay.success and "already used" in replay.metadata["error"]


async def test_default_stores_are_per_instance(secret: str) -> None:
    one = JWTAuthenticationProvider(secret_key=secret)
    two = JWTAuthenticationProvider(secret_key=secret)
    assert isinstance(one.token_store, MemoryTokenStore) and one.token_store is not two.token_store


class _DownStore(MemoryTokenStore):
    async def is_revoked(self, jti: str, family_id: str | None = None) -> bool:
        raise StoreUnavailableError("down")


async def test_a_store_outage_is_raised_not_answered(secret: str) -> None:
    issuer = JWTAuthenticationProvider(secret_key=secret)
    down = JWTAuthenticationProvider(secret_key=secret, token_store=_DownStore())
    issued = await login(issuer)
    with pytest.raises(StoreUnavailableError):
        await down.authenticate({"access_token": issued.access_token})
    with pytest.raises(StoreUnavailableError):
        await down.refresh_authentication({"refresh_token": issued.refresh_token})
