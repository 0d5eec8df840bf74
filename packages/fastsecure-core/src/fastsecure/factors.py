"""What a login records about its factors, and how: one rule for every issuer.

A factor check (a password, a TOTP code, a passkey) returns a successful result whose
metadata names its methods (``amr``, RFC 8176) and when it ran (``auth_time``). An issuer
(a session, a JWT) records them as ``amr``, ``amr_times`` (method -> epoch seconds) and
``auth_time`` (the latest), and factor requirements (``factors=``, ``max_age=``) read
them back with :func:`factors_of`. Only results of checks write these keys: an issuer
drops them from the metadata its caller passes, so nobody claims a factor nobody checked.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .results import AuthenticationResult, UserId

FACTOR_KEYS = frozenset({"amr", "amr_times", "auth_time"})
"""The keys only factor results write into what an issuer records."""


class FactorError(ValueError):
    """A factor result that cannot be recorded: unsuccessful, another user's, or no ``amr``."""


def same_user(a: object, b: object) -> bool:
    """Equal ids of the same type: ``1`` and ``"1"`` (or ``True``) are different users."""
    return a is not None and type(a) is type(b) and a == b


def factor_times(factors: Iterable[object], user_id: UserId) -> dict[str, int | float]:
    """Method -> when it was used, from successful factor results for ``user_id``.

    A result reports ``metadata["amr"]`` (RFC 8176 methods) with ``metadata["amr_times"]``
    or ``metadata["auth_time"]`` (epoch seconds; the time of recording when absent), at the
    top of its metadata or, for an ALL result, under each provider's name: what
    :func:`factors_of` reads. A time in the future is taken as now: it would otherwise
    keep the factor fresh for ever.

    Raises:
        FactorError: a result is not a success, is another user's, or names no method.
    """
    now = int(time.time())
    times: dict[str, int | float] = {}
    for factor in factors:
        if not isinstance(factor, AuthenticationResult) or not factor.success:
            raise FactorError("only a successful factor check can be recorded")
        if not same_user(factor.user_id, user_id):
            raise FactorError("the factor was checked for another user")
        reported = list(_reported(factor.metadata))
        if not reported:
            raise FactorError("a factor result must name its methods in metadata['amr']")
        for method, when in reported:
            if when is None:
                when = now
            elif isinstance(when, bool) or not isinstance(when, int | float):
                raise FactorError("metadata['auth_time'] must be seconds since the epoch")
            when = min(when, now)
            times[method] = max(times.get(method, when), when)
    return times


def _reported(metadata: Mapping[str, Any]) -> Iterator[tuple[str, object]]:
    """(method, its time as reported or None) from metadata and each dict in it."""
    sources = [metadata, *(v for v in metadata.values() if isinstance(v, dict))]
    for meta in sources:
        methods = meta.get("amr")
        if not isinstance(methods, list | tuple):
            continue
        raw_times = meta.get("amr_times")
        times: Mapping[str, object] = raw_times if isinstance(raw_times, dict) else {}
        default = meta.get("auth_time")
        for method in methods:
            if isinstance(method, str) and method:
                yield method, times.get(method, default)


def recorded_times(metadata: Mapping[str, Any]) -> dict[str, int | float]:
    """The factor times a record already holds (``amr_times``, else ``auth_time``)."""
    raw = metadata.get("amr_times")
    times: dict[str, int | float] = {}
    if isinstance(raw, dict):
        for method, when in raw.items():
            if isinstance(method, str) and isinstance(when, int | float):
                times[method] = when
    default = metadata.get("auth_time")
    methods = metadata.get("amr")
    if isinstance(methods, list) and isinstance(default, int | float):
        for method in methods:
            if isinstance(method, str):
                times.setdefault(method, default)
    return times


def factor_claims(times: Mapping[str, int | float]) -> dict[str, Any]:
    """``amr`` (sorted), ``amr_times`` and ``auth_time`` (the latest) for a record."""
    return {"amr": sorted(times), "amr_times": dict(times), "auth_time": max(times.values())}


def without_factor_keys(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Caller metadata without the factor keys, at the top and one level down.

    :func:`factors_of` reads them from a result's metadata and from each dict in it (ALL
    puts each provider's metadata under its name), so a nested copy would count too.
    """
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if key in FACTOR_KEYS:
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in FACTOR_KEYS}
        out[key] = value
    return out


def factors_of(result: AuthenticationResult) -> dict[str, float]:
    """Method (RFC 8176 ``amr`` value) -> when it was last used, from a result's metadata.

    A provider reports ``metadata["amr"]`` (the methods) and ``metadata["amr_times"]``
    (method -> epoch seconds) or ``metadata["auth_time"]`` (for all of them). Under ALL each
    provider's metadata sits under its name, and the methods are united. A method without
    a usable time counts as used at the epoch: present, never fresh.
    """
    found: dict[str, float] = {}
    for method, when in _reported(result.metadata):
        seconds = float(when) if isinstance(when, int | float) else 0.0
        found[method] = max(found.get(method, 0.0), seconds)
    return found


__all__ = [
    "FACTOR_KEYS",
    "FactorError",
    "factor_claims",
    "factor_times",
    "factors_of",
    "recorded_times",
    "same_user",
    "without_factor_keys",
]
