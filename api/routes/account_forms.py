"""What the account routes read and answer: request bodies, views, and writes to the log.

Bodies are parsed with :func:`parse` (size-limited, 400 ``validation_error`` naming each bad
field). :class:`AccountWrites` appends account events and turns the log's answers into HTTP ones
(409 when the log's order gave a username to someone else; an unavailable log is the app's 503).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from accounts.directory import AccountDirectory, new_event_id
from accounts.state import (
    MAX_TIMEOUT_MINUTES,
    MIN_TIMEOUT_MINUTES,
    ApiKey,
    Session,
    User,
)
from http_edge.body import read_json
from http_edge.errors import ApiError, describe_validation_errors
from schemas.events import AccountEvent, ProfileUpdated
from schemas.heartbeat import is_timezone

SMALL_BODY = 16 * 1024
M = TypeVar("M", bound=BaseModel)

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}$"
# Names that are paths, not people (``/users/current``), or would mislead.
RESERVED_USERNAMES = frozenset({"current", "me", "anonymous", "admin", "root", "system"})
MAX_DISPLAY_NAME = 100
MAX_BIO = 500
MAX_WEBSITE = 255
MAX_MESSAGE = 2000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def iso_or_none(ts: float | None) -> str | None:
    return iso(ts) if ts is not None else None


# -- validators ----------------------------------------------------------------------------------


def check_timezone(value: str | None) -> str | None:
    if value is not None and not is_timezone(value):
        raise ValueError("not a timezone of the IANA database, e.g. Europe/Berlin")
    return value


def check_username(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(USERNAME_PATTERN, value):
        raise ValueError("2 to 39 letters, digits, '-' or '_', starting with a letter or digit")
    if value.lower() in RESERVED_USERNAMES:
        raise ValueError("this name is reserved")
    return value


def check_website(value: str | None) -> str | None:
    """An absolute http(s) URL with a host; ``""`` clears the website."""
    if value is None:
        return None
    value = value.strip()
    if value == "":
        return ""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
        or _CONTROL.search(value)
    ):
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def plain_text(value: str | None) -> str | None:
    """Trimmed text without control characters (newlines and tabs are kept)."""
    if value is None:
        return None
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    return value.strip()


# -- bodies --------------------------------------------------------------------------------------


class CreateAccountIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    timezone: str | None = None
    _tz = field_validator("timezone")(check_timezone)


class AccountNumberIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    account_number: str = Field(min_length=1, max_length=64)


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    refresh_token: str | None = Field(default=None, min_length=1, max_length=200)


class CreateKeyIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(default=None, max_length=100)
    read_only: bool = Field(
        default=False, description="the key may read stats but never write or change anything"
    )
    _name = field_validator("name")(plain_text)


class ProfileIn(BaseModel):
    """Profile fields to change; omitted fields keep their values. Text fields: ``""`` clears."""

    model_config = ConfigDict(extra="ignore")
    username: str | None = Field(
        default=None, description="2-39 letters, digits, '-' or '_'; unique (409 when taken)"
    )
    display_name: str | None = Field(default=None, max_length=MAX_DISPLAY_NAME)
    bio: str | None = Field(default=None, max_length=MAX_BIO)
    website: str | None = Field(
        default=None, max_length=MAX_WEBSITE, description="an http:// or https:// URL"
    )
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
    _tz = field_validator("timezone")(check_timezone)
    _username = field_validator("username")(check_username)
    _website = field_validator("website")(check_website)
    _text = field_validator("display_name", "bio")(plain_text)

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


def profile_changes(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Profile changes under their event names, checked like ``PATCH /api/v1/user/me`` checks
    them (a plugin's ``UPDATE users``); raises ValueError saying what is wrong."""
    given = dict(fields)
    if "timeout_minutes" in given:
        given["timeout"] = given.pop("timeout_minutes")
    unknown = set(given) - set(ProfileIn.model_fields) - {"username"}
    if unknown or "username" in given:
        raise ValueError(f"not a profile field: {', '.join(sorted(unknown or {'username'}))}")
    try:
        return ProfileIn.model_validate(given).changes()
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ValueError(f"{where}: {problem['msg']}") from None


