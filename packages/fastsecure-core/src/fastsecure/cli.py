"""The ``fastsecure`` command: ``plugins`` lists what is installed, ``coverage`` checks an app."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from .matching import PatternTable
from .plugins import PluginManager

_ROUTE_PARAM = re.compile(r"\{[^}]*\}")


def _cmd_plugins(args: argparse.Namespace) -> int:
    manager = PluginManager()
    try:
        # Listing imports registration modules only; --all and --check also import every
        # type registered by reference, so a type that cannot be imported shows as failed.
        infos = manager.describe(include_builtins=args.all, resolve=args.all or args.check)
    except Exception as exc:  # a broken plugin must never break the CLI
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    unknown = manager.unknown_hooks()
    if args.json:
        print(
            json.dumps(
                {"plugins": [i.as_dict() for i in infos], "unknown_hooks": unknown}, indent=2
            )
        )
    else:
        if not infos:
            print("no plugins installed (entry-point group 'fastsecure')")
        for info in infos:
            dist = f"{info.distribution} {info.version}" if info.distribution else "-"
            print(f"{info.name:<20} {info.status:<8} {dist}")
            for kind, names in sorted(info.types.items()):
                print(f"    {kind.replace('_', ' ')}: {', '.join(names)}")
            if info.hooks:
                print(f"    hooks: {', '.join(info.hooks)}")
            if info.module:
                print(f"    module: {info.module}")
            if info.blocked_by:
                print(f"    blocked by: {info.blocked_by}")
            if info.error:
                print(
                    f"    error: {info.error} "
                    f"(reinstall or fix {info.distribution or 'the plugin'})"
                )
        for problem in unknown:
            print(f"unknown hook: {problem}")
    if args.check and (unknown or any(i.status == "failed" for i in infos)):
        return 1
    return 0


def _load_object(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in (attr or "app").split("."):
        obj = getattr(obj, part)
    return obj


def _find_manager(app_spec: str, manager_spec: str | None) -> Any:
    from .manager import AuthenticationManager

    if manager_spec:
        return _load_object(manager_spec)
    module = importlib.import_module(app_spec.partition(":")[0])
    found = [v for v in vars(module).values() if isinstance(v, AuthenticationManager)]
    if len(found) != 1:
        raise SystemExit(
            f"found {len(found)} AuthenticationManager objects in {module.__name__}; "
            "name one with --manager module:attribute"
        )
    return found[0]


def _public_table(public: Sequence[str]) -> PatternTable[None]:
    """The ``--public`` paths and patterns (``/static/**``) as one pattern table."""
    table: PatternTable[None] = PatternTable()
    for pattern in public:
        if pattern not in table:
            table.add(pattern, None)
    return table


def _cmd_coverage(args: argparse.Namespace) -> int:
    from .coverage import DEFAULT_PUBLIC, requirement_coverage

    sys.path.insert(0, ".")
    app = _load_object(args.app)
    manager = _find_manager(args.app, args.manager)
    try:
        public = _public_table([*DEFAULT_PUBLIC, *(args.public or ())])
    except ValueError as exc:
        print(f"error: --public: {exc}", file=sys.stderr)
        return 2
    report = requirement_coverage(app, manager, public=DEFAULT_PUBLIC)
    # A route parameter is one unknown segment: only '*', '{name}' or '**' may match it.
    report.uncovered_routes = [
        r for r in report.uncovered_routes if public.match(_ROUTE_PARAM.sub("\x00", r.path)) is None
    ]
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        sections = [
            ("Routes a requirement names but nothing enforces", report.unenforced_routes),
            (
                "Routes using requires_auth that no requirement covers (always 401)",
                report.dependency_without_requirement,
            ),
            ("Routes no requirement covers (public)", report.uncovered_routes),
        ]
        for title, routes in sections:
            print(f"{title}: {len(routes)}")
            for r in routes:
                print(
                    f"    {','.join(r.methods):<12} {r.path}"
                    + (f"  [{r.pattern}]" if r.pattern else "")
                )
        print(f"Patterns that match no route: {len(report.unused_patterns)}")
        for pattern in report.unused_patterns:
            print(f"    {pattern}")
        print(f"Routes matched by several patterns: {len(report.overlaps)}")
        for path, patterns in report.overlaps:
            print(f"    {path}: {' > '.join(patterns)}")
        print(f"Login-like routes with no rate limit: {len(report.unlimited_login_routes)}")
        for r in report.unlimited_login_routes:
            print(f"    {','.join(r.methods):<12} {r.path}")
    if not args.check:
        return 0 if report.ok else 1
    problems = {
        "unenforced": len(report.unenforced_routes),
        "without a requirement (always 401)": len(report.dependency_without_requirement),
        "uncovered and not declared --public": len(report.uncovered_routes),
    }
    failed = {what: count for what, count in problems.items() if count}
    if failed:
        summary = ", ".join(f"{count} {what}" for what, count in failed.items())
        print(f"fastsecure coverage --check failed: routes {summary}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="fastsecure", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plugins = sub.add_parser("plugins", help="list installed plugins and what they register")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.add_argument(
        "--all", action="store_true", help="include core's built-ins and import every type"
    )
    plugins.add_argument("--check", action="store_true", help="exit 1 if a plugin failed to load")
    plugins.set_defaults(func=_cmd_plugins)
    coverage = sub.add_parser("coverage", help="check which routes the requirements protect")
    coverage.add_argument("app", help="the app as module:attribute, e.g. myapp.main:app")
    coverage.add_argument("--manager", help="the AuthenticationManager as module:attribute")
    coverage.add_argument(
        "--public",
        action="append",
        metavar="PATTERN",
        help="a route path or pattern (/static/**) that is public on purpose; repeatable",
    )
    coverage.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when a route is unenforced, uses requires_auth without a requirement, "
        "or is covered by no requirement and not declared --public",
    )
    coverage.add_argument("--json", action="store_true", help="machine-readable output")
    coverage.set_defaults(func=_cmd_coverage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastsecure`` console script."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
