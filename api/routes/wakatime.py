"""The WakaTime v1 read API, so editor plugins, CLIs, readme cards and dashboards work unchanged.

Routes are declared relative to a prefix; :func:`codetrackr.bootstrap` mounts :data:`router`
under ``/api/v1`` (in the OpenAPI schema) and under the aliases ``/api/compat/wakatime/v1`` and
``/api/v1/compat/waka``. ``{user}`` is ``current`` or the caller's own username; another name is
a 403 that says nothing about whether that user exists. ``stats/{range}`` and ``users/{user}``
also answer without credentials for users whose profile is public (readme cards call them that
way), and answer private and unknown users with one identical 404.

This module holds the time routes (status bar, summaries, stats, insights, durations,
heartbeats); :mod:`api.routes.wakatime_catalog` the rest (projects, editors, machines, users,
leaders) and :mod:`api.routes.goals` the goals, both included at the end of :data:`router`.
Shared parameters and the access rule are in :mod:`api.routes.wakatime_deps`.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from accounts.state import User
from api.deps import Reader
from api.routes import goals, wakatime_catalog
from api.routes.store_calls import blocking
from api.routes.wakatime_deps import (
    BranchesQ,
    DimensionParams,
    Dimensions,
    ProjectQ,
    Rule,
    RuleParams,
    Store,
    TimezoneQ,
    bad,
    now_iso,
    own,
    owner_or_public,
    question,
)
from api.rules.activity import ActivityReader, Question
from api.rules.stats import DateRange, resolve_range, today_in
from api.rules.wakatime import (
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
)
from http_edge.errors import ApiError, error_responses
from projections.daily import DailyRow
from projections.ports import WakaTimeStore
from schemas.wakatime import heartbeat_view

MAX_SUMMARY_DAYS = 400

router = APIRouter(tags=["wakatime"], responses=error_responses(401, 403, 503))


def tz_of(owner: User, q: Question) -> str:
    return q.timezone or owner.timezone


async def rows_for(
    store: WakaTimeStore, owner: User, span: DateRange, q: Question
) -> list[DailyRow]:
    return await blocking(ActivityReader(store).rows, owner.user_id, span, q)


async def first_active(store: WakaTimeStore, owner: User) -> date | None:
    active = await blocking(store.active_dates, owner.user_id)
    return active[0] if active else None


# ---- status bar, summaries ------------------------------------------------------------


async def today_body(store: WakaTimeStore, owner: User, q: Question) -> dict[str, Any]:
    tz = tz_of(owner, q)
    today = today_in(tz)
    rows = await rows_for(store, owner, DateRange(today, today, tz), q)
    data = summary_day(today, rows, tz, project_detail=False)
    data["range"]["text"] = "Today"
    return {"cached_at": now_iso(), "has_team_features": False, "data": data}


async def status_bar(user: str, principal: Reader, rule: Rule, store: Store) -> dict[str, Any]:
    owner = own(user, principal)
    return await today_body(store, owner, question(owner, rule))


for _path in ("/users/{user}/statusbar/today", "/users/{user}/status_bar/today"):
    router.get(_path, summary="Today's time, for editor status bars")(status_bar)


@router.get(
    "/users/{user}/summaries",
    summary="Time per day with breakdowns",
    responses=error_responses(400),
)
async def summaries_(
    user: str,
    principal: Reader,
    rule: Rule,
    store: Store,
    dimensions: Dimensions,
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
    q = question(owner, rule, timezone, project, branches, dimensions)
    tz = tz_of(owner, q)
    today = today_in(tz)
    if start or end:
        if not (start and end):
            raise bad("start" if not start else "end", "give both start and end")
        span = resolve_range(None, start, end, tz=tz, today=today)
    elif range:
        span = summary_range(range, today, tz).span
    else:
        raise bad("range", f"give start and end, or a range ({', '.join(SUMMARY_RANGES)})")
    if span.days > MAX_SUMMARY_DAYS:
        raise bad("end", f"at most {MAX_SUMMARY_DAYS} days per request")
    rows = await rows_for(store, owner, span, q)
    return summaries(span, rows, project_detail=project is not None)


# ---- stats, insights, all time -------------------------------------------------------


async def stats_body(
    request: Request,
    store: WakaTimeStore,
    user: str,
    range_name: str,
    rule: RuleParams,
    dimensions: DimensionParams,
) -> dict[str, Any]:
    who = await owner_or_public(request, user)
    owner = who.user
    if not who.owner:
        # Others see the owner's counting rule and whole totals; asking for another rule or a
        # part (which could reveal what the profile hides) is refused, not ignored.
        asked: list[tuple[str, object]] = [
            ("timeout", rule.timeout),
            ("writes_only", rule.writes_only),
        ]
        asked += dimensions.asked
        for name, value in asked:
            if value is not None:
                raise ApiError(
                    400,
                    f"the filter {name!r} is the owner's own: another reader sees the"
                    " profile's setting",
                    code="unsupported_filter",
                    details={"filter": name, "unsupported": [name], "supported": []},
                )
    q = question(owner, rule, dimensions=dimensions) if who.owner else question(owner, RuleParams())
    tz = owner.timezone
    named = stats_range(range_name, today_in(tz), tz, await first_active(store, owner))
    rows = await rows_for(store, owner, named.span, q)
    visible = Visibility() if who.owner else Visibility.public(owner)
    data = stats(
        owner,
        named,
        rows,
        timeout_minutes=q.timeout_minutes,
        writes_only=q.writes_only,
        visible=visible,
        now_iso=now_iso(),
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
    store: Store,
    dimensions: Dimensions,
) -> dict[str, Any]:
    return await stats_body(request, store, user, range, rule, dimensions)


@router.get(
    "/users/{user}/stats",
    summary="Stats over the last 7 days",
    responses=error_responses(400, 404),
)
async def stats_default(
    request: Request, user: str, rule: Rule, store: Store, dimensions: Dimensions
) -> dict[str, Any]:
    return await stats_body(request, store, user, "last_7_days", rule, dimensions)


@router.get(
    "/users/{user}/insights/{insight_type}/{range}",
    summary=f"One insight ({', '.join(INSIGHT_TYPES)}) over a range",
    responses=error_responses(400),
)
async def insights(
    user: str,
    insight_type: str,
    range: str,
    principal: Reader,
    rule: Rule,
    store: Store,
) -> dict[str, Any]:
    owner = own(user, principal)
    q = question(owner, rule)
    tz = owner.timezone
    named = stats_range(range, today_in(tz), tz, await first_active(store, owner))
    value = insight(insight_type, named.span, [])  # validates the type before any read
    rows = await rows_for(store, owner, named.span, q)
    value = insight(insight_type, named.span, rows)
    return {"data": {insight_type: value, **range_fields(owner, named)}}


def range_fields(owner: User, named: NamedRange) -> dict[str, Any]:
    start, end = named.span.closed_bounds()
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
    user: str, principal: Reader, store: Store, project: ProjectQ = None
) -> dict[str, Any]:
    owner = own(user, principal)
    q = question(owner, RuleParams(), project=project)
    tz = owner.timezone
    today = today_in(tz)
    first = await first_active(store, owner) or today
    span = DateRange(min(first, today), today, tz)
    rows = await rows_for(store, owner, span, q)
    total = sum(row.total_seconds for row in rows)
    start, end = span.closed_bounds()
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
    principal: Reader,
    rule: Rule,
    store: Store,
    dimensions: Dimensions,
    date: Annotated[str, Query(description="the day, YYYY-MM-DD")],
    slice_by: Annotated[str, Query(description="what else splits durations")] = "project",
    project: ProjectQ = None,
    branches: BranchesQ = None,
    timezone: TimezoneQ = None,
) -> dict[str, Any]:
    owner = own(user, principal)
    q = question(owner, rule, timezone, project, branches, dimensions)
    tz = tz_of(owner, q)
    day = one_day(date, tz)
    durations([], slice_by)  # validates slice_by before any read
    spans = await blocking(ActivityReader(store).spans, owner.user_id, day, tz, q)
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
    principal: Reader,
    store: Store,
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


# The catalog routes come after the time routes, as they always have in the schema.
router.include_router(wakatime_catalog.router)
router.include_router(goals.router)
