"""Wakapi's own read API, so scripts, scrapers and dashboards written for a Wakapi server work.

* ``GET /api/summary?interval=|start=|from=&to=`` with Wakapi's filters (``project``,
  ``language``, ``editor``, ``operating_system``, ``machine``, ``label``, ``branch``,
  ``entity``, ``category``): Wakapi's ``models.Summary`` of the caller, with their project
  aliases and labels applied.
* ``GET /api/metrics``: the caller's metrics in Prometheus' text format, under Wakapi's names.
* ``GET /api/users/{user}/statusbar/{range}`` (and under ``/api/v1`` and Wakapi's WakaTime
  base): WakaTime's status bar answer over any of Wakapi's intervals.

``/api/health`` is served by :mod:`codetrackr.health` (every role); the WakaTime routes under
``/api/compat/wakatime/v1`` by :mod:`api.routes.wakatime`; the shields badge by
:mod:`api.routes.shields`. Rules: :mod:`api.rules.wakapi`.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response

from accounts.state import User
from api.deps import Reader
from api.routes.badges import HEATMAP_DAYS, SVG, SVG_HEADERS
from api.routes.store_calls import blocking
from api.routes.wakatime_deps import (
    NOT_FOUND,
    RuleParams,
    Store,
    now_iso,
    own,
    owner_or_public,
    question,
)
from api.rules.activity import ActivityReader
from api.rules.badges import render_heatmap
from api.rules.projects import naming_of
from api.rules.stats import EARLIEST, LATEST, DateRange, daily_series, today_in
from api.rules.wakapi import (
    Filters,
    UserMetrics,
    clip,
    metrics_text,
    parse_instant,
    resolve_interval,
    statusbar_data,
    summary,
)
from http_edge.compat import WAKAPI_WAKATIME_PREFIX
from http_edge.errors import ApiError, error_responses
from projections.daily import local_date
from projections.durations import Span, filter_spans
from projections.ports import WakaTimeStore
from schemas.languages import stored_language

router = APIRouter(tags=["wakapi"], responses=error_responses(401, 503))

# A heartbeat is dated in the zone it was sent with, which may be up to 26 hours from the
# user's: the days folded around an instant range reach this far beyond it, then are clipped.
_ZONE_MARGIN = timedelta(days=2)

FilterQ = Annotated[str | None, Query(max_length=500)]


async def _spans(store: WakaTimeStore, owner: User, start: datetime, end: datetime) -> list[Span]:
    """The owner's spans (their timeout and writes-only setting) inside ``[start, end)``."""
    tz = owner.timezone
    first_day = local_date(start.timestamp(), tz) - _ZONE_MARGIN
    last_day = local_date(end.timestamp(), tz) + _ZONE_MARGIN
    active = await blocking(store.active_dates, owner.user_id)
    if not active:
        return []
    first_day = max(first_day, active[0], EARLIEST)
    last_day = min(last_day, active[-1], LATEST)
    if first_day > last_day:
        return []
    q = question(owner, RuleParams())
    span = DateRange(first_day, last_day, tz)
    spans = await blocking(ActivityReader(store).spans_between, owner.user_id, span, q)
    return clip(spans, start.timestamp(), end.timestamp())


def _range(
    owner: User, interval: str | None, start: str | None, from_: str | None, to: str | None
) -> tuple[datetime, datetime]:
    now = datetime.now(ZoneInfo(owner.timezone))
    if interval or start:
        return resolve_interval(interval or start or "", now)
    begin = parse_instant(from_, owner.timezone, "from")
    finish = parse_instant(to, owner.timezone, "to")
    if finish < begin:
        raise ApiError(
            400,
            "invalid to: must not be before from",
            code="validation_error",
            details={"fields": {"to": "before from"}},
        )
    return begin, finish


