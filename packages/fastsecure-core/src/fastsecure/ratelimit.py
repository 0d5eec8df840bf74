"""Rate limiting: the limiter contract, the in-process limiter and the client's address.

A limiter answers two questions atomically, so that N parallel attempts never get more
than the limit through:

- :meth:`RateLimiter.hit`: count one request against a fixed window (``limit`` requests
  per ``window`` seconds) and say whether it may proceed and how long to wait if not;
- :meth:`RateLimiter.attempt`: the failure counter with progressive back-off. Every
  attempt is counted *before* it is judged (a password check, a token check), so parallel
  guesses cannot slip through between a check and a "record failure"; a success then
  calls :meth:`RateLimiter.reset` (or :meth:`RateLimiter.refund` for a key shared by
  many accounts, such as a client address). The first ``limit`` attempts are admitted
  back to back; from then on each attempt must wait ``base_delay`` doubled per further
  attempt, up to ``max_delay``; ``window`` seconds without attempts forget them.

A refusal is a :class:`~fastsecure.RateLimitedError`, which the FastAPI integration answers
429 with ``Retry-After``. Stores implement the contract (``fastsecure-redis`` with one Lua
script, ``fastsecure-sqlalchemy`` with one row lock); ``memory`` is built in.

Keys may contain e-mail addresses or client addresses: stores that persist them keep a
SHA-256 of the key, never the key.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .exceptions import ConfigurationError, RateLimitedError

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

_MAX_DOUBLINGS = 40  # 2**40 seconds is longer than any max_delay; keeps the arithmetic finite


@dataclass(frozen=True)
class RateLimit:
    """A fixed window: at most ``limit`` hits per ``window`` seconds."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ConfigurationError("a rate limit needs limit >= 1 and window > 0")


@dataclass(frozen=True)
class Backoff:
    """Progressive back-off on failures.

    Attributes:
        limit: attempts admitted back to back before delays start.
        window: seconds without any attempt after which the count is forgotten.
        base_delay: the wait after the ``limit``-th attempt; doubled per further attempt.
        max_delay: the longest wait; a key is slowed down, never locked for good.
    """

    limit: int = 5
    window: float = 900.0
    base_delay: float = 1.0
    max_delay: float = 900.0

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0 or self.base_delay <= 0:
            raise ConfigurationError("a back-off needs limit >= 1, window > 0, base_delay > 0")
        if self.max_delay < self.base_delay:
            raise ConfigurationError("max_delay must be at least base_delay")

    def delay(self, count: int) -> float:
        """The wait imposed after the ``count``-th attempt of a window (0 below the limit)."""
        if count < self.limit:
            return 0.0
        doublings = min(count - self.limit, _MAX_DOUBLINGS)
        return float(min(self.max_delay, self.base_delay * 2**doublings))


@dataclass(frozen=True)
class LimitState:
    """What a limiter decided for one call.

    Attributes:
        allowed: whether this attempt may proceed.
        count: attempts counted in the current window, this one included when allowed.
        remaining: attempts still admitted without waiting.
        retry_after: seconds until a new attempt can be admitted (0 when allowed).
    """

    allowed: bool
    count: int
    remaining: int
    retry_after: float = 0.0

    def enforce(self, key: str | None = None) -> LimitState:
        """Raise :class:`~fastsecure.RateLimitedError` when refused; else return ``self``.

        Args:
            key: what was limited, for logs and events; never a credential.
        """
        if not self.allowed:
            raise RateLimitedError(max(1.0, math.ceil(self.retry_after)), key)
        return self


def hashed_key(key: str) -> str:
    """The form persistent limiters store: SHA-256 hex, so no address or e-mail lands in a store."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class RateLimiter(ABC):
    """The limiter contract; every method is atomic for one key.

    Every method may raise :class:`~fastsecure.StoreUnavailableError`: an outage is never
    read as "allowed" (callers answer 503).
    """

    limiter_type: ClassVar[str] = "custom"

    @abstractmethod
    async def hit(self, key: str, rate: RateLimit) -> LimitState:
        """Count one request in the key's fixed window and decide on it."""

    @abstractmethod
    async def attempt(self, key: str, backoff: Backoff) -> LimitState:
        """Count one attempt unless the key must wait; admitted attempts stay counted.

        Refused attempts are not counted: a key that keeps trying while it waits does not
        push its wait further out.
        """

    @abstractmethod
    async def refund(self, key: str, backoff: Backoff) -> None:
        """Take back one counted attempt that succeeded (a shared key, such as an address).

        When the count falls below ``backoff.limit`` the wait is lifted.
        """

    @abstractmethod
    async def reset(self, key: str) -> None:
        """Forget the key (a success on a key owned by one account)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release connections; called on application shutdown."""


