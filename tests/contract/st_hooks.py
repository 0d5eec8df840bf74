"""Schemathesis hooks for the contract run: the real credentials a run's requests carry.

Loaded by ``st`` through ``SCHEMATHESIS_HOOKS`` (set by :mod:`run_contract`). Each run
names the credentials it holds in ``FASTSECURE_CONTRACT_CREDENTIALS`` (``jwt``,
``session``, ``apikey``); an operation gets the first alternative of its OpenAPI
``security`` that the run can satisfy in full, so ``GET /api/admin/stats`` (ALL) gets the
bearer token and the session cookie together, and an operation the run has nothing for
keeps Schemathesis' own generated (refused) credentials.

A logout ends the whole login it is called with (both tokens), so each logout case gets a
login of its own. Those logins come from 127.0.0.2: the fuzzer's wrong passwords from
127.0.0.1 throttle that address (the login's per-address rate limit, as they should), and
the run's own logins must not be refused for them.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis

BASE_URL = os.environ.get("FASTSECURE_CONTRACT_URL", "")
AVAILABLE = frozenset(
    filter(None, os.environ.get("FASTSECURE_CONTRACT_CREDENTIALS", "").split(","))
)
LOGOUT = ("POST", "/api/auth/logout")


class _Bearer:
    """Alice's access token for every operation but logout; a fresh login for each logout."""

    def __init__(self) -> None:
        self.access = os.environ["FASTSECURE_CONTRACT_ACCESS_TOKEN"]
        self.client = httpx.Client(
            base_url=BASE_URL,
            timeout=30,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        )

    def token(self, for_logout: bool) -> str:
        if not for_logout:
            return self.access
        answer = self.client.post(
            "/api/auth/login", json={"username": "alice", "password": "alice-password"}
        )
        answer.raise_for_status()  # a refused login of our own fails the run, never skips
        return str(answer.json()["access_token"])


@schemathesis.auth(refresh_interval=None)
class DemoCredentials:
    """Headers and cookies for the first ``security`` alternative this run can satisfy."""

    def __init__(self) -> None:
        self.bearer = _Bearer() if "jwt" in AVAILABLE else None

    def get(self, case: Any, ctx: Any) -> dict[str, dict[str, str]] | None:
        operation = ctx.operation
        for alternative in operation.definition.raw.get("security") or []:
            if alternative and set(alternative) <= AVAILABLE:
                return self._credentials(
                    set(alternative), (operation.method.upper(), operation.path)
                )
        return None

    def _credentials(
        self, schemes: set[str], operation: tuple[str, str]
    ) -> dict[str, dict[str, str]]:
        headers: dict[str, str] = {}
        cookies: dict[str, str] = {}
        if "jwt" in schemes and self.bearer is not None:
            headers["Authorization"] = f"Bearer {self.bearer.token(operation == LOGOUT)}"
        if "session" in schemes:
            cookies["fastsecure_session"] = os.environ["FASTSECURE_CONTRACT_SESSION"]
            headers["Origin"] = BASE_URL  # the session provider's CSRF check (origin mode)
        if "apikey" in schemes:
            headers["X-API-Key"] = os.environ["FASTSECURE_CONTRACT_API_KEY"]
        return {"headers": headers, "cookies": cookies}

    def set(self, case: Any, data: dict[str, dict[str, str]], ctx: Any) -> None:
        case.headers = {**(case.headers or {}), **data["headers"]}
        case.cookies = {**(case.cookies or {}), **data["cookies"]}
