"""Server-side sessions for FastSecure: the session provider and the in-memory store."""

from .store import MemorySessionStore as MemorySessionStore

__all__ = ["MemorySessionStore"]
