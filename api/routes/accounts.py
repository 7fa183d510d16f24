"""Accounts: anonymous sign-up and login, sessions and tokens, API keys, the owner's profile.

Every change is an event appended to the log (``codetrackr.accounts``) before it is answered.
Logins answer with a short-lived access token (``token``, a JWT) and a rotating
``refresh_token`` (:mod:`accounts.sessions`). Key and session management needs a login token:
an API key pasted into an editor can neither mint keys nor end sessions. Profile changes take a
login token or a full-access API key (a read-only key is refused with 403).
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# (`Reader`, `Writer`, `LoggedIn`, ...) when the routes are declared.

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from accounts.credentials import (
    hash_secret,
    new_account_number,
    new_api_key,
    normalize_account_number,
)
from accounts.directory import new_event_id
from accounts.sessions import SessionRejected, SessionService, TokenPair
from accounts.state import MAX_KEYS_PER_USER, User
from api.deps import Directory, LoggedIn, Reader, Sessions, Writer, Writes, api_parts
from api.routes.account_forms import (
    AccountNumberIn,
    ChronovaProfileIn,
    CreateAccountIn,
    CreateKeyIn,
    LogoutIn,
    ProfileIn,
    RefreshIn,
    device_of,
    iso,
    json_body,
    key_view,
    parse,
    session_view,
    user_view,
    wakatime_user_view,
)
from http_edge.errors import ApiError, error_responses
from schemas.events import AccountCreated, ApiKeyCreated, ApiKeyRevoked


def token_answer(pair: TokenPair, user: User) -> dict[str, Any]:
    """What every login and refresh answers (``token`` is the access token)."""
    return {
        "token": pair.access_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
        "refresh_token": pair.refresh_token,
        "user_id": user.user_id,
        "username": user.username,
    }


def _key_limit() -> ApiError:
    return ApiError(
        409, f"at most {MAX_KEYS_PER_USER} API keys per user; delete one first", code="key_limit"
    )


router = APIRouter(tags=["accounts"])


async def start_session(sessions: SessionService, user: User, request: Request) -> TokenPair:
    pair = await sessions.start(user, method="anonymous", device=device_of(request))
    if pair is None:  # pragma: no cover - fresh random ids cannot clash
        raise ApiError(409, "could not start a session; retry")
    return pair


# ---- anonymous accounts -------------------------------------------------------------------


@router.post(
    "/auth/anonymous/create",
    status_code=201,
    summary="Create an anonymous account (keep the account number: it is your login)",
    responses=error_responses(400, 413, 503),
    openapi_extra=json_body(CreateAccountIn, required=False),
)
async def create_anonymous(
    request: Request, directory: Directory, sessions: Sessions, writes: Writes
) -> JSONResponse:
    body = await parse(request, CreateAccountIn, optional=True)
    for _ in range(5):
        number = new_account_number()
        event = AccountCreated(
            event_id=new_event_id(),
            user_id=new_event_id(),
            occurred_at=time.time(),
            username=f"anon-{secrets.token_hex(5)}",
            account_number_hash=hash_secret(number),
            timezone=body.timezone or "UTC",
        )
        if await writes.record(event):
            user = directory.state.users[event.user_id]
            pair = await start_session(sessions, user, request)
            return JSONResponse(
                {"account_number": number, **token_answer(pair, user)}, status_code=201
            )
    raise ApiError(409, "could not allocate a unique account; retry")  # pragma: no cover


@router.post(
    "/auth/anonymous/login",
    summary="Log in with an account number",
    responses=error_responses(400, 401, 413, 503),
    openapi_extra=json_body(AccountNumberIn),
)
async def login_anonymous(
    request: Request, directory: Directory, sessions: Sessions
) -> dict[str, Any]:
    body = await parse(request, AccountNumberIn)
    number = normalize_account_number(body.account_number)
    user = await directory.user_by_account_hash(hash_secret(number))
    if user is None:
        raise ApiError(401, "unknown account number")
    return token_answer(await start_session(sessions, user, request), user)


@router.post(
    "/auth/anonymous/verify",
    summary="Whether an account number exists (answers no token)",
    responses=error_responses(400, 413, 503),
    openapi_extra=json_body(AccountNumberIn),
)
async def verify_anonymous(request: Request, directory: Directory) -> dict[str, Any]:
    body = await parse(request, AccountNumberIn)
    number = normalize_account_number(body.account_number)
    user = await directory.user_by_account_hash(hash_secret(number))
    found = user is not None
    return {
        "valid": found,
        "message": "account number found" if found else "account number not found",
    }


# ---- tokens and sessions ------------------------------------------------------------------


@router.post(
    "/auth/refresh",
    summary="Exchange a refresh token for new tokens (the old refresh token is retired)",
    responses=error_responses(400, 401, 413, 503),
    openapi_extra=json_body(RefreshIn),
)
async def refresh(request: Request, sessions: Sessions) -> dict[str, Any]:
    body = await parse(request, RefreshIn)
    try:
        user, pair = await sessions.refresh(body.refresh_token)
    except SessionRejected as exc:
        raise ApiError(401, str(exc)) from None
    return token_answer(pair, user)


@router.post(
    "/auth/logout",
    summary="End this session (login token, or the session's refresh token in the body)",
    responses=error_responses(400, 401, 413, 503),
    openapi_extra=json_body(LogoutIn, required=False),
)
async def logout(request: Request, directory: Directory, sessions: Sessions) -> dict[str, Any]:
    body = await parse(request, LogoutIn, optional=True)
    if body.refresh_token is not None:
        session = await directory.session_by_refresh_hash(hash_secret(body.refresh_token.strip()))
        if session is None:
            raise ApiError(401, "unknown refresh token, or the session has ended")
    else:
        principal = await api_parts(request).guards.login(request)
        assert principal.session_id is not None
        session = await directory.session(principal.session_id)
        if session is None:  # pragma: no cover - the guard just found it
            raise ApiError(401, "the session has ended")
    await sessions.revoke(session, reason="logout")
    return {"message": "logged out"}


@router.get(
    "/api/v1/user/sessions",
    summary="Your logged-in devices",
    responses=error_responses(401),
)
async def list_sessions(principal: LoggedIn, directory: Directory) -> dict[str, Any]:
    mine = directory.sessions_of(principal.user.user_id)
    return {"sessions": [session_view(s, principal.session_id) for s in mine]}


@router.delete(
    "/api/v1/user/sessions/{session_id}",
    summary="Log a device out (its tokens stop working at once, in every process)",
    responses=error_responses(401, 404, 503),
)
async def revoke_session(
    session_id: str, principal: LoggedIn, directory: Directory, sessions: Sessions
) -> dict[str, Any]:
    session = directory.state.sessions.get(session_id)
    if session is None or session.user_id != principal.user.user_id:
        raise ApiError(404, "no such session")
    await sessions.revoke(session, reason="revoked")
    return {"message": "session revoked"}


# ---- the owner's profile ------------------------------------------------------------------


@router.get(
    "/api/v1/user/me",
    summary="The authenticated user's profile",
    responses=error_responses(401),
)
async def me(principal: Reader) -> dict[str, Any]:
    return user_view(principal.user)


@router.post(
    "/api/v1/user/profile/update",
    summary="Change profile fields (partial: omitted fields keep their values)",
    responses=error_responses(400, 401, 403, 409, 413, 503),
    openapi_extra=json_body(ProfileIn),
)
async def update_profile(request: Request, principal: Writer, writes: Writes) -> dict[str, Any]:
    changes = (await parse(request, ProfileIn)).changes()
    await writes.update_profile(principal.user, changes)
    return {"status": "updated"}


@router.patch(
    "/api/v1/users/current",
    summary="Chronova: change profile fields (partial); answers the updated user",
    responses=error_responses(400, 401, 403, 409, 413, 503),
    openapi_extra=json_body(ChronovaProfileIn),
)
async def patch_current(
    request: Request, principal: Writer, directory: Directory, writes: Writes
) -> dict[str, Any]:
    changes = (await parse(request, ChronovaProfileIn)).changes()
    await writes.update_profile(principal.user, changes)
    user = directory.state.users.get(principal.user.user_id, principal.user)
    return {"data": wakatime_user_view(user, private=True)}


# ---- API keys ---------------------------------------------------------------------------


@router.get("/api/v1/keys", summary="List your API keys", responses=error_responses(401))
async def list_keys(principal: LoggedIn, directory: Directory) -> dict[str, Any]:
    return {
        "keys": [
            key_view(k, directory.key_last_used(k.key_id))
            for k in directory.keys_of(principal.user.user_id)
        ]
    }


@router.post(
    "/api/v1/keys",
    summary="Create an API key (shown once); read_only keys cannot write",
    responses=error_responses(400, 401, 409, 413, 503),
    openapi_extra=json_body(CreateKeyIn, required=False),
)
async def create_key(
    request: Request, principal: LoggedIn, directory: Directory, writes: Writes
) -> dict[str, Any]:
    body = await parse(request, CreateKeyIn, optional=True)
    user_id = principal.user.user_id
    existing = directory.keys_of(user_id)
    if len(existing) >= MAX_KEYS_PER_USER:
        raise _key_limit()
    secret = new_api_key()
    event = ApiKeyCreated(
        event_id=new_event_id(),
        user_id=user_id,
        occurred_at=time.time(),
        key_id=new_event_id(),
        name=body.name or f"Key #{len(existing) + 1}",
        key_hash=hash_secret(secret),
        key_prefix=secret[:12],
        read_only=body.read_only,
    )
    if not await writes.record(event):
        raise _key_limit()
    return {
        "key": {
            "id": event.key_id,
            "name": event.name,
            "key": secret,
            "key_prefix": event.key_prefix,
            "read_only": event.read_only,
            "created_at": iso(event.occurred_at),
        }
    }


@router.delete(
    "/api/v1/keys/{key_id}",
    summary="Delete one of your API keys (refused from the next request on, everywhere)",
    responses=error_responses(401, 404, 503),
)
async def delete_key(
    key_id: str, principal: LoggedIn, directory: Directory, writes: Writes
) -> dict[str, Any]:
    owned = {k.key_id for k in directory.keys_of(principal.user.user_id)}
    if key_id not in owned:
        raise ApiError(404, "no such API key")
    await writes.record(
        ApiKeyRevoked(
            event_id=new_event_id(),
            user_id=principal.user.user_id,
            occurred_at=time.time(),
            key_id=key_id,
        )
    )
    return {"message": "API key deleted"}
