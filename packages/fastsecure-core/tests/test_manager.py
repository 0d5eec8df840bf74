from typing import Any

import pytest

from fastsecure import (
    AuthenticationManager,
    AuthStrategy,
    ConfigurationError,
    PluginError,
    ProviderNotFoundError,
    hookimpl,
)
from fastsecure.events import AuthEvent, LoginFailed, LoginSucceeded, TokenRevoked


def test_register_and_get(manager: AuthenticationManager, token_provider: Any) -> None:
    assert manager.get_available_providers() == ["token", "cookie", "apikey"]
    assert manager.get_provider("token") is token_provider
    assert token_provider.provider_name == "token"


def test_provider_name_is_type_name_before_registration() -> None:
    from fastsecure import AuthenticationProvider

    class P(AuthenticationProvider):
        provider_type = "mine"

        def get_required_credentials(self) -> set[str]:
            return set()

        async def authenticate(self, credentials: dict[str, Any]) -> Any:
            raise NotImplementedError

        async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
            return False

    p = P()
    assert p.provider_name == "mine"
    AuthenticationManager().register_provider("other", p)
    assert p.provider_name == "other"


def test_registering_a_taken_name_replaces(
    manager: AuthenticationManager, cookie_provider: Any
) -> None:
    manager.register_provider("token", cookie_provider)
    assert manager.get_provider("token") is cookie_provider


def test_unknown_provider_is_named(manager: AuthenticationManager) -> None:
    with pytest.raises(ProviderNotFoundError) as info:
        manager.add_requirement("/x", ["jwt"])
    assert "'jwt'" in str(info.value)
    assert "fastsecure-jwt" in str(info.value)
    assert info.value.available == ["apikey", "cookie", "token"]
    with pytest.raises(ProviderNotFoundError):
        manager.add_requirement("/x", ["token"], optional_providers=["nope"])
    with pytest.raises(ProviderNotFoundError):
        manager.get_provider("nope")


def test_requirement_api(manager: AuthenticationManager) -> None:
    assert manager.get_requirement("/api/x") is None
    manager.add_requirement(
        "/api/*", ["token", "cookie"], strategy=AuthStrategy.ALL, optional_providers=["apikey"]
    )
    requirement = manager.get_requirement("/api/x")
    assert requirement is not None
    assert requirement.strategy == AuthStrategy.ALL
    assert requirement.required_providers == {"token", "cookie"}
    assert requirement.optional_providers == {"apikey"}
    manager.add_requirement("/api/*", ["token"], scopes=["read"])
    replaced = manager.get_requirement("/api/x")
    assert replaced is not None and replaced.required_providers == {"token"}
    assert replaced.scopes == {"read"}
    assert replaced.strategy == AuthStrategy.ANY


def test_unknown_strategy_fails_at_startup(manager: AuthenticationManager) -> None:
    with pytest.raises(PluginError, match="unknown strategy type 'sometimes'"):
        manager.add_requirement("/x", ["token"], strategy="sometimes")


async def test_no_requirement_is_an_error_not_a_pass(manager: AuthenticationManager) -> None:
    result = await manager.authenticate("/nothing", {"token": {"user_id": 1}})
    assert not result.success
    assert "No authentication requirement found" in result.metadata["error"]
    assert not await manager.validate_authentication("/nothing", {"token": {"token": "x"}})


async def test_readme_custom_provider(manager: AuthenticationManager) -> None:
    manager.add_requirement("/api/service/*", providers=["apikey"])
    result = await manager.authenticate("/api/service/x", {"apikey": {"api_key": "key1"}})
    assert result.success and result.user_id == "user1" and result.provider == "apikey"
    bad = await manager.authenticate("/api/service/x", {"apikey": {"api_key": "nope"}})
    assert not bad.success
    assert await manager.validate_authentication("/api/service/x", {"apikey": {"api_key": "key2"}})


