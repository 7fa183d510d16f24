"""The WakaTime routes about what a user has used and who they are: projects, editors and
machines seen, the user and the weekly leaders (see :mod:`api.routes.wakatime`)."""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request

from accounts.state import User
from api.deps import Reader, api_parts
from api.routes.account_forms import wakatime_user_view
from api.routes.leaderboards import week_monday
from api.routes.store_calls import blocking
from api.routes.wakatime_deps import Store, now_iso, own, owner_or_public
from api.rules.stats import iso_utc
from api.rules.wakatime import text_of
from http_edge.errors import ApiError, error_responses
from projections.leaderboard import iso_week_id
from projections.ports import LeaderboardEntry, SeenValue
from schemas.languages import canonical_language, merge_languages, stored_language

LEADERS_PER_PAGE = 100

# Included by :data:`api.routes.wakatime.router`, which adds the tag and the common errors.
router = APIRouter()


# ---- what the user has used ----------------------------------------------------------


@router.get("/users/{user}/projects", summary="Projects with first and last activity")
async def projects(
    user: str,
    principal: Reader,
    store: Store,
    q: Annotated[str | None, Query(max_length=500, description="name contains")] = None,
) -> dict[str, Any]:
    owner = own(user, principal)
    seen = await blocking(store.seen_values, owner.user_id, "project")
    needle = (q or "").lower()
    return {"data": [_project(owner, s) for s in seen if needle in s.value.lower()]}


@router.get(
    "/users/{user}/projects/{project_id:path}",
    summary="One project, by its id or its name (Wakapi's ids are names)",
    responses=error_responses(404),
)
async def project(user: str, project_id: str, principal: Reader, store: Store) -> dict[str, Any]:
    owner = own(user, principal)
    mine = f"{owner.user_id}:"
    name = project_id.removeprefix(mine)
    seen = await blocking(store.seen_values, owner.user_id, "project")
    for s in seen:
        if s.value == name:
            return {"data": _project(owner, s)}
    raise ApiError(404, "no such project")


def _project(owner: User, s: SeenValue) -> dict[str, Any]:
    return {
        "id": f"{owner.user_id}:{s.value}",
        "name": s.value,
        "repository": None,
        "badge": None,
        "color": None,
        "clients": [],
        "has_public_url": False,
        "first_heartbeat_at": iso_utc(s.first_time),
        "last_heartbeat_at": iso_utc(s.last_time),
        "human_readable_last_heartbeat_at": _ago(s.last_time),
        "human_readable_first_heartbeat_at": _ago(s.first_time),
        "url": f"/projects/{quote(s.value, safe='')}",
        "urlencoded_name": quote(s.value, safe=""),
        "created_at": iso_utc(s.first_time),
    }


@router.get("/users/{user}/user_agents", summary="Editors and plugins that sent heartbeats")
async def user_agents(user: str, principal: Reader, store: Store) -> dict[str, Any]:
    owner = own(user, principal)
    seen = await blocking(store.seen_values, owner.user_id, "user_agent")
    return {
        "data": [
            {
                "id": f"{owner.user_id}:{s.value}",
                "value": s.value,
                "editor": s.editor,
                "os": s.os,
                "is_browser_extension": False,
                "is_desktop_app": False,
                "first_seen_at": iso_utc(s.first_time),
                "last_seen_at": iso_utc(s.last_time),
                "created_at": iso_utc(s.first_time),
            }
            for s in seen
        ],
        "total_pages": 1,
    }


@router.get("/users/{user}/machine_names", summary="Machines that sent heartbeats")
async def machine_names(user: str, principal: Reader, store: Store) -> dict[str, Any]:
    owner = own(user, principal)
    seen = await blocking(store.seen_values, owner.user_id, "machine")
    return {
        "data": [
            {
                "id": f"{owner.user_id}:{s.value}",
                "name": s.value,
                "value": s.value,
                "ip": None,
                "first_seen_at": iso_utc(s.first_time),
                "last_seen_at": iso_utc(s.last_time),
                "created_at": iso_utc(s.first_time),
            }
            for s in seen
        ],
        "total_pages": 1,
    }


# ---- users, leaders -----------------------------------------------------------


@router.get(
    "/users/{user}",
    summary="A user (yourself, with Chronova's fields; or a public profile, no credentials)",
    responses=error_responses(404),
)
async def user_(request: Request, user: str) -> dict[str, Any]:
    who = await owner_or_public(request, user)
    return {"data": _user_view(who.user, private=who.owner)}


@router.get(
    "/leaders",
    summary="This week's public leaderboard, in WakaTime's shape",
    responses=error_responses(400),
)
async def leaders(
    request: Request,
    store: Store,
    language: Annotated[str | None, Query(max_length=200)] = None,
    country_code: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
    is_hireable: bool | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> dict[str, Any]:
    parts = api_parts(request)
    viewer = await parts.guards.read(request) if parts.is_authenticated(request) else None
    monday = week_monday(None)
    sunday = monday + timedelta(days=6)
    # Any spelling names the language, as on /leaderboards/language/{lang}.
    wanted = (stored_language(language) or "") if language else None
    filters: dict[str, Any] = {
        "language": wanted,
        "country": country_code.upper() if country_code else None,
        "available_for_hire": is_hireable,
    }
    total, entries = await blocking(
        store.leaderboard,
        monday,
        limit=LEADERS_PER_PAGE,
        offset=(page - 1) * LEADERS_PER_PAGE,
        **filters,
    )
    current = None
    if viewer is not None:
        mine = await blocking(store.leaderboard_position, monday, viewer.user.user_id, **filters)
        current = _leader_view(mine) if mine is not None else None
    return {
        "current_user": current,
        "data": [_leader_view(entry) for entry in entries],
        "page": page,
        "total_pages": max(1, math.ceil(total / LEADERS_PER_PAGE)),
        "language": canonical_language(language) if language else None,
        "is_hireable": is_hireable,
        "country_code": country_code,
        "range": {
            "start_date": monday.isoformat(),
            "start_text": monday.strftime("%a %b %d %Y"),
            "end_date": sunday.isoformat(),
            "end_text": sunday.strftime("%a %b %d %Y"),
            "name": iso_week_id(monday),
            "text": "This Week",
        },
        "modified_at": now_iso(),
    }


def _leader_view(entry: LeaderboardEntry) -> dict[str, Any]:
    days = 7
    return {
        "rank": entry.rank,
        "running_total": {
            "total_seconds": round(entry.seconds, 3),
            "human_readable_total": text_of(entry.seconds),
            "daily_average": round(entry.seconds / days),
            "human_readable_daily_average": text_of(entry.seconds / days),
            "languages": [
                {"name": name, "total_seconds": round(seconds, 3)}
                for name, seconds in sorted(
                    merge_languages(entry.breakdown["language"].items()).items(),
                    key=lambda kv: (-kv[1], kv[0]),
                )
                if seconds > 0 and entry.languages_public  # profile_show_languages
            ],
        },
        "user": {
            "id": entry.user_id,
            "username": entry.username,
            "display_name": entry.username,
            "full_name": None,
            "photo": None,
            "photo_public": False,
            "is_hireable": None,
            "city": None,
            "location": None,
            "country": entry.country,
        },
    }


def _ago(epoch: float) -> str:
    seconds = max(0.0, datetime.now(UTC).timestamp() - epoch)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _user_view(user: User, *, private: bool) -> dict[str, Any]:
    # WakaTime's user; for the owner also Chronova's fields (``GET /users/current``), the same
    # view ``PATCH /users/current`` answers with.
    return wakatime_user_view(user, private=private)
