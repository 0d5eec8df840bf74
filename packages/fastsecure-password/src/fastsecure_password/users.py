"""The in-memory user store, for development, tests and single-process apps."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, ClassVar

from fastsecure.accounts import AccountToken, UserExistsError, UserRecord, UserStore
from fastsecure.results import UserId


def _random_id(login: str) -> UserId:
    return str(uuid.uuid4())


class MemoryUserStore(UserStore):
    """Accounts in dicts, lost on restart.

    Every method is one step between awaits, so creation and token consumption are
    atomic under asyncio (one process).

    Args:
        id_factory: the id of a new account from its login; random UUID strings by
            default (an app whose ids are its user names passes ``lambda login: login``).
    """

    user_store_type: ClassVar[str] = "memory"

    def __init__(self, *, id_factory: Callable[[str], UserId] = _random_id) -> None:
        self._id_factory = id_factory
        self._users: dict[UserId, UserRecord] = {}
        self._by_login: dict[str, UserId] = {}
        self._tokens: dict[str, AccountToken] = {}

    async def get_user(self, user_id: UserId) -> UserRecord | None:
        return self._users.get(user_id)

    async def get_by_login(self, login: str) -> UserRecord | None:
        user_id = self._by_login.get(login)
        return None if user_id is None else self._users.get(user_id)

    async def create_user(
        self,
        login: str,
        password_hash: str | None,
        *,
        email: str | None = None,
        verified: bool = False,
        data: Mapping[str, Any] | None = None,
    ) -> UserRecord:
        if login in self._by_login:
            raise UserExistsError("login taken")
        user_id = self._id_factory(login)
        if user_id in self._users:
            raise UserExistsError("user id taken")
        user = UserRecord(
            user_id=user_id,
            login=login,
            password_hash=password_hash,
            email=email,
            verified=verified,
            data=copy.deepcopy(dict(data or {})),
        )
        self._users[user.user_id] = user
        self._by_login[login] = user.user_id
        return user

    def _update(self, user_id: UserId, **changes: Any) -> UserRecord | None:
        user = self._users.get(user_id)
        if user is None:
            return None
        updated = replace(user, **changes)
        self._users[user_id] = updated
        return updated

    async def set_password_hash(
        self, user_id: UserId, password_hash: str, *, bump_version: bool
    ) -> UserRecord | None:
        user = self._users.get(user_id)
        if user is None:
            return None
        version = user.credential_version + (1 if bump_version else 0)
        return self._update(user_id, password_hash=password_hash, credential_version=version)

    async def set_email(self, user_id: UserId, email: str | None) -> UserRecord | None:
        user = self._users.get(user_id)
        if user is None:
            return None
        return self._update(
            user_id, email=email, verified=False, credential_version=user.credential_version + 1
        )

    async def mark_verified(self, user_id: UserId, credential_version: int) -> bool:
        user = self._users.get(user_id)
        if user is None or user.credential_version != credential_version:
            return False
        self._update(user_id, verified=True)
        return True

    async def bump_credential_version(self, user_id: UserId) -> int | None:
        user = self._users.get(user_id)
        if user is None:
            return None
        self._update(user_id, credential_version=user.credential_version + 1)
        return user.credential_version + 1

    async def save_token(self, token: AccountToken) -> None:
        self._tokens[token.token_hash] = token

    async def consume_token(self, token_hash: str) -> AccountToken | None:
        return self._tokens.pop(token_hash, None)


__all__ = ["MemoryUserStore"]