class MemoryRateLimiter(RateLimiter):
    """Limits in a dict, for one process (each call is one step between awaits: atomic).

    Args:
        max_keys: keys kept at most; past it, expired keys go first, then the oldest. A
            flood of distinct keys (rotating addresses) then costs memory up to this bound
            and no more.
        clock: seconds, monotonic; tests pass their own.
    """

    limiter_type: ClassVar[str] = "memory"

    def __init__(self, *, max_keys: int = 100_000, clock: object = None) -> None:
        self._max_keys = max_keys
        self._clock = clock if callable(clock) else time.monotonic
        # key -> [count, blocked_until, expires_at]
        self._entries: dict[str, list[float]] = {}

    def _now(self) -> float:
        return float(self._clock())

    def _live(self, key: str, now: float) -> list[float] | None:
        entry = self._entries.get(key)
        if entry is not None and entry[2] <= now:
            del self._entries[key]
            return None
        return entry

    def _store(self, key: str, entry: list[float], now: float) -> None:
        if key not in self._entries and len(self._entries) >= self._max_keys:
            for stale in [k for k, v in self._entries.items() if v[2] <= now]:
                del self._entries[stale]
            while len(self._entries) >= self._max_keys:
                del self._entries[next(iter(self._entries))]
        self._entries[key] = entry

    async def hit(self, key: str, rate: RateLimit) -> LimitState:
        now = self._now()
        entry = self._live(key, now) or [0.0, 0.0, now + rate.window]
        entry[0] += 1
        self._store(key, entry, now)
        count = int(entry[0])
        if count <= rate.limit:
            return LimitState(True, count, rate.limit - count)
        return LimitState(False, count, 0, entry[2] - now)

    async def attempt(self, key: str, backoff: Backoff) -> LimitState:
        now = self._now()
        entry = self._live(key, now) or [0.0, 0.0, 0.0]
        if entry[1] > now:
            return LimitState(False, int(entry[0]), 0, entry[1] - now)
        count = int(entry[0]) + 1
        delay = backoff.delay(count)
        blocked = now + delay if delay else 0.0
        self._store(key, [float(count), blocked, now + max(backoff.window, delay)], now)
        return LimitState(True, count, max(0, backoff.limit - count))

    async def refund(self, key: str, backoff: Backoff) -> None:
        entry = self._live(key, self._now())
        if entry is None or entry[0] <= 0:
            return
        entry[0] -= 1
        if entry[0] < backoff.limit:
            entry[1] = 0.0

    async def reset(self, key: str) -> None:
        self._entries.pop(key, None)


# --- the client's address ----------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> IPAddress | None:
    """An address from a header node: ``1.2.3.4``, ``1.2.3.4:80``, ``"[::1]:80"``, ``::1``."""
    node = text.strip().strip('"').strip()
    if node.startswith("["):
        node = node[1:].partition("]")[0]
    elif node.count(":") == 1:
        node = node.partition(":")[0]
    try:
        address = ipaddress.ip_address(node)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def _forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` nodes of RFC 7239 ``Forwarded`` headers, in order (nearest last)."""
    nodes = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                name, _, node = pair.strip().partition("=")
                if name.strip().lower() == "for":
                    nodes.append(node)
    return nodes


class ClientAddress:
    """Finds the client's address: the socket peer, unless it is a proxy the app trusts.

    With no trusted proxies (the default) forwarding headers are ignored entirely, so a
    client cannot choose its own rate-limit key. When the peer is a trusted proxy, the
    chain in ``Forwarded`` (RFC 7239; preferred when present) or ``X-Forwarded-For`` is
    read from the right, skipping trusted proxies; the first address that is not one is
    the client. A malformed entry where an address is expected yields the last trusted
    hop, never a value the client wrote.

    Args:
        trusted_proxies: addresses or networks (``"10.0.0.0/8"``, ``"127.0.0.1"``).
    """

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        try:
            self.trusted: tuple[Network, ...] = tuple(
                ipaddress.ip_network(p.strip(), strict=False) for p in trusted_proxies
            )
        except ValueError as exc:
            raise ConfigurationError(f"trusted_proxies: {exc}") from None

    def _is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def __call__(self, connection: HTTPConnection) -> str:
        """The client's address as text (``"unknown"`` when the server gives none)."""
        peer_text = connection.client.host if connection.client else ""
        peer = _parse_ip(peer_text)
        if peer is None:
            return peer_text or "unknown"
        if not self.trusted or not self._is_trusted(peer):
            return str(peer)
        forwarded = connection.headers.getlist("forwarded")
        if forwarded:
            chain = _forwarded_for(forwarded)
        else:
            chain = [
                part
                for value in connection.headers.getlist("x-forwarded-for")
                for part in value.split(",")
            ]
        last_trusted = peer
        for node in reversed(chain):
            address = _parse_ip(node)
            if address is None:
                return str(last_trusted)
            if not self._is_trusted(address):
                return str(address)
            last_trusted = address
        return str(last_trusted)


def address_key(address: str) -> str:
    """The rate-limit key of an address: IPv4 as is, IPv6 by its /64.

    One IPv6 subscriber usually holds a whole /64 and can rotate through it, so limiting
    single IPv6 addresses would limit nothing.
    """
    parsed = _parse_ip(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed) if parsed is not None else address


__all__ = [
    "Backoff",
    "ClientAddress",
    "LimitState",
    "MemoryRateLimiter",
    "RateLimit",
    "RateLimiter",
    "address_key",
    "hashed_key",
]
