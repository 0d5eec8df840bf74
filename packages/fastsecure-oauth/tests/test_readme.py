"""Every ```python block of the README runs, in order, in one namespace."""

import ast
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


async def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 4
    namespace: dict = {"__name__": "readme"}
    for index, block in enumerate(blocks):
        code = compile(block, f"README block {index}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        outcome = eval(code, namespace)  # noqa: S307 - our own README
        if outcome is not None:
            await outcome
    assert namespace["result"].success is False
