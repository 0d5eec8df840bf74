"""An optional JSON router over the flows, for apps that want endpoints ready-made.

Mount it with ``app.include_router(password_router(accounts), prefix="/auth")``. Refusals
follow the project's table: 400 for a bad link, 401 for a failed login, 403 for a wrong
current password, 422 for a password the policy refuses, 429 with ``Retry-After`` for a
rate limit, 503 when a store is down. Answers that could reveal an account are identical
whether it exists or not.
"""

# No ``from __future__ import annotations``: FastAPI must see the dependency in ``/change``'s
# signature as an object, and it names the router's own manager.

import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel, Field

from fastsecure import AuthenticationResult, RateLimitedError, StoreUnavailableError
from fastsecure.ratelimit import ClientAddress

from .flows import (
    InvalidTokenError,
    LoginRefusedError,
    PasswordAccounts,
    WrongPasswordError,
)
from .policy import PasswordRejectedError

ACCEPTED = "If the address can be used, a message is on its way."
"""The one answer to register, resend and forgot, whatever the account's state."""

DEVICE_COOKIE = "__Host-fastsecure_device"


class RegisterBody(BaseModel):
    login: str = Field(max_length=320)
    password: str = Field(max_length=4096)
    email: str | None = Field(default=None, max_length=320)


class LoginBody(BaseModel):
    login: str = Field(max_length=320)
    password: str = Field(max_length=4096)


class LoginIdBody(BaseModel):
    login: str = Field(max_length=320)


class TokenBody(BaseModel):
    token: str = Field(max_length=200)


class ResetBody(BaseModel):
    token: str = Field(max_length=200)
    password: str = Field(max_length=4096)


class ChangeBody(BaseModel):
    current_password: str = Field(max_length=4096)
    new_password: str = Field(max_length=4096)


def http_error(exc: Exception) -> HTTPException:
    """The HTTP answer to a flow's refusal (anything else is re-raised by the caller)."""
    if isinstance(exc, RateLimitedError):
        return HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "Too many attempts; try again later.",
            headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
        )
    if isinstance(exc, StoreUnavailableError):
        return HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Authentication service unavailable",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, PasswordRejectedError):
        # 422 Unprocessable Content (RFC 9110 15.5.21): Starlette renamed the constant.
        return HTTPException(422, {"reason": exc.reason, "message": str(exc)})
    if isinstance(exc, InvalidTokenError):
        return HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))
    if isinstance(exc, WrongPasswordError):
        return HTTPException(status.HTTP_403_FORBIDDEN, str(exc))
    if isinstance(exc, LoginRefusedError):
        detail = "E-mail address not verified" if exc.unverified else "Wrong login or password"
        return HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Password"}
        )
    raise exc


def password_router(
    accounts: PasswordAccounts,
    *,
    client_address: Callable[[Request], str] | None = None,
    secure_cookies: bool = True,
) -> APIRouter:
    """The flows as JSON endpoints.

    ``/register``, ``/verify``, ``/verify/resend``, ``/forgot``, ``/reset``, ``/login`` and
    ``/change``.

    ``/login`` answers with what the issuing provider gives: it sets the session cookie
    when the provider has ``set_cookie``, and returns tokens when it issued some.
    ``/change`` needs the caller authenticated by the path's requirement
    (``requires_auth``), so add one for it.

    Args:
        accounts: the flows.
        client_address: the client's address; ``ClientAddress()`` (the socket peer) by
            default. Name your proxies: ``ClientAddress(["10.0.0.0/8"])``.
        secure_cookies: the device cookie's ``Secure`` flag (and ``__Host-`` prefix).
    """
    # Every flow is rate limited (and a store outage is a 503): say so in OpenAPI.
    limited: dict[int | str, dict[str, Any]] = {
        429: {
            "description": "Too many attempts.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        503: {
            "description": "The account store is unavailable.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    }
    router = APIRouter(tags=["password"], responses=limited)
    address = client_address or ClientAddress()
    device_cookie = DEVICE_COOKIE if secure_cookies else "fastsecure_device"
    manager = accounts.manager

    async def run(work: Any) -> Any:
        try:
            return await work
        except Exception as exc:
            raise http_error(exc) from None

    @router.post("/register", status_code=status.HTTP_202_ACCEPTED)
    async def register(body: RegisterBody, request: Request) -> dict[str, str]:
        """Create an account and mail a verification link (same answer if it exists)."""
        await run(
            accounts.register(
                body.login, body.password, email=body.email, client_ip=address(request)
            )
        )
        return {"detail": ACCEPTED}

    @router.post("/verify")
    async def verify(body: TokenBody, request: Request) -> dict[str, bool]:
        """Use a verification link's token."""
        await run(accounts.verify_email(body.token, client_ip=address(request)))
        return {"verified": True}

    @router.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED)
    async def resend(body: LoginIdBody, request: Request) -> dict[str, str]:
        """Mail a new verification link (same answer whatever the account's state)."""
        await run(accounts.resend_verification(body.login, client_ip=address(request)))
        return {"detail": ACCEPTED}

    @router.post("/forgot", status_code=status.HTTP_202_ACCEPTED)
    async def forgot(body: LoginIdBody, request: Request) -> dict[str, str]:
        """Mail a reset link (same answer whether the account exists)."""
        await run(accounts.forgot_password(body.login, client_ip=address(request)))
        return {"detail": ACCEPTED}

    @router.post("/reset")
    async def reset(body: ResetBody, request: Request) -> dict[str, bool]:
        """Set a new password with a reset link's token; every session and token family ends."""
        await run(accounts.reset_password(body.token, body.password, client_ip=address(request)))
        return {"reset": True}

    @router.post("/login")
    async def login(body: LoginBody, request: Request, response: Response) -> dict[str, Any]:
        """Check the password and issue the credential (session cookie or tokens)."""
        client = address(request)
        issued: AuthenticationResult = await run(
            accounts.login(
                body.login,
                body.password,
                client_ip=client,
                device=request.cookies.get(device_cookie),
                issue_data={
                    "ip_address": client,
                    "user_agent": request.headers.get("user-agent"),
                },
            )
        )
        issuer = manager.get_provider(issued.provider or accounts.issue_with)
        set_cookie = getattr(issuer, "set_cookie", None)
        if callable(set_cookie):
            set_cookie(response, issued)
        token = accounts.device_token(body.login)
        if token is not None:
            response.set_cookie(
                device_cookie,
                token,
                max_age=90 * 86400,
                path="/",
                secure=secure_cookies,
                httponly=True,
                samesite="strict",
            )
        answer: dict[str, Any] = {"user_id": issued.user_id}
        if issued.access_token:
            answer["access_token"] = issued.access_token
            answer["token_type"] = "bearer"  # noqa: S105 - the scheme's name
        if issued.refresh_token:
            answer["refresh_token"] = issued.refresh_token
        return answer

    @router.post("/change")
    async def change(
        body: ChangeBody,
        auth: Annotated[AuthenticationResult, Depends(manager.requires_auth)],
    ) -> dict[str, bool]:
        """Change the password (the current one is needed); every login of the user ends."""
        if auth.user_id is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Not authenticated")
        await run(accounts.change_password(auth.user_id, body.current_password, body.new_password))
        return {"changed": True}

    return router


__all__ = ["ACCEPTED", "DEVICE_COOKIE", "http_error", "password_router"]
