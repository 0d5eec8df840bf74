from fastsecure.testing import assert_plugin_discovered


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("jwt", kinds={"provider": ["jwt"]})


def test_importable_from_fastsecure() -> None:
    import fastsecure
    import fastsecure_jwt

    assert fastsecure.JWTAuthenticationProvider is fastsecure_jwt.JWTAuthenticationProvider


def test_plugin_registers_the_class() -> None:
    from fastsecure import PluginManager
    from fastsecure_jwt import JWTAuthenticationProvider

    manager = PluginManager(autoload=True, plugins=None, blocked=())
    registration = manager.get_type("provider", "jwt")
    assert registration.factory is JWTAuthenticationProvider
    assert JWTAuthenticationProvider.provider_type == "jwt"


async def test_built_by_name_from_configuration() -> None:
    import secrets

    from fastsecure import AuthenticationManager, MemoryTokenStore
    from fastsecure_jwt import JWTAuthenticationProvider

    manager = AuthenticationManager.from_config(
        {
            "stores": {"main": {"type": "memory"}},
            "providers": {
                "jwt": {
                    "secret_key": secrets.token_urlsafe(32),
                    "access_token_expire_minutes": 5,
                    "token_store": "main",
                }
            },
            "requirements": [{"path": "/api/**", "providers": ["jwt"], "scopes": ["read"]}],
        }
    )
    provider = manager.get_provider("jwt")
    assert isinstance(provider, JWTAuthenticationProvider)
    assert isinstance(provider.token_store, MemoryTokenStore)
    issued = await manager.authenticate("/api/x", {"jwt": {"user_id": 1, "scopes": ["read"]}})
    assert issued.success
    assert await manager.validate_authentication(
        "/api/x", {"jwt": {"access_token": issued.access_token}}
    )
