"""A typed facade over pluggy: discovery, selection, registration and description.

Selection, highest precedence first (the one place it is documented):

1. constructor arguments: ``autoload=False`` loads no entry points; ``plugins=[...]`` is an
   allow-list of entry-point names; ``blocked=[...]`` a block-list;
2. environment: ``FASTSECURE_DISABLE_PLUGIN_AUTOLOAD=1``, ``FASTSECURE_PLUGINS=jwt,session``
   (allow-list), ``FASTSECURE_DISABLED_PLUGINS=oauth`` (block-list);
3. default: every installed plugin in the ``fastsecure`` entry-point group.

Core's built-ins (``any``, ``all``, the ``memory`` token store) are always registered.

Discovery imports each plugin's registration module and nothing more: a type registered
by a lazy reference (``register("jwt", "fastsecure_jwt.provider:JWTAuthenticationProvider")``)
is imported when it is first used (:meth:`PluginManager.get_type`, a configuration or
requirement naming it, ``fastsecure plugins --all``), so an app pays the import time of
the types it uses only. An import that fails then is reported like a plugin that failed
to load.
A plugin that fails to load, implements a hook that does not exist (a misspelled name) or
fails in its registration hook is reported ``failed`` with its distribution and left out;
the built-ins and every other plugin still load.

``FASTSECURE_TRACE_PLUGINS=1`` logs every hook call that happens, at INFO on the
``fastsecure`` logger: the hook, each implementation called (plugin name) and its outcome.
Argument values are never logged: they can be events, tokens or requests.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from types import ModuleType
from typing import Any, Literal

import pluggy

from . import _builtins, hookspecs
from .exceptions import DuplicateTypeNameError, PluginError

logger = logging.getLogger("fastsecure")

ENTRY_POINT_GROUP = "fastsecure"
Kind = Literal["provider", "session_store", "token_store", "strategy", "rate_limiter", "user_store"]
KINDS: tuple[Kind, ...] = (
    "provider",
    "session_store",
    "token_store",
    "strategy",
    "rate_limiter",
    "user_store",
)
_HOOK_OF_KIND: dict[Kind, str] = {
    "provider": "fastsecure_register_providers",
    "session_store": "fastsecure_register_session_stores",
    "token_store": "fastsecure_register_token_stores",
    "strategy": "fastsecure_register_strategies",
    "rate_limiter": "fastsecure_register_rate_limiters",
    "user_store": "fastsecure_register_user_stores",
}
# Where the first-party types live, so an error can say what to install.
KNOWN_DISTRIBUTIONS: dict[str, str] = {
    "jwt": "fastsecure-jwt",
    "session": "fastsecure-session",
    "memory": "fastsecure-session",
    "google": "fastsecure-oauth",
    "github": "fastsecure-oauth",
    "oidc": "fastsecure-oauth",
    "oauth2": "fastsecure-oauth",
    "redis": "fastsecure-redis",
    "sqlalchemy": "fastsecure-sqlalchemy",
    "database": "fastsecure-sqlalchemy",
    "password": "fastsecure-password",
    "totp": "fastsecure-totp",
    "webauthn": "fastsecure-webauthn",
    "resource": "fastsecure-resource",
    "resource_server": "fastsecure-resource",
}


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@lru_cache(maxsize=1)
def _entry_points() -> tuple[metadata.EntryPoint, ...]:
    """Installed plugins, scanned once per process."""
    return tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))


def refresh_entry_points() -> None:
    """Forget the cached entry-point scan (after installing a plugin at runtime)."""
    _entry_points.cache_clear()


def _parse_reference(reference: str) -> tuple[str, str]:
    """``"package.module:Attribute.path"`` -> (module, attribute path); ValueError if malformed."""
    module, sep, attribute = reference.partition(":")
    parts = attribute.split(".")
    if (
        not sep
        or not all(p.isidentifier() for p in module.split("."))
        or not all(p.isidentifier() for p in parts)
    ):
        raise ValueError(
            f"lazy reference {reference!r} is not 'package.module:attribute' "
            "(a factory is a callable, or a string naming one)"
        )
    return module, attribute


class TypeRegistration:
    """One registered type: what it is, under which name, from which plugin.

    ``factory`` is the class or callable configuration instantiates. A type registered by
    a lazy reference (``"module:attribute"``) imports it on first access of ``factory``
    (or :meth:`resolve`); until then ``loaded`` is ``False`` and nothing was imported.
    """

    __slots__ = ("_factory", "distribution", "kind", "name", "plugin", "reference", "summary")

    def __init__(
        self,
        kind: Kind,
        name: str,
        factory: Any,
        plugin: str,
        distribution: str | None,
        summary: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.plugin = plugin
        self.distribution = distribution
        self.summary = summary
        self.reference: str | None
        if isinstance(factory, str):
            _parse_reference(factory)
            self.reference, self._factory = factory, None
        else:
            self.reference, self._factory = None, factory

    @property
    def loaded(self) -> bool:
        """Whether the factory is imported (always for an eager registration)."""
        return self._factory is not None

    @property
    def factory(self) -> Any:
        """The factory, imported now if it was registered by reference.

        Raises:
            PluginError: the reference cannot be imported (names the plugin, its
                distribution and the import error).
        """
        found = self._factory
        if found is None:
            found = self.resolve()
        return found

    def resolve(self) -> Any:
        """Import a lazy reference (once); see :attr:`factory`."""
        if self._factory is not None:
            return self._factory
        assert self.reference is not None
        module_name, attribute = _parse_reference(self.reference)
        try:
            found: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
        except Exception as exc:
            raise PluginError(
                f"{self.kind.replace('_', ' ')} type {self.name!r} comes from plugin "
                f"{self.plugin!r} ({self.distribution or 'unknown'}), which failed to load: "
                f"{self.reference}: {type(exc).__name__}: {exc}",
                plugin=self.plugin,
                distribution=self.distribution,
            ) from exc
        self._factory = found
        return found

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without importing anything."""
        return {
            "name": self.name,
            "reference": self.reference,
            "summary": self.summary,
            "loaded": self.loaded,
        }

    def __repr__(self) -> str:
        target = self.reference if self.reference is not None else repr(self._factory)
        return f"TypeRegistration({self.kind!r}, {self.name!r}, {target}, plugin={self.plugin!r})"


