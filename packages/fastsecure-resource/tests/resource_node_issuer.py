"""A real authorization server for the tests: panva's oidc-provider in a Node child process."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwt.algorithms import get_default_algorithms

from fastsecure.testing import service_unavailable
from fastsecure_resource.testing import generate_key

ISSUER_SOURCES = Path(__file__).parent / "issuer"
API = "https://api.example.test"
OPAQUE_API = "https://opaque.example.test"
REDIRECT_URI = "http://127.0.0.1/callback"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_oidc_provider() -> Path:
    """Where oidc-provider is installed (``npm ci`` once per lock file), our script beside it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        service_unavailable(
            "node and npm are needed to run oidc-provider (apt-get install nodejs npm)"
        )
    sources = [ISSUER_SOURCES / n for n in ("package.json", "package-lock.json", "server.mjs")]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    cache = Path(os.environ.get("FASTSECURE_TEST_CACHE", Path.home() / ".cache" / "fastsecure"))
    target = cache / f"oidc-provider-{digest}"
    if not (target / "node_modules" / "oidc-provider").is_dir():
        staging = cache / f".oidc-provider-{digest}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in sources:
            shutil.copy(path, staging / path.name)
        try:
            subprocess.run(
                [str(npm), "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                cwd=staging,
                check=True,
                capture_output=True,
                timeout=300,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            service_unavailable(f"npm ci of oidc-provider failed: {exc}")
        try:
            staging.rename(target)
        except OSError:  # another run installed it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return target


def private_jwk(key: Any, algorithm: str, kid: str) -> dict[str, Any]:
    jwk = dict(get_default_algorithms()[algorithm].to_jwk(key, as_dict=True))
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


class NodeIssuer:
    """oidc-provider in a child process on a loopback port; restartable with new keys."""

    def __init__(self, directory: Path, workdir: Path, algorithm: str = "ES256") -> None:
        self.directory = directory
        self.workdir = workdir
        self.algorithm = algorithm
        self.port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self.keys: list[dict[str, Any]] = []
        self.private: dict[str, Any] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.add_key()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_key(self) -> str:
        """A new signing key, first in the set (oidc-provider signs with the first fitting)."""
        kid = secrets.token_urlsafe(8)
        key = generate_key(self.algorithm)
        self.private[kid] = key
        self.keys.insert(0, private_jwk(key, self.algorithm, kid))
        return kid

    def start(self) -> None:
        keys_file = self.workdir / f"keys-{self.port}.json"
        keys_file.write_text(json.dumps({"keys": self.keys}))
        env = {
            **os.environ,
            "PORT": str(self.port),
            "KEYS_FILE": str(keys_file),
            "SECRET": self.secret,
            "ALG": self.algorithm,
            "NODE_NO_WARNINGS": "1",
        }
        self.process = subprocess.Popen(
            [str(shutil.which("node")), "server.mjs"],
            cwd=self.directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                pytest.fail(f"oidc-provider exited: {error[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("oidc-provider did not start within 30s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def rotate(self) -> str:
        """Publish a new signing key (the old one stays published) and restart the issuer."""
        kid = self.add_key()
        self.stop()
        self.start()
        return kid

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.issuer}/__stats", timeout=5).json())

    def client_credentials(self, scope: str = "read", resource: str = API) -> str:
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            auth=("machine", self.secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def authorization_code(self, login: str = "alice", scope: str = "openid read") -> str:
        """Walk the login form of oidc-provider's development interactions, then redeem the code."""
        with httpx.Client(base_url=self.issuer, timeout=10) as browser:
            response = browser.get(
                "/auth",
                params={
                    "client_id": "webapp",
                    "response_type": "code",
                    "redirect_uri": REDIRECT_URI,
                    "scope": scope,
                    "resource": API,
                    "state": secrets.token_urlsafe(8),
                },
            )
            for _ in range(10):
                if response.status_code in (302, 303):
                    location = response.headers["location"]
                    if location.startswith(REDIRECT_URI):
                        break
                    response = browser.get(location)
                    continue
                # The development interactions: a login form, then possibly a consent form.
                form = re.search(
                    r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', response.text, re.S
                )
                assert form is not None, (response.status_code, response.text[:500])
                fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form[2]))
                if 'name="login"' in form[2]:
                    fields.update(login=login, password="any")
                response = browser.post(form[1], data=fields)
            location = response.headers.get("location", "")
            assert location.startswith(REDIRECT_URI), (response.status_code, response.text[:500])
            code = httpx.URL(location).params["code"]
        response = httpx.post(
            f"{self.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "resource": API,
            },
            auth=("webapp", self.secret),
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])
