"""The key set cache: Cache-Control, background refresh, unknown kids, outages, sharing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from fastsecure_resource.exceptions import IssuerUnavailableError
from fastsecure_resource.jwks import JWKSCache, UnknownKeyError, key_algorithms, parse_key_set
from fastsecure_resource.testing import LocalIssuer, public_jwk


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_for(issuer: LocalIssuer, clock: Clock, **options: Any) -> JWKSCache:
    client = issuer.client()
    return JWKSCache(issuer.jwks_uri, client=lambda: client, clock=clock, **options)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_cache_control_max_age_is_honoured_and_refreshed_ahead_in_the_background() -> None:
    issuer = LocalIssuer(cache_control="public, max-age=600")
    clock = Clock()
    cache = cache_for(issuer, clock)
    kid = issuer.signing_key.kid
    await cache.get_key(kid, "ES256")
    key_set = cache.key_set
    assert key_set is not None and key_set.expires_at - key_set.fetched_at == 600
    clock.now += 400  # before the refresh point (80%): no fetch
    await cache.get_key(kid, "ES256")
    await settle()
    assert issuer.requests["/jwks"] == 1
    clock.now += 100  # past 80%: served from cache at once, refreshed in the background
    await cache.get_key(kid, "ES256")
    await settle()
    assert issuer.requests["/jwks"] == 2
    assert cache.stats.background_refreshes == 1
    assert cache.key_set is not None and cache.key_set.fetched_at == clock.now


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, 300),  # default_ttl
        ("no-store", 60),  # min_ttl
        ("max-age=5", 60),
        ("max-age=999999", 86400),  # max_ttl
        ("public, s-maxage=120", 120),
    ],
)
async def test_cache_time_bounds(header: str | None, ttl: float) -> None:
    issuer = LocalIssuer(cache_control=header)
    cache = cache_for(issuer, Clock())
    await cache.get_key(issuer.signing_key.kid, "ES256")
    assert cache.key_set is not None
    assert cache.key_set.expires_at - cache.key_set.fetched_at == ttl


async def test_unknown_kids_refetch_at_most_once_per_interval() -> None:
    issuer = LocalIssuer()
    clock = Clock()
    cache = cache_for(issuer, clock, unknown_kid_interval=30)
    await cache.get_key(issuer.signing_key.kid, "ES256")
    for n in range(1000):
        with pytest.raises(UnknownKeyError):
            await cache.get_key(f"forged-{n}", "ES256")
    assert issuer.requests["/jwks"] == 2
    clock.now += 31
    with pytest.raises(UnknownKeyError):
        await cache.get_key("forged-again", "ES256")
    assert issuer.requests["/jwks"] == 3
    # A real rotation inside the interval is found by the next permitted refetch.
    new_kid = issuer.rotate()
    clock.now += 31
    assert await cache.get_key(new_kid, "ES256")
    assert issuer.requests["/jwks"] == 4


async def test_concurrent_callers_share_one_fetch() -> None:
    issuer = LocalIssuer()
    gate = asyncio.Event()
    original = issuer.handle

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return original(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    cache = JWKSCache(issuer.jwks_uri, client=lambda: client, clock=Clock())
    kid = issuer.signing_key.kid
    waiting = [asyncio.ensure_future(cache.get_key(kid, "ES256")) for _ in range(100)]
    waiting += [asyncio.ensure_future(cache.get_key(f"forged-{n}", "ES256")) for n in range(50)]
    await settle()
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results[:100])
    assert all(isinstance(r, UnknownKeyError) for r in results[100:])
    assert issuer.requests["/jwks"] == 2  # the shared first fetch, one unknown-kid refetch


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    issuer = LocalIssuer()
    gate = asyncio.Event()
    original = issuer.handle

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return original(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow))
    cache = JWKSCache(issuer.jwks_uri, client=lambda: client, clock=Clock())
    first = asyncio.ensure_future(cache.get_key(issuer.signing_key.kid, "ES256"))
    second = asyncio.ensure_future(cache.get_key(issuer.signing_key.kid, "ES256"))
    await settle()
    first.cancel()
    gate.set()
    assert await second
    assert issuer.requests["/jwks"] == 1


async def test_the_last_good_set_serves_while_the_issuer_is_down_then_expires() -> None:
    issuer = LocalIssuer(cache_control="max-age=300")
    clock = Clock()
    cache = cache_for(issuer, clock, max_stale=3600, failure_backoff=10)
    kid = issuer.signing_key.kid
    await cache.get_key(kid, "ES256")
    issuer.available = False
    clock.now += 1000  # expired: still served, refresh attempted in the background
    for _ in range(50):
        assert await cache.get_key(kid, "ES256")
        await settle()
    assert issuer.requests["/jwks"] == 2  # one failed refresh; the backoff holds the rest
    assert cache.stats.failures == 1 and cache.stats.stale_serves >= 50
    clock.now += 300 + 3600  # past max_stale: no key is better than a stale one
    with pytest.raises(IssuerUnavailableError):
        await cache.get_key(kid, "ES256")
    issuer.available = True
    clock.now += 11
    assert await cache.get_key(kid, "ES256")


async def test_no_key_set_at_all_raises_unavailable_with_backoff() -> None:
    issuer = LocalIssuer()
    issuer.available = False
    clock = Clock()
    cache = cache_for(issuer, clock, failure_backoff=5)
    for _ in range(10):
        with pytest.raises(IssuerUnavailableError):
            await cache.get_key("any", "ES256")
    assert issuer.requests["/jwks"] == 1
    clock.now += 6
    issuer.available = True
    assert await cache.get_key(issuer.signing_key.kid, "ES256")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(500),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json=["a list"]),
        httpx.Response(200, json={"keys": []}),
        httpx.Response(200, json={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        httpx.Response(200, content=b"{" + b" " * (2 * 1024 * 1024) + b"}"),
        httpx.Response(302, headers={"location": "https://elsewhere.example/keys"}),
    ],
    ids=["500", "not-json", "not-object", "empty", "only-symmetric", "huge", "redirect"],
)
async def test_unusable_answers_are_unavailability(answer: httpx.Response) -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: answer))
    cache = JWKSCache("https://issuer.example.test/jwks", client=lambda: client, clock=Clock())
    with pytest.raises(IssuerUnavailableError):
        await cache.get_key("k", "ES256")


def test_key_algorithms_come_from_the_key() -> None:
    issuer = LocalIssuer(algorithm="RS256")
    rsa = public_jwk(issuer.signing_key.private_key, "RS256", "r")
    assert key_algorithms(rsa, {"RS256", "PS256", "ES256"}) == ("RS256",)
    without_alg = {k: v for k, v in rsa.items() if k != "alg"}
    assert key_algorithms(without_alg, {"RS256", "PS256", "ES256"}) == ("RS256", "PS256")
    ec = public_jwk(LocalIssuer(algorithm="ES384").signing_key.private_key, "ES384", "e")
    assert key_algorithms({k: v for k, v in ec.items() if k != "alg"}, {"ES256", "ES384"}) == (
        "ES384",
    )
    assert key_algorithms({**rsa, "use": "enc"}, {"RS256"}) == ()
    assert key_algorithms({**rsa, "key_ops": ["encrypt"]}, {"RS256"}) == ()
    assert key_algorithms({**rsa, "alg": "HS256"}, {"RS256", "HS256"}) == ()
    assert key_algorithms({"kty": "oct", "k": "AAAA", "alg": "HS256"}, {"HS256"}) == ()


def test_a_token_without_kid_needs_a_sole_key() -> None:
    one = LocalIssuer(algorithm="ES256")
    keys = parse_key_set(one.jwks(), {"ES256"})
    assert (None, "ES256") in keys
    one.rotate()
    keys = parse_key_set(one.jwks(), {"ES256"})
    assert (None, "ES256") not in keys
    broken = {
        "keys": [
            {"kty": "EC", "crv": "P-256", "x": "bad", "y": "bad", "kid": "b"},
            *one.jwks()["keys"],
        ]
    }
    assert len(parse_key_set(broken, {"ES256"})) == 2  # the broken key is skipped, not fatal
