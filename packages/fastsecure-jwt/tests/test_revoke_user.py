"""revoke_user_tokens: every login of a user ends (a password reset's "log out everywhere")."""

from __future__ import annotations

from datetime import datetime

import pytest

from fastsecure import ConfigurationError, MemoryTokenStore, StoreUnavailableError
from fastsecure_jwt import JWTAuthenticationProvider

pytestmark = pytest.mark.asyncio


async def test_ends_every_login_of_the_user_and_no_other(
    provider: JWTAuthenticationProvider,
) -> None:
    alice = [await provider.authenticate({"user_id": "alice"}) for _ in range(2)]
    bob = await provider.authenticate({"user_id": "bob"})
    # One of alice's refresh tokens already rotated: its family is still hers.
    rotated = await provider.refresh_authentication({"refresh_token": alice[0].refresh_token})
    assert rotated.success
    for issued in (*alice, rotated, bob):
        assert (await provider.authenticate({"access_token": issued.access_token})).success

    assert await provider.revoke_user_tokens("alice") == 2

    for issued in (*alice, rotated):
        checked = await provider.authenticate({"access_token": issued.access_token})
        assert not checked.success
        assert checked.metadata["error"] == "token revoked"
    for refresh in (alice[1].refresh_token, rotated.refresh_token):
        refused = await provider.refresh_authentication({"refresh_token": refresh})
        assert not refused.success
        assert refused.metadata["error"] == "token revoked"
    assert (await provider.authenticate({"access_token": bob.access_token})).success
    assert (await provider.refresh_authentication({"refresh_token": bob.refresh_token})).success
    assert await provider.revoke_user_tokens("alice") == 0

    again = await provider.authenticate({"user_id": "alice"})
    assert (await provider.authenticate({"access_token": again.access_token})).success
    assert (await provider.refresh_authentication({"refresh_token": again.refresh_token})).success


async def test_a_cached_access_token_is_refused_after_the_revoke(secret: str) -> None:
    """The verified-token cache skips signature work only: a hit still asks the store."""
    provider = JWTAuthenticationProvider(secret_key=secret, verified_cache_size=16)
    issued = await provider.authenticate({"user_id": 7})
    for _ in range(3):
        assert (await provider.authenticate({"access_token": issued.access_token})).success
    assert provider.verified_cache.hits >= 2
    hits = provider.verified_cache.hits
    assert await provider.revoke_user_tokens(7) == 1
    refused = await provider.authenticate({"access_token": issued.access_token})
    assert not refused.success
    assert provider.verified_cache.hits == hits + 1, "the refusal came through a cache hit"
    assert not (await provider.authenticate({"access_token": issued.access_token})).success


async def test_int_and_str_ids_name_one_user(provider: JWTAuthenticationProvider) -> None:
    """Tokens carry ``sub`` as text; the store lists ``str(user_id)``."""
    number = await provider.authenticate({"user_id": 7})
    text = await provider.authenticate({"user_id": "7"})
    assert await provider.revoke_user_tokens("7") == 2
    for issued in (number, text):
        assert not (await provider.authenticate({"access_token": issued.access_token})).success


@pytest.mark.parametrize("user_id", [True, "", 1.5, None])
async def test_a_bad_user_id_is_refused(
    provider: JWTAuthenticationProvider, user_id: object
) -> None:
    with pytest.raises(ValueError, match="user_id"):
        await provider.revoke_user_tokens(user_id)  # type: ignore[arg-type]


class _OlderStore(MemoryTokenStore):
    """A custom store written against the three-argument ``start_family``."""

    async def start_family(  # type: ignore[override]
        self, family_id: str, refresh_jti: str, expires_at: datetime
    ) -> str:
        return await super().start_family(family_id, refresh_jti, expires_at)


class _UntrackedStore(MemoryTokenStore):
    tracks_users = False


@pytest.mark.parametrize("store_class", [_OlderStore, _UntrackedStore])
async def test_a_store_without_a_user_index_refuses_instead_of_ending_nothing(
    secret: str, store_class: type[MemoryTokenStore]
) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, token_store=store_class())
    issued = await provider.authenticate({"user_id": "alice"})
    assert issued.success, "logins keep working with a store that takes no user_id"
    with pytest.raises(ConfigurationError, match="cannot end a user's logins"):
        await provider.revoke_user_tokens("alice")
    assert (await provider.authenticate({"access_token": issued.access_token})).success


class _BrokenStore(MemoryTokenStore):
    async def revoke_user_families(self, user_id: object, revoked_until: datetime) -> int:  # type: ignore[override]
        raise ConnectionResetError("driver detail that must not leak")


async def test_a_store_failure_is_store_unavailable(secret: str) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, token_store=_BrokenStore())
    await provider.authenticate({"user_id": "alice"})
    with pytest.raises(StoreUnavailableError, match="revoke_user_families") as caught:
        await provider.revoke_user_tokens("alice")
    assert "driver detail" not in str(caught.value)


async def test_a_swapped_token_store_is_checked_again(secret: str) -> None:
    provider = JWTAuthenticationProvider(secret_key=secret, token_store=_UntrackedStore())
    with pytest.raises(ConfigurationError):
        await provider.revoke_user_tokens("alice")
    provider.token_store = MemoryTokenStore()
    await provider.authenticate({"user_id": "alice"})
    assert await provider.revoke_user_tokens("alice") == 1
