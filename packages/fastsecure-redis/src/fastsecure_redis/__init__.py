"""FastSecure's Redis store: sessions, revoked tokens and refresh families, shared by processes."""

from .store import DEFAULT_TAG as DEFAULT_TAG
from .store import RedisSessionStore as RedisSessionStore
from .store import user_tag as user_tag

__all__ = ["DEFAULT_TAG", "RedisSessionStore", "user_tag"]
