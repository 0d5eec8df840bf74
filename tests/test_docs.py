"""Every example in the documentation runs exactly as its page says, as a user would run it.

The convention, checked here for README.md, docs/**/*.md, packages/*/README.md and the
example plugin's README:

- A ```` ```python title="NAME.py" ```` fence is a file (so is any fence with a title:
  ```` ```toml title="fastsecure.toml" ````). All files of a page are written into one
  empty temporary directory, under their titles, before any command runs.
- A ```` ```console ```` fence is what the user types and sees: ``$ command`` lines, each
  followed by its expected output. Commands run in that directory, in page order, in one
  bash session (variables set by one command are seen by the next), with the test venv's
  ``bin`` first on ``PATH`` (``python``, ``pytest``, ``uvicorn``, ``fastsecure``).
  Expected output is compared line by line after trailing blanks are stripped; a line
  ``...`` stands for any number of lines, and ``...`` inside a line for any text. Every
  command must exit 0.
- ``$ uvicorn MODULE:app ...`` starts a server in the background (the page says "in a
  second terminal"); it listens on a free loopback port that replaces ``8000`` in every
  ``127.0.0.1:8000`` / ``localhost:8000`` of the page's commands, and it is stopped when
  the page is done. Its log is not compared.
- Every titled file must run: a command names it (``python NAME.py``, ``pytest NAME.py``,
  ``uvicorn NAME:app``) or another file of the page imports it.
- A ```` ```python ```` fence without a title must be marked as a fragment by an HTML
  comment ``<!-- fragment -->`` on the line before it (shown, never run). There is no
  other way out: an unmarked block is an error.

Other fences (``bash``, ``toml``, ``text``...) are shown, not run. A page that talks to
Redis, PostgreSQL or MariaDB (``redis://``, ``postgresql``, ``mysql`` in its files) needs
the loopback service: skipped locally when it is down, a failure under ``CI=true``.
Pages run concurrently (a few at a time) so the whole file stays within a few minutes.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_support import ROOT, require_service

FENCE = re.compile(
    r"^(?P<indent> {0,3})(?P<ticks>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=ticks)[ \t]*$",
    re.M | re.S,
)
TITLE = re.compile(r'\btitle="(?P<title>[^"]+)"')
FRAGMENT = "<!-- fragment -->"
SERVICES = {
    "redis://": ("127.0.0.1", 6379, "Redis"),
    "postgresql": ("127.0.0.1", 5432, "PostgreSQL"),
    "mysql": ("127.0.0.1", 3306, "MariaDB"),
}
SERVER = re.compile(r"^uvicorn\s+(?P<module>[\w.]+):\w+")
DOC_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):(?P<port>80\d\d)\b")
PAGE_TIMEOUT = 240  # seconds for every command of one page
BIN = Path(sys.executable).parent


@dataclass
class Command:
    line: int  # 1-based line of the ``$`` in the Markdown file
    text: str
    expected: list[str]


@dataclass
class Page:
    files: dict[str, str] = field(default_factory=dict)
    commands: list[Command] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def documents() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    files += sorted(ROOT.glob("packages/*/README.md"))
    files.append(ROOT / "examples" / "fastsecure-apikey" / "README.md")
    return [path for path in files if path.is_file()]


def parse(text: str) -> Page:
    """Files, commands and convention breaches of one Markdown page."""
    page = Page()
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        language = info.split(" ")[0].lower()
        line = text.count("\n", 0, match.start("body")) + 1
        body = match["body"]
        if match["indent"]:
            body = "\n".join(row[len(match["indent"]) :] for row in body.split("\n"))
        title = TITLE.search(info)
        if title and language != "console":
            name = title["title"]
            if name in page.files:
                page.problems.append(f"line {line}: a second file titled {name}")
            page.files[name] = body
        elif language in ("python", "py"):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            if before != FRAGMENT:
                page.problems.append(
                    f'line {line}: a python block needs title="NAME.py" (and a command '
                    f"that runs it) or {FRAGMENT} on the line before it"
                )
        elif language == "console":
            for offset, row in enumerate(body.rstrip("\n").split("\n")):
                if row.startswith("$ "):
                    page.commands.append(Command(line + offset, row[2:].strip(), []))
                elif page.commands and page.commands[-1].line >= line:
                    page.commands[-1].expected.append(row)
                else:
                    page.problems.append(f"line {line + offset}: output before any command")
    for name in page.files:
        if name.endswith(".py") and not is_run(name, page):
            page.problems.append(f"{name} is never run: no command names it, no file imports it")
    return page


def is_run(name: str, page: Page) -> bool:
    stem = Path(name).stem
    for command in page.commands:
        words = shlex.split(command.text)
        if name in words or any(word.startswith(f"{stem}:") for word in words):
            return True
    importer = re.compile(rf"^\s*(from\s+{stem}\s+import|import\s+{stem}\b)", re.M)
    return any(importer.search(code) for other, code in page.files.items() if other != name)


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Line-by-line comparison where ``...`` is any lines (alone) or any text (in a line)."""
    want = [row.rstrip() for row in expected]
    got = [row.rstrip() for row in actual]
    while want and not want[-1]:
        want.pop()
    while got and not got[-1]:
        got.pop()

    def line_matches(pattern: str, row: str) -> bool:
        parts = [re.escape(part) for part in pattern.split("...")]
        return re.fullmatch(".*".join(parts), row, re.S) is not None

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i] == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and line_matches(want[i], got[j]) and match(i + 1, j + 1)

    return match(0, 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


WAIT_FOR_PORT = (
    "import socket, sys, time\n"
    "port, deadline = int(sys.argv[1]), time.monotonic() + 30\n"
    "while time.monotonic() < deadline:\n"
    "    try:\n"
    "        socket.create_connection(('127.0.0.1', port), timeout=1).close()\n"
    "        sys.exit(0)\n"
    "    except OSError:\n"
    "        time.sleep(0.1)\n"
    "sys.exit(1)\n"
)
MARK = "@@fastsecure-docs@@"


def script(page: Page, ports: dict[str, int]) -> str:
    """One bash script running the page's commands; servers go to the background.

    ``ports`` maps each documented port (``8000``) to the free one used instead.
    """

    def local(match: re.Match[str]) -> str:
        port = ports.setdefault(match["port"], free_port())
        return f"{match[1]}:{port}"

    lines = ["trap 'kill $(jobs -p) 2>/dev/null; wait' EXIT"]
    for number, command in enumerate(page.commands):
        text = DOC_PORT.sub(local, command.text)
        server = SERVER.match(text)
        if server:
            words = shlex.split(text)
            doc_port = words[words.index("--port") + 1] if "--port" in words else "8000"
            if "--port" in words:
                del words[words.index("--port") : words.index("--port") + 2]
            port = ports.setdefault(doc_port, free_port())
            words += ["--host", "127.0.0.1", "--port", str(port)]
            lines.append(f"{shlex.join(words)} >server-{number}.log 2>&1 &")
            lines.append(
                f"python -c {shlex.quote(WAIT_FOR_PORT)} {port} || cat server-{number}.log"
            )
            lines.append(f"printf '\\n{MARK} %s\\n' $?")
        else:
            lines.append(f"{text} 2>&1")
            lines.append(f"printf '\\n{MARK} %s\\n' $?")
    return "\n".join(lines) + "\n"


def environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("FASTSECURE", "PYTEST", "COV_", "VIRTUAL_ENV"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "100"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as in a terminal
    return env


def run_page(page: Page) -> list[str]:
    """Run the page's files and commands; return what differed from the page (empty: none)."""
    with tempfile.TemporaryDirectory(prefix="fastsecure-docs-") as directory:
        for name, code in page.files.items():
            target = Path(directory, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code, encoding="utf-8")
        ports: dict[str, int] = {}
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", script(page, ports)],
            cwd=directory,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = process.communicate(timeout=PAGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            return [f"the page's commands took longer than {PAGE_TIMEOUT} s:\n{out}"]
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    chunks = re.split(rf"\n{MARK} (\d+)\n", "\n" + out)

    def local(match: re.Match[str]) -> str:  # the server's own URLs in its answers
        port = ports.get(match["port"])
        return f"{match[1]}:{port}" if port else match[0]

    failures = []
    for index, command in enumerate(page.commands):
        if 2 * index + 2 >= len(chunks):
            failures.append(f"line {command.line}: `$ {command.text}` did not run:\n{out}")
            break
        got = chunks[2 * index].strip("\n").split("\n")
        status = int(chunks[2 * index + 1])
        if status != 0:
            failures.append(
                f"line {command.line}: `$ {command.text}` exited {status}:\n" + "\n".join(got)
            )
        elif not SERVER.match(command.text) and not output_matches(
            [DOC_PORT.sub(local, row) for row in command.expected], got
        ):
            failures.append(
                f"line {command.line}: `$ {command.text}` printed\n"
                + "\n".join(got)
                + "\ninstead of\n"
                + "\n".join(command.expected)
            )
    return failures


def with_examples() -> list[pytest.param]:  # type: ignore[valid-type]
    params = []
    for path in documents():
        text = path.read_text(encoding="utf-8")
        if "```python" in text or "```py" in text or "```console" in text:
            params.append(pytest.param(path, id=str(path.relative_to(ROOT))))
    return params


_pool = ThreadPoolExecutor(max_workers=3)
_runs: dict[Path, Future[list[str]]] = {}
_lock = threading.Lock()


def pages_selected(session: pytest.Session) -> Iterator[Path]:
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if item.name.startswith("test_examples_run_as_the_page_says") and callspec:
            path = callspec.params.get("path")
            if isinstance(path, Path):
                yield path


def started(path: Path, session: pytest.Session) -> Future[list[str]]:
    """Start every selected page at the first request, so they run a few at a time."""
    with _lock:
        if not _runs:
            for selected in pages_selected(session):
                page = parse(selected.read_text(encoding="utf-8"))
                if not page.problems and page.commands:
                    _runs[selected] = _pool.submit(run_page, page)
        if path not in _runs:
            _runs[path] = _pool.submit(run_page, parse(path.read_text(encoding="utf-8")))
        return _runs[path]


def test_parse_reads_files_commands_and_outputs() -> None:
    text = (
        'intro\n```python title="app.py"\nx = 1\n```\n'
        "```console\n$ python app.py\nhello\n...\n$ echo done\ndone\n```\n"
        '```python title="lib.py"\ny = 2\n```\n'
        '```python title="use.py"\nfrom lib import y\n```\n'
        "```toml\nnot = 'run'\n```\n"
        "<!-- fragment -->\n```python\nshown only\n```\n"
        "```console\n$ python use.py\n```\n"
    )
    page = parse(text)
    assert page.problems == []
    assert page.files == {"app.py": "x = 1\n", "lib.py": "y = 2\n", "use.py": "from lib import y\n"}
    assert [(c.line, c.text, c.expected) for c in page.commands] == [
        (6, "python app.py", ["hello", "..."]),
        (9, "echo done", ["done"]),
        (26, "python use.py", []),
    ]


def test_parse_refuses_unmarked_and_unrun_blocks() -> None:
    page = parse('```python\nx = 1\n```\n```python title="a.py"\ny = 2\n```\n')
    assert len(page.problems) == 2
    assert "needs title" in page.problems[0]
    assert "a.py is never run" in page.problems[1]


def test_output_matching() -> None:
    assert output_matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert output_matches(["a", "...", "b"], ["a", "b"])
    assert output_matches(['{"token": "..."}'], ['{"token": "eyJ.x.y"}', ""])
    assert not output_matches(["a"], ["a", "b"])
    assert not output_matches(["a", "c"], ["a", "b"])
    assert not output_matches([], ["printed something"])


def test_a_failing_command_or_wrong_output_fails_the_page() -> None:
    page = parse(
        '```python title="fail.py"\nraise SystemExit("no")\n```\n'
        "```console\n$ python fail.py\n$ echo right\nwrong\n```\n"
    )
    failures = run_page(page)
    assert len(failures) == 2
    assert "exited 1" in failures[0] and "no" in failures[0]
    assert "printed\nright\ninstead of\nwrong" in failures[1]


def test_a_server_page_runs_on_a_free_port() -> None:
    page = parse(
        '```python title="srv.py"\n'
        "async def app(scope, receive, send):\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'hi'})\n"
        "```\n"
        "```console\n$ uvicorn srv:app\n```\n"
        "```console\n$ curl -s http://127.0.0.1:8000/\nhi\n```\n"
    )
    assert run_page(page) == []


@pytest.mark.parametrize("path", with_examples())
def test_examples_run_as_the_page_says(path: Path, request: pytest.FixtureRequest) -> None:
    text = path.read_text(encoding="utf-8")
    page = parse(text)
    assert not page.problems, "\n".join(page.problems)
    source = "\n".join([*page.files.values(), *(c.text for c in page.commands)])
    for marker, (host, port, what) in SERVICES.items():
        if marker in source:
            require_service(host, port, what)
    failures = started(path, request.session).result(timeout=PAGE_TIMEOUT + 60)
    assert not failures, f"{path.relative_to(ROOT)}:\n" + "\n\n".join(failures)


def test_every_page_is_in_the_site_navigation() -> None:
    """docs/*.md and every distribution's README have a place in mkdocs.yml's nav."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:") :]
    wanted = [p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").glob("*.md")]
    for readme in [*ROOT.glob("packages/*/README.md"), *ROOT.glob("examples/*/README.md")]:
        wanted.append(f"{readme.parent.parent.name}/{readme.parent.name}.md")
    missing = [page for page in wanted if f": {page}\n" not in nav]
    assert not missing, f"add to mkdocs.yml nav: {missing}"
