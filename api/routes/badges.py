"""Anonymous reads for READMEs and landing pages: SVG badges and the platform's public totals.

* ``GET /badge/{username}/{metric}``: a flat badge of one of :data:`api.rules.badges.METRICS`;
* ``GET /badge/{username}/heatmap``: a calendar of the last 365 days;
* ``GET /api/v1/user/badge/{username}/{lang}``: time in one language over the last 7 days;
* ``GET /api/v1/stats/public``: public users and the time recorded on the whole platform.

No route here reads credentials. Badges render only for users whose profile is public; a private
user and a name nobody has get the same bytes (:data:`api.rules.badges.PRIVATE_BADGE`, 200),
looked up without a catch-up of the account log so that they also take the same time. A public
profile's ``profile_show_languages`` / ``profile_show_streak`` / ``profile_show_activity``
switched off turn the language, streak and heatmap badges into "hidden" ones. Malformed or unknown
metrics and styles are errors in the JSON envelope (400/404), as everywhere else in the API.

Days are the user's local days (as in every other stats read), so "today" starts at the user's
midnight, and "the last 7 days" are today and the six before. The SVG routes are left out of the
OpenAPI schema, which describes the JSON API.
"""

# No `from __future__ import annotations` here: FastAPI must resolve the locally defined
# dependency aliases when the routes are declared.

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from accounts.directory import AccountDirectory
from accounts.state import User
from api.routes.store_calls import blocking
from api.routes.ttl_cache import TtlCache
from api.rules.badges import (
    METRICS,
    PRIVATE_BADGE,
    hidden_badge,
    language_badge,
    metric_badge,
    render_badge,
    render_heatmap,
)
from api.rules.stats import (
    EARLIEST,
    LATEST,
    DateRange,
    daily_series,
    streaks,
    sum_breakdown,
    today_in,
    top,
)
from http_edge.errors import ApiError, error_responses
from projections.daily import DailyRow
from projections.ports import BadgeStore, UserTotals
from schemas.languages import OTHER, canonical_language, merge_languages

WEEK_DAYS = 7
HEATMAP_DAYS = 365
TOP_LANGUAGES = 10
SVG = "image/svg+xml"
# Cached by browsers and CDNs for an hour (GitHub's image proxy honours it). The policy keeps an
# SVG opened on its own from running anything, should it ever carry more than text.
# (X-Content-Type-Options: nosniff is on every response, set by the server: codetrackr/cli.py.)
SVG_HEADERS = {
    "Cache-Control": "max-age=3600, s-maxage=3600",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


def _svg(body: str) -> Response:
    return Response(content=body, media_type=SVG, headers=SVG_HEADERS)


def build_badges_router(directory: AccountDirectory, store: BadgeStore) -> APIRouter:
    router = APIRouter(tags=["badges"], responses=error_responses(400, 404, 503))
    Username = Annotated[str, Path(description="a public user's username")]
    Style = Annotated[
        Literal["flat"], Query(description="badge style; flat is the only built-in one")
    ]

    async def public_user(username: str) -> User | None:
        # fresh=False: no catch-up of the account log, so unknown and private names cost the same
        found = await directory.user_by_username(username, fresh=False)
        return found if found is not None and found.is_public else None

    async def rows(user: User, days: int) -> tuple[DateRange, list[DailyRow]]:
        today = today_in(user.timezone)
        span = DateRange(today - timedelta(days=days - 1), today, user.timezone)
        return span, await blocking(store.daily_rows, user.user_id, span.start, span.end)

    # Declared before the generic route, which would otherwise take "heatmap" as a metric.
    @router.get("/badge/{username}/heatmap", include_in_schema=False)
    async def heatmap(username: Username, style: Style = "flat") -> Response:
        user = await public_user(username)
        if user is None:
            return _svg(PRIVATE_BADGE)
        if not user.profile_show_activity:
            return _svg(hidden_badge("activity"))
        span, found = await rows(user, HEATMAP_DAYS)
        title = f"{user.username}: coding activity from {span.start} to {span.end}"
        return _svg(render_heatmap(daily_series(found, span), title=title))

    @router.get("/badge/{username}/{metric}", include_in_schema=False)
    async def badge(
        username: Username,
        metric: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]+$", max_length=50)],
        style: Style = "flat",
    ) -> Response:
        if metric not in METRICS:  # checked before the user, so it reveals nothing about them
            raise ApiError(404, f"unknown badge metric; use {', '.join(METRICS)} or heatmap")
        user = await public_user(username)
        if user is None:
            return _svg(PRIVATE_BADGE)
        if (metric == "streak" and not user.profile_show_streak) or (
            metric == "top-language" and not user.profile_show_languages
        ):
            return _svg(hidden_badge(METRICS[metric]))
        if metric == "streak":
            active = await blocking(store.active_dates, user.user_id)
            current, _ = streaks(active, today_in(user.timezone))
            return _svg(render_badge(metric_badge(metric, current)))
        if metric == "all-time":
            today = today_in(user.timezone)
            found = await blocking(store.daily_rows, user.user_id, EARLIEST, today)
        else:
            _, found = await rows(user, 1 if metric == "today" else WEEK_DAYS)
        if metric == "top-language":
            by_language = sum_breakdown(found, "language")
            best = top(by_language)
            seconds = by_language[best] if best is not None else 0.0
            return _svg(render_badge(metric_badge(metric, seconds, language=best)))
        total = sum(row.total_seconds for row in found)
        return _svg(render_badge(metric_badge(metric, total)))

    @router.get("/api/v1/user/badge/{username}/{lang:path}", include_in_schema=False)
    async def language(username: Username, lang: str, style: Style = "flat") -> Response:
        if not lang.strip():
            raise ApiError(404, "name a language: /api/v1/user/badge/{username}/{lang}")
        user = await public_user(username)
        if user is None:
            return _svg(PRIVATE_BADGE)
        if not user.profile_show_languages:
            return _svg(hidden_badge(lang))
        _, found = await rows(user, WEEK_DAYS)
        # Any spelling names the language (/python, /PYTHON, /golang); the badge shows its name.
        wanted = canonical_language(lang)
        seconds = sum_breakdown(found, "language").get(wanted, 0.0)
        return _svg(render_badge(language_badge(wanted, seconds)))

    return router


