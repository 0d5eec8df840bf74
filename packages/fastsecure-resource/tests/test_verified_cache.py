"""The verified-token cache: a hit skips the signature, never the clock, the checks or the key."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsecure import AuthenticationResult, ConfigurationError
from fastsecure.verified_cache import VerifiedTokenCache
from fastsecure_resource import ResourceServerProvider
from fastsecure_resource.testing import LocalIssuer

API = "https://api.example.test"


async def verify(provider: ResourceServerProvider, token: str) -> AuthenticationResult:
    return await provider.authenticate({"access_token": token})


def outcome(result: AuthenticationResult) -> tuple[Any, ...]:
    if not result.success:
        return (False, result.metadata["error"])
    return (True, result.user_id, result.scopes, result.metadata["claims"], result.expires_at)


async def test_a_repeated_token_is_verified_once_and_answers_the_same() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API)
    token = issuer.token_for(provider, sub="alice", scopes=["read"])
    first = await verify(provider, token)
    again = await verify(provider, token)
    assert first.success and again.success
    assert outcome(first) == outcome(again)
    assert provider.verified_cache.hits == 1 and len(provider.verified_cache) == 1
    # Each request gets its own containers: a strategy or app changing one changes no other.
    assert again.metadata is not first.metadata
    assert again.metadata["claims"] is not first.metadata["claims"]
    again.metadata["scopes"].append("admin")
    again.metadata["claims"]["sub"] = "mallory"
    third = await verify(provider, token)
    assert third.scopes == {"read"} and third.user_id == "alice"
    assert third.metadata["claims"]["sub"] == "alice"


async def test_a_hit_after_the_key_is_removed_fails() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API)
    old_kid = issuer.signing_key.kid
    token = issuer.token_for(provider)
    assert (await verify(provider, token)).success
    issuer.rotate()
    issuer.retire(old_kid)
    await provider.jwks.refresh()
    result = await verify(provider, token)
    assert not result.success and result.metadata["error"] == "unknown key id"
    assert len(provider.verified_cache) == 0
    # A token of the new key is cached and served as before.
    fresh = issuer.token_for(provider)
    assert (await verify(provider, fresh)).success
    assert (await verify(provider, fresh)).success


async def test_a_refreshed_key_set_means_a_full_verification_once() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API)
    token = issuer.token_for(provider)
    assert (await verify(provider, token)).success
    await provider.jwks.refresh()  # the same keys, new objects: verified again, re-cached
    hits = provider.verified_cache.hits
    assert (await verify(provider, token)).success
    assert provider.verified_cache.hits == hits
    assert (await verify(provider, token)).success
    assert provider.verified_cache.hits == hits + 1


@pytest.mark.parametrize("leeway", [0, 5])
async def test_an_expired_cached_token_fails_at_the_exact_second(leeway: int) -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API, leeway=leeway)
    start = int(time.time()) + 10
    with time_machine.travel(start, tick=False) as clock:
        token = issuer.token_for(provider, claims={"iat": start, "exp": start + 60})
        assert (await verify(provider, token)).success
        clock.move_to(start + 60 + leeway - 0.001)
        assert (await verify(provider, token)).success
        assert provider.verified_cache.hits == 1
        clock.move_to(start + 60 + leeway)
        result = await verify(provider, token)
        assert not result.success and result.metadata["error"] == "token expired"
        assert len(provider.verified_cache) == 0


async def test_a_token_differing_by_one_byte_is_a_miss_verified_in_full() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API)
    token = issuer.token_for(provider)
    assert (await verify(provider, token)).success
    for index in (len(token) - 1, token.index(".") + 5, 3):
        flipped = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
        misses = provider.verified_cache.misses
        assert not (await verify(provider, flipped)).success
        assert provider.verified_cache.misses == misses + 1
    assert len(provider.verified_cache) == 1  # failures are never cached


async def test_checks_run_on_every_hit() -> None:
    allowed = {"tenant-a"}
    issuer = LocalIssuer()
    provider = issuer.provider(
        API, checks=[lambda c: None if c.get("tid") in allowed else "tenant not allowed"]
    )
    token = issuer.token_for(provider, claims={"tid": "tenant-a"})
    assert (await verify(provider, token)).success
    assert (await verify(provider, token)).success
    allowed.clear()
    result = await verify(provider, token)
    assert not result.success and result.metadata["error"] == "tenant not allowed"


async def test_size_bound_off_switch_and_bad_sizes() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API, verified_cache_size=2)
    tokens = [issuer.token_for(provider, sub=f"u{i}") for i in range(4)]
    for token in tokens:
        assert (await verify(provider, token)).success
    assert len(provider.verified_cache) == 2
    off = issuer.provider(API, verified_cache_size=0)
    for _ in range(3):
        assert (await verify(off, tokens[0])).success
    assert len(off.verified_cache) == 0 and off.verified_cache.hits == 0
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigurationError):
            ResourceServerProvider(
                issuer=issuer.issuer,
                audience=API,
                verified_cache_size=bad,  # type: ignore[arg-type]
            )


async def test_concurrent_presentations_agree() -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API, verified_cache_size=3)
    tokens = [issuer.token_for(provider, sub=f"u{i}") for i in range(6)]
    results = await asyncio.gather(*(verify(provider, tokens[i % 6]) for i in range(300)))
    assert all(r.success for r in results)
    assert [r.user_id for r in results] == [f"u{i % 6}" for i in range(300)]


def test_the_cache_is_safe_across_threads() -> None:
    cache: VerifiedTokenCache[int] = VerifiedTokenCache(8)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(5000):
                key = f"t{(seed * 7 + i) % 32}"
                if cache.get(key) is None:
                    cache.put(key, i)
                if i % 97 == 0:
                    cache.drop_where(lambda entry: entry % 2 == 0)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(cache) <= 8


_ISSUER = LocalIssuer()
_CACHED = _ISSUER.provider(API, leeway=2)
_UNCACHED = _ISSUER.provider(API, leeway=2, verified_cache_size=0)
_BASE = int(time.time()) + 1000


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    exp=st.integers(-5, 5),
    nbf=st.one_of(st.none(), st.integers(-5, 5)),
    iat=st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.integers(-5, 5).map(lambda n: n + 0.5)),
    steps=st.lists(
        st.one_of(st.floats(-8, 8), st.integers(-16, 16).map(lambda n: n / 2 - 0.25)),
        min_size=1,
        max_size=6,
    ),
)
def test_cached_and_uncached_verification_always_agree(
    exp: int, nbf: int | None, iat: float, steps: list[float]
) -> None:
    """The same token at the same instants: the cached provider answers as the uncached one."""
    claims: dict[str, Any] = {"iat": _BASE + iat, "exp": _BASE + exp, "nbf": None}
    if nbf is not None:
        claims["nbf"] = _BASE + nbf
    with time_machine.travel(_BASE, tick=False) as clock:
        token = _ISSUER.token_for(_CACHED, claims=claims)

        async def run() -> None:
            for offset in [0.0, *steps]:
                clock.move_to(_BASE + offset)
                cached = await verify(_CACHED, token)
                uncached = await verify(_UNCACHED, token)
                assert outcome(cached) == outcome(uncached), offset

        asyncio.run(run())


@pytest.mark.parametrize("exp", [1e300, 10**18])
async def test_a_signed_expiry_beyond_a_datetime_is_refused_not_raised(exp: float) -> None:
    issuer = LocalIssuer()
    provider = issuer.provider(API)
    result = await verify(provider, issuer.token_for(provider, claims={"exp": exp}))
    assert not result.success and result.metadata["error"] == "invalid exp claim"
