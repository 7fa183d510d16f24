"""Just enough accounts to use CodeTrackr: anonymous sign-up and login, API keys, the profile.

Every change is an event appended to the log (``codetrackr.accounts``) before it is answered.
Key management needs a login token (JWT): an API key pasted into an editor cannot mint or delete
keys, so a leaked editor key cannot lock its owner out.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases (`CurrentPrincipal`) when the routes are declared.

import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from accounts.credentials import (
    TokenIssuer,
    hash_secret,
    new_account_number,
    new_api_key,
    normalize_account_number,
)
from accounts.directory import AccountDirectory, new_event_id
from accounts.state import (
    MAX_KEYS_PER_USER,
    MAX_TIMEOUT_MINUTES,
    MIN_TIMEOUT_MINUTES,
    ApiKey,
    User,
)
from eventlog.port import LogUnavailable
from http_edge.auth import Principal
from http_edge.body import read_json
from http_edge.errors import ApiError, describe_validation_errors, error_responses
from schemas.events import (
    AccountCreated,
    AccountEvent,
    ApiKeyCreated,
    ApiKeyRevoked,
    ProfileUpdated,
)
from schemas.heartbeat import is_timezone

Authenticate = Callable[[Request], Awaitable[Principal]]
_SMALL_BODY = 16 * 1024
M = TypeVar("M", bound=BaseModel)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _check_timezone(value: str | None) -> str | None:
    if value is not None and not is_timezone(value):
        raise ValueError("not a timezone of the IANA database, e.g. Europe/Berlin")
    return value


class CreateAccountIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    timezone: str | None = None
    _tz = field_validator("timezone")(_check_timezone)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    account_number: str = Field(min_length=1, max_length=64)


class CreateKeyIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=100)


class ProfileIn(BaseModel):
    """Profile fields to change; omitted fields keep their values."""

    model_config = ConfigDict(extra="ignore")
    timezone: str | None = None
    timeout: int | None = Field(
        default=None,
        ge=MIN_TIMEOUT_MINUTES,
        le=MAX_TIMEOUT_MINUTES,
        description="keystroke timeout in minutes: gaps shorter than this count as coding time",
    )
    writes_only: bool | None = Field(
        default=None, description="count only the time that follows a saved (written) file"
    )
    is_public: bool | None = Field(
        default=None, description="others may read your stats, profile, cards and badges"
    )
    profile_show_languages: bool | None = None
    profile_show_projects: bool | None = None
    profile_show_activity: bool | None = None
    profile_show_plugins: bool | None = None
    profile_show_streak: bool | None = None
    available_for_hire: bool | None = None
    show_in_leaderboard: bool | None = Field(
        default=None, description="rank me on the weekly leaderboards (needs is_public)"
    )
    country: str | None = Field(
        default=None,
        pattern=r"^([A-Za-z]{2})?$",
        description='two-letter country code (ISO 3166-1 alpha-2); "" clears it',
    )
    _tz = field_validator("timezone")(_check_timezone)

    @field_validator("country")
    @classmethod
    def _upper(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    def changes(self) -> dict[str, Any]:
        """The changed fields under their event names (``timeout`` is ``timeout_minutes``)."""
        values = self.model_dump(exclude_none=True)
        if "timeout" in values:
            values["timeout_minutes"] = values.pop("timeout")
        return values


def _json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """OpenAPI for a body read by :func:`_parse` (FastAPI cannot see it)."""
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": required, "content": content}}


async def _parse(request: Request, model: type[M], *, optional: bool = False) -> M:
    has_body = request.headers.get("content-length") not in (None, "0")
    if optional and not has_body:
        return model()
    body = await read_json(request, _SMALL_BODY)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = describe_validation_errors(list(exc.errors()))
        path, problem = next(iter(fields.items()))
        raise ApiError(
            400, f"invalid {path}: {problem}", code="validation_error", details={"fields": fields}
        ) from None


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.user_id,
        "username": user.username,
        "display_name": None,
        "email": None,
        "avatar_url": None,
        "plan": "free",
        "is_public": user.is_public,
        "is_admin": False,
        "bio": None,
        "website": None,
        "profile_show_languages": user.profile_show_languages,
        "profile_show_projects": user.profile_show_projects,
        "profile_show_activity": user.profile_show_activity,
        "profile_show_plugins": user.profile_show_plugins,
        "profile_show_streak": user.profile_show_streak,
        "available_for_hire": user.available_for_hire,
        "country": user.country,
        "show_in_leaderboard": user.show_in_leaderboard,
        "timezone": user.timezone,
        "timeout": user.timeout_minutes,
        "writes_only": user.writes_only,
        "created_at": _iso(user.created_at),
    }


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "last_used_at": None,
        "created_at": _iso(key.created_at),
    }


def build_accounts_router(
    authenticate: Authenticate,
    authenticate_login: Authenticate,
    directory: AccountDirectory,
    tokens: TokenIssuer,
) -> APIRouter:
    router = APIRouter(tags=["accounts"])
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
    LoggedIn = Annotated[Principal, Depends(authenticate_login)]

    async def record(event: AccountEvent) -> bool:
        try:
            return await directory.record(event)
        except LogUnavailable:
            raise ApiError(
                503,
                "the event log is unavailable; nothing was changed",
                headers={"Retry-After": "5"},
            ) from None

    @router.post(
        "/auth/anonymous/create",
        status_code=201,
        summary="Create an anonymous account",
        responses=error_responses(400, 413, 503),
        openapi_extra=_json_body(CreateAccountIn, required=False),
    )
    async def create_anonymous(request: Request) -> JSONResponse:
        body = await _parse(request, CreateAccountIn, optional=True)
        for _ in range(5):
            number = new_account_number()
            user_id = new_event_id()
            event = AccountCreated(
                event_id=new_event_id(),
                user_id=user_id,
                occurred_at=time.time(),
                username=f"anon-{secrets.token_hex(5)}",
                account_number_hash=hash_secret(number),
                timezone=body.timezone or "UTC",
            )
            if await record(event):
                return JSONResponse(
                    {
                        "account_number": number,
                        "token": tokens.issue(user_id),
                        "user_id": user_id,
                        "username": event.username,
                    },
                    status_code=201,
                )
        raise ApiError(409, "could not allocate a unique account; retry")  # pragma: no cover

    @router.post(
        "/auth/anonymous/login",
        summary="Log in with an account number",
        responses=error_responses(400, 401, 413),
        openapi_extra=_json_body(LoginIn),
    )
    async def login_anonymous(request: Request) -> dict[str, Any]:
        body = await _parse(request, LoginIn)
        number = normalize_account_number(body.account_number)
        user = await directory.user_by_account_hash(hash_secret(number))
        if user is None:
            raise ApiError(401, "unknown account number")
        return {
            "token": tokens.issue(user.user_id),
            "user_id": user.user_id,
            "username": user.username,
        }

    @router.get(
        "/api/v1/user/me",
        summary="The authenticated user's profile",
        responses=error_responses(401),
    )
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return user_view(principal.user)

    @router.post(
        "/api/v1/user/profile/update",
        summary="Change profile fields (partial: omitted fields keep their values)",
        responses=error_responses(400, 401, 413, 503),
        openapi_extra=_json_body(ProfileIn),
    )
    async def update_profile(request: Request, principal: LoggedIn) -> dict[str, Any]:
        changes = (await _parse(request, ProfileIn)).changes()
        if changes:
            await record(
                ProfileUpdated(
                    event_id=new_event_id(),
                    user_id=principal.user.user_id,
                    occurred_at=time.time(),
                    **changes,
                )
            )
        return {"status": "updated"}

    @router.get("/api/v1/keys", summary="List your API keys", responses=error_responses(401))
    async def list_keys(principal: LoggedIn) -> dict[str, Any]:
        return {"keys": [key_view(k) for k in directory.keys_of(principal.user.user_id)]}

    @router.post(
        "/api/v1/keys",
        summary="Create an API key (shown once)",
        responses=error_responses(400, 401, 409, 413, 503),
        openapi_extra=_json_body(CreateKeyIn, required=False),
    )
    async def create_key(request: Request, principal: LoggedIn) -> dict[str, Any]:
        body = await _parse(request, CreateKeyIn, optional=True)
        user_id = principal.user.user_id
        existing = directory.keys_of(user_id)
        if len(existing) >= MAX_KEYS_PER_USER:
            raise ApiError(
                409,
                f"at most {MAX_KEYS_PER_USER} API keys per user; delete one first",
                code="key_limit",
            )
        secret = new_api_key()
        event = ApiKeyCreated(
            event_id=new_event_id(),
            user_id=user_id,
            occurred_at=time.time(),
            key_id=new_event_id(),
            name=body.name or f"Key #{len(existing) + 1}",
            key_hash=hash_secret(secret),
            key_prefix=secret[:12],
        )
        if not await record(event):
            raise ApiError(
                409,
                f"at most {MAX_KEYS_PER_USER} API keys per user; delete one first",
                code="key_limit",
            )
        return {
            "key": {
                "id": event.key_id,
                "name": event.name,
                "key": secret,
                "key_prefix": event.key_prefix,
                "created_at": _iso(event.occurred_at),
            }
        }

    @router.delete(
        "/api/v1/keys/{key_id}",
        summary="Delete one of your API keys",
        responses=error_responses(401, 404, 503),
    )
    async def delete_key(key_id: str, principal: LoggedIn) -> dict[str, Any]:
        owned = {k.key_id for k in directory.keys_of(principal.user.user_id)}
        if key_id not in owned:
            raise ApiError(404, "no such API key")
        await record(
            ApiKeyRevoked(
                event_id=new_event_id(),
                user_id=principal.user.user_id,
                occurred_at=time.time(),
                key_id=key_id,
            )
        )
        return {"message": "API key deleted"}

    return router
