"""The instance's admin API (the usernames in ``CODETRACKR_ADMINS``), behind ``codetrackr admin``.

* ``GET /api/v1/admin/users``: every account, searchable by username, paged.
* ``POST /api/v1/admin/users/{username}/suspend`` (``{"reason": ...}``) and ``.../unsuspend``:
  :class:`~schemas.events.AccountSuspended` / ``AccountUnsuspended`` on the log; a suspended
  account's every request is refused (403 ``account_suspended``), its data untouched.
* ``GET /api/v1/admin/users/{username}/keys`` and ``DELETE .../keys/{key_id}``: a user's API keys
  (never their secrets) and revoking one (``ApiKeyRevoked``, as if the user had).

Plugin moderation is under ``/api/v1/admin/store/...`` (:mod:`api.routes.plugin_store`). Every
action is an event appended before the answer; an admin cannot suspend themselves. Callers
authenticate as for any write: a login token or a full-access API key of an admin account.
"""

# No `from __future__ import annotations`: FastAPI resolves the body models at runtime.

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from accounts.directory import AccountDirectory, new_event_id
from accounts.state import User
from api.deps import Directory, Plugins, Writer
from api.routes.account_forms import iso
from http_edge.auth import Principal
from http_edge.errors import ApiError, error_responses
from plugin_host.executor import PluginServices
from schemas.events import AccountSuspended, AccountUnsuspended, ApiKeyRevoked

router = APIRouter(tags=["admin"])
_ERRORS = error_responses(401, 403, 404, 503)


class SuspendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


def _admin(principal: Principal, services: PluginServices) -> None:
    if not services.policy.is_admin(principal.user.username):
        raise ApiError(403, "only the instance's admins (CODETRACKR_ADMINS) may do this")


async def _user(directory: AccountDirectory, username: str) -> User:
    user = await directory.user_by_username(username)
    if user is None:
        raise ApiError(404, f"no user {username!r}")
    return user


def _view(directory: AccountDirectory, user: User) -> dict[str, Any]:
    state = directory.state
    reason = state.suspended.get(user.user_id)
    return {
        "id": user.user_id,
        "username": user.username,
        "created_at": iso(user.created_at),
        "identity_provider": user.identity_provider,
        "suspended": reason is not None,
        "suspension_reason": reason,
        "api_keys": len(state.keys_of(user.user_id)),
        "sessions": len(state.sessions_of(user.user_id)),
        "plugins_published": len(state.plugins.published_by(user.user_id)),
    }


@router.get(
    "/api/v1/admin/users",
    summary="Every account, oldest first; `q` matches usernames (admins)",
    responses=_ERRORS,
)
async def list_users(
    principal: Writer,
    services: Plugins,
    directory: Directory,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    _admin(principal, services)
    needle = q.casefold()
    users = sorted(
        (u for u in directory.state.users.values() if needle in u.username.casefold()),
        key=lambda u: (u.created_at, u.user_id),
    )
    return {
        "total": len(users),
        "users": [_view(directory, u) for u in users[offset : offset + limit]],
    }


@router.post(
    "/api/v1/admin/users/{username}/suspend",
    summary="Suspend an account: its requests are refused until unsuspended (admins)",
    responses=error_responses(400, 401, 403, 404, 503),
)
async def suspend(
    username: str,
    principal: Writer,
    services: Plugins,
    directory: Directory,
    body: SuspendBody | None = None,
) -> dict[str, Any]:
    _admin(principal, services)
    user = await _user(directory, username)
    if user.user_id == principal.user.user_id:
        raise ApiError(400, "an admin cannot suspend their own account")
    reason = body.reason.strip() if body is not None else ""
    if directory.state.suspended.get(user.user_id) != reason:
        await directory.record(
            AccountSuspended(
                event_id=new_event_id(),
                user_id=user.user_id,
                occurred_at=time.time(),
                by=principal.user.user_id,
                reason=reason,
            )
        )
    return {"user": _view(directory, user)}


@router.post(
    "/api/v1/admin/users/{username}/unsuspend",
    summary="Lift an account's suspension (admins)",
    responses=_ERRORS,
)
async def unsuspend(
    username: str, principal: Writer, services: Plugins, directory: Directory
) -> dict[str, Any]:
    _admin(principal, services)
    user = await _user(directory, username)
    if user.user_id in directory.state.suspended:
        await directory.record(
            AccountUnsuspended(
                event_id=new_event_id(),
                user_id=user.user_id,
                occurred_at=time.time(),
                by=principal.user.user_id,
            )
        )
    return {"user": _view(directory, user)}


@router.get(
    "/api/v1/admin/users/{username}/keys",
    summary="A user's API keys, without their secrets (admins)",
    responses=_ERRORS,
)
async def list_keys(
    username: str, principal: Writer, services: Plugins, directory: Directory
) -> dict[str, Any]:
    _admin(principal, services)
    user = await _user(directory, username)
    state = directory.state
    return {
        "keys": [
            {
                "id": key.key_id,
                "name": key.name,
                "key_prefix": key.key_prefix,
                "read_only": key.read_only,
                "created_at": iso(key.created_at),
                "last_used_at": (
                    iso(state.key_last_used[key.key_id])
                    if key.key_id in state.key_last_used
                    else None
                ),
            }
            for key in state.keys_of(user.user_id)
        ]
    }


@router.delete(
    "/api/v1/admin/users/{username}/keys/{key_id}",
    summary="Revoke a user's API key (admins)",
    responses=_ERRORS,
)
async def revoke_key(
    username: str, key_id: str, principal: Writer, services: Plugins, directory: Directory
) -> dict[str, Any]:
    _admin(principal, services)
    user = await _user(directory, username)
    if key_id not in {k.key_id for k in directory.state.keys_of(user.user_id)}:
        raise ApiError(404, "no such API key")
    await directory.record(
        ApiKeyRevoked(
            event_id=new_event_id(), user_id=user.user_id, occurred_at=time.time(), key_id=key_id
        )
    )
    return {"message": "API key revoked"}
