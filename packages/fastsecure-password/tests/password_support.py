"""Shared setup of the password tests (imported by path: tests are not a package)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from fastsecure import AuthenticationManager, hookimpl
from fastsecure.events import AuthEvent
from fastsecure_password import (
    MailTemplates,
    OutboxMailer,
    PasswordAccounts,
    PasswordAuthenticationProvider,
    PasswordHasher,
)
from fastsecure_session import SessionAuthenticationProvider

PASSWORD = "correct horse battery"
DEVICE_SECRET = "d" * 32

# Real argon2id, cheap parameters: the flows are under test here, not the work factor.
FAST_ARGON2 = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


class CountingHasher(PasswordHasher):
    """A real hasher that counts the checks it performs (equal work, parallel guesses)."""

    def __init__(self) -> None:
        super().__init__((FAST_ARGON2, BcryptHasher(rounds=4)))
        self.checks = 0

    async def _verify(self, password: str, stored: str) -> tuple[bool, str | None]:
        self.checks += 1
        return await super()._verify(password, stored)


@dataclass
class Events:
    seen: list[AuthEvent] = field(default_factory=list)

    @hookimpl
    def fastsecure_on_event(self, event: AuthEvent) -> None:
        self.seen.append(event)

    def named(self, name: str) -> list[AuthEvent]:
        return [e for e in self.seen if e.name == name]


@dataclass
class Setup:
    manager: AuthenticationManager
    accounts: PasswordAccounts
    provider: PasswordAuthenticationProvider
    session: SessionAuthenticationProvider
    outbox: OutboxMailer
    events: Events
    hasher: CountingHasher

    async def token_mailed_to(self, address: str) -> str:
        await self.accounts.flush()
        text = self.outbox.last_to(address).get_body(("plain",)).get_content()
        return str(text.split("token=")[1].split()[0])

    async def verified_user(self, login: str, password: str = PASSWORD) -> Any:
        await self.accounts.register(login, password, client_ip="192.0.2.1")
        await self.accounts.verify_email(await self.token_mailed_to(login), client_ip="192.0.2.1")
        return await self.provider.users.get_by_login(login)


TEMPLATES = MailTemplates(
    sender="no-reply@example.org",
    app_name="Test",
    verify_url="https://app.example/verify",
    reset_url="https://app.example/reset",
    login_url="https://app.example/login",
)


@pytest.fixture
def make_setup() -> Callable[..., Setup]:
    def make(**provider_options: Any) -> Setup:
        events = Events()
        manager = AuthenticationManager(autoload=False, extra_plugins=[events])
        hasher = CountingHasher()
        provider = PasswordAuthenticationProvider(
            hasher=hasher, device_secret=DEVICE_SECRET, **provider_options
        )
        session = SessionAuthenticationProvider(max_sessions_per_user=None, cookie_secure=False)
        manager.register_provider("password", provider)
        manager.register_provider("session", session)
        outbox = OutboxMailer()
        accounts = PasswordAccounts(manager, mailer=outbox, templates=TEMPLATES)
        return Setup(manager, accounts, provider, session, outbox, events, hasher)

    return make


@pytest.fixture
async def setup(make_setup: Callable[..., Setup]) -> AsyncIterator[Setup]:
    built = make_setup()
    yield built
    await built.accounts.aclose()
