"""The local OpenID provider the demo starts itself, so OAuth works with no outside account.

It is `oidc-provider-mock` (a real authorization server built on authlib) served by
werkzeug in a background thread on a loopback port. Its login page asks for a subject
("sub"); two users are predefined with a name and a verified email.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

with warnings.catch_warnings(record=True):
    # authlib forces its deprecation notices to "always"; recording them keeps them quiet.
    import oidc_provider_mock  # type: ignore[import-untyped]

LOCAL_USERS = (
    oidc_provider_mock.User(
        sub="carol",
        claims={"email": "carol@example.org", "email_verified": True, "name": "Carol (OpenID)"},
    ),
    oidc_provider_mock.User(
        sub="dave",
        claims={"email": "dave@example.org", "email_verified": True, "name": "Dave (OpenID)"},
    ),
)


@contextmanager
def local_openid_provider(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve the mock OpenID provider until the block ends; yields its issuer URL.

    The issuer is the URL the provider is reached at (the mock derives ``iss`` from the
    request's host), so the app and the browser must use the same ``host``.
    """
    app = oidc_provider_mock.app(require_nonce=True, user_claims=LOCAL_USERS)
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
