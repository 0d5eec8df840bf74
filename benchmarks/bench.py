"""Instructions per request (callgrind) and wall time for FastSecure, the floor and the peers.

Each scenario runs in its own process (benchmarks/worker.py), once under
``valgrind --tool=callgrind`` and once without it for wall time. Under callgrind the worker
switches collection on around exactly N requests and then 5N requests (client requests from
benchmarks/callgrind_requests.c, compiled here with gcc); the figure is their difference
over 4N, so start-up, warm-up and the switching itself cancel. The floor runs twice to show
the count repeats. Results go to benchmarks/results/ as Markdown, JSON and a PNG plot.

    python benchmarks/bench.py                          # every scenario this venv can run
    python benchmarks/bench.py --scenario fastsecure-jwt --no-wall
    python benchmarks/bench.py --scenario fastsecure-jwt --profile
    nox -s bench -- --jobs 2                             # the full table, peers included

A scenario whose libraries are not installed here is listed as skipped (``--strict`` makes
that an error, as ``nox -s bench`` does). Nothing here judges a time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scenarios import SCENARIOS  # noqa: E402

RESULTS = HERE / "results"
WORKER = HERE / "worker.py"
BASELINES = ("bare", "floor")
# What a scenario imports first: missing means "not installed in this venv", not a failure.
NEEDS = {
    "fastapi-users-jwt": "fastapi_users",
    "fastapi-users-redis": "fastapi_users",
    "authx-jwt": "authx",
}
TIMES, MINUS = "\u00d7", "\u2212"  # multiplication sign and minus sign, for the table
TIMEOUT = 900  # seconds for one process; a stuck store must not hang the run


@dataclass
class Row:
    """One line of the table."""

    scenario: str
    description: str
    instructions: float | None = None
    segments: dict[str, int] = field(default_factory=dict)
    wall_us: float | None = None
    traffic: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None


def compile_client_requests() -> Path:
    """Build the callgrind helper once per source version, in a cache outside the tree."""
    source = HERE / "callgrind_requests.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fastsecure-bench"
    library = cache / f"callgrind_requests-{digest}.so"
    if not library.exists():
        cache.mkdir(parents=True, exist_ok=True)
        if shutil.which("gcc") is None:
            raise SystemExit("gcc is needed to build the callgrind helper")
        partial = library.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run(  # noqa: S603
            ["gcc", "-O2", "-shared", "-fPIC", "-o", str(partial), str(source)],  # noqa: S607
            check=True,
        )
        partial.replace(library)
    return library


def interpreter(scenario: str, args: argparse.Namespace) -> str | None:
    if SCENARIOS[scenario].venv == "legacy":
        legacy: str | None = args.legacy_python
        return legacy
    return sys.executable


def missing(scenario: str, args: argparse.Namespace) -> str | None:
    """Why this scenario cannot run here, or None."""
    python = interpreter(scenario, args)
    if python is None:
        return "needs --legacy-python (a venv with fastsecure==0.3.0; nox -s bench makes one)"
    module = NEEDS.get(scenario)
    if module is not None and importlib.util.find_spec(module) is None:
        return f"{module} is not installed in this venv (nox -s bench installs the peers)"
    return None


def worker_env() -> dict[str, str]:
    # A fixed hash seed: dict and set layouts, and so the instruction count, repeat.
    return {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


def run_worker(
    python: str, argv: list[str], prefix: list[str] | None = None, flags: list[str] | None = None
) -> dict[str, Any]:
    command = [*(prefix or []), python, *(flags or []), str(WORKER), *argv]
    done = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, env=worker_env(), timeout=TIMEOUT, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:1])} failed ({done.returncode}):\n{tail}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def read_dumps(directory: Path) -> dict[str, Path]:
    """Map each labelled callgrind dump (``n``, ``5n``) to its file."""
    dumps = {}
    for dump in directory.glob("callgrind.out.*"):
        label = re.search(r"^desc: Trigger: Client Request: (\S+)$", dump.read_text(), re.M)
        if label:
            dumps[label.group(1)] = dump
    return dumps


def total(dump: Path) -> int:
    found = re.search(r"^totals: (\d+)$", dump.read_text(), re.M)
    if found is None:
        raise RuntimeError(f"{dump}: no totals line")
    return int(found.group(1))


def callgrind(
    scenario: str,
    args: argparse.Namespace,
    library: Path,
    keep: Path | None = None,
    python: str | None = None,
) -> tuple[float, dict[str, int]]:
    """Instructions per request: (I(5N) - I(N)) / 4N, from one process.

    With ``keep``, the two dumps (and, for a Python with perf trampolines, the map from
    trampoline addresses to Python functions) are kept there for annotate.py.
    """
    python = python or interpreter(scenario, args)
    assert python is not None
    # perf trampolines (3.12+) give every Python function an address callgrind can cost.
    flags = ["-X", "perf"] if keep is not None and trampolines(python) else []
    with tempfile.TemporaryDirectory(prefix="fsbench-cg-") as tmp:
        prefix = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--collect-atstart=no",
            "--dump-instr=no",
            "--dump-line=no",
            f"--callgrind-out-file={tmp}/callgrind.out.%p",
        ]
        argv = [scenario, "--mode", "callgrind", "--n", str(args.n)]
        run_worker(python, [*argv, "--client-requests", str(library)], prefix, flags)
        dumps = read_dumps(Path(tmp))
        if set(dumps) != {"n", "5n"}:
            raise RuntimeError(f"{scenario}: callgrind dumps found: {sorted(dumps)}")
        totals = {label: total(dump) for label, dump in dumps.items()}
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for label, dump in dumps.items():
                shutil.copy(dump, keep / f"{scenario}.{label}.callgrind")
            pid = dumps["n"].name.split(".")[2]
            perf_map = Path(f"/tmp/perf-{pid}.map")  # noqa: S108 - where CPython writes it
            if perf_map.exists():
                shutil.move(perf_map, keep / f"{scenario}.perf.map")
            else:
                (keep / f"{scenario}.perf.map").unlink(missing_ok=True)
            meta = {"n": args.n, "python": python, "trampolines": bool(flags), "totals": totals}
            (keep / f"{scenario}.profile.json").write_text(json.dumps(meta, indent=2) + "\n")
    return (totals["5n"] - totals["n"]) / (4 * args.n), totals


def trampolines(python: str) -> bool:
    """Whether this interpreter has perf trampolines (CPython 3.12+ on Linux)."""
    probe = "import sys; sys.exit(0 if hasattr(sys, 'activate_stack_trampoline') else 1)"
    return subprocess.run([python, "-c", probe], check=False).returncode == 0  # noqa: S603


def wall(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    python = interpreter(scenario, args)
    assert python is not None
    argv = [scenario, "--mode", "wall", "--n", str(args.wall_n), "--rounds", str(args.rounds)]
    return run_worker(python, argv)


def versions(args: argparse.Namespace) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("fastapi", "starlette", "pydantic", "pydantic-core", "PyJWT", "redis"):
        found[name] = importlib.metadata.version(name)
    for name in ("fastapi-users", "authx", "fastsecure-core"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    valgrind = subprocess.run(
        ["valgrind", "--version"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    found["valgrind"] = valgrind.stdout.strip()
    commit = subprocess.run(  # noqa: S603
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    found["commit"] = commit.stdout.strip()
    dirty = subprocess.run(  # noqa: S603
        ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "packages"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if dirty.stdout.strip():
        found["commit"] += " + uncommitted changes under packages/"
    return found


# --- start-up: a fresh interpreter per run -------------------------------------------------

# Every first-party distribution is installed in the venv; the app uses JWT only.
STARTUP_APP = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import fastapi
t1, c1 = time.perf_counter(), time.process_time()
from fastapi import Depends
from fastsecure import AuthenticationManager
manager = AuthenticationManager()
manager.plugins.load()
from fastsecure_jwt import JWTAuthenticationProvider
manager.register_provider("jwt", JWTAuthenticationProvider(secret_key=sys.argv[1]))
manager.add_requirement("/api/*", providers=["jwt"])
app = fastapi.FastAPI()

@app.get("/api/me")
async def me(auth=Depends(manager.requires_auth)):
    return {"user": auth.user_id}

t2, c2 = time.perf_counter(), time.process_time()
top = sorted({name.partition(".")[0] for name in sys.modules})
print(json.dumps({
    "fastapi_ms": (t1 - t0) * 1e3, "over_ms": (t2 - t1) * 1e3,
    "fastapi_cpu_ms": (c1 - c0) * 1e3, "over_cpu_ms": (c2 - c1) * 1e3, "modules": top,
}))
"""
HEAVY = ("sqlalchemy", "redis", "httpx", "cryptography", "jwt", "pwdlib", "argon2", "pyotp")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def measure_startup(python: str, runs: int) -> dict[str, Any]:
    """Median start-up of a JWT-only app and of ``fastsecure plugins``, fresh processes.

    Wall time (start-up is a wall-time cost, and instructions would hide the file system),
    and the process's CPU time next to it, which moves far less when the machine is
    shared. The app's own measurement starts after interpreter start-up, so what is
    compared is ``import fastapi`` against everything FastSecure adds on top, in the same
    process.
    """
    fastapi_ms, over_ms, fastapi_cpu, over_cpu, modules = [], [], [], [], []
    for _ in range(runs):
        done = subprocess.run(  # noqa: S603
            [python, "-c", STARTUP_APP, "k" * 32],
            capture_output=True,
            text=True,
            check=True,
            env=worker_env(),
            timeout=TIMEOUT,
        )
        report = json.loads(done.stdout.strip().splitlines()[-1])
        fastapi_ms.append(report["fastapi_ms"])
        over_ms.append(report["over_ms"])
        fastapi_cpu.append(report["fastapi_cpu_ms"])
        over_cpu.append(report["over_cpu_ms"])
        modules = report["modules"]
    cli: dict[str, list[float]] = {"plugins": [], "plugins --all": []}
    for command in cli:
        for _ in range(runs):
            start = datetime.datetime.now(datetime.UTC)
            subprocess.run(  # noqa: S603
                [python, "-m", "fastsecure", *command.split()],
                capture_output=True,
                check=False,
                env=worker_env(),
                timeout=TIMEOUT,
            )
            elapsed = datetime.datetime.now(datetime.UTC) - start
            cli[command].append(elapsed.total_seconds() * 1e3)
    return {
        "runs": runs,
        "import_fastapi_ms": _median(fastapi_ms),
        "jwt_app_over_fastapi_ms": _median(over_ms),
        "jwt_app_over_fastapi_all_ms": over_ms,
        "import_fastapi_cpu_ms": _median(fastapi_cpu),
        "jwt_app_over_fastapi_cpu_ms": _median(over_cpu),
        "heavy_modules_loaded": [m for m in HEAVY if m in modules],
        "modules_loaded": len(modules),
        "cli_ms": {command: _median(times) for command, times in cli.items()},
    }


