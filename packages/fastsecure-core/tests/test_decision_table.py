"""The Decision -> answer table, pinned: strategies x provider outcomes, over HTTP and WebSocket.

Every row is a real request through ``requires(...)`` / ``optional_auth`` (HTTP) and the
WebSocket dependency, and the answers are compared with ``snapshots/decision_table.json``.
A change to the table shows up as a diff of that file: regenerate it with
``FASTSECURE_UPDATE_SNAPSHOTS=1`` and review the diff.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fastsecure import (
    AuthenticationManager,
    AuthenticationProvider,
    AuthenticationRequirement,
    AuthenticationResult,
    StoreUnavailableError,
)
from fastsecure.fastapi import WebSocketAuthDependency

SNAPSHOT = Path(__file__).parent / "snapshots" / "decision_table.json"
BEHAVIOURS = ["absent", "invalid", "valid_no_scope", "valid", "store_down", "crashes"]


class Scripted(AuthenticationProvider):
    """Does what the request's ``X-<name>`` header says; counts its evaluations."""

    def __init__(self, bearer: bool) -> None:
        self.bearer = bearer
        self.calls = 0

    def get_required_credentials(self) -> set[str]:
        return {"behaviour"}

    async def extract_credentials(self, connection: Any) -> dict[str, Any] | None:
        value = connection.headers.get(f"x-{self.provider_name}")
        return {"behaviour": value} if value else None

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        self.calls += 1
        behaviour = credentials["behaviour"]
        if behaviour == "store_down":
            raise StoreUnavailableError("down")
        if behaviour == "crashes":
            raise RuntimeError("bug with secret credential inside")
        if behaviour == "invalid":
            return AuthenticationResult.failure("bad", provider=self.provider_name)
        scopes = ["s"] if behaviour == "valid" else []
        return AuthenticationResult(
            success=True, user_id=1, provider=self.provider_name, metadata={"scopes": scopes}
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return True

    def challenge(self) -> str:
        return 'Bearer realm="a"' if self.bearer else f'Token realm="{self.provider_name}"'


def build() -> tuple[AuthenticationManager, FastAPI]:
    manager = AuthenticationManager(autoload=False)
    manager.register_provider("a", Scripted(bearer=True))
    manager.register_provider("b", Scripted(bearer=False))
    requirements = {
        "any": AuthenticationRequirement(["a", "b"], scopes=["s"]),
        "all": AuthenticationRequirement(["a", "b"], strategy="all", scopes=["s"]),
        "optional": AuthenticationRequirement(["a"], optional_providers=["b"], scopes=["s"]),
    }
    app = FastAPI()
    for name, req in requirements.items():
        names = req.providers
        for auto_error in (True, False):
            dep = manager.requires(
                *names,
                strategy=req.strategy,
                scopes=req.scopes,
                optional_providers=req.optional,
                auto_error=auto_error,
            )
            path = f"/{name}" if auto_error else f"/{name}/lenient"

            async def endpoint(auth: Any = Depends(dep)) -> dict[str, Any]:
                return {"user": auth.user_id if auth is not None else None}

            app.add_api_route(path, endpoint, methods=["GET"])
        ws_dep = WebSocketAuthDependency(manager, manager.engine.check(req))

        async def ws_endpoint(websocket: WebSocket, auth: Any = Depends(ws_dep)) -> None:
            await websocket.accept()
            await websocket.send_json({"user": auth.user_id})
            await websocket.close()

        app.add_api_websocket_route(f"/ws/{name}", ws_endpoint)
    return manager, app


def answers() -> dict[str, dict[str, Any]]:
    _, app = build()
    client = TestClient(app)
    table: dict[str, dict[str, Any]] = {}
    for strategy in ("any", "all", "optional"):
        for a, b in itertools.product(BEHAVIOURS, BEHAVIOURS):
            headers = {k: v for k, v in (("x-a", a), ("x-b", b)) if v != "absent"}
            row: dict[str, Any] = {}
            for suffix in ("", "/lenient"):
                r = client.get(f"/{strategy}{suffix}", headers=headers)
                row["lenient" if suffix else "http"] = {
                    "status": r.status_code,
                    "body": r.json(),
                    "www-authenticate": r.headers.get("www-authenticate"),
                    "retry-after": r.headers.get("retry-after"),
                }
            try:
                with client.websocket_connect(f"/ws/{strategy}", headers=headers) as ws:
                    row["websocket"] = {"accepted": ws.receive_json()}
            except WebSocketDisconnect as closed:
                row["websocket"] = {"close": closed.code, "reason": closed.reason}
            table[f"{strategy} a={a} b={b}"] = row
    return table


def test_decision_table_matches_the_snapshot() -> None:
    got = answers()
    if os.environ.get("FASTSECURE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert got == expected


@pytest.mark.parametrize("row", sorted(json.loads(SNAPSHOT.read_text()).items()))
def test_table_invariants(row: tuple[str, dict[str, Any]]) -> None:
    """What must hold whatever the snapshot says: never 500, a crash never grants."""
    key, answer = row
    http = answer["http"]
    assert http["status"] in (200, 400, 401, 403, 503), key
    strategy, a, b = (part.partition("=")[2] or part for part in key.split())
    if http["status"] == 200:
        # ANY: one provider valid with the scope; ALL: both valid, the union has it;
        # optional: the required one valid, whatever the optional one did.
        ok = {
            "any": "valid" in (a, b),
            "all": {a, b} <= {"valid", "valid_no_scope"} and "valid" in (a, b),
            "optional": a == "valid",
        }[strategy]
        assert ok, key
    if http["status"] == 401:
        assert http["www-authenticate"], key
    if http["status"] == 503:
        assert http["retry-after"], key
        assert answer["websocket"].get("close") == 1013, key
    if http["status"] in (401, 403):
        assert answer["websocket"].get("close") == 1008, key
    assert "secret" not in json.dumps(answer), key


async def test_explain_evaluates_once() -> None:
    manager, _ = build()
    manager.add_requirement("/x/**", ["a", "b"], scopes=["s"])
    a = manager.get_provider("a")
    b = manager.get_provider("b")
    assert isinstance(a, Scripted) and isinstance(b, Scripted)
    trace = await manager.explain(
        "/x/1", {"a": {"behaviour": "valid_no_scope"}, "b": {"behaviour": "valid"}}
    )
    assert trace.status == 200 and (a.calls, b.calls) == (1, 1)
    assert [(p.provider, p.outcome) for p in trace.providers] == [
        ("a", "authenticated"),
        ("b", "authenticated"),
    ]


class BearerOnly(Scripted):
    """Reads a bearer token through core's one reader, so a second credential is ambiguous."""

    async def extract_credentials(self, connection: Any) -> dict[str, Any] | None:
        from fastsecure.credentials import bearer_token

        token = bearer_token(connection)
        return None if token is None else {"behaviour": "valid"}


async def test_a_credential_sent_twice_is_400_invalid_request() -> None:
    from fastsecure.testing import http_scope

    manager = AuthenticationManager(autoload=False)
    manager.register_provider("a", BearerOnly(bearer=True))
    app = FastAPI()
    dep = manager.requires("a")

    @app.get("/any")
    async def anything(auth: Any = Depends(dep)) -> dict[str, Any]:
        return {}

    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(http_scope("/any", [(b"authorization", b"Bearer a, Bearer b")]), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 400
    assert (
        dict(start["headers"])[b"www-authenticate"] == b'Bearer realm="a", error="invalid_request"'
    )
