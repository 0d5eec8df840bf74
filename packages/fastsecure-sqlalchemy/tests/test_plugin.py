from __future__ import annotations

import fastsecure
import fastsecure_sqlalchemy
from fastsecure import PluginManager, SessionStore, TokenStore
from fastsecure.testing import assert_plugin_discovered
from fastsecure_sqlalchemy import DatabaseSessionStore


def test_plugin_is_discovered() -> None:
    assert_plugin_discovered(
        "sqlalchemy",
        kinds={
            "session_store": ["sqlalchemy", "database"],
            "token_store": ["sqlalchemy", "database"],
        },
    )


def test_importable_from_fastsecure() -> None:
    assert fastsecure.DatabaseSessionStore is DatabaseSessionStore
    assert issubclass(DatabaseSessionStore, SessionStore)
    assert issubclass(DatabaseSessionStore, TokenStore)
    assert DatabaseSessionStore.store_type == "sqlalchemy"


def test_registered_factories_build_the_store() -> None:
    plugins = PluginManager(autoload=True, plugins=["sqlalchemy"], blocked=())
    for kind in ("session_store", "token_store"):
        for name in ("sqlalchemy", "database"):
            assert plugins.get_type(kind, name).factory is DatabaseSessionStore


def test_public_names() -> None:
    for name in fastsecure_sqlalchemy.__all__:
        assert getattr(fastsecure_sqlalchemy, name) is not None