async def test_validate_any_and_all(manager: AuthenticationManager) -> None:
    manager.add_requirement("/any", ["token", "cookie"])
    manager.add_requirement("/all", ["token", "cookie"], strategy="all")
    login = await manager.authenticate("/all", {"token": {"user_id": 1}, "cookie": {"user_id": 1}})
    assert login.success
    good = {"token": {"token": login.access_token}, "cookie": {"token": login.session_id}}
    assert await manager.validate_authentication("/any", {"token": good["token"]})
    assert await manager.validate_authentication("/all", good)
    assert not await manager.validate_authentication("/all", {"token": good["token"]})
    assert not await manager.validate_authentication("/any", {"token": {"token": "bad"}})


async def test_refresh_unsupported_and_revoke(manager: AuthenticationManager) -> None:
    refreshed = await manager.refresh_authentication("token", {"refresh_token": "x"})
    assert not refreshed.success and "refresh" in refreshed.metadata["error"]
    manager.add_requirement("/p", ["token"])
    login = await manager.authenticate("/p", {"token": {"user_id": 1}})
    assert await manager.revoke_authentication("token", {"token": login.access_token})
    assert not await manager.validate_authentication("/p", {"token": {"token": login.access_token}})
    assert not manager.get_provider("apikey").supports_revocation
    assert manager.get_provider("token").supports_revocation


class Recorder:
    def __init__(self) -> None:
        self.events: list[AuthEvent] = []

    @hookimpl
    async def fastsecure_on_event(self, event: AuthEvent) -> None:
        self.events.append(event)


class Broken:
    @hookimpl
    def fastsecure_on_event(self, event: AuthEvent) -> None:
        raise RuntimeError("audit sink down")


class BrokenAsync:
    @hookimpl
    async def fastsecure_on_event(self, event: AuthEvent) -> None:
        raise RuntimeError("audit sink down")


async def test_events_reach_every_hook_and_failures_never_decide(
    manager: AuthenticationManager, register_plugin: Any
) -> None:
    recorder = Recorder()
    register_plugin(manager, Broken())
    register_plugin(manager, BrokenAsync())
    register_plugin(manager, recorder)
    manager.add_requirement("/p", ["token"])
    ok = await manager.authenticate("/p", {"token": {"user_id": 9}})
    denied = await manager.authenticate("/p", {"token": {"token": "forged"}})
    assert ok.success and not denied.success
    await manager.revoke_authentication("token", {"token": ok.access_token})
    kinds = [type(e) for e in recorder.events]
    assert kinds == [LoginSucceeded, LoginFailed, TokenRevoked]
    assert recorder.events[0].user_id == 9
    assert recorder.events[1].detail == {"reason": "invalid_credentials"}
    assert "forged" not in repr(recorder.events)


def test_override_context(manager: AuthenticationManager) -> None:
    with manager.override(5, scopes=["a"]) as result:
        assert result.user_id == 5
        assert manager._override is not None
    assert manager._override is None


def test_from_config_rejects_unknown_sections() -> None:
    with pytest.raises(ConfigurationError):
        AuthenticationManager.from_config({"provider": {}})


def test_granted_builds_what_the_validated_constructor_builds() -> None:
    from datetime import UTC, datetime

    from fastsecure import AuthenticationResult

    when = datetime(2030, 1, 1, tzinfo=UTC)
    fast = AuthenticationResult.granted(7, "jwt", {"scopes": ["a"]}, when)
    slow = AuthenticationResult(
        success=True, user_id=7, provider="jwt", metadata={"scopes": ["a"]}, expires_at=when
    )
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert fast.model_fields_set == slow.model_fields_set
    copied = fast.model_copy(deep=True)
    assert copied == fast and copied.metadata is not fast.metadata
    with_session = AuthenticationResult.granted(1, "session", {}, when, session_id="s" * 43)
    assert with_session == AuthenticationResult(
        success=True, user_id=1, provider="session", expires_at=when, session_id="s" * 43
    )
    fast.session_id = "x"  # attribute assignment works as on any result
    assert fast.session_id == "x" and fast.failure_reason is None and fast.scopes == {"a"}