def startup_markdown(found: dict[str, Any]) -> str:
    heavy = ", ".join(found["heavy_modules_loaded"]) or "none"
    return "\n".join(
        [
            "",
            f"## Start-up (wall time, fresh interpreter, median of {found['runs']} runs)",
            "",
            "Every first-party distribution installed; the app uses JWT only "
            "(`AuthenticationManager()`, discovery, an HS256 `JWTAuthenticationProvider`, "
            "one requirement, one protected route).",
            "",
            "| what | wall ms | CPU ms |",
            "| --- | ---: | ---: |",
            f"| `import fastapi` | {found['import_fastapi_ms']:,.0f} "
            f"| {found['import_fastapi_cpu_ms']:,.0f} |",
            f"| FastSecure on top of it, up to the app built | "
            f"{found['jwt_app_over_fastapi_ms']:,.0f} | {found['jwt_app_over_fastapi_cpu_ms']:,.0f} |",
            f"| `fastsecure plugins` (whole process) | {found['cli_ms']['plugins']:,.0f} | |",
            f"| `fastsecure plugins --all` (imports every type) | "
            f"{found['cli_ms']['plugins --all']:,.0f} | |",
            "",
            f"Of {', '.join(HEAVY)} the app loaded: {heavy}.",
            "",
        ]
    )


