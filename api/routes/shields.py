"""``GET /api/compat/shields/v1/{user}/interval:<range>[/project:<p>|/language:<l>]``: a
shields.io endpoint badge (``{schemaVersion, label, message, color}``) of a public user's
time. The interval is a summaries range (``today``, ``last_7_days``...) or a stats range
(``all_time``, ``2026``, ``2026-11``...), ``all_time`` when omitted. A project needs the
profile to show projects, a language to show languages."""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from typing import Any

from fastapi import APIRouter, Request, Response

from api.routes.store_calls import blocking
from api.routes.wakatime_deps import NOT_FOUND, Store, bad, owner_or_public
from api.rules.stats import sum_breakdown, today_in
from api.rules.wakatime import Visibility, stats_range, summary_range, text_of
from http_edge.errors import ApiError, error_responses
from schemas.languages import canonical_language

router = APIRouter(tags=["wakatime"], responses=error_responses(400, 404, 503))


@router.get(
    "/api/compat/shields/v1/{user}/{spec:path}",
    summary="shields.io endpoint badge of a public user's time",
)
async def shield(
    request: Request, user: str, spec: str, response: Response, store: Store
) -> dict[str, Any]:
    filters = _shield_spec(spec)
    who = await owner_or_public(request, user)
    owner = who.user
    visible = Visibility() if who.owner else Visibility.public(owner)
    if ("project" in filters and not visible.projects) or (
        "language" in filters and not visible.languages
    ):
        raise ApiError(404, NOT_FOUND)
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


def _shield_spec(spec: str) -> dict[str, str]:
    filters: dict[str, str] = {}
    for part in filter(None, spec.split("/")):
        key, sep, value = part.partition(":")
        if not sep or key not in ("interval", "project", "language") or not value:
            raise bad("spec", f"expected interval:, project: or language: parts, got {part!r}")
        filters[key] = value
    if "project" in filters and "language" in filters:
        raise bad("spec", "give a project or a language, not both")
    return filters
