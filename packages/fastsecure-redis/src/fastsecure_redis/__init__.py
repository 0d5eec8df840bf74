"""FastSecure's Redis store: sessions, revoked tokens and refresh families, shared by processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsecure.plugins import lazy_exports

if TYPE_CHECKING:
    from .store import DEFAULT_TAG as DEFAULT_TAG
    from .store import RedisSessionStore as RedisSessionStore
    from .store import user_tag as user_tag
else:
    # Discovery imports this package: its modules, and their dependencies, load on use.
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "DEFAULT_TAG": ".store",
            "RedisSessionStore": ".store",
            "user_tag": ".store",
        },
    )

__all__ = ["DEFAULT_TAG", "RedisSessionStore", "user_tag"]
