"""The demo's user directory: password users hashed with argon2, and OAuth-linked users.

Passwords are hashed by pwdlib's recommended hasher (argon2id). Verifying is CPU-bound, so
it runs in a worker thread and never stalls the event loop; an unknown user name is
checked against a dummy hash so the answer takes as long as for a known one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pwdlib import PasswordHash
from starlette.concurrency import run_in_threadpool

from fastsecure.results import UserId


@dataclass
class User:
    """One account; ``scopes`` go into every credential issued for it."""

    user_id: str
    name: str
    scopes: list[str]
    password_hash: str | None = field(default=None, repr=False)
    email: str | None = None


DEMO_USERS: tuple[tuple[str, str, str, list[str]], ...] = (
    ("alice", "alice-password", "Alice (admin)", ["admin", "user"]),
    ("bob", "bob-password", "Bob (user)", ["user"]),
)
"""Seeded at start and printed by ``python -m demo``: user id, password, name, scopes."""


class UserDirectory:
    """Users by id; also the account store that links OAuth identities to users.

    Held in memory: the password users are seeded at every start, and an OAuth user's id
    is derived from the identity (``"<provider>:<subject>"``), so sessions that outlive a
    restart still name the same user.
    """

    def __init__(self) -> None:
        self._hasher = PasswordHash.recommended()
        self._users: dict[str, User] = {}
        self._identities: dict[tuple[str, str], str] = {}
        self._dummy_hash = self._hasher.hash("not a password anyone has")

    def seed(self) -> None:
        """Create the demo users (hashing takes a few tens of milliseconds each)."""
        for user_id, password, name, scopes in DEMO_USERS:
            self.add(user_id, password, name=name, scopes=scopes)

    def add(self, user_id: str, password: str, *, name: str, scopes: list[str]) -> User:
        """Add a password user."""
        user = User(user_id, name, sorted(scopes), self._hasher.hash(password))
        self._users[user_id] = user
        return user

    def get(self, user_id: UserId | None) -> User | None:
        """The user, or None."""
        return None if user_id is None else self._users.get(str(user_id))

    async def verify_password(self, username: str, password: str) -> User | None:
        """The user when the password matches; None otherwise, in the same time either way."""
        user = self._users.get(username)
        stored = user.password_hash if user is not None else None
        ok = await run_in_threadpool(self._hasher.verify, password, stored or self._dummy_hash)
        return user if ok and stored is not None else None

    # --- fastsecure_oauth.AccountStore --------------------------------------------------

    async def get_user_by_identity(self, provider: str, subject: str) -> UserId | None:
        return self._identities.get((provider, subject))

    async def get_user_by_email(self, email: str) -> UserId | None:
        # Linking by email is off in the demo (link_by_verified_email=False): never asked.
        return None

    async def link_identity(
        self, user_id: UserId, provider: str, subject: str, user_info: Mapping[str, Any]
    ) -> None:
        self._identities[(provider, subject)] = str(user_id)

    async def create_user(self, provider: str, user_info: Mapping[str, Any]) -> UserId | None:
        user_id = f"{provider}:{user_info['id']}"
        email = user_info.get("email")
        name = str(user_info.get("name") or email or user_info["id"])
        self._users[user_id] = User(
            user_id, name, ["user"], None, email if isinstance(email, str) else None
        )
        return user_id
