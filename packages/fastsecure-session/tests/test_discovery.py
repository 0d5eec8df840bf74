import fastsecure
from fastsecure.testing import assert_plugin_discovered
from fastsecure_session import MemorySessionStore, SessionAuthenticationProvider


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered(
        "session", kinds={"provider": ["session"], "session_store": ["memory"]}
    )


def test_classes_importable_from_fastsecure() -> None:
    assert fastsecure.SessionAuthenticationProvider is SessionAuthenticationProvider
    assert fastsecure.MemorySessionStore is MemorySessionStore
    assert SessionAuthenticationProvider.provider_type == "session"
    assert MemorySessionStore.store_type == "memory"


def test_types_resolve_through_the_plugin_manager() -> None:
    plugins = fastsecure.PluginManager(autoload=True, plugins=["session"])
    assert plugins.get_type("provider", "session").factory is SessionAuthenticationProvider
    assert plugins.get_type("session_store", "memory").factory is MemorySessionStore


def test_configuration_builds_provider_with_named_store() -> None:
    manager = fastsecure.AuthenticationManager.from_config(
        {
            "stores": {"main": {"type": "memory"}},
            "providers": {
                "session": {"type": "session", "session_store": "main", "max_sessions_per_user": 2}
            },
        },
        plugins=["session"],
    )
    provider = manager.get_provider("session")
    assert isinstance(provider, SessionAuthenticationProvider)
    assert isinstance(provider.store, MemorySessionStore)
    assert provider.max_sessions == 2
