"""The one table that turns a :class:`~fastsecure.decision.Decision` into an answer.

Status, safe detail, ``WWW-Authenticate`` (RFC 9110 11.6.1, with RFC 6750 section 3
``error`` parameters on Bearer challenges), ``Retry-After``, and the WebSocket close code:
every consumer answers through :func:`http_answer` or :func:`websocket_close`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Send

from ..decision import INSUFFICIENT_USER_AUTHENTICATION, Decision, Outcome
from ..exceptions import RateLimitedError, StoreUnavailableError
from ..results import FailureReason

logger = logging.getLogger("fastsecure")

STATUS: dict[Outcome, int] = {
    Outcome.ALLOW: 200,
    Outcome.BAD_REQUEST: 400,
    Outcome.UNAUTHENTICATED: 401,
    Outcome.FORBIDDEN: 403,
    Outcome.RATE_LIMITED: 429,
    Outcome.UNAVAILABLE: 503,
}
"""Outcome -> HTTP status: each outcome has exactly one."""

WEBSOCKET_CLOSE: dict[Outcome, int] = {
    Outcome.BAD_REQUEST: 1008,  # policy violation
    Outcome.UNAUTHENTICATED: 1008,
    Outcome.FORBIDDEN: 1008,
    Outcome.RATE_LIMITED: 1013,  # try again later
    Outcome.UNAVAILABLE: 1013,
}
"""Outcome -> WebSocket close code (RFC 6455 7.4.1)."""

DETAILS: dict[str, str] = {
    FailureReason.MISSING_CREDENTIALS: "Not authenticated",
    FailureReason.NO_REQUIREMENT: "Not authenticated",
    FailureReason.INVALID_CREDENTIALS: "Invalid authentication credentials",
    FailureReason.INSUFFICIENT_SCOPE: "Insufficient scope",
    FailureReason.FORBIDDEN: "Forbidden",
    "path_not_judgeable": "Malformed request path",
    "ambiguous_credentials": "Ambiguous credentials: each may be sent once",
    "store_unavailable": "Authentication service unavailable",
    "rate_limited": "Too many attempts",
    "insufficient_user_authentication": "Additional authentication required",
}
"""Reason -> the detail sent to the client: what a client needs, never the credential."""

ERROR_BODY_SCHEMA: dict[str, Any] = {
    "title": "AuthError",
    "type": "object",
    "properties": {"detail": {"title": "Detail", "type": "string"}},
    "required": ["detail"],
}
"""The JSON body of every refusal, as an OpenAPI schema."""


@dataclass(frozen=True, slots=True)
class HTTPAnswer:
    """A refusal as HTTP: status, JSON detail and headers."""

    status_code: int
    detail: str
    headers: dict[str, str]

    def exception(self) -> HTTPException:
        """As the ``HTTPException`` a dependency raises."""
        return HTTPException(self.status_code, self.detail, headers=self.headers or None)


def step_up_challenge(challenge: str, max_age: float | None = None) -> str:
    """``challenge`` marked as an RFC 9470 step-up: "authenticate again, with more factors".

    What the table below adds to every challenge of an ``insufficient_user_authentication``
    refusal; public so an app's own 401 for the same reason says it the same way.
    """
    params = f'error="{INSUFFICIENT_USER_AUTHENTICATION}"'
    if max_age is not None:
        params += f", max_age={int(max_age)}"
    return _with_params(challenge, params)


def is_step_up(www_authenticate: str) -> bool:
    """Whether a ``WWW-Authenticate`` value asks for a step-up (see :func:`step_up_challenge`)."""
    return f'error="{INSUFFICIENT_USER_AUTHENTICATION}"' in www_authenticate


def _with_params(challenge: str, params: str) -> str:
    scheme, _, existing = challenge.partition(" ")
    return f"{scheme} {existing}, {params}" if existing else f"{scheme} {params}"


def _www_authenticate(decision: Decision) -> str:
    """The challenges, each once, with RFC 6750 error parameters on Bearer ones.

    ``error="invalid_token"`` when that provider's credential was presented and refused;
    ``error="insufficient_scope"`` with the missing ``scope`` when it lacked scopes; no
    error when nothing was presented to it (RFC 6750 section 3.1). A step-up refusal
    (RFC 9470) marks every challenge, a session's ``Cookie`` one too: it is about the
    user's login, not one scheme, and a session-only client must be able to tell it apart.
    """
    status = {p.provider: p.status for p in decision.providers}
    step_up = decision.reason == INSUFFICIENT_USER_AUTHENTICATION  # RFC 9470 section 3
    max_age = decision.requirement.max_age if decision.requirement is not None else None
    seen: dict[str, None] = {}
    for provider, challenge in decision.challenges:
        bearer = challenge.partition(" ")[0].lower() == "bearer"
        if bearer and status.get(provider) == "rejected":
            challenge = _with_params(challenge, 'error="invalid_token"')
        elif bearer and status.get(provider) == "insufficient_scope" and decision.missing_scopes:
            scope = " ".join(decision.missing_scopes)
            challenge = _with_params(challenge, f'error="insufficient_scope", scope="{scope}"')
        elif step_up:
            challenge = step_up_challenge(challenge, max_age)
        elif bearer and decision.reason == "ambiguous_credentials":
            challenge = _with_params(challenge, 'error="invalid_request"')
        seen[challenge] = None
    return ", ".join(seen) or "Bearer"


def http_answer(decision: Decision) -> HTTPAnswer:
    """How a refusing Decision is answered over HTTP."""
    status = STATUS[decision.outcome]
    detail = decision.detail or DETAILS.get(decision.reason or "", "Not authenticated")
    headers: dict[str, str] = {}
    # 401 always challenges; 403 only for a Bearer scope shortfall, 400 only for a malformed
    # Bearer credential (invalid_request), as RFC 6750 section 3.1 has it.
    scope_shortfall = status == 403 and bool(decision.missing_scopes) and _has_bearer(decision)
    malformed = status == 400 and decision.reason == "ambiguous_credentials"
    if status == 401 or scope_shortfall or (malformed and _has_bearer(decision)):
        headers["WWW-Authenticate"] = _www_authenticate(decision)
    if decision.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(decision.retry_after)))
    return HTTPAnswer(status, detail, headers)


def _has_bearer(decision: Decision) -> bool:
    return any(c.partition(" ")[0].lower() == "bearer" for _, c in decision.challenges)


def websocket_close(decision: Decision) -> tuple[int, str]:
    """How a refusing Decision closes a WebSocket: (code, reason)."""
    return (
        WEBSOCKET_CLOSE[decision.outcome],
        decision.detail or DETAILS.get(decision.reason or "", "Not authenticated"),
    )


async def send_answer(decision: Decision, scope_type: str, send: Send) -> None:
    """Answer a refusing Decision on a raw ASGI connection (the middleware's path)."""
    if scope_type == "websocket":
        code, reason = websocket_close(decision)
        await send({"type": "websocket.close", "code": code, "reason": reason})
        return
    answer = http_answer(decision)
    body = json.dumps({"detail": answer.detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
    ]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json(decision: Decision) -> Response:
    answer = http_answer(decision)
    return JSONResponse({"detail": answer.detail}, answer.status_code, headers=answer.headers)


async def store_unavailable_handler(request: Request, exc: Exception) -> Response:
    """``StoreUnavailableError`` raised by a route (login, refresh, logout) -> 503."""
    logger.warning(
        "fastsecure: store unavailable in %s: %s",
        request.url.path,
        type(exc.__cause__ or exc).__name__,
    )
    return _json(Decision(Outcome.UNAVAILABLE, reason="store_unavailable", retry_after=5.0))


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    """``RateLimitedError`` raised by a route -> 429 with ``Retry-After``."""
    retry = exc.retry_after if isinstance(exc, RateLimitedError) else 1.0
    return _json(Decision(Outcome.RATE_LIMITED, reason="rate_limited", retry_after=retry))


def install_exception_handlers(app: Any) -> None:
    """Answer FastSecure's store and rate-limit errors raised by the app's own routes.

    ``install_exception_handlers(app)``: a login, refresh or logout route that meets a
    store outage answers 503 with ``Retry-After`` instead of 500. The auth manager's
    ``install(app)`` calls this.
    """
    app.add_exception_handler(StoreUnavailableError, store_unavailable_handler)
    app.add_exception_handler(RateLimitedError, rate_limited_handler)


__all__ = [
    "DETAILS",
    "ERROR_BODY_SCHEMA",
    "STATUS",
    "WEBSOCKET_CLOSE",
    "HTTPAnswer",
    "http_answer",
    "install_exception_handlers",
    "is_step_up",
    "send_answer",
    "step_up_challenge",
    "websocket_close",
]
