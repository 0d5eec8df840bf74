"""Compiled path patterns.

A segment trie, so lookup cost depends on the path's depth, not on how many requirements
exist.

Pattern syntax: a literal segment; ``*`` or ``{name}`` for exactly one segment (Starlette's
one-segment converters ``{name:str}``, ``{name:int}``, ``{name:float}``, ``{name:uuid}`` too);
``**`` or Starlette's ``{name:path}`` as the last segment for zero or more trailing segments
(``/admin/**`` covers ``/admin`` too). Any other converter, or ``{name:path}`` before the
last segment, is refused when the pattern is added: a pattern never silently means less
than the route it was copied from. One trailing slash is insignificant.

Request paths are judged by :meth:`fastsecure.engine.Engine.resolve`, which refuses any
path that this table could read differently from the router before matching it.

Specificity, whatever the registration order: paths are compared segment by segment from
the left, and at the first segment where two matching patterns differ, a literal beats a
one-segment wildcard, which beats ``**``. So ``/api/users/me`` beats ``/api/users/*``,
which beats ``/api/**``, which beats ``/**``.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

_PARAM = re.compile(r"^\{(?P<name>[^{}/:]+)(?::(?P<converter>[^{}/]*))?\}$")
ONE_SEGMENT_CONVERTERS = frozenset({"str", "int", "float", "uuid"})


def split_path(path: str) -> list[str]:
    """Segments of a URL path; the query string and one trailing slash are dropped."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if not path.startswith("/"):
        path = "/" + path
    return path[1:].split("/") if path != "/" else []


def canonical_path(path: str) -> str:
    """The path as a normalizing proxy or file server would see it.

    Backslashes are separators (as on a file system that treats them so), slashes are
    merged and dot segments resolved.
    """
    path = path.split("?", 1)[0].replace("\\", "/")
    if not path.startswith("/"):
        path = "/" + path
    normalized = posixpath.normpath(re.sub(r"/{2,}", "/", path))
    return "/" if normalized in ("", ".", "//") else normalized


def needs_canonical_check(path: str) -> bool:
    """Cheap test for paths whose canonical form may differ from the literal one."""
    return "//" in path or "/." in path or "\\" in path


def normalize_pattern(pattern: str) -> tuple[str, ...]:
    """The pattern's segments with ``{name}`` folded into ``*``; rejects malformed ones."""
    segments = split_path(pattern)
    out = []
    for i, segment in enumerate(segments):
        param = _PARAM.match(segment)
        converter = param.group("converter") if param else None
        if segment == "**" or converter == "path":
            if i != len(segments) - 1:
                raise ValueError(f"{segment!r} may only end a pattern: {pattern!r}")
            out.append("**")
        elif segment == "*" or (param and converter in (None, *ONE_SEGMENT_CONVERTERS)):
            out.append("*")
        elif param:
            raise ValueError(
                f"unknown path converter {converter!r} in {pattern!r}: use one of "
                f"{', '.join(sorted(ONE_SEGMENT_CONVERTERS))} (one segment) or path (the rest)"
            )
        elif "*" in segment or "{" in segment or "}" in segment:
            raise ValueError(f"wildcards must fill a whole segment: {pattern!r}")
        else:
            out.append(segment)
    return tuple(out)


@dataclass
class _Node(Generic[T]):
    literal: dict[str, _Node[T]] = field(default_factory=dict)
    single: _Node[T] | None = None
    tail: tuple[str, T] | None = None  # the value of a pattern ending in '**' here
    value: tuple[str, T] | None = None  # the value of a pattern ending exactly here


class PatternTable(Generic[T]):
    """Maps path patterns to values; ``match`` returns the most specific one."""

    CACHE_SIZE = 4096
    CACHE_PATH_LENGTH = 256  # longer paths are matched but not cached: bounded memory

    def __init__(self) -> None:
        self._root: _Node[T] = _Node()
        self._patterns: dict[tuple[str, ...], tuple[str, T]] = {}
        # Recent path -> match; bounded, dropped whenever the table changes.
        self._cache: dict[str, tuple[str, T] | None] = {}

    def __len__(self) -> int:
        return len(self._patterns)

    def __contains__(self, pattern: str) -> bool:
        return normalize_pattern(pattern) in self._patterns

    def items(self) -> Iterator[tuple[str, T]]:
        """(pattern, value) pairs in registration order."""
        yield from self._patterns.values()

    def add(self, pattern: str, value: T) -> None:
        """Add or replace the value of a pattern (``{id}`` and ``*`` are the same pattern)."""
        key = normalize_pattern(pattern)
        entry = (pattern, value)
        self._patterns[key] = entry
        self._cache.clear()
        node = self._root
        for segment in key:
            if segment == "**":
                node.tail = entry
                return
            if segment == "*":
                if node.single is None:
                    node.single = _Node()
                node = node.single
            else:
                node = node.literal.setdefault(segment, _Node())
        node.value = entry

    def remove(self, pattern: str) -> bool:
        """Remove a pattern; True when it was present."""
        key = normalize_pattern(pattern)
        if self._patterns.pop(key, None) is None:
            return False
        self._cache.clear()
        entries = list(self._patterns.values())
        self._root = _Node()
        self._patterns = {}
        for p, v in entries:
            self.add(p, v)
        return True

    def match(self, path: str) -> tuple[str, T] | None:
        """The (pattern, value) that best matches ``path``, or None."""
        cache = self._cache
        try:
            return cache[path]
        except KeyError:
            pass
        found = self._match_segments(split_path(path))
        if len(path) <= self.CACHE_PATH_LENGTH:
            if len(cache) >= self.CACHE_SIZE:
                cache.clear()
            cache[path] = found
        return found

    def _match_segments(self, segments: list[str]) -> tuple[str, T] | None:
        return self._walk(self._root, segments, 0)

    def _walk(self, node: _Node[T], segments: list[str], i: int) -> tuple[str, T] | None:
        if i == len(segments):
            return node.value or node.tail
        segment = segments[i]
        child = node.literal.get(segment)
        if child is not None:
            found = self._walk(child, segments, i + 1)
            if found is not None:
                return found
        if node.single is not None and segment != "":
            found = self._walk(node.single, segments, i + 1)
            if found is not None:
                return found
        return node.tail

    def matches(self, path: str) -> list[str]:
        """Every pattern that matches ``path`` (for overlap reports), most specific first."""
        segments = split_path(path)
        out: list[str] = []
        self._collect(self._root, segments, 0, out)
        return out

    def _collect(self, node: _Node[T], segments: list[str], i: int, out: list[str]) -> None:
        if i == len(segments):
            if node.value:
                out.append(node.value[0])
        else:
            child = node.literal.get(segments[i])
            if child is not None:
                self._collect(child, segments, i + 1, out)
            if node.single is not None and segments[i] != "":
                self._collect(node.single, segments, i + 1, out)
        if node.tail:
            out.append(node.tail[0])
