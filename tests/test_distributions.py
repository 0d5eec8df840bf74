"""Every distribution keeps the shape the others have (OTel's template rule, as a test)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = [
    *sorted(p.parent for p in ROOT.glob("packages/fastsecure-*/pyproject.toml")),
    ROOT / "examples" / "fastsecure-apikey",
]


def project(path: Path) -> dict:  # type: ignore[type-arg]
    return tomllib.loads((path / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("path", DISTRIBUTIONS, ids=lambda p: p.name)
def test_each_distribution_has_readme_typed_marker_and_tests(path: Path) -> None:
    meta = project(path)
    assert (path / "README.md").read_text().strip(), "README.md is empty"
    packages = [
        p for p in (path / "src").iterdir() if p.is_dir() and not p.name.endswith(".egg-info")
    ]
    assert len(packages) == 1
    assert (packages[0] / "py.typed").exists()
    assert (path / "tests").is_dir() and list((path / "tests").glob("test_*.py"))
    assert not (path / "tests" / "__init__.py").exists()  # importlib mode, no packages
    assert meta["readme"] == "README.md"
    assert meta["requires-python"] == ">=3.11"


@pytest.mark.parametrize(
    "path", [p for p in DISTRIBUTIONS if p.name != "fastsecure-core"], ids=lambda p: p.name
)
def test_plugins_pin_a_compatible_range_on_core_and_declare_their_entry_point(path: Path) -> None:
    meta = project(path)
    core = [Requirement(r) for r in meta["dependencies"] if r.startswith("fastsecure-core")]
    assert len(core) == 1
    spec = core[0].specifier
    # A compatible range within 1.x (a plugin may need a later minor, e.g. hooks added in 1.1).
    assert "==" not in str(spec) and "<2" in str(spec), spec
    assert spec.contains("1.9") and not spec.contains("2.0"), spec
    entry_points = meta["entry-points"]["fastsecure"]
    assert len(entry_points) == 1
    (target,) = entry_points.values()
    module = target.split(":")[0]
    assert (path / "src" / Path(*module.split("."))).with_suffix(".py").exists()


def test_core_depends_on_fastapi_pydantic_and_pluggy_only() -> None:
    names = {
        Requirement(r).name for r in project(ROOT / "packages" / "fastsecure-core")["dependencies"]
    }
    assert names == {"fastapi", "pydantic", "pluggy"}


def test_umbrella_extras() -> None:
    meta = project(ROOT / "packages" / "fastsecure")
    assert {Requirement(r).name for r in meta["dependencies"]} == {
        "fastsecure-core",
        "fastsecure-jwt",
        "fastsecure-session",
        "fastsecure-oauth",
    }
    assert set(meta["optional-dependencies"]) == {
        "redis",
        "database",
        "password",
        "mfa",
        "resource",
        "all",
    }
