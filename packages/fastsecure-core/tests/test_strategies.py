from typing import Any

import pytest

from fastsecure import (
    AllAuthStrategy,
    AnyAuthStrategy,
    AuthenticationManager,
    AuthenticationRequirement,
    AuthStrategy,
    FailureReason,
)


async def login(manager: AuthenticationManager, name: str, user_id: Any, scopes: list[str]) -> str:
    result = await manager.get_provider(name).authenticate({"user_id": user_id, "scopes": scopes})
    token = result.access_token or result.session_id
    assert token
    return token


async def test_any_first_listed_success_wins(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(providers=["token", "cookie"])
    t = await login(manager, "token", 1, [])
    c = await login(manager, "cookie", 1, [])
    result = await AnyAuthStrategy().authenticate(
        manager, requirement, {"token": {"token": t}, "cookie": {"token": c}}
    )
    assert result.success and result.provider == "token"
    reordered = AuthenticationRequirement(providers=["cookie", "token"])
    result = await AnyAuthStrategy().authenticate(
        manager, reordered, {"token": {"token": t}, "cookie": {"token": c}}
    )
    assert result.provider == "cookie"


async def test_any_tries_next_after_rejected_credential(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(providers=["token", "cookie"])
    c = await login(manager, "cookie", 1, [])
    result = await AnyAuthStrategy().authenticate(
        manager, requirement, {"token": {"token": "forged"}, "cookie": {"token": c}}
    )
    assert result.success and result.provider == "cookie"


async def test_any_all_fail_lists_errors(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(providers=["token", "cookie"])
    result = await AnyAuthStrategy().authenticate(manager, requirement, {"token": {}, "cookie": {}})
    assert not result.success
    assert result.metadata["errors"]
    assert result.failure_reason is FailureReason.MISSING_CREDENTIALS
    result = await AnyAuthStrategy().authenticate(manager, requirement, {"token": {"token": "x"}})
    assert result.failure_reason is FailureReason.INVALID_CREDENTIALS


async def test_any_scope_missing_lets_next_provider_try_then_403(
    manager: AuthenticationManager,
) -> None:
    requirement = AuthenticationRequirement(providers=["token", "cookie"], scopes=["admin"])
    t = await login(manager, "token", 1, ["read"])
    c = await login(manager, "cookie", 1, ["admin"])
    result = await AnyAuthStrategy().authenticate(
        manager, requirement, {"token": {"token": t}, "cookie": {"token": c}}
    )
    assert result.success and result.provider == "cookie"
    assert result.metadata["scopes"] == ["admin"]
    result = await AnyAuthStrategy().authenticate(manager, requirement, {"token": {"token": t}})
    assert not result.success
    assert result.failure_reason is FailureReason.INSUFFICIENT_SCOPE
    assert result.failure_reason.status_code == 403


async def test_login_without_required_scope_fails(manager: AuthenticationManager) -> None:
    manager.add_requirement("/x", ["token"], scopes=["admin:access"])
    denied = await manager.authenticate("/x", {"token": {"user_id": 1, "scopes": ["read"]}})
    assert not denied.success
    granted = await manager.authenticate(
        "/x", {"token": {"user_id": 1, "scopes": ["admin:access"]}}
    )
    assert granted.success and granted.metadata["scopes"] == ["admin:access"]


async def test_credentials_for_unnamed_provider_are_ignored(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(providers=["token"])
    c = await login(manager, "cookie", 1, [])
    result = await AnyAuthStrategy().authenticate(manager, requirement, {"cookie": {"token": c}})
    assert not result.success
    result = await AllAuthStrategy().authenticate(manager, requirement, {"cookie": {"token": c}})
    assert not result.success


async def test_all_combines_credentials_and_metadata(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(
        providers=["token", "cookie"], strategy=AuthStrategy.ALL
    )
    result = await AllAuthStrategy().authenticate(
        manager,
        requirement,
        {
            "token": {"user_id": 123, "scopes": ["a"], "metadata": {"custom_field": "t"}},
            "cookie": {"user_id": 123, "scopes": ["b"], "metadata": {"custom_field": "c"}},
        },
    )
    assert result.success and result.provider == "all"
    assert result.user_id == 123
    assert result.access_token and result.session_id
    assert result.metadata["token"]["custom_field"] == "t"
    assert result.metadata["cookie"]["custom_field"] == "c"
    assert result.metadata["scopes"] == ["a", "b"]


async def test_all_missing_provider_is_named(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(providers=["token", "cookie"], strategy="all")
    result = await AllAuthStrategy().authenticate(manager, requirement, {"token": {"user_id": 1}})
    assert not result.success
    assert "Missing credentials for required provider: cookie" in result.metadata["errors"]


async def test_all_refuses_different_users(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(providers=["token", "cookie"], strategy="all")
    t = await login(manager, "token", 1, [])
    c = await login(manager, "cookie", 2, [])
    result = await AllAuthStrategy().authenticate(
        manager, requirement, {"token": {"token": t}, "cookie": {"token": c}}
    )
    assert not result.success
    assert result.failure_reason is FailureReason.INVALID_CREDENTIALS


async def test_all_scope_check_on_union(manager: AuthenticationManager) -> None:
    requirement = AuthenticationRequirement(
        providers=["token", "cookie"], strategy="all", scopes=["admin"]
    )
    t = await login(manager, "token", 1, ["read"])
    c = await login(manager, "cookie", 1, ["read"])
    result = await AllAuthStrategy().authenticate(
        manager, requirement, {"token": {"token": t}, "cookie": {"token": c}}
    )
    assert result.failure_reason is FailureReason.INSUFFICIENT_SCOPE


@pytest.mark.parametrize("strategy", [AnyAuthStrategy(), AllAuthStrategy()])
async def test_optional_providers_add_metadata_but_never_decide(
    manager: AuthenticationManager, strategy: Any
) -> None:
    requirement = AuthenticationRequirement(providers=["token"], optional_providers=["cookie"])
    t = await login(manager, "token", 1, [])
    c = await login(manager, "cookie", 1, [])
    only_optional = await strategy.authenticate(manager, requirement, {"cookie": {"token": c}})
    assert not only_optional.success
    bad_optional = await strategy.authenticate(
        manager, requirement, {"token": {"token": t}, "cookie": {"token": "bad"}}
    )
    assert bad_optional.success and "cookie" not in bad_optional.metadata
    both = await strategy.authenticate(
        manager, requirement, {"token": {"token": t}, "cookie": {"token": c}}
    )
    assert both.success and "cookie" in both.metadata


async def test_provider_crash_fails_closed(
    manager: AuthenticationManager, token_provider: Any
) -> None:
    async def boom(credentials: dict[str, Any]) -> Any:
        raise RuntimeError("secret-token-value")

    token_provider.authenticate = boom
    requirement = AuthenticationRequirement(providers=["token"])
    result = await AnyAuthStrategy().authenticate(manager, requirement, {"token": {"token": "x"}})
    assert not result.success
    assert "secret-token-value" not in str(result.metadata)


async def test_user_id_type_is_kept(manager: AuthenticationManager) -> None:
    manager.add_requirement("/p", ["token"])
    assert (await manager.authenticate("/p", {"token": {"user_id": 5}})).user_id == 5
    assert (await manager.authenticate("/p", {"token": {"user_id": "5"}})).user_id == "5"


async def test_scopes_given_as_one_space_separated_string_are_split(
    manager: AuthenticationManager, token_provider: Any
) -> None:
    """An OAuth ``scope`` field arrives as "read write": it is two scopes, not nine letters."""
    token_provider.tokens["t"] = (1, "read write", {})
    read = AuthenticationRequirement(providers=["token"], scopes=["read"])
    ok = await AnyAuthStrategy().authenticate(manager, read, {"token": {"token": "t"}})
    assert ok.success and ok.metadata["scopes"] == ["read", "write"]
    anything = AuthenticationRequirement(providers=["token"])
    plain = await AnyAuthStrategy().authenticate(manager, anything, {"token": {"token": "t"}})
    assert plain.metadata["scopes"] == ["read", "write"]
    token_provider.tokens["u"] = (1, "abc", {})
    letter = AuthenticationRequirement(providers=["token"], scopes=["a"])
    denied = await AnyAuthStrategy().authenticate(manager, letter, {"token": {"token": "u"}})
    assert denied.failure_reason is FailureReason.INSUFFICIENT_SCOPE
