"""Cold start, across the distributions: discovery imports registration modules only.

With every first-party distribution installed (what ``pip install "fastsecure[all]"``
gives), an app that uses only JWT loads none of the other plugins' dependencies.
"""

from __future__ import annotations

import json
import subprocess
import sys

# Everything a first-party plugin depends on that an app using only JWT must not import.
HEAVY_MODULES = (
    "sqlalchemy",
    "redis",
    "httpx",
    "cryptography",
    "jwt",
    "pwdlib",
    "argon2",
    "bcrypt",
    "pyotp",
    "webauthn",
    "cbor2",
    "aiosqlite",
    "asyncpg",
)

COLD_START = """
import json, sys
import fastapi
import fastsecure
from fastsecure import AuthenticationManager

manager = AuthenticationManager()
manager.plugins.load()
listed = {kind: sorted(manager.plugins.types(kind)) for kind in ("provider", "session_store")}
after_discovery = sorted(sys.modules)
from fastsecure_jwt import JWTAuthenticationProvider

manager.register_provider("jwt", JWTAuthenticationProvider(secret_key="k" * 32))
manager.add_requirement("/api/*", providers=["jwt"])
print(json.dumps({"listed": listed, "discovery": after_discovery, "jwt": sorted(sys.modules)}))
"""


def test_discovery_and_a_jwt_app_import_no_other_plugins_dependencies() -> None:
    """With every first-party distribution installed, discovery imports registration modules only.

    A fresh interpreter: this process has imported everything already.
    """
    out = subprocess.run(
        [sys.executable, "-c", COLD_START], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"jwt", "session", "oauth2", "password", "resource_server", "totp"} <= set(
        data["listed"]["provider"]
    )
    assert {"redis", "sqlalchemy"} <= set(data["listed"]["session_store"])
    for stage in ("discovery", "jwt"):
        top = {name.partition(".")[0] for name in data[stage]}
        assert not top.intersection(HEAVY_MODULES), (stage, sorted(top & set(HEAVY_MODULES)))
    plugin_modules = {
        name
        for name in data["discovery"]
        if name.startswith("fastsecure_")
        and "." in name
        and not name.startswith("fastsecure_apikey")
    }
    assert plugin_modules == {
        f"fastsecure_{p}.plugin"
        for p in (
            "jwt",
            "oauth",
            "password",
            "redis",
            "resource",
            "session",
            "sqlalchemy",
            "totp",
            "webauthn",
        )
    }
