"""fastsecure.ratelimit: the memory limiter, the two registration hooks, the client address."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from fastsecure import ConfigurationError, RateLimitedError, hookimpl
from fastsecure.accounts import UserStore
from fastsecure.hookspecs import Register
from fastsecure.plugins import PluginManager
from fastsecure.ratelimit import (
    Backoff,
    ClientAddress,
    LimitState,
    MemoryRateLimiter,
    RateLimit,
    address_key,
)
from fastsecure.testing import http_scope
from fastsecure.testing.conformance_accounts import RateLimiterConformance


class TestMemoryRateLimiter(RateLimiterConformance):
    @pytest.fixture
    async def rate_limiter(self) -> MemoryRateLimiter:
        return MemoryRateLimiter()


def test_memory_limiter_is_builtin() -> None:
    pm = PluginManager(autoload=False)
    assert pm.types("rate_limiter")["memory"].factory is MemoryRateLimiter
    assert pm.types("user_store") == {}


def test_registration_hooks_for_limiters_and_user_stores() -> None:
    class Limiter(MemoryRateLimiter):
        limiter_type = "mine"

    class Plugin:
        @hookimpl
        def fastsecure_register_rate_limiters(self, register: Register) -> None:
            register("mine", Limiter)

        @hookimpl
        def fastsecure_register_user_stores(self, register: Register) -> None:
            register("users", UserStore)

    pm = PluginManager(autoload=False, extra_plugins=[Plugin()])
    assert set(pm.types("rate_limiter")) == {"memory", "mine"}
    assert pm.types("user_store")["users"].factory is UserStore
    info = next(i for i in pm.describe() if i.types)
    assert info.types == {"rate_limiter": ["mine"], "user_store": ["users"]}


async def test_memory_limiter_keeps_at_most_max_keys() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(max_keys=3, clock=lambda: now[0])
    rate = RateLimit(1, 60)
    for i in range(10):
        assert (await limiter.hit(f"k{i}", rate)).allowed
    assert len(limiter._entries) == 3
    assert not (await limiter.hit("k9", rate)).allowed  # the newest keys are kept
    now[0] = 61
    assert (await limiter.hit("k9", rate)).allowed


def test_backoff_and_limit_settings() -> None:
    backoff = Backoff(limit=3, window=60, base_delay=2, max_delay=10)
    assert [backoff.delay(n) for n in range(1, 8)] == [0, 0, 2, 4, 8, 10, 10]
    assert Backoff(limit=1, base_delay=1, max_delay=5).delay(10**6) == 5
    for bad in (
        lambda: Backoff(limit=0),
        lambda: Backoff(base_delay=0),
        lambda: Backoff(base_delay=5, max_delay=1),
        lambda: RateLimit(0, 1),
        lambda: RateLimit(1, 0),
    ):
        with pytest.raises(ConfigurationError):
            bad()


def test_enforce_raises_with_a_whole_number_of_seconds() -> None:
    assert LimitState(True, 1, 4).enforce("k").allowed
    with pytest.raises(RateLimitedError) as caught:
        LimitState(False, 9, 0, 2.1).enforce("login:address")
    assert caught.value.retry_after == 3 and caught.value.key == "login:address"
    with pytest.raises(RateLimitedError) as short:
        LimitState(False, 9, 0, 0.01).enforce()
    assert short.value.retry_after == 1  # never "Retry-After: 0" on a refusal


def _request(peer: str, *headers: tuple[str, str]) -> Request:
    scope = http_scope("/login", [(k.lower().encode(), v.encode()) for k, v in headers])
    scope["client"] = (peer, 5555)
    return Request(scope)


def test_client_address_ignores_forwarding_headers_without_trusted_proxies() -> None:
    find = ClientAddress()
    request = _request("198.51.100.9", ("X-Forwarded-For", "1.2.3.4"), ("Forwarded", "for=5.6.7.8"))
    assert find(request) == "198.51.100.9"


def test_client_address_from_trusted_proxies_only() -> None:
    find = ClientAddress(["10.0.0.0/8", "127.0.0.1"])
    # The client wrote "1.2.3.4" itself; the proxy appended the real peer.
    spoofed = _request("10.0.0.2", ("X-Forwarded-For", "1.2.3.4, 203.0.113.5"))
    assert find(spoofed) == "203.0.113.5"
    chained = _request("127.0.0.1", ("X-Forwarded-For", "203.0.113.5, 10.1.1.1"))
    assert find(chained) == "203.0.113.5"
    two_headers = _request(
        "10.0.0.2", ("X-Forwarded-For", "9.9.9.9"), ("X-Forwarded-For", "203.0.113.6")
    )
    assert find(two_headers) == "203.0.113.6"
    # An untrusted peer's headers are not read at all.
    assert find(_request("192.0.2.77", ("X-Forwarded-For", "203.0.113.5"))) == "192.0.2.77"


def test_client_address_from_the_forwarded_header() -> None:
    find = ClientAddress(["10.0.0.0/8"])
    request = _request(
        "10.0.0.2",
        ("Forwarded", 'for=1.2.3.4, for="[2001:db8::1]:4711";proto=https'),
        ("X-Forwarded-For", "5.6.7.8"),
    )
    assert find(request) == "2001:db8::1"  # Forwarded wins over X-Forwarded-For
    assert find(_request("10.0.0.2", ("Forwarded", "for=203.0.113.1:80"))) == "203.0.113.1"


def test_client_address_never_takes_a_malformed_entry() -> None:
    find = ClientAddress(["10.0.0.0/8"])
    assert find(_request("10.0.0.2", ("X-Forwarded-For", "evil, not-an-ip"))) == "10.0.0.2"
    assert find(_request("10.0.0.2", ("Forwarded", "for=unknown"))) == "10.0.0.2"
    assert find(_request("10.0.0.2")) == "10.0.0.2"  # a proxy that forwarded nothing
    with pytest.raises(ConfigurationError):
        ClientAddress(["not a network"])


def test_address_key_groups_ipv6_by_64() -> None:
    assert address_key("203.0.113.5") == "203.0.113.5"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("unknown") == "unknown"
