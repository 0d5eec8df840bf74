"""Password hashing through pwdlib: argon2id by default, bcrypt verifiable, rehash on login."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError
from pwdlib.hashers import HasherProtocol
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher


class PasswordHasher:
    """Hashes new passwords with the first hasher and verifies any of them.

    The default is argon2id with argon2-cffi's parameters (RFC 9106's second recommended
    option: 64 MiB, 3 passes, 4 lanes), then bcrypt, so hashes made by fastapi-users,
    passlib or Django's bcrypt hasher verify unchanged and are replaced by argon2id at the
    next successful login. Hashing runs in a worker thread (it takes tens of milliseconds
    of CPU) and at most ``max_concurrent`` at a time, so a burst of logins can neither
    stall the event loop nor claim 64 MiB per request without bound.

    Args:
        hashers: pwdlib hashers, the one for new hashes first.
        max_concurrent: hashes computed at once; the others queue.
    """

    def __init__(
        self, hashers: Sequence[HasherProtocol] | None = None, *, max_concurrent: int = 4
    ) -> None:
        self._hash = PasswordHash(tuple(hashers or (Argon2Hasher(), BcryptHasher())))
        self._gate = asyncio.Semaphore(max_concurrent)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """A new hash of ``password`` with the current hasher."""
        async with self._gate:
            return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Whether ``password`` matches ``stored``, and a replacement hash when it should change.

        ``stored=None`` (no such account, or one without a password) costs the same as a
        real check, against a dummy hash made with the current hasher, and never matches:
        the answer's timing cannot tell an unknown account from a wrong password. A
        malformed or unknown hash is a mismatch, never an exception.
        """
        if stored is None:
            if self._dummy is None:
                self._dummy = await self.hash("fastsecure: no password matches this")
            await self._verify(password, self._dummy)
            return False, None
        return await self._verify(password, stored)

    async def _verify(self, password: str, stored: str) -> tuple[bool, str | None]:
        async with self._gate:
            try:
                return await anyio.to_thread.run_sync(
                    self._hash.verify_and_update, password, stored
                )
            except (PwdlibError, ValueError):
                # Unknown scheme, corrupt hash, bcrypt's 72-byte refusal: never a match.
                return False, None

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made by another hasher or with other parameters."""
        current = self._hash.current_hasher
        return not current.identify(stored) or current.check_needs_rehash(stored)


__all__ = ["PasswordHasher"]
