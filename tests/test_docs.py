"""Every ```python block of the documentation runs, so the docs cannot drift from the code.

Per Markdown file (README.md, docs/**/*.md, packages/*/README.md and the example plugin's
README), the blocks run in order in one namespace, each compiled with top-level ``await``
allowed and awaited when it uses it. Fences other than ``python`` (``text``, ``toml``,
``bash``...) are not run. Blocks that talk to Redis or a database use the loopback
services; a file needing a service that is down is skipped locally and fails under CI.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_support import ROOT, require_service

# oidc-provider-mock (used by docs/oauth.md) runs authlib, which warns about its own API.
pytestmark = pytest.mark.filterwarnings("ignore:get_jwt_config:DeprecationWarning")

FENCE = re.compile(
    r"^(?P<indent> {0,3})```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
SERVICES = {
    "redis://": ("127.0.0.1", 6379, "Redis"),
    "postgresql": ("127.0.0.1", 5432, "PostgreSQL"),
    "mysql": ("127.0.0.1", 3306, "MariaDB"),
}


@dataclass(frozen=True)
class Block:
    line: int  # 1-based line of the block's first code line in the Markdown file
    code: str


def documents() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted(ROOT.glob("packages/*/README.md"))
    files.append(ROOT / "examples" / "fastsecure-apikey" / "README.md")
    return [path for path in files if path.is_file()]


def python_blocks(text: str) -> list[Block]:
    blocks = []
    for match in FENCE.finditer(text):
        language = match["info"].strip().split(" ")[0].lower()
        if language not in ("python", "py"):
            continue
        first_line = text.count("\n", 0, match.start("body")) + 1
        blocks.append(Block(first_line, match["body"]))
    return blocks


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def with_python() -> list[Any]:
    params = []
    for path in documents():
        if python_blocks(path.read_text(encoding="utf-8")):
            params.append(pytest.param(path, id=str(path.relative_to(ROOT))))
    return params


def test_extraction_finds_only_python_fences() -> None:
    text = "intro\n```python\na = 1\n```\n```text\nnot run\n```\n```py\nb = a + 1\n```\n```toml\nx = 1\n```\n"
    blocks = python_blocks(text)
    assert [b.code for b in blocks] == ["a = 1\n", "b = a + 1\n"]
    assert [b.line for b in blocks] == [3, 9]


async def test_blocks_share_a_namespace_and_may_await() -> None:
    namespace: dict[str, Any] = {}
    await run_blocks(
        [
            Block(1, "import asyncio\nvalue = 20\n"),
            Block(4, "await asyncio.sleep(0)\nvalue += 22\n"),
        ],
        namespace,
        "inline.md",
    )
    assert namespace["value"] == 42
    with pytest.raises(ZeroDivisionError):
        await run_blocks([Block(1, "1 / 0\n")], {}, "inline.md")


async def run_blocks(blocks: list[Block], namespace: dict[str, Any], filename: str) -> None:
    for block in blocks:
        # Blank lines in front keep the Markdown file's line numbers in tracebacks.
        source = "\n" * (block.line - 1) + block.code
        code = compile(
            source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
        if code.co_flags & inspect.CO_COROUTINE:
            await eval(code, namespace)  # noqa: S307 - our own documentation
        else:
            exec(code, namespace)  # noqa: S102 - our own documentation


@pytest.mark.parametrize("path", with_python())
async def test_python_blocks_run(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks(read(path))
    code = "".join(block.code for block in blocks)
    for marker, (host, port, what) in SERVICES.items():
        if marker in code:
            require_service(host, port, what)
    monkeypatch.chdir(tmp_path)  # files a block writes (SQLite, keys) land in a temporary dir
    for name in list(os.environ):
        if name.startswith("FASTSECURE"):
            monkeypatch.delenv(name)
    namespace: dict[str, Any] = {"__name__": f"docs_{path.stem}"}
    try:
        await run_blocks(blocks, namespace, str(path))
    finally:
        # Close what the blocks left open (managers, stores) so no connection leaks.
        for value in list(namespace.values()):
            close = getattr(value, "aclose", None)
            if (
                close is not None
                and not inspect.isclass(value)
                and inspect.iscoroutinefunction(close)
            ):
                with contextlib.suppress(Exception):  # best effort; the blocks decided already
                    await close()
