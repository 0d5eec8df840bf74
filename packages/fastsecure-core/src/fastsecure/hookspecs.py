"""The hook specifications: everything a FastSecure plugin can implement.

A plugin is a module named by an entry point in the ``fastsecure`` group::

    [project.entry-points.fastsecure]
    apikey = "fastsecure_apikey.plugin"

and implements any of the hooks below with ``@fastsecure.hookimpl``. The entry-point name
is the plugin's name: it is what ``FASTSECURE_PLUGINS`` and ``FASTSECURE_DISABLED_PLUGINS``
select on and what ``fastsecure plugins`` lists.

Registration hooks are called once, when a manager first needs plugin types (lazily, not
at import). They receive a ``register`` callable and return nothing; a name registered by
two plugins is an error naming both distributions. Per-request work never goes through
the hook bus: hooks register objects, and those objects do the work.

Register types lazily. Discovery imports the module the entry point names in every
process that builds a manager, whichever types the app uses; give ``register`` a string
``"package.module:Attribute"`` instead of the class and that module is imported only
when the type is first used (a configuration or requirement names it,
:meth:`~fastsecure.plugins.PluginManager.get_type`, ``fastsecure plugins --all``). Keep
the entry-point module free of heavy imports, and the package's ``__init__`` too (it
runs first)::

    # fastsecure_apikey/plugin.py: imports nothing but fastsecure
    from fastsecure import hookimpl
    from fastsecure.hookspecs import Register


    @hookimpl
    def fastsecure_register_providers(register: Register) -> None:
        register(
            "apikey",
            "fastsecure_apikey.provider:APIKeyProvider",
            summary="API keys in the X-API-Key header",
        )

An import that fails on first use raises :class:`~fastsecure.PluginError` naming the
plugin, its distribution and the error, and ``fastsecure plugins`` then shows the plugin
``failed``, as for a registration module that cannot be imported. Passing the class
itself (eager registration) keeps working. Lazy references: added in 1.2.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from .events import AuthEvent

_spec = pluggy.HookspecMarker("fastsecure")
hookimpl = pluggy.HookimplMarker("fastsecure")
"""Marker for hook implementations: ``@fastsecure.hookimpl``."""


class Register(Protocol):
    """The ``register`` callable the registration hooks receive."""

    def __call__(self, type_name: str, factory: Any, /, *, summary: str | None = None) -> None:
        """Register ``factory`` under ``type_name``.

        Args:
            type_name: the name configuration and requirements use.
            factory: the class or callable, or a lazy reference to it as a string
                ``"package.module:Attribute"`` (imported on first use).
            summary: one line for ``fastsecure plugins``, shown without importing.
        """


@_spec
def fastsecure_register_providers(register: Register) -> None:
    """Register authentication provider types.

    Called once per plugin manager, when types are first needed.

    Args:
        register: ``register(type_name, factory, *, summary=None)``. ``factory`` is a
            provider class or any callable taking keyword options and returning an
            :class:`~fastsecure.AuthenticationProvider`, or a lazy reference to one
            (``"package.module:Attribute"``, see the module docs). ``type_name`` is what
            configuration names (``{"type": "jwt"}``).

    Added in 1.0; lazy references and ``summary`` in 1.2.
    """


@_spec
def fastsecure_register_session_stores(register: Register) -> None:
    """Register session store types.

    Args:
        register: ``register(type_name, factory)`` where ``factory(**options)`` returns a
            :class:`~fastsecure.SessionStore`. A store that also implements
            :class:`~fastsecure.TokenStore` registers under
            :func:`fastsecure_register_token_stores` too; configuration that names the same
            store for both roles gets one shared object.

    Added in 1.0.
    """


@_spec
def fastsecure_register_token_stores(register: Register) -> None:
    """Register token store types (revoked ids, refresh-token families).

    Args:
        register: ``register(type_name, factory)`` where ``factory(**options)`` returns a
            :class:`~fastsecure.TokenStore`.

    Added in 1.0.
    """


@_spec
def fastsecure_register_strategies(register: Register) -> None:
    """Register strategies that combine providers (core registers ``any`` and ``all`` here).

    Args:
        register: ``register(name, strategy)`` where ``strategy`` is an
            :class:`~fastsecure.strategies.AuthenticationStrategy` instance or class.
            Requirements name it as ``strategy="name"``.

    Added in 1.0.
    """


@_spec
def fastsecure_register_rate_limiters(register: Register) -> None:
    """Register rate limiter types (core registers ``memory`` here).

    Args:
        register: ``register(type_name, factory)`` where ``factory(**options)`` returns a
            :class:`~fastsecure.ratelimit.RateLimiter`. Its ``hit``, ``attempt``,
            ``refund`` and ``reset`` must be atomic per key across every process sharing
            the store: N parallel attempts never admit more than the limit (the
            conformance suite in :mod:`fastsecure.testing.conformance_accounts` checks it).

    Added in 1.1.
    """


@_spec
def fastsecure_register_user_stores(register: Register) -> None:
    """Register user store types: password accounts looked up by a login identifier.

    Args:
        register: ``register(type_name, factory)`` where ``factory(**options)`` returns a
            :class:`~fastsecure.accounts.UserStore` (lookup by login, create, set the
            password hash, mark verified, bump the credential version, one-use account
            tokens). Apps keep their own user table by registering an adapter.

    Added in 1.1.
    """


@_spec
def fastsecure_on_event(event: AuthEvent) -> Awaitable[None] | None:
    """Observe an auth event, for audit logs and metrics.

    Events: login succeeded or failed, token refreshed or revoked, refresh-token reuse,
    session created, evicted, revoked or rotated (see :mod:`fastsecure.events`).

    Every implementation is called; any awaitable one returns is awaited, all of them
    concurrently. A failing implementation is logged and ignored: auditing can never turn
    a denial into a grant, nor a grant into an error. Events never carry tokens or ids.

    Args:
        event: an :class:`~fastsecure.events.AuthEvent` subclass; ``event.name`` is a stable
            identifier such as ``"session.evicted"``.

    Returns:
        ``None`` or an awaitable.

    Added in 1.0.
    """
