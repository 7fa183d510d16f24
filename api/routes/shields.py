"""``GET /api/compat/shields/v1/{user}/interval:<range>[/<dimension>:<value>]``: a shields.io
endpoint badge (``{schemaVersion, label, message, color}``) of a public user's time, at the path
Wakapi serves it. The interval is a summaries range (``today``, ``last_7_days``...), a stats
range (``all_time``, ``2026``, ``2026-11``...) or one of Wakapi's names for them (``week``,
``7_days``, ``any``, ``12_months``...), ``last_30_days`` when omitted (Wakapi's default). The
dimension is ``project``, ``label`` (the owner's project labels), ``language``, ``editor``,
``os`` or ``machine``: a project or a label needs the profile to show projects, a language to
show languages, a machine is only the owner's to see. Project aliases apply."""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# when the routes are declared.

from datetime import date
from typing import Any

from fastapi import APIRouter, Request, Response

from api.routes.store_calls import blocking
from api.routes.wakatime_deps import NOT_FOUND, Store, bad, owner_or_public
from api.rules.projects import naming_of
from api.rules.stats import sum_breakdown, today_in
from api.rules.wakapi import interval_key
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
    if (
        (("project" in filters or "label" in filters) and not visible.projects)
        or ("language" in filters and not visible.languages)
        or ("machine" in filters and not visible.machines)
    ):
        raise ApiError(404, NOT_FOUND)
    tz = owner.timezone
    today = today_in(tz)
    interval = _our_range(filters.get("interval", "last_30_days"), today)
    try:
        span = summary_range(interval, today, tz).span
    except ApiError:
        active = await blocking(store.active_dates, owner.user_id)
        span = stats_range(interval, today, tz, active[0] if active else None).span
    naming = naming_of(owner.project_aliases, owner.project_labels)
    rows = naming.rows(await blocking(store.daily_rows, owner.user_id, span.start, span.end))
    label, seconds = "coding time", sum(row.total_seconds for row in rows)
    for dimension in _DIMENSIONS:
        if dimension in filters:
            label = filters[dimension]
            if dimension == "language":  # any spelling: `language:python` is Python
                label = canonical_language(label)
            if dimension == "label":
                seconds = naming.label_totals(sum_breakdown(rows, "project")).get(label, 0.0)
            else:
                seconds = sum_breakdown(rows, dimension).get(label, 0.0)
    response.headers["Cache-Control"] = "max-age=1800"
    return {"schemaVersion": 1, "label": label, "message": text_of(seconds), "color": "blue"}


_DIMENSIONS = ("project", "language", "editor", "os", "machine", "label")
# Wakapi's interval names whose days are one of our ranges (its others are ours already).
_WAKAPI_RANGES = {"last_12_months": "last_year"}


def _our_range(interval: str, today: date) -> str:
    """Our name of a range given in Wakapi's words (``7_days`` is ``last_7_days``)."""
    try:
        key = interval_key(interval)
    except ApiError:
        return interval  # ours, or refused by the range rules below
    if key == "this_year":
        return str(today.year)
    if key == "last_24_hours":
        raise bad("interval", "last_24_hours is not a range of whole days; use today")
    return _WAKAPI_RANGES.get(key, key)


def _shield_spec(spec: str) -> dict[str, str]:
    filters: dict[str, str] = {}
    for part in filter(None, spec.split("/")):
        key, sep, value = part.partition(":")
        if not sep or key not in ("interval", *_DIMENSIONS) or not value:
            raise bad(
                "spec", f"expected interval: and one of {', '.join(_DIMENSIONS)}, got {part!r}"
            )
        filters[key] = value
    if len(set(filters) & set(_DIMENSIONS)) > 1:
        raise bad("spec", f"give at most one of {', '.join(_DIMENSIONS)}")
    return filters