@dataclass
class PluginInfo:
    """What ``fastsecure plugins`` shows for one plugin; the CLI and tests use this API."""

    name: str
    status: Literal["loaded", "blocked", "failed", "builtin"]
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    file: str | None = None
    hooks: list[str] = field(default_factory=list)
    types: dict[str, list[str]] = field(default_factory=dict)
    blocked_by: str | None = None
    error: str | None = None
    registrations: list[TypeRegistration] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with a stable schema."""
        return {
            "name": self.name,
            "status": self.status,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "file": self.file,
            "hooks": self.hooks,
            "types": self.types,
            "blocked_by": self.blocked_by,
            "error": self.error,
            "type_details": {
                kind: [r.as_dict() for r in self.registrations if r.kind == kind]
                for kind in self.types
            },
        }


class PluginManager:
    """Discovers and registers plugins for one :class:`AuthenticationManager`.

    Nothing loads at construction or import: :meth:`load` runs on first need, once.
    """

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        plugins: Iterable[str] | None = None,
        blocked: Iterable[str] | None = None,
        extra_plugins: Sequence[object] = (),
    ) -> None:
        if autoload is None:
            autoload = not _truthy("FASTSECURE_DISABLE_PLUGIN_AUTOLOAD")
            self._autoload_source = "FASTSECURE_DISABLE_PLUGIN_AUTOLOAD" if not autoload else None
        else:
            self._autoload_source = "autoload=False" if not autoload else None
        self.autoload = autoload
        self._allow: set[str] | None
        if plugins is not None:
            self._allow, self._allow_source = set(plugins), "plugins=[...]"
        else:
            self._allow, self._allow_source = _env_list("FASTSECURE_PLUGINS"), "FASTSECURE_PLUGINS"
        if blocked is not None:
            self._block, self._block_source = set(blocked), "blocked=[...]"
        else:
            env_block = _env_list("FASTSECURE_DISABLED_PLUGINS")
            self._block, self._block_source = env_block or set(), "FASTSECURE_DISABLED_PLUGINS"
        self._extra = list(extra_plugins)
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._loaded = False
        self._infos: dict[str, PluginInfo] = {}
        self._types: dict[Kind, dict[str, TypeRegistration]] = {k: {} for k in KINDS}
        self._dist_of_plugin: dict[str, str | None] = {}
        self._unknown_hooks: dict[str, str] = {}  # plugin name -> what was wrong
        self._trace = _truthy("FASTSECURE_TRACE_PLUGINS")
        if self._trace:  # calls through the relay (self.hook.<name>(...))
            self._pm.add_hookcall_monitoring(_trace_before, _trace_after)

    # --- loading ----------------------------------------------------------------------

    @property
    def hook(self) -> Any:
        """The pluggy hook relay (loads plugins first)."""
        self.load()
        return self._pm.hook

    def load(self) -> None:
        """Register built-ins, explicit plugins and allowed entry points; idempotent."""
        if self._loaded:
            return
        self._loaded = True
        self._pm.register(_builtins, name="fastsecure.builtins")
        self._infos["fastsecure.builtins"] = PluginInfo(
            name="fastsecure.builtins",
            status="builtin",
            distribution="fastsecure-core",
            version=_version("fastsecure-core"),
            module=_builtins.__name__,
            file=getattr(_builtins, "__file__", None),
        )
        self._dist_of_plugin["fastsecure.builtins"] = "fastsecure-core"
        for plugin in self._extra:
            name = self._register_object(plugin, None, None)
            self._drop_if_unknown_hooks(name)
        for ep in _entry_points():
            self._load_entry_point(ep)
        self._collect_types()
        self._log_summary()

    def _blocked_by(self, name: str) -> str | None:
        if not self.autoload:
            return self._autoload_source
        if name in self._block:
            return self._block_source
        if self._allow is not None and name not in self._allow:
            return self._allow_source
        return None

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        blocked = self._blocked_by(ep.name)
        previous = self._infos.get(ep.name)
        if previous is not None and not blocked:
            if (previous.distribution, previous.module) != (dist, ep.value):
                self._name_conflict(previous, dist, ep.value)
            return
        info = PluginInfo(
            name=ep.name, status="loaded", distribution=dist, version=version, module=ep.value
        )
        self._infos[ep.name] = info
        self._dist_of_plugin[ep.name] = dist
        if blocked:
            info.status, info.blocked_by = "blocked", blocked
            return
        if self._pm.has_plugin(ep.name):
            return
        try:
            module = ep.load()
            self._pm.register(module, name=ep.name)
        except Exception as exc:
            info.status = "failed"
            info.error = f"{type(exc).__name__}: {exc}"
            logger.error(
                "fastsecure: plugin %r from %s failed to load: %s", ep.name, dist or "?", info.error
            )
            return
        info.file = getattr(module, "__file__", None)
        self._drop_if_unknown_hooks(ep.name)

    def _unknown_hooks_of(self, name: str) -> list[str]:
        """Hooks the registered plugin ``name`` implements that no spec defines."""
        plugin = self._pm.get_plugin(name)
        unknown = []
        for caller in self._pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if any(
                impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls()
            ):
                unknown.append(caller.name)
        return sorted(unknown)

    def _drop_if_unknown_hooks(self, name: str) -> bool:
        """Unregister a plugin with a misspelled hook and report it failed; True if dropped.

        pluggy's ``check_pending`` would raise for the whole manager; one plugin's typo must
        not take the built-ins and every other plugin down with it (fail closed: none of
        its hooks run, and a type it would have registered is "failed to load").
        """
        unknown = self._unknown_hooks_of(name)
        if not unknown:
            return False
        self._pm.unregister(name=name)
        info = self._infos.get(name)
        dist = self._dist_of_plugin.get(name)
        message = (
            f"unknown hook{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(misspelled? hooks are listed in fastsecure.hookspecs)"
        )
        self._unknown_hooks[name] = message
        if info is not None:
            info.status, info.error, info.hooks = "failed", message, []
        logger.error("fastsecure: plugin %r from %s not loaded: %s", name, dist or "?", message)
        return True

    def _name_conflict(self, previous: PluginInfo, dist: str | None, module: str) -> None:
        """Two distributions claim one entry-point name: neither is used (fail closed).

        Which one loaded would depend on ``sys.path`` order, and the other would silently
        shadow it (a package naming its entry point ``jwt`` would replace fastsecure-jwt).
        """
        if self._pm.has_plugin(previous.name):
            self._pm.unregister(name=previous.name)
        claim = f"{dist or 'unknown'} ({module})"
        if previous.status == "failed" and (previous.error or "").startswith("entry-point name"):
            previous.error = f"{previous.error}, {claim}"
        else:
            previous.error = (
                f"entry-point name {previous.name!r} is claimed by several distributions: "
                f"{previous.distribution or 'unknown'} ({previous.module}), {claim}"
            )
        previous.status, previous.file, previous.hooks = "failed", None, []
        logger.error("fastsecure: plugin %r not loaded: %s", previous.name, previous.error)

    def _register_object(self, plugin: object, name: str | None, dist: str | None) -> str:
        registered = self._pm.register(plugin, name=name)
        assert registered is not None
        self._infos[registered] = PluginInfo(
            name=registered,
            status="loaded",
            distribution=dist,
            module=getattr(plugin, "__name__", type(plugin).__name__),
            file=getattr(plugin, "__file__", None),
        )
        self._dist_of_plugin[registered] = dist
        return registered

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object at runtime (tests, apps); returns its name.

        Raises:
            PluginError: the plugin implements a hook that does not exist (it is not kept
                registered: everything registered before still works).
        """
        self.load()
        registered = self._register_object(plugin, name, None)
        if self._drop_if_unknown_hooks(registered):
            message = self._unknown_hooks.pop(registered)
            self._infos.pop(registered, None)
            raise PluginError(f"plugin {registered!r}: {message}", plugin=registered)
        self._collect_types()
        return registered

    def unregister(self, name: str) -> None:
        """Undo :meth:`register`."""
        self._pm.unregister(name=name)
        self._infos.pop(name, None)
        self._collect_types()

    # --- calling hooks ----------------------------------------------------------------

    def _call_impl(self, hook_name: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
        """Call one implementation directly, traced like a relay call (arguments redacted).

        Direct calls bypass pluggy's monitoring, so without this the registration hooks and
        event delivery, the calls that really happen, would never show in a trace.
        """
        if not self._trace:
            return impl.function(*[kwargs[name] for name in impl.argnames])
        logger.info("fastsecure trace: %s -> %s (arguments redacted)", hook_name, impl.plugin_name)
        try:
            outcome = impl.function(*[kwargs[name] for name in impl.argnames])
        except BaseException as exc:
            logger.info(
                "fastsecure trace: %s %s raised %s", hook_name, impl.plugin_name, type(exc).__name__
            )
            raise
        pending = " (awaitable)" if inspect.isawaitable(outcome) else ""
        logger.info("fastsecure trace: %s %s ok%s", hook_name, impl.plugin_name, pending)
        return outcome

    async def notify(self, hook_name: str, /, **kwargs: Any) -> None:
        """Call every implementation of an observer hook; a failing one never stops the rest.

        For hooks whose return values nobody uses, such as ``fastsecure_on_event``: each
        implementation is called with ``kwargs`` (in pluggy's order); every awaitable they
        return is awaited, all together (datasette's ``await_me_maybe``); an implementation
        that raises, or whose awaitable raises, is logged at ERROR with its plugin name and
        the exception's type, and the others still run. Never raises (cancellation of the
        caller aside). Traced under ``FASTSECURE_TRACE_PLUGINS=1``, arguments redacted.
        """
        impls = getattr(self.hook, hook_name).get_hookimpls()
        if not impls:
            return
        pending: list[tuple[str, Awaitable[Any]]] = []
        for impl in impls:
            try:
                outcome = self._call_impl(hook_name, impl, kwargs)
            except Exception as exc:
                logger.error(
                    "fastsecure: hook %s of plugin %r failed: %s",
                    hook_name,
                    impl.plugin_name,
                    type(exc).__name__,
                )
                continue
            if inspect.isawaitable(outcome):
                pending.append((impl.plugin_name, outcome))
        if not pending:
            return
        results = await asyncio.gather(*(aw for _, aw in pending), return_exceptions=True)
        for (plugin_name, _), result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                logger.error(
                    "fastsecure: hook %s of plugin %r failed: %s",
                    hook_name,
                    plugin_name,
                    type(result).__name__,
                )
            elif self._trace:
                logger.info("fastsecure trace: %s %s awaited ok", hook_name, plugin_name)

    def _collect_types(self) -> None:
        types: dict[Kind, dict[str, TypeRegistration]] = {k: {} for k in KINDS}
        for info in self._infos.values():
            info.types, info.registrations = {}, []
        for kind in KINDS:
            caller = getattr(self._pm.hook, _HOOK_OF_KIND[kind])
            for impl in caller.get_hookimpls():
                plugin_name = self._pm.get_name(impl.plugin) or "?"
                dist = self._dist_of_plugin.get(plugin_name)
                added: list[TypeRegistration] = []

                def register(
                    type_name: str,
                    factory: Any,
                    *,
                    summary: str | None = None,
                    _kind: Kind = kind,
                    _plugin: str = plugin_name,
                    _dist: str | None = dist,
                    _added: list[TypeRegistration] = added,
                ) -> None:
                    existing = types[_kind].get(type_name)
                    if existing is not None and existing.plugin != _plugin:
                        raise DuplicateTypeNameError(
                            f"{_kind.replace('_', ' ')} type {type_name!r} is registered by both "
                            f"{existing.plugin} ({existing.distribution or 'unknown'}) "
                            f"and {_plugin} ({_dist or 'unknown'})",
                            plugin=_plugin,
                            distribution=_dist,
                        )
                    registration = TypeRegistration(
                        _kind, type_name, factory, _plugin, _dist, summary
                    )
                    types[_kind][type_name] = registration
                    _added.append(registration)
                    info = self._infos.get(_plugin)
                    if info is not None:
                        info.types.setdefault(_kind, []).append(type_name)
                        info.registrations.append(registration)

                try:
                    self._call_impl(caller.name, impl, {"register": register})
                except DuplicateTypeNameError:
                    raise
                except Exception as exc:
                    # Half a registration is worse than none: what it added before failing goes.
                    for registration in added:
                        if types[kind].get(registration.name) is registration:
                            del types[kind][registration.name]
                    failed = self._infos.get(plugin_name)
                    if failed is not None:
                        failed.status, failed.error = "failed", f"{type(exc).__name__}: {exc}"
                        failed.types.pop(kind, None)
                        failed.registrations = [r for r in failed.registrations if r.kind != kind]
                    logger.error(
                        "fastsecure: plugin %r failed in %s: %s", plugin_name, caller.name, exc
                    )
        self._types = types

    def _log_summary(self) -> None:
        loaded = [
            f"{i.name} ({i.distribution} {i.version})" if i.distribution else i.name
            for i in self._infos.values()
            if i.status == "loaded"
        ]
        blocked = [i.name for i in self._infos.values() if i.status == "blocked"]
        failed = [i.name for i in self._infos.values() if i.status == "failed"]
        logger.info(
            "fastsecure: plugins %s%s%s",
            ", ".join(loaded) or "none",
            f"; blocked: {', '.join(blocked)}" if blocked else "",
            f"; failed: {', '.join(failed)}" if failed else "",
        )

    # --- queries ----------------------------------------------------------------------

    def types(self, kind: Kind) -> dict[str, TypeRegistration]:
        """The registered types of one kind, by name."""
        self.load()
        return dict(self._types[kind])

    def get_type(self, kind: Kind, name: str) -> TypeRegistration:
        """One registered type, imported; fails closed with what to install when it is missing.

        Raises:
            PluginError: no such type; its plugin is blocked or failed to load; or its lazy
                reference cannot be imported (the plugin is then reported ``failed``).
        """
        self.load()
        found = self._types[kind].get(name)
        if found is not None:
            self._resolve(found)
            return found
        hint = KNOWN_DISTRIBUTIONS.get(name)
        for info in self._infos.values():
            provides = info.name == name or (hint is not None and info.distribution == hint)
            if info.status == "blocked" and provides:
                raise PluginError(
                    f"{kind.replace('_', ' ')} type {name!r} comes from plugin {info.name!r} "
                    f"({info.distribution}), which is installed but blocked by {info.blocked_by}",
                    plugin=info.name,
                    distribution=info.distribution,
                )
            if info.status == "failed" and provides:
                raise PluginError(
                    f"{kind.replace('_', ' ')} type {name!r} comes from plugin {info.name!r} "
                    f"({info.distribution}), which failed to load: {info.error}",
                    plugin=info.name,
                    distribution=info.distribution,
                )
        available = ", ".join(sorted(self._types[kind])) or "none"
        message = f"unknown {kind.replace('_', ' ')} type {name!r} (available: {available})"
        if hint:
            message += f"; install {hint} (pip install {hint})"
        raise PluginError(message, distribution=hint)

    def _resolve(self, registration: TypeRegistration) -> None:
        """Import a lazy type; a failure marks its plugin failed, then raises PluginError."""
        if registration.loaded:
            return
        try:
            registration.resolve()
        except PluginError as exc:
            info = self._infos.get(registration.plugin)
            if info is not None and info.status != "builtin":
                info.status = "failed"
                info.error = str(exc).partition("which failed to load: ")[2] or str(exc)
            logger.error("fastsecure: %s", exc)
            raise

    def resolve_all(self) -> list[PluginError]:
        """Import every lazy type now (``fastsecure plugins --all`` and ``--check``).

        Returns the failures (each plugin concerned is reported ``failed``); never raises.
        """
        self.load()
        failures = []
        for registrations in self._types.values():
            for registration in registrations.values():
                try:
                    self._resolve(registration)
                except PluginError as exc:
                    failures.append(exc)
        return failures

    def describe(
        self, *, include_builtins: bool = False, resolve: bool = False
    ) -> list[PluginInfo]:
        """Every known plugin with status, distribution, hooks and registered types.

        Lazy types stay unimported unless ``resolve`` is true: then each is imported and a
        plugin whose type cannot be is reported ``failed`` with the import error.
        """
        self.load()
        if resolve:
            self.resolve_all()
        out = []
        for info in self._infos.values():
            if info.status == "builtin" and not include_builtins:
                continue
            plugin = self._pm.get_plugin(info.name)
            if plugin is not None:
                info.hooks = sorted(c.name for c in self._pm.get_hookcallers(plugin) or [])
            out.append(info)
        return out

    def unknown_hooks(self) -> list[str]:
        """Plugins left out for implementing a hook that matches no spec (a misspelled name).

        One ``"<plugin> (<distribution>): unknown hook ..."`` line per plugin.
        """
        self.load()
        found = [
            f"{name} ({self._dist_of_plugin.get(name) or 'unknown'}): {message}"
            for name, message in self._unknown_hooks.items()
        ]
        try:  # anything registered behind the facade's back
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            found.append(str(exc))
        return found


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _trace_before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Any) -> None:
    logger.info(
        "fastsecure trace: %s -> %s (arguments redacted)",
        hook_name,
        ", ".join(impl.plugin_name for impl in impls),
    )


