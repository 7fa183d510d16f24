"""The WakaTime v1 read API, so editor plugins, CLIs, readme cards and dashboards work unchanged.

Routes are declared relative to a prefix; :func:`codetrackr.bootstrap` mounts the router under
``/api/v1`` (in the OpenAPI schema) and under the aliases ``/api/compat/wakatime/v1`` and
``/api/v1/compat/waka``. ``{user}`` is ``current`` or the caller's own username; another name is
a 403 that says nothing about whether that user exists. ``stats/{range}`` and ``users/{user}``
also answer without credentials for users whose profile is public (readme cards call them that
way), and answer private and unknown users with one identical 404.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases when the routes are declared.

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response

from accounts.directory import AccountDirectory
from accounts.state import MAX_TIMEOUT_MINUTES, MIN_TIMEOUT_MINUTES, User
from api.account_forms import wakatime_user_view
from api.activity import ActivityReader, Question
from api.routes_leaderboards import week_monday
from api.stats import DateRange, iso_utc, resolve_range, sum_breakdown, today_in
from api.store_calls import blocking
from api.wakatime import (
    INSIGHT_TYPES,
    SLICE_BY,
    SUMMARY_RANGES,
    NamedRange,
    Visibility,
    day_range,
    durations,
    grand_total,
    insight,
    stats,
    stats_range,
    summaries,
    summary_day,
    summary_range,
    text_of,
)
from http_edge.auth import Principal
from http_edge.errors import ApiError, error_responses
from projections.daily import DailyRow
from projections.leaderboard import iso_week_id
from projections.ports import (
    LeaderboardEntry,
    WakaTimeStore,
)
from schemas.heartbeat import is_timezone
from schemas.languages import canonical_language, merge_languages, stored_language
from schemas.wakatime import heartbeat_view

Authenticate = Callable[[Request], Awaitable[Principal]]

MAX_SUMMARY_DAYS = 400
LEADERS_PER_PAGE = 100


def _bad(field: str, message: str) -> ApiError:
    details = {"fields": {field: message}}
    return ApiError(400, f"invalid {field}: {message}", code="validation_error", details=details)


def _now_iso() -> str:
    return iso_utc(datetime.now(UTC).timestamp())


_NOT_FOUND = "no such user, or the user's stats are private"


@dataclass(frozen=True, slots=True)
class _Rule:
    """The duration rule's per-request parameters (``None``: the user's own setting)."""

    timeout: int | None = None
    writes_only: bool | None = None


@dataclass(frozen=True, slots=True)
class _Reader:
    """Whose data a request reads, and whether the caller owns it."""

    user: User
    owner: bool


def build_wakatime_router(
    authenticate: Authenticate,
    is_authenticated: Callable[[Request], bool],
    directory: AccountDirectory,
    store: WakaTimeStore,
) -> APIRouter:
    router = APIRouter(tags=["wakatime"], responses=error_responses(401, 403, 503))
    reader = ActivityReader(store)
    owner_or_public = _access(authenticate, is_authenticated, directory)
    CurrentPrincipal = Annotated[Principal, Depends(authenticate)]

    TimeoutQ = Annotated[
        int | None,
        Query(
            ge=MIN_TIMEOUT_MINUTES,
            le=MAX_TIMEOUT_MINUTES,
            description="keystroke timeout in minutes (default: the user's setting, 15)",
        ),
    ]
    WritesQ = Annotated[
        bool | None, Query(description="count only time after writes (default: user's setting)")
    ]
    TimezoneQ = Annotated[
        str | None, Query(description="IANA timezone for days (default: the user's timezone)")
    ]
    ProjectQ = Annotated[str | None, Query(max_length=500, description="only this project")]
    BranchesQ = Annotated[
        str | None, Query(max_length=2000, description="comma-separated branches; needs project")
    ]

    def rule_params(timeout: TimeoutQ = None, writes_only: WritesQ = None) -> _Rule:
        return _Rule(timeout, writes_only)

    Rule = Annotated[_Rule, Depends(rule_params)]

    def own(user: str, principal: Principal) -> User:
        if user == "current" or user.lower() == principal.user.username.lower():
            return principal.user
        raise ApiError(403, "you can only read your own data with this endpoint")

    def question(
        owner: User,
        rule: _Rule,
        timezone: str | None = None,
        project: str | None = None,
        branches: str | None = None,
    ) -> Question:
        if timezone is not None and not is_timezone(timezone):
            raise _bad("timezone", "not a timezone of the IANA database, e.g. Europe/Berlin")
        chosen: frozenset[str] | None = None
        if branches is not None:
            if project is None:
                raise _bad("branches", "filtering by branches needs a project")
            chosen = frozenset(b.strip() for b in branches.split(",") if b.strip())
        return Question(
            timeout_minutes=owner.timeout_minutes if rule.timeout is None else rule.timeout,
            writes_only=owner.writes_only if rule.writes_only is None else rule.writes_only,
            project=project,
            branches=chosen,
            timezone=None if timezone in (None, owner.timezone) else timezone,
        )

    def tz_of(owner: User, q: Question) -> str:
        return q.timezone or owner.timezone

    async def rows_for(owner: User, span: DateRange, q: Question) -> list[DailyRow]:
        return await blocking(reader.rows, owner.user_id, span, q)

    async def first_active(owner: User) -> date | None:
        active = await blocking(store.active_dates, owner.user_id)
        return active[0] if active else None

    # ---- status bar, summaries ------------------------------------------------------------

    async def today_body(owner: User, q: Question) -> dict[str, Any]:
        tz = tz_of(owner, q)
        today = today_in(tz)
        rows = await rows_for(owner, DateRange(today, today, tz), q)
        data = summary_day(today, rows, tz, project_detail=False)
        data["range"]["text"] = "Today"
        return {"cached_at": _now_iso(), "has_team_features": False, "data": data}

    for path in ("/users/{user}/statusbar/today", "/users/{user}/status_bar/today"):

        @router.get(path, summary="Today's time, for editor status bars")
        async def status_bar(
            user: str,
            principal: CurrentPrincipal,
            rule: Rule,
        ) -> dict[str, Any]:
            owner = own(user, principal)
            return await today_body(owner, question(owner, rule))

    @router.get(
        "/users/{user}/summaries",
        summary="Time per day with breakdowns",
        responses=error_responses(400),
    )
    async def summaries_(
        user: str,
        principal: CurrentPrincipal,
        rule: Rule,
        start: Annotated[str | None, Query(description="first day, YYYY-MM-DD")] = None,
        end: Annotated[str | None, Query(description="last day, YYYY-MM-DD")] = None,
        range: Annotated[
            str | None,
            Query(description="a named range, e.g. Today or last_7_days", examples=["Today"]),
        ] = None,
        project: ProjectQ = None,
        branches: BranchesQ = None,
        timezone: TimezoneQ = None,
    ) -> dict[str, Any]:
        owner = own(user, principal)
        q = question(owner, rule, timezone, project, branches)
        tz = tz_of(owner, q)
        today = today_in(tz)
        if start or end:
            if not (start and end):
                raise _bad("start" if not start else "end", "give both start and end")
            span = resolve_range(None, start, end, tz=tz, today=today)
        elif range:
            span = summary_range(range, today, tz).span
        else:
            raise _bad("range", f"give start and end, or a range ({', '.join(SUMMARY_RANGES)})")
        if span.days > MAX_SUMMARY_DAYS:
            raise _bad("end", f"at most {MAX_SUMMARY_DAYS} days per request")
        rows = await rows_for(owner, span, q)
        return summaries(span, rows, project_detail=project is not None)

    # ---- stats, insights, all time -------------------------------------------------------

    async def stats_body(
        request: Request,
        user: str,
        range_name: str,
        rule: _Rule,
    ) -> dict[str, Any]:
        who = await owner_or_public(request, user)
        owner = who.user
        if not who.owner:
            # Others see the owner's counting rule; asking for another is refused, not ignored.
            for name, value in (("timeout", rule.timeout), ("writes_only", rule.writes_only)):
                if value is not None:
                    raise ApiError(
                        400,
                        f"the filter {name!r} is the owner's own: another reader sees the"
                        " profile's setting",
                        code="unsupported_filter",
                        details={"filter": name, "unsupported": [name], "supported": []},
                    )
        q = question(owner, rule if who.owner else _Rule())
        tz = owner.timezone
        named = stats_range(range_name, today_in(tz), tz, await first_active(owner))
        rows = await rows_for(owner, named.span, q)
        visible = Visibility() if who.owner else Visibility.public(owner)
        data = stats(
            owner,
            named,
            rows,
            timeout_minutes=q.timeout_minutes,
            writes_only=q.writes_only,
            visible=visible,
            now_iso=_now_iso(),
        )
        return {"data": data}

    @router.get(
        "/users/{user}/stats/{range}",
        summary="Totals and breakdowns over a range (public users need no credentials)",
        responses=error_responses(400, 404),
    )
    async def stats_(
        request: Request,
        user: str,
        range: str,
        rule: Rule,
    ) -> dict[str, Any]:
        return await stats_body(request, user, range, rule)

    @router.get(
        "/users/{user}/stats",
        summary="Stats over the last 7 days",
        responses=error_responses(400, 404),
    )
    async def stats_default(request: Request, user: str, rule: Rule) -> dict[str, Any]:
        return await stats_body(request, user, "last_7_days", rule)

    @router.get(
        "/users/{user}/insights/{insight_type}/{range}",
        summary=f"One insight ({', '.join(INSIGHT_TYPES)}) over a range",
        responses=error_responses(400),
    )
    async def insights(
        user: str,
        insight_type: str,
        range: str,
        principal: CurrentPrincipal,
        rule: Rule,
    ) -> dict[str, Any]:
        owner = own(user, principal)
        q = question(owner, rule)
        tz = owner.timezone
        named = stats_range(range, today_in(tz), tz, await first_active(owner))
        value = insight(insight_type, named.span, [])  # validates the type before any read
        rows = await rows_for(owner, named.span, q)
        value = insight(insight_type, named.span, rows)
        return {"data": {insight_type: value, **_range_fields(owner, named)}}

    def _range_fields(owner: User, named: NamedRange) -> dict[str, Any]:
        start, end = named.span.iso_bounds()
        return {
            "range": named.name,
            "human_readable_range": named.text,
            "start": start,
            "end": end,
            "timezone": named.span.timezone,
            "status": "ok",
            "is_up_to_date": True,
            "is_including_today": named.span.start <= today_in(owner.timezone) <= named.span.end,
            "user_id": owner.user_id,
            "username": owner.username,
        }

    @router.get("/users/{user}/all_time_since_today", summary="Total time since the first day")
    async def all_time_since_today(
        user: str, principal: CurrentPrincipal, project: ProjectQ = None
    ) -> dict[str, Any]:
        owner = own(user, principal)
        q = question(owner, _Rule(), project=project)
        tz = owner.timezone
        today = today_in(tz)
        first = await first_active(owner) or today
        span = DateRange(min(first, today), today, tz)
        rows = await rows_for(owner, span, q)
        total = sum(row.total_seconds for row in rows)
        start, end = span.iso_bounds()
        active_days = len({row.date for row in rows if row.total_seconds > 0})
        totals = grand_total(total)
        return {
            "data": {
                "total_seconds": totals["total_seconds"],
                "text": totals["text"],
                "decimal": totals["decimal"],
                "digital": totals["digital"],
                "daily_average": round(total / active_days) if active_days else 0,
                "is_up_to_date": True,
                "percent_calculated": 100,
                "range": {
                    "start": start,
                    "start_date": span.start.isoformat(),
                    "start_text": span.start.strftime("%a %b %d %Y"),
                    "end": end,
                    "end_date": span.end.isoformat(),
                    "end_text": span.end.strftime("%a %b %d %Y"),
                    "timezone": tz,
                },
                "timeout": q.timeout_minutes,
            }
        }

    # ---- one day in detail ---------------------------------------------------------------

    def one_day(value: str, tz: str) -> date:
        return resolve_range(None, value, value, tz=tz, today=today_in(tz)).start

    @router.get(
        "/users/{user}/durations",
        summary=f"One day's continuous coding, sliced by {', '.join(SLICE_BY)}",
        responses=error_responses(400),
    )
    async def durations_(
        user: str,
        principal: CurrentPrincipal,
        rule: Rule,
        date: Annotated[str, Query(description="the day, YYYY-MM-DD")],
        slice_by: Annotated[str, Query(description="what else splits durations")] = "project",
        project: ProjectQ = None,
        branches: BranchesQ = None,
        timezone: TimezoneQ = None,
    ) -> dict[str, Any]:
        owner = own(user, principal)
        q = question(owner, rule, timezone, project, branches)
        tz = tz_of(owner, q)
        day = one_day(date, tz)
        durations([], slice_by)  # validates slice_by before any read
        spans = await blocking(reader.spans, owner.user_id, day, tz, q)
        bounds = day_range(day, tz)
        return {
            "data": durations(spans, slice_by),
            "start": bounds["start"],
            "end": bounds["end"],
            "timezone": tz,
        }

    @router.get(
        "/users/{user}/heartbeats",
        summary="One local day's heartbeats",
        responses=error_responses(400),
    )
    async def heartbeats(
        user: str,
        principal: CurrentPrincipal,
        date: Annotated[str, Query(description="the day, YYYY-MM-DD")],
    ) -> dict[str, Any]:
        owner = own(user, principal)
        day = one_day(date, owner.timezone)
        found = await blocking(store.heartbeats_for_days, [(owner.user_id, day)])
        bounds = day_range(day, owner.timezone)
        return {
            "data": [heartbeat_view(hb) for hb in found.get((owner.user_id, day), [])],
            "start": bounds["start"],
            "end": bounds["end"],
            "timezone": owner.timezone,
        }

    # ---- what the user has used ----------------------------------------------------------

    @router.get("/users/{user}/projects", summary="Projects with first and last activity")
    async def projects(
        user: str,
        principal: CurrentPrincipal,
        q: Annotated[str | None, Query(max_length=500, description="name contains")] = None,
    ) -> dict[str, Any]:
        owner = own(user, principal)
        seen = await blocking(store.seen_values, owner.user_id, "project")
        needle = (q or "").lower()
        return {
            "data": [
                {
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
                for s in seen
                if needle in s.value.lower()
            ]
        }

    @router.get("/users/{user}/user_agents", summary="Editors and plugins that sent heartbeats")
    async def user_agents(user: str, principal: CurrentPrincipal) -> dict[str, Any]:
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
    async def machine_names(user: str, principal: CurrentPrincipal) -> dict[str, Any]:
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

    # ---- users, goals, leaders -----------------------------------------------------------

    @router.get(
        "/users/{user}",
        summary="A user (yourself, with Chronova's fields; or a public profile, no credentials)",
        responses=error_responses(404),
    )
    async def user_(request: Request, user: str) -> dict[str, Any]:
        who = await owner_or_public(request, user)
        return {"data": _user_view(who.user, private=who.owner)}

    @router.get("/users/{user}/goals", summary="Goals (none yet: an empty list)")
    async def goals(user: str, principal: CurrentPrincipal) -> dict[str, Any]:
        own(user, principal)
        return {"data": [], "total": 0, "total_pages": 0}

    @router.get("/users/{user}/goals/{goal_id}", summary="One goal (none yet: an empty chart)")
    async def goal(user: str, goal_id: str, principal: CurrentPrincipal) -> dict[str, Any]:
        own(user, principal)
        return {"data": {"id": goal_id, "title": None, "status": "pending", "chart_data": []}}

    @router.get(
        "/leaders",
        summary="This week's public leaderboard, in WakaTime's shape",
        responses=error_responses(400),
    )
    async def leaders(
        request: Request,
        language: Annotated[str | None, Query(max_length=200)] = None,
        country_code: Annotated[str | None, Query(pattern=r"^[A-Za-z]{2}$")] = None,
        is_hireable: bool | None = None,
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    ) -> dict[str, Any]:
        viewer = await authenticate(request) if is_authenticated(request) else None
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
            mine = await blocking(
                store.leaderboard_position, monday, viewer.user.user_id, **filters
            )
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
            "modified_at": _now_iso(),
        }

    return router


def _access(
    authenticate: Authenticate,
    is_authenticated: Callable[[Request], bool],
    directory: AccountDirectory,
) -> Callable[[Request, str], Awaitable[_Reader]]:
    """Resolve ``{user}`` for routes that also serve public profiles: the caller themself (with
    credentials), or a public user; private and unknown users get the same 404."""

    async def owner_or_public(request: Request, user: str) -> _Reader:
        if is_authenticated(request):
            principal = await authenticate(request)
            if user == "current" or user.lower() == principal.user.username.lower():
                return _Reader(principal.user, owner=True)
        elif user == "current":
            await authenticate(request)  # raises the 401 that asks for credentials
        found = await directory.user_by_username(user, fresh=False)
        if found is None or not found.is_public:
            raise ApiError(404, _NOT_FOUND)
        return _Reader(found, owner=False)

    return owner_or_public


def build_shields_router(
    authenticate: Authenticate,
    is_authenticated: Callable[[Request], bool],
    directory: AccountDirectory,
    store: WakaTimeStore,
) -> APIRouter:
    """``GET /api/compat/shields/v1/{user}/interval:<range>[/project:<p>|/language:<l>]``: a
    shields.io endpoint badge (``{schemaVersion, label, message, color}``) of a public user's
    time. The interval is a summaries range (``today``, ``last_7_days``...) or a stats range
    (``all_time``, ``2026``, ``2026-11``...), ``all_time`` when omitted. A project needs the
    profile to show projects, a language to show languages."""
    router = APIRouter(tags=["wakatime"], responses=error_responses(400, 404, 503))
    owner_or_public = _access(authenticate, is_authenticated, directory)

    @router.get(
        "/api/compat/shields/v1/{user}/{spec:path}",
        summary="shields.io endpoint badge of a public user's time",
    )
    async def shield(request: Request, user: str, spec: str, response: Response) -> dict[str, Any]:
        filters = _shield_spec(spec)
        who = await owner_or_public(request, user)
        owner = who.user
        visible = Visibility() if who.owner else Visibility.public(owner)
        if ("project" in filters and not visible.projects) or (
            "language" in filters and not visible.languages
        ):
            raise ApiError(404, _NOT_FOUND)
        tz = owner.timezone
        today = today_in(tz)
        interval = filters.get("interval", "all_time")
        try:
            span = summary_range(interval, today, tz).span
        except ApiError:
            active = await blocking(store.active_dates, owner.user_id)
            span = stats_range(interval, today, tz, active[0] if active else None).span
        rows = await blocking(store.daily_rows, owner.user_id, span.start, span.end)
        label, seconds = "coding time", sum(row.total_seconds for row in rows)
        for dimension in ("project", "language"):
            if dimension in filters:
                label = filters[dimension]
                if dimension == "language":  # any spelling: `language:python` is Python
                    label = canonical_language(label)
                seconds = sum_breakdown(rows, dimension).get(label, 0.0)
        response.headers["Cache-Control"] = "max-age=1800"
        return {"schemaVersion": 1, "label": label, "message": text_of(seconds), "color": "blue"}

    return router


def _shield_spec(spec: str) -> dict[str, str]:
    filters: dict[str, str] = {}
    for part in filter(None, spec.split("/")):
        key, sep, value = part.partition(":")
        if not sep or key not in ("interval", "project", "language") or not value:
            raise _bad("spec", f"expected interval:, project: or language: parts, got {part!r}")
        filters[key] = value
    if "project" in filters and "language" in filters:
        raise _bad("spec", "give a project or a language, not both")
    return filters


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
