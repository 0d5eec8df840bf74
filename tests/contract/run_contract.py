"""``nox -s contract``: the demo served by uvicorn on loopback, fuzzed by Schemathesis.

Each run gets a fresh demo (its own temporary data folder, free port and in-memory rate
limits, so one run's throttled logins do not decide the next's) and one set of real
credentials, then ``st run --checks all`` with a fixed seed and a bounded number of
examples per operation, every phase on (examples, coverage, fuzzing, stateful through
the links login -> refresh -> logout and login -> me). Any failure fails the session.

Usage: ``python tests/contract/run_contract.py [--seed N] [--max-examples N] [--run NAME]``.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
API_KEY = "demo-service-key"  # fastsecure.toml's key for /api/service/* (the apikey plugin)

# Run name -> (alice's credentials it holds, the operations it covers). The anonymous and
# bearer runs cover every operation, every phase (the stateful one follows the links
# login -> refresh -> logout and login -> me); the others only the operations that take
# their credential (which the first two fuzz with generated, refused ones), without the
# stateful phase, since no link joins those operations.
RUNS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "anonymous": ((), None),
    "bearer": (("jwt",), None),
    "session": (("session",), "^/api/(me|public)$"),  # cookie + the Origin CSRF wants
    "apikey": (("apikey",), "^/api/service/"),
    "bearer+session": (("jwt", "session"), "^/api/admin/"),  # ALL: both, same user
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ACCESS_LINE = re.compile(r'^INFO: +(127\.0\.0\.[12]):\d+ - "')


@contextmanager
def demo_server(data_dir: Path, log: Path) -> Iterator[str]:
    """``uvicorn --factory contract_app:create`` on a free loopback port; stopped after.

    Its output (the access log included, so the requests can be counted) goes to ``log``.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FASTSECURE_DEMO_DATA_DIR": str(data_dir),
        "FASTSECURE_CONTRACT_URL": url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), str(HERE)]),
    }
    env.pop("FASTSECURE_REDIS_URL", None)  # SQLite in the temporary folder, never shared Redis
    command = [sys.executable, "-m", "uvicorn", "--factory", "contract_app:create"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    output = log.open("w")
    server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the demo exited with {server.returncode}")
            try:
                if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the demo did not answer /openapi.json within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        output.close()


def credentials(url: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """Log alice in the ways a run needs; the values go to st_hooks through the environment."""
    env: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        if "jwt" in wanted:
            pair = client.post(
                "/api/auth/login", json={"username": "alice", "password": "alice-password"}
            )
            pair.raise_for_status()
            env["FASTSECURE_CONTRACT_ACCESS_TOKEN"] = pair.json()["access_token"]
            env["FASTSECURE_CONTRACT_REFRESH_TOKEN"] = pair.json()["refresh_token"]
        if "session" in wanted:
            login = client.post(
                "/login",
                data={"username": "alice", "password": "alice-password", "next": "/account"},
                headers={"Origin": url},
            )
            if login.status_code != 303 or "fastsecure_session" not in login.cookies:
                raise RuntimeError(f"the session login answered {login.status_code}")
            env["FASTSECURE_CONTRACT_SESSION"] = login.cookies["fastsecure_session"]
        if "apikey" in wanted:
            env["FASTSECURE_CONTRACT_API_KEY"] = API_KEY
    return env


def served(log: Path) -> dict[str, int]:
    """Requests the demo answered, by client address; prints whatever else it logged."""
    counts = {"127.0.0.1": 0, "127.0.0.2": 0}
    for line in log.read_text(errors="replace").splitlines():
        found = ACCESS_LINE.match(line)
        if found:
            counts[found.group(1)] += 1
        elif not line.startswith("INFO:"):
            print(f"  demo: {line}")
    return counts


def run(name: str, seed: int, max_examples: int, reports: Path) -> tuple[int, int]:
    """One Schemathesis run against a fresh demo: (exit status, requests the demo answered)."""
    wanted, only = RUNS[name]
    with tempfile.TemporaryDirectory(prefix="fastsecure-contract-") as tmp:
        log = Path(tmp) / "server.log"
        with demo_server(Path(tmp) / "demo", log) as url:
            command = [
                str(Path(sys.executable).with_name("st")),
                "--config-file",
                str(HERE / "schemathesis.toml"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--seed",
                str(seed),
                "--max-examples",
                str(max_examples),
                "--no-color",
                "--report",
                "junit",
                "--report-junit-path",
                str(reports / f"{name.replace('+', '-')}.xml"),
            ]
            if only is not None:  # no links among these operations: no stateful phase
                command += ["--include-path-regex", only]
                command += ["--phases", "examples,coverage,fuzzing"]
            env = {
                **os.environ,
                **credentials(url, wanted),
                "FASTSECURE_CONTRACT_URL": url,
                "FASTSECURE_CONTRACT_CREDENTIALS": ",".join(wanted),
                "SCHEMATHESIS_HOOKS": str(HERE / "st_hooks.py"),
            }
            print(f"\n=== contract run {name!r}: credentials {', '.join(wanted) or 'none'} ===")
            print(" ".join(command), flush=True)
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            sys.stdout.write(done.stdout)
            sys.stderr.write(done.stderr)
        counts = served(log)
    generated = re.search(r"(\d+) generated", done.stdout)
    print(
        f"contract run {name!r}: {generated.group(1) if generated else '?'} test cases "
        f"generated, {counts['127.0.0.1']} requests answered (+{counts['127.0.0.2']} "
        "logins of the run's own, one per logout)",
        flush=True,
    )
    return done.returncode, counts["127.0.0.1"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20230)
    parser.add_argument("--max-examples", type=int, default=60)
    parser.add_argument("--run", action="append", choices=sorted(RUNS), help="default: all")
    parser.add_argument("--reports", type=Path, default=ROOT / "test-artifacts" / "contract")
    args = parser.parse_args(argv)
    args.reports.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    total = 0  # requests the demo answered from the fuzzer's address
    started = time.monotonic()
    for name in args.run or RUNS:
        status, answered = run(name, args.seed, args.max_examples, args.reports)
        total += answered
        if status != 0:
            failed.append(name)
    took = time.monotonic() - started
    print(f"\ncontract: {total} requests answered in {len(args.run or RUNS)} runs, {took:.0f} s")
    if failed:
        print(f"contract: FAILED runs: {', '.join(failed)}")
        return 1
    print("contract: no failures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
