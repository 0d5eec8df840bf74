import httpx
import pytest
from fastapi import Depends, FastAPI

from fastsecure import AuthenticationManager
from fastsecure.testing import assert_plugin_discovered, raw_request


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("apikey", kinds={"provider": ["apikey"]})


def _app() -> tuple[FastAPI, AuthenticationManager]:
    manager = AuthenticationManager.from_config(
        {
            "providers": {
                "apikey": {"keys": {"k-1": {"user_id": 7, "scopes": ["read"]}, "k-2": "svc"}}
            },
            "requirements": [{"path": "/svc/**", "providers": ["apikey"], "scopes": ["read"]}],
        }
    )
    app = FastAPI()

    @app.get("/svc/data")
    async def data(auth=Depends(manager.requires_auth)) -> dict[str, object]:
        return {"user": auth.user_id, "scopes": auth.metadata["scopes"]}

    return app, manager


async def test_configured_by_name_without_imports_and_enforced() -> None:
    app, _ = _app()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        ok = await client.get("/svc/data", headers={"X-API-Key": "k-1"})
        assert ok.status_code == 200
        assert ok.json() == {"user": 7, "scopes": ["read"]}
        no_scope = await client.get("/svc/data", headers={"X-API-Key": "k-2"})
        assert no_scope.status_code == 403
        bad = await client.get("/svc/data", headers={"X-API-Key": "nope"})
        assert bad.status_code == 401
        assert bad.headers["www-authenticate"]
        missing = await client.get("/svc/data")
        assert missing.status_code == 401


def test_security_scheme_in_openapi() -> None:
    app, _ = _app()
    schemes = app.openapi()["components"]["securitySchemes"]
    assert schemes == {"apikey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}


# Each row: the X-API-Key header lines of one request. The default extract_credentials reads
# the header through fastsecure.credentials.single_header, so every row is 400, even when
# both copies are the same valid key: a proxy in front may have checked the other one.
AMBIGUOUS = {
    "same valid key twice": [b"k-1", b"k-1"],
    "valid key first": [b"k-1", b"nope"],
    "valid key last": [b"nope", b"k-1"],
    "two valid keys": [b"k-2", b"k-1"],
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
async def test_a_key_presented_twice_is_400(case: str) -> None:
    app, _ = _app()
    assert await raw_request(app, "/svc/data", [(b"x-api-key", b"k-1")]) == 200
    lines = [(b"x-api-key", value) for value in AMBIGUOUS[case]]
    assert await raw_request(app, "/svc/data", lines) == 400