def k(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:,.0f} k"


def markdown(rows: list[Row], meta: dict[str, Any]) -> str:
    by_name = {row.scenario: row for row in rows}
    bare = by_name.get("bare")
    floor = by_name.get("floor")
    bare_i = bare.instructions if bare else None
    floor_over = floor.instructions - bare_i if floor and floor.instructions and bare_i else None
    lines = [
        "# Instructions per request",
        "",
        f"Run {meta['date']}, commit {meta['versions']['commit']}; N = {meta['n']} "
        f"(instructions: (I(5N) {MINUS} I(N)) / 4N under callgrind), wall: median of "
        f"{meta['rounds']} rounds {TIMES} {meta['wall_n']} requests. Python {meta['versions']['python']}, "
        f"FastAPI {meta['versions']['fastapi']}, Starlette {meta['versions']['starlette']}, "
        f"pydantic {meta['versions']['pydantic']}, PyJWT {meta['versions']['PyJWT']}, "
        f"{meta['versions']['valgrind']}. Method: [../README.md](../README.md).",
        "",
        f"| scenario | instructions / request | over bare | {TIMES} floor | wall µs / request "
        "| store traffic / request |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.description} | skipped: {row.skipped} | | | | |")
            continue
        over = row.instructions - bare_i if row.instructions is not None and bare_i else None
        if row.scenario == "bare":
            over_s, ratio = "—", "—"
        else:
            over_s = k(over)
            ratio = f"{over / floor_over:.2f}{TIMES}" if over is not None and floor_over else "—"
        traffic = ", ".join(f"{v:g} {name}" for name, v in row.traffic.items()) or "—"
        wall_us = "—" if row.wall_us is None else f"{row.wall_us:,.0f}"
        lines.append(
            f"| {row.description} | {k(row.instructions)} | {over_s} | {ratio} | {wall_us} "
            f"| {traffic} |"
        )
    if meta.get("stability"):
        runs = ", ".join(f"{v:,.0f}" for v in meta["stability"]["floor"])
        lines += ["", f"Stability: the floor counted twice, in two processes: {runs} instructions."]
    lines += [
        "",
        f"Wall time is shown, never decided on: on a shared 2-core machine it moves by 2{TIMES} "
        "from run "
        "to run; the instruction count does not.",
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> bool:
    """A bar per scenario: instructions over bare, with the floor as a line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    bare = next((r.instructions for r in rows if r.scenario == "bare"), None)
    floor = next((r.instructions for r in rows if r.scenario == "floor"), None)
    shown = [r for r in rows if r.instructions is not None and r.scenario != "bare"]
    if bare is None or not shown:
        return False
    names = [r.description.replace("`", "") for r in shown]
    values = [(r.instructions or 0) - bare for r in shown]
    colors = [
        "#999999"
        if r.scenario.startswith("floor")
        else "#4c72b0"
        if r.scenario.startswith("fastsecure-") and "0.3.0" not in r.scenario
        else "#dd8452"
        for r in shown
    ]
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(shown) + 1.5))
    ax.barh(names, [v / 1000 for v in values], color=colors)
    if floor is not None:
        ax.axvline((floor - bare) / 1000, color="black", linestyle="--", linewidth=1)
    for y, v in enumerate(values):
        ax.text(v / 1000, y, f" {v / 1000:,.0f} k", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("thousand instructions per request over a bare FastAPI endpoint (callgrind)")
    ax.set_xlim(0, max(values) / 1000 * 1.12)
    fig.suptitle(
        "Authentication cost per request: FastSecure (blue), hand-written (grey), "
        "peers (orange); dashed: the floor",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def profile(args: argparse.Namespace, library: Path) -> None:
    """cProfile and function-level callgrind dumps of the targets and the floor."""
    import pstats

    import annotate

    out = args.profile_dir
    out.mkdir(parents=True, exist_ok=True)
    targets = list(dict.fromkeys([*args.scenario, "floor"]))
    for scenario in targets:
        python = interpreter(scenario, args)
        assert python is not None
        stats_file = out / f"{scenario}.cprofile"
        argv = [scenario, "--mode", "cprofile", "--n", "2000", "--output", str(stats_file)]
        run_worker(python, argv)
        with (out / f"{scenario}.cprofile.txt").open("w") as text:
            stats = pstats.Stats(str(stats_file), stream=text)
            stats.sort_stats("cumulative").print_stats(60)
        profile_python = args.profile_python or python
        per_request, _ = callgrind(scenario, args, library, keep=out, python=profile_python)
        print(f"{scenario}: {per_request:,.0f} instructions/request under {profile_python}")
    for scenario in targets[:-1]:
        report = annotate.report(out, scenario, against="floor", top=args.top)
        (out / f"{scenario}.md").write_text(report)
        print(report)
    print(f"written: {out}/<scenario>.md, .cprofile.txt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only these (bare and the floor always run); repeatable",
    )
    parser.add_argument("--n", type=int, default=200, help="requests in the short segment")
    parser.add_argument("--wall-n", type=int, default=1000, help="requests per wall round")
    parser.add_argument("--rounds", type=int, default=5, help="wall rounds (median)")
    parser.add_argument("--jobs", type=int, default=1, help="callgrind processes at once")
    parser.add_argument("--no-wall", action="store_true", help="skip the wall-time runs")
    parser.add_argument("--legacy-python", help="python of a venv with fastsecure==0.3.0")
    parser.add_argument("--strict", action="store_true", help="a skipped scenario is an error")
    parser.add_argument("--profile", action="store_true", help="profile --scenario (and floor)")
    parser.add_argument(
        "--profile-python",
        help="interpreter for the function-level profile; a CPython 3.12+ one gives Python "
        "functions through perf trampolines (3.11 gives C functions only)",
    )
    parser.add_argument("--top", type=int, default=25, help="profile: functions listed")
    parser.add_argument(
        "--profile-dir", type=Path, default=RESULTS / "profile", help="profile: output directory"
    )
    parser.add_argument("--replot", action="store_true", help="redraw latest.png from its JSON")
    parser.add_argument(
        "--startup",
        action="store_true",
        help="measure start-up too (a full run always does); alone with --startup-only",
    )
    parser.add_argument("--startup-only", action="store_true", help="only the start-up figures")
    parser.add_argument("--startup-runs", type=int, default=7, help="start-up: runs (median)")
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads((RESULTS / "latest.json").read_text())["results"]
        replotted = [
            Row(r["scenario"], r["description"], r["instructions_per_request"]) for r in saved
        ]
        return 0 if plot(replotted, RESULTS / "latest.png") else 1
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.startup_only:
        found = measure_startup(sys.executable, args.startup_runs)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "startup.json").write_text(json.dumps(found, indent=2) + "\n")
        print(startup_markdown(found))
        return 0
    library = compile_client_requests()
    if args.profile:
        args.scenario = args.scenario or ["fastsecure-jwt"]
        profile(args, library)
        return 0

    names = list(SCENARIOS) if not args.scenario else [*BASELINES, *args.scenario]
    names = list(dict.fromkeys(names))
    rows = {name: Row(name, SCENARIOS[name].description) for name in names}
    for row in rows.values():
        row.skipped = missing(row.scenario, args)
        if row.skipped and args.strict:
            raise SystemExit(f"{row.scenario}: {row.skipped}")
    runnable = [name for name in names if not rows[name].skipped]
    # The floor twice, in two processes: the count must repeat.
    jobs = [*runnable, *(["floor"] if "floor" in runnable else [])]
    floor_runs: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(callgrind, name, args, library): name for name in jobs}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            try:
                per_request, totals = future.result()
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if args.strict:
                    raise
                rows[name].skipped = str(exc).splitlines()[-1][:120]
                print(f"{name}: FAILED\n{exc}", file=sys.stderr)
                continue
            if name == "floor":
                floor_runs.append(per_request)
            if rows[name].instructions is None:
                rows[name].instructions, rows[name].segments = per_request, totals
            print(f"{name:32} {per_request:12,.0f} instructions/request", flush=True)
    if not args.no_wall:
        for name in runnable:  # one at a time: wall time suffers enough from the neighbours
            if rows[name].skipped:
                continue
            try:
                report = wall(name, args)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                if args.strict:
                    raise
                print(f"{name}: wall run FAILED\n{exc}", file=sys.stderr)
                continue
            rows[name].wall_us = report["wall_us"]
            rows[name].traffic = report["traffic"]
            print(f"{name:32} {report['wall_us']:12,.1f} µs/request (wall)", flush=True)

    ordered = [rows[name] for name in names]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "n": args.n,
        "wall_n": args.wall_n,
        "rounds": args.rounds,
        "versions": versions(args),
        "stability": {"floor": floor_runs} if len(floor_runs) == 2 else None,
    }
    stem = "latest" if not args.scenario else "subset"
    RESULTS.mkdir(exist_ok=True)
    table = markdown(ordered, meta)
    if args.startup or not args.scenario:
        meta["startup"] = measure_startup(sys.executable, args.startup_runs)
        table += startup_markdown(meta["startup"])
    (RESULTS / f"{stem}.md").write_text(table)
    bare = rows["bare"].instructions if "bare" in rows else None
    floor = rows["floor"].instructions if "floor" in rows else None
    payload = {
        **meta,
        "results": [
            {
                "scenario": row.scenario,
                "description": row.description,
                "instructions_per_request": row.instructions,
                "over_bare": None
                if row.instructions is None or bare is None
                else row.instructions - bare,
                "ratio_to_floor": None
                if row.instructions is None or bare is None or floor is None
                else (row.instructions - bare) / (floor - bare),
                "wall_us_per_request": row.wall_us,
                "store_traffic_per_request": row.traffic,
                "callgrind_segments": row.segments,
                "skipped": row.skipped,
            }
            for row in ordered
        ],
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n")
    plotted = plot(ordered, RESULTS / f"{stem}.png")
    print()
    print(table)
    print(f"written: {RESULTS}/{stem}.md, .json" + (", .png" if plotted else " (no matplotlib)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
