"""Inclusive instructions per request, per function, of one scenario against another.

Reads the dumps ``bench.py --profile`` keeps in benchmarks/results/profile/ and asks
``callgrind_annotate --inclusive=yes`` for each function's cost in the N and the 5N
segment; the difference over 4N is the function's inclusive cost per request. Under
CPython 3.12+ started with ``-X perf``, every Python function runs through a trampoline of
its own, which callgrind costs like any function; the perf map CPython writes names them.

    python benchmarks/annotate.py fastsecure-jwt --against floor --top 25

Inclusive means with everything the function calls, so outer frames carry their callees'
cost: read the list as a call tree, outermost first. Callgrind names a function's second
and deeper recursion levels ``name'2``; those are left out, so a recursive function's cost
is that of its outermost call. Interpreter frames (``_PyEval_EvalFrameDefault``...) and the
trampolines themselves are left out of the C list: they are everywhere.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LINE = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+?)(?: \[(.*)\])?$")
ADDRESS = re.compile(r"^\?\?\?:0x([0-9a-f]+)$")
NOISE = ("_PyEval_", "py_trampoline", "PyObject_Vectorcall", "_PyFunction_Vectorcall", "gen_send")


def inclusive(dump: Path) -> dict[str, int]:
    """Function name -> inclusive instructions, from callgrind_annotate."""
    done = subprocess.run(  # noqa: S603
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    costs: dict[str, int] = {}
    for line in done.stdout.splitlines():
        match = LINE.match(line)
        if not match or "PROGRAM TOTALS" in line:
            continue
        name = match.group(2)
        if re.search(r"'\d+$", name):  # a deeper recursion level: inside the outer call's cost
            continue
        costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


class PerfMap:
    """CPython's /tmp/perf-PID.map: trampoline address ranges -> Python functions."""

    def __init__(self, path: Path) -> None:
        entries = []
        if path.exists():
            for line in path.read_text().splitlines():
                start, size, name = line.split(" ", 2)
                entries.append((int(start, 16), int(size, 16), name))
        entries.sort()
        self.starts = [e[0] for e in entries]
        self.entries = entries

    def name(self, address: int) -> str | None:
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0:
            return None
        start, size, name = self.entries[i]
        if not start <= address < start + size:
            return None
        qualname, _, filename = name.removeprefix("py::").partition(":")
        return f"{short(filename)}:{qualname}"


def short(filename: str) -> str:
    """A path from the package root (site-packages or the repository's packages/)."""
    for marker in ("site-packages/", "/work/main/packages/", "/src/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return filename.replace("/src/", "/")


def per_request(directory: Path, scenario: str) -> tuple[dict[str, float], dict[str, float]]:
    """(Python functions, C functions) -> inclusive instructions per request."""
    meta = json.loads((directory / f"{scenario}.profile.json").read_text())
    n = meta["n"]
    short_run = inclusive(directory / f"{scenario}.n.callgrind")
    long_run = inclusive(directory / f"{scenario}.5n.callgrind")
    perf_map = PerfMap(directory / f"{scenario}.perf.map")
    python: dict[str, float] = {}
    native: dict[str, float] = {}
    for name in long_run.keys() | short_run.keys():
        cost = (long_run.get(name, 0) - short_run.get(name, 0)) / (4 * n)
        address = ADDRESS.match(name)
        if address:
            function = perf_map.name(int(address.group(1), 16))
            if function is not None:
                python[function] = python.get(function, 0) + cost
            continue
        if any(noise in name for noise in NOISE):
            continue
        function = name.rsplit("/", 1)[-1]
        native[function] = native.get(function, 0) + cost
    return python, native


def table(
    title: str,
    target: dict[str, float],
    base: dict[str, float],
    top: int,
    names: tuple[str, str],
    by_difference: bool = True,
) -> list[str]:
    def key(function: str) -> float:
        return target[function] - (base.get(function, 0) if by_difference else 0)

    shown = [f for f in target if not f.startswith(str(HERE))]  # the benchmark's own loop
    rows = sorted(shown, key=key, reverse=True)[:top]
    lines = [
        f"### {title}",
        "",
        f"| function | {names[0]} | {names[1]} | over {names[1]} |",
        "| --- | ---: | ---: | ---: |",
    ]
    for function in rows:
        a, b = target[function], base.get(function, 0.0)
        lines.append(f"| `{function}` | {a:,.0f} | {b:,.0f} | {a - b:+,.0f} |")
    return [*lines, ""]


def report(directory: Path, scenario: str, against: str = "floor", top: int = 25) -> str:
    python, native = per_request(directory, scenario)
    base_python, base_native = per_request(directory, against)
    meta = json.loads((directory / f"{scenario}.profile.json").read_text())
    totals = meta["totals"]
    total = (totals["5n"] - totals["n"]) / (4 * meta["n"])
    base_meta = json.loads((directory / f"{against}.profile.json").read_text())
    base_total = (base_meta["totals"]["5n"] - base_meta["totals"]["n"]) / (4 * base_meta["n"])
    lines = [
        f"## {scenario} against {against}: inclusive instructions per request",
        "",
        f"Total {total:,.0f} against {base_total:,.0f} ({total - base_total:+,.0f}); "
        f"interpreter {meta['python']}"
        + (
            ", perf trampolines on (Python-to-Python calls are not inlined, so totals run higher "
            "than without)"
            if meta["trampolines"]
            else ", no perf trampolines: C functions only"
        )
        + ".",
        "",
    ]
    names = (scenario, against)
    if python:
        lines += table(
            "Python functions, by inclusive cost (outermost first)",
            python,
            base_python,
            top * 2,
            names,
            by_difference=False,
        )
        lines += table("Python functions, by cost over " + against, python, base_python, top, names)
    lines += table("C functions, by cost over " + against, native, base_native, top, names)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="+")
    parser.add_argument("--against", default="floor")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dir", type=Path, default=HERE / "results" / "profile")
    args = parser.parse_args(argv)
    for scenario in args.scenario:
        print(report(args.dir, scenario, args.against, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
