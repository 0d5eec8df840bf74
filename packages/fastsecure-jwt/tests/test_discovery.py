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
