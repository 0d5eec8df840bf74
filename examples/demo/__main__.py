"""``python -m demo``: serve the demo on 127.0.0.1:8000 with the local OpenID provider."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

import uvicorn

from .app import create_app
from .local_oidc import LOCAL_USERS, local_openid_provider
from .settings import DEFAULT_PORT, DemoSettings
from .users import DEMO_USERS


def port_in_use(host: str, port: int) -> OSError | None:
    """Whether uvicorn could listen on host:port; checked before anything starts or prints.

    Bound the way uvicorn binds (``SO_REUSEADDR``), so a port left in TIME_WAIT counts as
    free and one that another server listens on does not.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("FASTSECURE_DEMO_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("FASTSECURE_DEMO_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--oidc-port",
        type=int,
        default=int(os.environ.get("FASTSECURE_DEMO_OIDC_PORT", "0")),
        help="port of the local OpenID provider (default: any free one)",
    )
    parser.add_argument("--no-oidc", action="store_true", help="do not start the local provider")
    args = parser.parse_args(argv)

    url = f"http://{args.host}:{args.port}"
    busy = port_in_use(args.host, args.port)
    if busy is not None:
        print(
            f"FastSecure demo: cannot listen on {args.host}:{args.port}: {busy.strerror or busy}.\n"
            "Another program (another demo?) is using that port. Stop it, or pick another "
            "port: --port 8001 (or FASTSECURE_DEMO_PORT=8001).",
            file=sys.stderr,
        )
        return 2
    provider: AbstractContextManager[str | None] = (
        nullcontext(None) if args.no_oidc else local_openid_provider(args.host, args.oidc_port)
    )
    with provider as issuer:
        settings = DemoSettings.from_env(public_url=url, oidc_issuer=issuer)
        app = create_app(settings)
        store = "Redis at " + settings.redis_url if settings.redis_url else settings.database_path
        lines = [
            "",
            f"FastSecure demo: {url}",
            f"  Swagger UI:      {url}/docs",
            f"  State:           {store} (secrets in {settings.data_dir / 'secrets.json'})",
            f"  Cookies Secure:  {settings.secure_cookies}",
            "  Demo users (user name / password, scopes):",
            *(f"    {u} / {p}  {', '.join(s)}" for u, p, _, s in DEMO_USERS),
            "  API key (X-API-Key): demo-service-key",
        ]
        if issuer:
            subjects = ", ".join(user.sub for user in LOCAL_USERS)
            lines.append(f"  Local OpenID provider: {issuer} (users {subjects}, or any name)")
        for name, client in (("Google", settings.google), ("GitHub", settings.github)):
            state = "on" if client else "off (set its client id and secret)"
            lines.append(f"  {name} sign-in:  {state}")
        print("\n".join(lines) + "\n", flush=True)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
