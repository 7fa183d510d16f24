"""CodeTrackr's stats endpoints, read from the daily projection in the user's timezone."""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request

from api.deps import Reader, api_parts
from api.routes.store_calls import blocking
from api.rules.projects import naming_of
from api.rules.stats import (
    RANGE_DAYS,
    DateRange,
    daily_average,
    daily_series,
    iso_utc,
    ranked,
    resolve_range,
    streaks,
    sum_breakdown,
    today_in,
    top,
)
from http_edge.auth import Principal
from http_edge.errors import error_responses
from projections.daily import DailyRow, day_bounds
from projections.ports import StatsStore


def _store(request: Request) -> StatsStore:
    return cast(StatsStore, api_parts(request).store)


Store = Annotated[StatsStore, Depends(_store)]
router = APIRouter(prefix="/api/v1/stats", tags=["stats"], responses=error_responses(401, 503))


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Window:
    principal: Principal
    span: DateRange
    rows: list[DailyRow]
    active: list[date]


ranged = error_responses(400)  # an invalid range, start or end
# The values are checked by `resolve_range`; the schemas only tell clients (and fuzzers).
RangeQ = Annotated[
    str | None,
    Query(
        description="7d (default), 30d, 90d or all",
        json_schema_extra={"enum": [*RANGE_DAYS, "all"]},
    ),
]
DayQ = Annotated[
    str | None,
    Query(
        description="ISO 8601 date or datetime",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time"},
            ]
        },
    ),
]


async def window(
    principal: Reader,
    store: Store,
    range: RangeQ = None,
    start: DayQ = None,
    end: DayQ = None,
) -> _Window:
    """The local-day range a request asks for, with its daily rows (shared by the routes)."""
    tz = principal.user.timezone
    user_id = principal.user.user_id
    active = await blocking(store.active_dates, user_id)
    span = resolve_range(
        range,
        start,
        end,
        tz=tz,
        today=today_in(tz),
        first_active=active[0] if active else None,
    )
    rows = await blocking(store.daily_rows, user_id, span.start, span.end)
    naming = naming_of(principal.user.project_aliases, principal.user.project_labels)
    return _Window(principal, span, naming.rows(rows), active)


Window = Annotated[_Window, Depends(window)]


@router.get(
    "/summary",
    summary="Totals, daily average, streaks and top language/project",
    responses=ranged,
)
async def summary(w: Window) -> dict[str, Any]:
    span, rows = w.span, w.rows
    current, longest = streaks(w.active, today_in(span.timezone))
    range_start, range_end = span.iso_bounds()
    return {
        "total_seconds": round(sum(r.total_seconds for r in rows)),
        "daily_average": daily_average(rows),
        "streak_current": current,
        "streak_longest": longest,
        "top_language": top(sum_breakdown(rows, "language")),
        "top_project": top(sum_breakdown(rows, "project")),
        "range_start": range_start,
        "range_end": range_end,
        "timezone": span.timezone,
    }


@router.get("/languages", summary="Time per language with percentages", responses=ranged)
async def languages(w: Window) -> dict[str, Any]:
    rows = w.rows
    total = sum(r.total_seconds for r in rows)
    return {
        "total_seconds": round(total),
        "languages": [
            {"language": name, "seconds": round(sec), "percentage": _pct(sec, total)}
            for name, sec in ranked(sum_breakdown(rows, "language"))
        ],
    }


@router.get(
    "/projects", summary="Time per project with the most recent heartbeat", responses=ranged
)
async def projects(w: Window, store: Store) -> dict[str, Any]:
    span, rows = w.span, w.rows
    first, _ = day_bounds(span.start, span.timezone)
    _, last = day_bounds(span.end, span.timezone)
    user = w.principal.user
    stored = await blocking(store.last_heartbeat_by_project, user.user_id, first, last)
    naming = naming_of(user.project_aliases, user.project_labels)
    latest: dict[str, float] = {}
    for stored_name, at in stored.items():  # an aliased project was last seen under any name
        name = naming.name(stored_name)
        latest[name] = max(at, latest.get(name, at))
    return {
        "projects": [
            {
                "project": name,
                "seconds": round(sec),
                "last_heartbeat": iso_utc(latest[name]) if name in latest else None,
            }
            for name, sec in ranked(sum_breakdown(rows, "project"))
        ]
    }


@router.get("/daily", summary="Seconds per local day", responses=ranged)
async def daily(w: Window) -> dict[str, Any]:
    span, rows = w.span, w.rows
    return {
        "daily": [
            {"date": day.isoformat(), "seconds": round(sec)}
            for day, sec in daily_series(rows, span)
        ],
        "timezone": span.timezone,
    }


@router.get("/streaks", summary="Current and longest streak of coding days")
async def streaks_(principal: Reader, store: Store) -> dict[str, Any]:
    active = await blocking(store.active_dates, principal.user.user_id)
    current, longest = streaks(active, today_in(principal.user.timezone))
    return {"current_streak": current, "longest_streak": longest}


BREAKDOWN_DIMENSIONS = ("language", "project", "editor", "os", "machine", "branch", "category")
LimitQ = Annotated[int, Query(ge=1, le=100, description="entries per dimension (default 10)")]


@router.get(
    "/breakdown",
    summary="Time per language, project, editor, OS, machine, branch and category",
    responses=ranged,
)
async def breakdown(w: Window, limit: LimitQ = 10) -> dict[str, Any]:
    """Every dimension of the range in one answer (the dashboard's one read for its lists)."""
    rows = w.rows
    total = sum(r.total_seconds for r in rows)
    range_start, range_end = w.span.iso_bounds()
    return {
        "total_seconds": round(total),
        "range_start": range_start,
        "range_end": range_end,
        "timezone": w.span.timezone,
        "dimensions": {
            dimension: [
                {"name": name, "seconds": round(sec), "percentage": _pct(sec, total)}
                for name, sec in ranked(sum_breakdown(rows, dimension))[:limit]
            ]
            for dimension in BREAKDOWN_DIMENSIONS
        },
    }