def build_public_stats_router(
    directory: AccountDirectory,
    store: BadgeStore,
    *,
    ttl_s: float = 60.0,
    clock: Callable[[], float] = time.monotonic,
) -> APIRouter:
    """The platform's totals scan every user's days: they are kept ``ttl_s`` seconds (per UTC
    day), while who shows their languages is read from the directory on every request, so a
    profile that hides them is left out at once."""
    router = APIRouter(tags=["stats"], responses=error_responses(503))
    scans: TtlCache[tuple[list[UserTotals], list[UserTotals]]] = TtlCache(ttl_s, clock=clock)

    @router.get(
        "/api/v1/stats/public",
        summary="Public users and the coding time recorded on the platform (no credentials)",
    )
    async def public_stats() -> dict[str, Any]:
        everyone = directory.users()
        today = today_in("UTC")
        week_start = today - timedelta(days=WEEK_DAYS - 1)

        async def scan() -> tuple[list[UserTotals], list[UserTotals]]:
            return (
                await blocking(store.totals_by_user, EARLIEST, LATEST),
                await blocking(store.totals_by_user, week_start, today),
            )

        all_time, week = await scans.get(today, scan)
        # Languages only from users whose public profile shows theirs: a platform of one private
        # user must not give away what they write.
        shown = {u.user_id for u in everyone if u.is_public and u.profile_show_languages}
        languages: dict[str, float] = {}
        for entry in week:
            if entry.user_id in shown:
                for name, seconds in merge_languages(entry.languages.items()).items():
                    languages[name] = languages.get(name, 0.0) + seconds
        top = sorted(
            ((name, sec) for name, sec in languages.items() if name != OTHER and sec > 0),
            key=lambda kv: (-kv[1], kv[0]),
        )[:TOP_LANGUAGES]
        return {
            "users": sum(1 for u in everyone if u.is_public),
            "total_seconds": round(sum(t.total_seconds for t in all_time)),
            "last_7_days": {
                "start": week_start.isoformat(),
                "end": today.isoformat(),
                "total_seconds": round(sum(t.total_seconds for t in week)),
                "active_users": sum(1 for t in week if t.total_seconds > 0),
                "top_languages": [{"language": name, "seconds": round(sec)} for name, sec in top],
            },
        }

    return router