@router.get(
    "/api/summary",
    summary="The caller's summary over an interval or from/to, with Wakapi's filters",
    responses=error_responses(400),
)
async def summary_(
    principal: Reader,
    store: Store,
    interval: Annotated[str | None, Query(description="e.g. today, week, 7_days, all_time")] = None,
    start: Annotated[str | None, Query(description="an interval, as `interval`")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="YYYY-MM-DD, date-time or RFC 3339")
    ] = None,
    to: Annotated[str | None, Query(description="YYYY-MM-DD (its first instant) ...")] = None,
    recompute: Annotated[
        bool | None, Query(description="accepted; answers are never cached")
    ] = None,
    project: FilterQ = None,
    language: FilterQ = None,
    editor: FilterQ = None,
    operating_system: FilterQ = None,
    machine: FilterQ = None,
    branch: FilterQ = None,
    entity: FilterQ = None,
    category: FilterQ = None,
    label: FilterQ = None,
) -> dict[str, Any]:
    owner = principal.user
    begin, finish = _range(owner, interval, start, from_, to)
    asked = {
        "project": project,
        "language": language,
        "editor": editor,
        "operating_system": operating_system,
        "machine": machine,
        "branch": branch,
        "entity": entity,
        "category": category,
    }
    filters = Filters({k: v for k, v in asked.items() if v is not None})
    spans = await _spans(store, owner, begin, finish)
    equals = filters.equals(stored_language(language) if language else None)
    naming = naming_of(owner.project_aliases, owner.project_labels)
    if label is not None:
        labeled = naming.projects_labeled(label)
        equals["project"] = equals.get("project", labeled) & labeled
    kept = filter_spans(spans, **equals)
    return summary(
        owner.username, begin, finish, kept, project_detail=project is not None, naming=naming
    )


@router.get(
    "/api/metrics",
    summary="The caller's metrics in Prometheus' text format, under Wakapi's names",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(principal: Reader, store: Store) -> Response:
    owner = principal.user
    now = datetime.now(ZoneInfo(owner.timezone))
    start, end = resolve_interval("today", now)
    today = await _spans(store, owner, start, end)
    active = await blocking(store.active_dates, owner.user_id)
    all_time = 0.0
    heartbeats = 0
    if active:
        span = DateRange(active[0], max(active[-1], now.date()), owner.timezone)
        q = question(owner, RuleParams())
        rows = await blocking(ActivityReader(store).rows, owner.user_id, span, q)
        all_time = sum(row.total_seconds for row in rows)
        stored = await blocking(store.daily_rows, owner.user_id, span.start, span.end)
        heartbeats = sum(row.heartbeat_count for row in stored)
    monday = now.date() - timedelta(days=now.weekday())
    position = await blocking(store.leaderboard_position, monday, owner.user_id)
    body = metrics_text(
        UserMetrics(
            all_time_seconds=all_time,
            today=today,
            heartbeats=heartbeats,
            rank=position.rank if position is not None else 0,
            naming=naming_of(owner.project_aliases, owner.project_labels),
        )
    )
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


async def statusbar(user: str, range: str, principal: Reader, store: Store) -> dict[str, Any]:
    owner = own(user, principal)
    now = datetime.now(ZoneInfo(owner.timezone))
    start, end = resolve_interval(range, now)
    spans = await _spans(store, owner, start, end)
    data = statusbar_data(spans, start, end, range, owner.timezone)
    return {"cached_at": now_iso(), "has_team_features": False, "data": data}


for _base in ("/api", "/api/v1", WAKAPI_WAKATIME_PREFIX):
    router.get(
        f"{_base}/users/{{user}}/statusbar/{{range}}",
        summary="The status bar answer over one of Wakapi's intervals",
        responses=error_responses(400, 403),
        include_in_schema=_base == "/api",
    )(statusbar)


@router.get(
    "/api/activity/chart/{user_svg}",
    summary="The last 12 months of activity as an SVG calendar (Wakapi's activity chart)",
    include_in_schema=False,
)
async def activity_chart(request: Request, user_svg: str, store: Store) -> Response:
    """The heatmap badge (``docs/badges.md``) at Wakapi's path, ``<username>.svg``: the owner's
    own with credentials, else a public profile that shows its activity; anybody else's is the
    same 404 as an unknown name."""
    if not user_svg.endswith(".svg"):
        raise ApiError(404, "not found: the chart is <username>.svg")
    who = await owner_or_public(request, user_svg.removesuffix(".svg"))
    owner = who.user
    if not who.owner and not owner.profile_show_activity:
        raise ApiError(404, NOT_FOUND)
    today = today_in(owner.timezone)
    span = DateRange(today - timedelta(days=HEATMAP_DAYS - 1), today, owner.timezone)
    rows = await blocking(store.daily_rows, owner.user_id, span.start, span.end)
    title = f"{owner.username}: coding activity from {span.start} to {span.end}"
    return Response(
        render_heatmap(daily_series(rows, span), title=title), media_type=SVG, headers=SVG_HEADERS
    )