class ChronovaProfileIn(BaseModel):
    """Chronova's ``PATCH /users/current`` fields (and the shared ones under their own names)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    display_name: str | None = Field(default=None, max_length=MAX_DISPLAY_NAME)
    username: str | None = None
    bio: str | None = Field(default=None, max_length=MAX_BIO)
    website: str | None = Field(default=None, max_length=MAX_WEBSITE)
    timezone: str | None = None
    is_profile_private: bool | None = Field(default=None, description="the opposite of is_public")
    languages_used_public: bool | None = Field(default=None, description="profile_show_languages")
    projects_public: bool | None = Field(default=None, description="profile_show_projects")
    display_minimum_duration: int | None = Field(
        default=None,
        alias="displayMinimumDuration",
        ge=0,
        le=3600,
        description="accepted for compatibility and ignored (CodeTrackr has no such preference)",
    )
    _tz = field_validator("timezone")(check_timezone)
    _username = field_validator("username")(check_username)
    _website = field_validator("website")(check_website)
    _text = field_validator("display_name", "bio")(plain_text)

    def changes(self) -> dict[str, Any]:
        values = self.model_dump(
            exclude_none=True,
            exclude={
                "is_profile_private",
                "languages_used_public",
                "projects_public",
                "display_minimum_duration",
            },
        )
        if self.is_profile_private is not None:
            values["is_public"] = not self.is_profile_private
        if self.languages_used_public is not None:
            values["profile_show_languages"] = self.languages_used_public
        if self.projects_public is not None:
            values["profile_show_projects"] = self.projects_public
        return values


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=100, description="your name")
    email: str = Field(
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="where to answer you",
    )
    message: str = Field(min_length=1, max_length=MAX_MESSAGE, description="up to 2000 characters")
    _text = field_validator("name", "message")(plain_text)

    @field_validator("name", "message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be blank")
        return value


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """OpenAPI for a body read by :func:`parse` (FastAPI cannot see it)."""
    content = {"application/json": {"schema": model.model_json_schema(by_alias=True)}}
    return {"requestBody": {"required": required, "content": content}}


async def parse(
    request: Request, model: type[M], *, optional: bool = False, limit: int = SMALL_BODY
) -> M:
    has_body = request.headers.get("content-length") not in (None, "0")
    if optional and not has_body:
        return model()
    body = await read_json(request, limit)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = describe_validation_errors(list(exc.errors()))
        path, problem = next(iter(fields.items()))
        raise ApiError(
            400, f"invalid {path}: {problem}", code="validation_error", details={"fields": fields}
        ) from None


# -- views ---------------------------------------------------------------------------------------


def user_view(user: User) -> dict[str, Any]:
    """``GET /api/v1/user/me``: the owner's full profile."""
    return {
        "id": user.user_id,
        "username": user.username,
        "display_name": user.display_name,
        "email": None,
        "avatar_url": user.avatar_url,
        "plan": "free",
        "is_public": user.is_public,
        "is_admin": False,
        "bio": user.bio,
        "website": user.website,
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
        "auth_provider": user.identity_provider or "anonymous",
        "created_at": iso(user.created_at),
    }


def wakatime_user_view(user: User, *, private: bool) -> dict[str, Any]:
    """The ``data`` of ``/users/{user}``: WakaTime's user, plus Chronova's fields for the owner
    (``private``: the caller is the user)."""
    website = user.website
    view: dict[str, Any] = {
        "id": user.user_id,
        "username": user.username,
        "display_name": user.display_name or user.username,
        "full_name": user.display_name,
        "bio": user.bio,
        "photo": user.avatar_url,
        "photo_public": user.avatar_url is not None,
        "is_hireable": user.available_for_hire,
        "is_email_public": False,
        "email": None,
        "website": website,
        "human_readable_website": website.split("://", 1)[-1].rstrip("/") if website else None,
        "city": None,
        "location": None,
        "timezone": user.timezone,
        "created_at": iso(user.created_at),
        "profile_url": None,
    }
    if private:
        view |= {
            "timeout": user.timeout_minutes,
            "writes_only": user.writes_only,
            "is_public": user.is_public,
            "modified_at": None,
            # Chronova's names
            "subscriptionPlan": "free",
            "subscriptionStatus": "active",
            "is_profile_private": not user.is_public,
            "languages_used_public": user.profile_show_languages,
            "projects_public": user.profile_show_projects,
        }
    return view


def key_view(key: ApiKey, last_used: float | None) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "name": key.name,
        "key_prefix": key.key_prefix,
        "read_only": key.read_only,
        "last_used_at": iso_or_none(last_used),
        "created_at": iso(key.created_at),
    }


def session_view(session: Session, current: str | None) -> dict[str, Any]:
    return {
        "id": session.session_id,
        "method": session.method,
        "device": session.device or None,
        "created_at": iso(session.created_at),
        "last_used_at": iso(session.refreshed_at),
        "expires_at": iso(session.expires_at),
        "current": session.session_id == current,
    }


def device_of(request: Request) -> str:
    return request.headers.get("user-agent", "")


# -- writes --------------------------------------------------------------------------------------


def username_taken() -> ApiError:
    return ApiError(
        409,
        "this username is taken",
        code="username_taken",
        details={"fields": {"username": "taken"}},
    )


class AccountWrites:
    """Appends account events for the routes; see the module docs for the answers."""

    def __init__(self, directory: AccountDirectory) -> None:
        self.directory = directory

    async def record(self, event: AccountEvent) -> bool:
        """Append ``event``; False when the fold refused it. A :class:`LogError` is left to the
        app's handler (503)."""
        return await self.directory.record(event)

    async def update_profile(self, user: User, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (event field names). A new username is claimed first, on its own
        event: the rest is applied only once the name is ours (409 otherwise)."""
        username = changes.pop("username", None)
        if username is not None and username != user.username:
            await self._rename(user, username)
        if changes:
            await self.record(
                ProfileUpdated(
                    event_id=new_event_id(),
                    user_id=user.user_id,
                    occurred_at=time.time(),
                    **changes,
                )
            )

    async def _rename(self, user: User, username: str) -> None:
        holder = await self.directory.user_by_username(username)
        if holder is not None and holder.user_id != user.user_id:
            raise username_taken()
        claim = ProfileUpdated(
            event_id=new_event_id(),
            user_id=user.user_id,
            occurred_at=time.time(),
            username=username,
        )
        if await self.record(claim):
            return
        # Lost a race for the name. The leaderboard processors fold one account's profile events
        # at a time and cannot see the clash, so a rename back to the name the account really
        # has follows the refused claim in the log; their member row keeps the right name.
        current = self.directory.state.users.get(user.user_id, user)
        await self.record(
            ProfileUpdated(
                event_id=new_event_id(),
                user_id=user.user_id,
                occurred_at=time.time(),
                username=current.username,
            )
        )
        raise username_taken()
