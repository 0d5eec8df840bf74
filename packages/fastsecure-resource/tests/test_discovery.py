from fastsecure.testing import assert_plugin_discovered


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered("resource", kinds={"provider": ["resource_server"]})


def test_plugin_registers_the_class() -> None:
    from fastsecure import PluginManager
    from fastsecure_resource import ResourceServerProvider

    manager = PluginManager(autoload=True, plugins=None, blocked=())
    registration = manager.get_type("provider", "resource_server")
    assert registration.factory is ResourceServerProvider


def test_built_by_name_from_configuration() -> None:
    from fastsecure import AuthenticationManager
    from fastsecure_resource import ResourceServerProvider

    manager = AuthenticationManager.from_config(
        {
            "providers": {
                "login": {
                    "type": "resource_server",
                    "issuer": "https://login.example.com/",
                    "audience": "https://api.example.com",
                    "leeway": 10,
                }
            },
            "requirements": [{"path": "/api/**", "providers": ["login"], "scopes": ["read"]}],
        }
    )
    provider = manager.get_provider("login")
    assert isinstance(provider, ResourceServerProvider)
    assert provider.issuers == ("https://login.example.com/",) and provider.leeway == 10
