from pathlib import Path
from typing import Any

import pytest

from fastsecure import (
    AuthenticationManager,
    AuthenticationProvider,
    AuthenticationResult,
    ConfigurationError,
    MemoryTokenStore,
    PluginError,
    hookimpl,
)
from fastsecure.config import config_from_env
from fastsecure.hookspecs import Register


class StaticProvider(AuthenticationProvider):
    provider_type = "static"

    def __init__(
        self, users: dict[str, Any], token_store: Any = None, session_store: Any = None
    ) -> None:
        self.users = users
        self.token_store = token_store
        self.session_store = session_store

    def get_required_credentials(self) -> set[str]:
        return {"key"}

    async def authenticate(self, credentials: dict[str, Any]) -> AuthenticationResult:
        user = self.users.get(credentials.get("key", ""))
        if user is None:
            return AuthenticationResult.failure("unknown key", provider=self.provider_name)
        return AuthenticationResult(
            success=True, user_id=user, provider=self.provider_name, metadata={"scopes": ["read"]}
        )

    async def validate_authentication(self, auth_data: dict[str, Any]) -> bool:
        return auth_data.get("key") in self.users


class TypesPlugin:
    @hookimpl
    def fastsecure_register_providers(self, register: Register) -> None:
        register("static", StaticProvider)


CONFIG: dict[str, Any] = {
    "stores": {"shared": {"type": "memory"}},
    "providers": {
        "static": {"users": {"k": 1}, "token_store": "shared"},
        "second": {"type": "static", "users": {"k2": 2}, "token_store": "shared"},
    },
    "requirements": [
        {"path": "/api/**", "providers": ["static", "second"], "scopes": ["read"]},
        {"path": "/both", "providers": ["static", "second"], "strategy": "all"},
    ],
    "default_requirement": {"providers": ["static"]},
}


async def test_from_config_builds_everything_by_name() -> None:
    manager = AuthenticationManager.from_config(CONFIG, extra_plugins=[TypesPlugin()])
    first, second = manager.get_provider("static"), manager.get_provider("second")
    assert isinstance(first, StaticProvider) and isinstance(second, StaticProvider)
    assert isinstance(first.token_store, MemoryTokenStore)
    assert first.token_store is second.token_store  # one store object, shared
    assert (await manager.authenticate("/api/x", {"second": {"key": "k2"}})).user_id == 2
    requirement = manager.get_requirement("/both")
    assert requirement is not None and requirement.strategy == "all"
    assert manager.default_requirement is not None


async def test_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "fastsecure.toml"
    path.write_text(
        """
[fastsecure.providers.static]
users = { k = "alice" }

[[fastsecure.requirements]]
path = "/api/*"
providers = ["static"]
"""
    )
    manager = AuthenticationManager.from_toml(path, extra_plugins=[TypesPlugin()])
    assert (await manager.authenticate("/api/x", {"static": {"key": "k"}})).user_id == "alice"


async def test_from_env(tmp_path: Path) -> None:
    toml = tmp_path / "base.toml"
    toml.write_text('[providers.static]\nusers = { k = "from-file" }\n')
    env = {
        "FASTSECURE_CONFIG": str(toml),
        "FASTSECURE__PROVIDERS__STATIC__USERS": '{"k": "from-env"}',
        "FASTSECURE__REQUIREMENTS": '[{"path": "/x", "providers": ["static"]}]',
        "UNRELATED": "1",
    }
    assert config_from_env(env)["providers"]["static"]["users"] == {"k": "from-env"}
    manager = AuthenticationManager.from_env(env, extra_plugins=[TypesPlugin()])
    assert (await manager.authenticate("/x", {"static": {"key": "k"}})).user_id == "from-env"


@pytest.mark.parametrize(
    ("config", "error", "match"),
    [
        (
            {"providers": {"x": {"type": "jwt-typo"}}},
            PluginError,
            "unknown provider type 'jwt-typo'",
        ),
        ({"providers": {"x": {"type": "jwt"}}}, Exception, "jwt"),
        (
            {"providers": {"static": {"users": {}, "token_store": "missing"}}},
            ConfigurationError,
            "no store 'missing'",
        ),
        (
            {"providers": {"static": {"users": {}, "bogus_option": 1}}},
            ConfigurationError,
            "bogus_option",
        ),
        ({"requirements": [{"path": "/x", "providers": ["nope"]}]}, Exception, "nope"),
        ({"requirements": [{"providers": ["static"]}]}, ConfigurationError, "path"),
    ],
)
def test_bad_configuration_fails_at_startup(
    config: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        AuthenticationManager.from_config(config, extra_plugins=[TypesPlugin()], autoload=False)
