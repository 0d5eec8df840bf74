"""Build a manager from plain data that names types by plugin name, without imports.

The shape (a dict, a TOML file, or environment variables)::

    [stores.main]                 # any name; "type" is a session- or token-store type
    type = "sqlalchemy"
    url = "sqlite+aiosqlite:///fastsecure.db"

    [providers.jwt]               # the registration name; "type" defaults to it
    secret_key = "change-me-to-32-bytes-or-more-of-secret"
    token_store = "main"          # an option ending in "_store" names a [stores] entry

    [providers.session]
    session_store = "main"

    [[requirements]]
    path = "/api/**"
    providers = ["jwt", "session"]
    strategy = "any"              # or "all", or a plugin's strategy name
    scopes = ["read"]

    [default_requirement]         # optional: for requires_auth routes no pattern matches
    providers = ["jwt"]

A store named by several providers is built once and shared. A type that no installed
plugin provides, or whose plugin failed to load, fails start-up with the distribution to
install: configuration never half-applies.
"""

from __future__ import annotations

import inspect
import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .exceptions import ConfigurationError
from .plugins import Kind, PluginManager
from .providers import AuthenticationProvider
from .results import AuthenticationRequirement


class Configurable(Protocol):
    """What configuration needs of a manager (``AuthenticationManager`` is one).

    A protocol, so this module sits below the manager in the layers and never imports it.
    """

    plugins: PluginManager

    def add_closable(self, obj: object) -> None:
        """Close ``obj`` with the manager."""
        ...

    def register_provider(self, name: str, provider: AuthenticationProvider) -> None:
        """Register a provider."""
        ...

    @property
    def add_requirement(self) -> Callable[..., Any]:
        """Add a path requirement (``AuthenticationManager.add_requirement``)."""
        ...

    def set_default_requirement(self, requirement: AuthenticationRequirement | None) -> None:
        """Set the default requirement."""
        ...


M = TypeVar("M", bound=Configurable)

_SECTIONS = ("stores", "providers", "requirements", "default_requirement", "plugins")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML configuration file; a ``[fastsecure]`` table is used when present."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    inner = data.get("fastsecure")
    return dict(inner) if isinstance(inner, Mapping) else data


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def config_from_env(
    environ: Mapping[str, str] | None = None, *, prefix: str = "FASTSECURE"
) -> dict[str, Any]:
    """Configuration from the environment.

    ``FASTSECURE_CONFIG`` may name a TOML file to start from; then every variable
    ``FASTSECURE__A__B__C=value`` sets ``config[a][b][c]`` (names lower-cased, values parsed
    as JSON when they parse, else kept as strings). Requirements are a JSON list:
    ``FASTSECURE__REQUIREMENTS='[{"path": "/api/**", "providers": ["jwt"]}]'``.
    """
    env = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    file = env.get(f"{prefix}_CONFIG")
    if file:
        config = load_toml(file)
    marker = f"{prefix}__"
    for key in sorted(env):
        if not key.startswith(marker):
            continue
        parts = [p.lower() for p in key[len(marker) :].split("__") if p]
        if not parts:
            continue
        node = config
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = _parse_env_value(env[key])
    return config


def _requirement(data: Mapping[str, Any], where: str) -> tuple[AuthenticationRequirement, Any]:
    known = {
        "path",
        "providers",
        "strategy",
        "optional_providers",
        "scopes",
        "ignore_invalid",
        "factors",
        "max_age",
        "rate_limit",
    }
    unknown = set(data) - known
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    if "providers" not in data:
        raise ConfigurationError(f"{where}: 'providers' is required")
    return AuthenticationRequirement(
        data["providers"],
        strategy=data.get("strategy", "any"),
        optional_providers=data.get("optional_providers"),
        scopes=data.get("scopes"),
        path=data.get("path"),
        ignore_invalid=bool(data.get("ignore_invalid", False)),
        factors=data.get("factors"),
        max_age=data.get("max_age"),
    ), data.get("rate_limit")


def _instantiate(factory: Any, options: Mapping[str, Any], where: str) -> Any:
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from exc


def build_manager(config: Mapping[str, Any], *, cls: Callable[..., M], **kwargs: Any) -> M:
    """The manager of class ``cls`` described by ``config`` (see the module docstring).

    Called by ``AuthenticationManager.from_config``; taking the class keeps this module
    below the manager in the layers.
    """
    unknown = set(config) - set(_SECTIONS)
    if unknown:
        raise ConfigurationError(f"unknown configuration sections {sorted(unknown)}")
    plugin_options = dict(config.get("plugins") or {})
    for key in ("autoload", "plugins", "blocked"):
        if key in plugin_options and key not in kwargs:
            kwargs[key] = plugin_options.pop(key)
    if plugin_options:
        raise ConfigurationError(f"[plugins]: unknown keys {sorted(plugin_options)}")
    manager = cls(**kwargs)
    plugins = manager.plugins

    store_specs: Mapping[str, Any] = config.get("stores") or {}
    stores: dict[str, Any] = {}

    def store(name: str, role: str, where: str) -> Any:
        if name in stores:
            return stores[name]
        spec = store_specs.get(name)
        if not isinstance(spec, Mapping) or "type" not in spec:
            raise ConfigurationError(f"{where}: no store {name!r} with a 'type' under [stores]")
        options = {k: v for k, v in spec.items() if k != "type"}
        kind: Kind = "token_store" if role == "token_store" else "session_store"
        try:
            registration = plugins.get_type(kind, spec["type"])
        except Exception:
            other: Kind = "session_store" if kind == "token_store" else "token_store"
            if spec["type"] in plugins.types(other):
                registration = plugins.get_type(other, spec["type"])
            else:
                raise
        obj = _instantiate(registration.factory, options, f"[stores.{name}]")
        stores[name] = obj
        manager.add_closable(obj)
        return obj

    for reg_name, spec in (config.get("providers") or {}).items():
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"[providers.{reg_name}] must be a table")
        type_name = spec.get("type", reg_name)
        registration = plugins.get_type("provider", type_name)
        options: dict[str, Any] = {}
        for key, value in spec.items():
            if key == "type":
                continue
            if key.endswith("_store") and isinstance(value, str):
                value = store(value, key, f"[providers.{reg_name}].{key}")
            options[key] = value
        provider = _instantiate(registration.factory, options, f"[providers.{reg_name}]")
        if inspect.isawaitable(provider) or not isinstance(provider, AuthenticationProvider):
            raise ConfigurationError(f"[providers.{reg_name}]: factory did not return a provider")
        manager.register_provider(reg_name, provider)

    for index, item in enumerate(config.get("requirements") or []):
        requirement, rate_limit = _requirement(item, f"requirements[{index}]")
        if not requirement.path:
            raise ConfigurationError(f"requirements[{index}]: 'path' is required")
        manager.add_requirement(
            requirement.path,
            requirement.providers,
            strategy=requirement.strategy,
            optional_providers=requirement.optional,
            scopes=requirement.scopes,
            ignore_invalid=requirement.ignore_invalid,
            factors=requirement.factors,
            max_age=requirement.max_age,
            rate_limit=rate_limit,
        )
    default = config.get("default_requirement")
    if default:
        requirement, rate_limit = _requirement(default, "default_requirement")
        if rate_limit is not None:
            raise ConfigurationError("default_requirement: rate_limit belongs on a path")
        manager.set_default_requirement(requirement)
    return manager


__all__ = ["build_manager", "config_from_env", "load_toml"]
