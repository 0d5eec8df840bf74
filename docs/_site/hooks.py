"""MkDocs hooks: pages from outside ``docs/`` and links that work both on GitHub and on the site.

The README files stay where readers of the repository expect them (the root README, one
per distribution, the demo's); this hook adds them to the site as generated pages, adds one
API reference page per package (``::: module`` for mkdocstrings), and rewrites every
relative link from its repository form (``../packages/fastsecure-jwt/README.md``) to the
page that carries that file on the site. A link to a file the site does not carry is left
as it is, so ``mkdocs build --strict`` reports it.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(\]\()(?P<target>[^)\s#]*)(?P<anchor>#[^)\s]*)?(\))")


def _distributions() -> dict[str, tuple[str, str | None]]:
    """Distribution name -> (its directory, its import package or None)."""
    found: dict[str, tuple[str, str | None]] = {}
    for pyproject in sorted(
        [*ROOT.glob("packages/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]
    ):
        name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
        src = pyproject.parent / "src"
        packages = sorted(p.parent.name for p in src.glob("*/__init__.py"))
        directory = pyproject.parent.relative_to(ROOT).as_posix()
        found[name] = (directory, packages[0] if packages else None)
    return found


def _pages() -> dict[str, str]:
    """Site path -> repository path of every page and file this hook adds."""
    pages = {"index.md": "README.md"}
    for name, (directory, _) in _distributions().items():
        folder = "examples" if directory.startswith("examples/") else "packages"
        pages[f"{folder}/{name}.md"] = f"{directory}/README.md"
    pages["examples/demo.md"] = "examples/demo/README.md"
    pages["examples/demo/fastsecure.toml"] = "examples/demo/fastsecure.toml"
    return pages


def _reference() -> dict[str, str]:
    """Site path -> content of the API reference pages, one per import package."""
    pages = {}
    for _, package in _distributions().values():
        if package is not None:
            pages[f"reference/{package}.md"] = f"# `{package}`\n\n::: {package}\n"
    return pages


GENERATED = _pages()
# Repository path -> site path: docs/x.md is x.md, the added files where _pages() put them.
SITE_PATH = {repo: site for site, repo in GENERATED.items()}
for _page in (ROOT / "docs").rglob("*.md"):
    _site = _page.relative_to(ROOT / "docs").as_posix()
    SITE_PATH[f"docs/{_site}"] = _site


def on_files(files: Files, config: Any) -> Files:
    """Add the README pages, the demo's configuration file and the API reference."""
    for site, repo in GENERATED.items():
        files.append(File.generated(config, site, abs_src_path=str(ROOT / repo)))
    for site, content in _reference().items():
        files.append(File.generated(config, site, content=content))
    return files


def _repository_path(site_path: str) -> str | None:
    if site_path in GENERATED:
        return GENERATED[site_path]
    if site_path.startswith("reference/"):
        return None
    return f"docs/{site_path}"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Rewrite the page's relative links from repository paths to site paths."""
    site_path = page.file.src_uri
    repo_path = _repository_path(site_path)
    if repo_path is None:
        return markdown

    def rewrite(match: re.Match[str]) -> str:
        target = match["target"]
        if not target or "://" in target or target.startswith(("mailto:", "/")):
            return match[0]
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), target))
        if (ROOT / resolved).is_dir() and (ROOT / resolved / "README.md").is_file():
            resolved = f"{resolved}/README.md"
        site_target = SITE_PATH.get(resolved)
        if site_target is None:
            return match[0]  # not on the site: --strict reports it
        relative = posixpath.relpath(site_target, posixpath.dirname(site_path) or ".")
        return f"{match[1]}{relative}{match['anchor'] or ''}{match[4]}"

    return LINK.sub(rewrite, markdown)
