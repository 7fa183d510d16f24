"""How a browser holds its login: the refresh token in an HttpOnly cookie, the access token in
the page's memory (sessionStorage), CSRF checked on every cookie-authenticated request.

* ``POST /web/session`` ``{"refresh_token"}``: adopt a login made through the JSON API
  (``/auth/anonymous/create``, ``/login``, an OAuth return). The refresh token is rotated at once
  (the one the page saw is retired) and the new one is set as the ``ct_refresh`` cookie
  (HttpOnly, SameSite=Strict, path ``/web/session``): page scripts never hold a refresh token
  past this call. Answers the access token.
* ``POST /web/session/refresh``: a fresh access token from the cookie (rotating it). Without a
  cookie, or with one whose session ended, it answers 200 ``{"signed_in": false}`` and clears
  the cookies: being signed out is a state of the page, not an error.
* ``POST /web/session/logout``: ends the cookie's session and clears the cookies.

Each needs the header ``X-CSRF-Token`` equal to the ``ct_csrf`` cookie (double submit; the page
responses set that cookie), and refuses a request whose ``Origin`` is another site's. A foreign
site can neither read the cookie nor send the header without a CORS preflight, which this app
never grants.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError

from accounts.credentials import hash_secret
from accounts.directory import AccountDirectory
from accounts.sessions import SessionRejected, SessionService, TokenPair
from accounts.state import User
from http_edge.body import read_json
from http_edge.errors import ApiError, describe_validation_errors

REFRESH_COOKIE = "ct_refresh"
CSRF_COOKIE = "ct_csrf"
CSRF_HEADER = "x-csrf-token"
SESSION_PATH = "/web/session"
BODY_LIMIT = 4096


class AdoptIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def is_secure(request: Request) -> bool:
    """Mark cookies ``Secure`` when the browser reached us over https (directly or through a
    proxy that says so); on plain http a Secure cookie would never come back."""
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        path="/",
        samesite="strict",
        secure=is_secure(request),
        httponly=False,  # the page reads it to echo it in the header
    )


def check_csrf(request: Request) -> None:
    """Refuse a cookie-authenticated request that did not come from one of our pages."""
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        if origin.split("://", 1)[-1] != host:
            raise ApiError(403, "cross-site request refused", code="forbidden")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise ApiError(
            403, "missing or wrong CSRF token (X-CSRF-Token must echo ct_csrf)", code="forbidden"
        )


def _signed_in(request: Request, pair: TokenPair, user: User, max_age: int) -> JSONResponse:
    response = JSONResponse(
        {
            "signed_in": True,
            "token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
            "user_id": user.user_id,
            "username": user.username,
        },
        headers={"Cache-Control": "no-store"},
    )
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=max_age,
        path=SESSION_PATH,
        samesite="strict",
        secure=is_secure(request),
        httponly=True,
    )
    return response


def _signed_out() -> JSONResponse:
    response = JSONResponse({"signed_in": False}, headers={"Cache-Control": "no-store"})
    response.delete_cookie(REFRESH_COOKIE, path=SESSION_PATH, samesite="strict", httponly=True)
    return response


def build_session_router(
    sessions: SessionService, directory: AccountDirectory, *, refresh_ttl_s: int
) -> APIRouter:
    router = APIRouter(prefix=SESSION_PATH, include_in_schema=False)

    @router.post("")
    async def adopt(request: Request) -> JSONResponse:
        check_csrf(request)
        try:
            body = AdoptIn.model_validate(await read_json(request, BODY_LIMIT))
        except ValidationError as exc:
            raise ApiError(
                400,
                "a JSON object with refresh_token is required",
                code="validation_error",
                details={"fields": describe_validation_errors(list(exc.errors()))},
            ) from None
        try:
            user, pair = await sessions.refresh(body.refresh_token)
        except SessionRejected as exc:
            raise ApiError(401, str(exc)) from None
        return _signed_in(request, pair, user, refresh_ttl_s)

    @router.post("/refresh")
    async def refresh(request: Request) -> JSONResponse:
        check_csrf(request)
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            return _signed_out()
        try:
            user, pair = await sessions.refresh(token)
        except SessionRejected:
            return _signed_out()
        return _signed_in(request, pair, user, refresh_ttl_s)

    @router.post("/logout")
    async def logout(request: Request) -> JSONResponse:
        check_csrf(request)
        token = request.cookies.get(REFRESH_COOKIE)
        if token:
            session = await directory.session_by_refresh_hash(hash_secret(token.strip()))
            if session is not None:
                await sessions.revoke(session, reason="logout")
        return _signed_out()

    return router


__all__ = [
    "CSRF_COOKIE",
    "REFRESH_COOKIE",
    "build_session_router",
    "check_csrf",
    "new_csrf_token",
    "set_csrf_cookie",
]
