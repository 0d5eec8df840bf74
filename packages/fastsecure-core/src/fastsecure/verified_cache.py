"""A bounded cache of verified tokens, keyed by the exact token string (jwt and resource share it).

A client presents the same access token on every request for its lifetime; the
signature, the decoding and the claim checks of that string give the same answer every
time, except for the clock and for state (revocation, keys). So the stateless part is
done once, as Envoy's JWT filter does with its verified-token cache, and each hit
re-checks the clock and runs every stateful check again.

Least recently used entries go first. Every operation is a single ``OrderedDict`` call,
atomic under the GIL, and nothing awaits between a lookup and its use, so tasks and
threads sharing a provider need no lock: a race can at worst evict an entry early or
store the same entry twice. A hit allocates nothing in here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

_E = TypeVar("_E")

DEFAULT_SIZE = 1024
"""Entries kept by default: at a few kilobytes each (token, claims), a few megabytes."""


class VerifiedTokenCache(Generic[_E]):
    """Verified tokens to what their verification found; ``maxsize`` 0 turns it off."""

    __slots__ = ("_entries", "hits", "maxsize", "misses")

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError("the verified-token cache size must be an int >= 0 (0: off)")
        self.maxsize = maxsize
        self._entries: OrderedDict[str, _E] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, token: str) -> _E | None:
        """The entry for exactly this string, or ``None`` (counted as a miss)."""
        entry = self._entries.get(token)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        try:  # noqa: SIM105 (per request: suppress() would build a context manager)
            self._entries.move_to_end(token)
        except KeyError:  # evicted by another thread since the lookup: still a valid read
            pass
        return entry

    def put(self, token: str, entry: _E) -> None:
        """Remember a successful verification; the oldest entry goes beyond ``maxsize``."""
        if self.maxsize == 0:
            return
        entries = self._entries
        entries[token] = entry
        while len(entries) > self.maxsize:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def invalidate(self, token: str) -> None:
        """Forget an entry :meth:`get` just returned that no longer applies (its key went).

        The lookup is recounted as a miss: the token is verified in full after all.
        """
        self._entries.pop(token, None)
        self.hits -= 1
        self.misses += 1

    def discard(self, token: str) -> None:
        """Forget one token (its hit failed a check that will fail again)."""
        self._entries.pop(token, None)

    def drop_where(self, predicate: Callable[[_E], bool]) -> int:
        """Forget every entry ``predicate`` holds for (a removed key); returns how many."""
        doomed = [token for token, entry in list(self._entries.items()) if predicate(entry)]
        for token in doomed:
            self._entries.pop(token, None)
        return len(doomed)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"VerifiedTokenCache(maxsize={self.maxsize}, size={len(self._entries)})"