def _trace_after(
    outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Any
) -> None:
    exc = outcome.exception
    logger.info(
        "fastsecure trace: %s %s", hook_name, "raised " + type(exc).__name__ if exc else "ok"
    )


def lazy_exports(
    package: str, exports: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` (PEP 562) for a plugin package that imports on use.

    Discovery imports a plugin's registration module, and Python runs the package's
    ``__init__`` first: a package whose ``__init__`` re-exports its classes would import
    its dependencies in every app that merely has it installed. ``exports`` maps each
    public name to the relative module defining it (``{"JWTAuthenticationProvider":
    ".provider"}``); ``submodules`` names submodules re-exported as attributes. Keep the
    eager imports under ``if TYPE_CHECKING:`` so type checkers still see every name::

        if TYPE_CHECKING:
            from .provider import APIKeyProvider as APIKeyProvider
        else:
            __getattr__, __dir__ = lazy_exports(__name__, {"APIKeyProvider": ".provider"})
    """
    module = sys.modules[package]
    names = dict(exports)
    names.update({name: f".{name}" for name in submodules})
    is_submodule = frozenset(submodules)

    def __getattr__(name: str) -> Any:
        try:
            target = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        found = importlib.import_module(target, package)
        value = found if name in is_submodule else getattr(found, name)
        setattr(module, name, value)  # the next access is a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(module), *names})

    return __getattr__, __dir__


PluginSource = ModuleType | object
Factory = Callable[..., Any]
