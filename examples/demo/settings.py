"""Where the demo keeps its state and which optional parts it switches on.

Everything comes from the environment (or the command line) so a test can build an app on
a temporary directory and free ports, and so nothing secret lives in the code.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from fastsecure_totp import SecretCipher

HERE = Path(__file__).parent
DEFAULT_CONFIG = HERE / "fastsecure.toml"
DEFAULT_PORT = 8000


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """``$FASTSECURE_DEMO_DATA_DIR``, else ``$XDG_DATA_HOME/fastsecure-demo``.

    Outside the repository, so the SQLite file and the generated secrets are never
    committed by accident.
    """
    explicit = environ.get("FASTSECURE_DEMO_DATA_DIR")
    if explicit:
        return Path(explicit)
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fastsecure-demo"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class OAuthClient:
    """A client id and secret registered with Google or GitHub."""

    client_id: str
    client_secret: str


@dataclass(frozen=True)
class DemoSettings:
    """What :func:`demo.app.create_app` needs to know.

    Args:
        data_dir: holds the SQLite database and ``secrets.json`` (created 0600).
        public_url: the origin browsers use; OAuth redirect URIs are built from it.
        config_file: the by-name FastSecure configuration (TOML).
        redis_url: use Redis instead of SQLite for sessions and token state.
        redis_prefix: the prefix of every Redis key the demo writes.
        cookie_secure: the session cookie's ``Secure`` flag. Browsers send a Secure cookie
            only to a secure context: https, and in Chromium also ``http://127.0.0.1`` and
            ``http://localhost``; other clients may not, so plain ``http://`` defaults to
            off, and it defaults to on whenever ``public_url`` is https.
        oidc_issuer: the local OpenID provider's issuer URL, or None for no local sign-in.
        google, github: OAuth clients; their sign-in buttons appear only when set.
        jwt_secret: the JWT HMAC secret; generated once into ``secrets.json`` when None.
    """

    data_dir: Path
    public_url: str = f"http://127.0.0.1:{DEFAULT_PORT}"
    config_file: Path = DEFAULT_CONFIG
    redis_url: str | None = None
    redis_prefix: str = "fastsecure-demo:"
    cookie_secure: bool | None = None
    oidc_issuer: str | None = None
    google: OAuthClient | None = None
    github: OAuthClient | None = None
    jwt_secret: str | None = field(default=None, repr=False)

    @property
    def secure_cookies(self) -> bool:
        """The effective ``Secure`` flag of every cookie the demo sets."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.public_url.startswith("https://")

    @property
    def passkey_origin(self) -> str:
        """The origin passkey ceremonies run on: ``public_url``, or localhost on its port.

        A WebAuthn RP id must be a domain name (browsers refuse an IP address), and the page
        a secure context: https, or ``localhost`` over plain http. So the default
        ``http://127.0.0.1:8000`` (or any other http host) gets passkeys at
        ``http://localhost:8000``; an https URL with a domain name keeps its own origin.
        """
        parts = urlsplit(self.public_url)
        host = parts.hostname or "localhost"
        local = host == "localhost" or host.endswith(".localhost")
        if local or (parts.scheme == "https" and not _is_ip_address(host)):
            return f"{parts.scheme}://{parts.netloc}"
        port = f":{parts.port}" if parts.port else ""
        return f"http://localhost{port}"

    @property
    def passkey_rp_id(self) -> str:
        """The WebAuthn relying party id: the host name of :attr:`passkey_origin`."""
        return urlsplit(self.passkey_origin).hostname or "localhost"

    @property
    def database_path(self) -> Path:
        """The SQLite file used when no Redis URL is set."""
        return self.data_dir / "fastsecure-demo.db"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        public_url: str | None = None,
        data_dir: Path | None = None,
        oidc_issuer: str | None = None,
    ) -> DemoSettings:
        """Settings from ``FASTSECURE_*`` environment variables (see the demo's README)."""
        env = os.environ if environ is None else environ
        secure = env.get("FASTSECURE_DEMO_COOKIE_SECURE")
        return cls(
            data_dir=data_dir or default_data_dir(env),
            public_url=public_url or f"http://127.0.0.1:{DEFAULT_PORT}",
            config_file=Path(env.get("FASTSECURE_DEMO_CONFIG") or DEFAULT_CONFIG),
            redis_url=env.get("FASTSECURE_REDIS_URL") or None,
            cookie_secure=None if secure is None else secure.lower() in ("1", "true", "yes"),
            oidc_issuer=oidc_issuer,
            google=_client(env, "GOOGLE"),
            github=_client(env, "GITHUB"),
            jwt_secret=env.get("FASTSECURE_DEMO_JWT_SECRET") or None,
        )


def _client(env: Mapping[str, str], name: str) -> OAuthClient | None:
    client_id = env.get(f"FASTSECURE_{name}_CLIENT_ID")
    client_secret = env.get(f"FASTSECURE_{name}_CLIENT_SECRET")
    if client_id and client_secret:
        return OAuthClient(client_id, client_secret)
    return None


@dataclass(frozen=True)
class DemoSecrets:
    """Secrets generated on first start and reused, so tokens survive a restart."""

    jwt_secret: str = field(repr=False)
    oauth_flow_secret: str = field(repr=False)
    oidc_client_secret: str = field(repr=False)
    device_secret: str = field(repr=False)
    totp_key: str = field(repr=False)


def _random_text() -> str:
    return secrets.token_urlsafe(48)


# How each secret is made: the TOTP key must be 32 random bytes in base64 (AES-256).
_GENERATORS: dict[str, Callable[[], str]] = {
    "jwt_secret": _random_text,
    "oauth_flow_secret": _random_text,
    "oidc_client_secret": _random_text,
    "device_secret": _random_text,
    "totp_key": SecretCipher.generate_key,
}


def load_secrets(settings: DemoSettings) -> DemoSecrets:
    """Read ``<data_dir>/secrets.json``, creating it (mode 0600) with fresh random values.

    A file from an older demo gets the secrets it lacks (the TOTP encryption key) added.

    ``FASTSECURE_DEMO_JWT_SECRET`` (``settings.jwt_secret``) wins over the file's JWT secret.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    if any(not stored.get(name) for name in _GENERATORS):
        for name, generate in _GENERATORS.items():
            if not stored.get(name):
                stored[name] = generate()
        # O_EXCL on a temporary name, then an atomic rename: never world-readable.
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh)
        os.replace(tmp, path)
    return DemoSecrets(
        jwt_secret=settings.jwt_secret or stored["jwt_secret"],
        oauth_flow_secret=stored["oauth_flow_secret"],
        oidc_client_secret=stored["oidc_client_secret"],
        device_secret=stored["device_secret"],
        totp_key=stored["totp_key"],
    )
