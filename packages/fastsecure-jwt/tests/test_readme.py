"""Every ```python block of the README runs, in order, in one namespace."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

README = Path(__file__).parents[1] / "README.md"


async def test_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    namespace: dict[str, Any] = {}
    for index, block in enumerate(blocks):
        code = compile(
            block, f"README.md block {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        outcome = eval(code, namespace)  # noqa: S307 - our own documentation
        if inspect.isawaitable(outcome):
            await outcome
    assert namespace["verifier"].can_issue is False
