"""Pure rules of the WakaTime-compatible read API: ranges, time formats and response shapes.

Nothing here reads a clock, a database or a request: the routes (:mod:`api.routes.wakatime`)
pass in today's date, the user and the folded days, and get back the documented JSON shapes.
Names and shapes follow the public WakaTime API v1 documentation, so that editor plugins,
readme cards and dashboards written for WakaTime read CodeTrackr unchanged.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from accounts.state import User
from api.rules.stats import EARLIEST, LATEST, DateRange, ranked, sum_breakdown
from http_edge.problem import ApiError
from projections.daily import DailyRow
from projections.durations import Span
from schemas.languages import canonical_language

# The lists a summary day carries, and the daily-stats dimension each is summed from.
SUMMARY_LISTS: dict[str, str] = {
    "categories": "category",
    "projects": "project",
    "languages": "language",
    "editors": "editor",
    "operating_systems": "os",
    "machines": "machine",
}
# Only when the request names a project (WakaTime's rule: they are per-project detail).
PROJECT_DETAIL_LISTS: dict[str, str] = {"branches": "branch", "entities": "entity"}

SUMMARY_RANGES = (
    "today",
    "yesterday",
    "last_7_days",
    "last_7_days_from_yesterday",
    "last_14_days",
    "last_30_days",
    "this_week",
    "last_week",
    "this_month",
    "last_month",
)
# WakaTime's ranges and Chronova's (which adds today and yesterday).
STATS_RANGES = (
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "last_6_months",
    "last_year",
    "all_time",
)
INSIGHT_TYPES = (
    "weekday",
    "days",
    "best_day",
    "daily_average",
    "projects",
    "languages",
    "editors",
    "categories",
    "machines",
    "operating_systems",
)
SLICE_BY = ("project", "entity", "language", "editor", "os", "machine", "branch", "category")


@dataclass(frozen=True, slots=True)
class NamedRange:
    """A resolved range: its days, the name a client used and the text WakaTime shows."""

    span: DateRange
    name: str
    text: str


# ---- time formats -------------------------------------------------------------------------------


def _hm(seconds: float) -> tuple[int, int, int]:
    whole = max(0, int(seconds))
    return whole // 3600, whole % 3600 // 60, whole % 60


def text_of(seconds: float) -> str:
    """``"2 hrs 5 mins"``, ``"1 hr 1 min"``, ``"45 secs"`` (under a minute), ``"0 secs"``."""
    hours, minutes, secs = _hm(seconds)
    if hours == 0 and minutes == 0:
        return f"{secs} sec" if secs == 1 else f"{secs} secs"
    parts = []
    if hours:
        parts.append(f"{hours} hr" if hours == 1 else f"{hours} hrs")
    if minutes or not hours:
        parts.append(f"{minutes} min" if minutes == 1 else f"{minutes} mins")
    return " ".join(parts)


def digital_of(seconds: float) -> str:
    """``"H:MM"``."""
    hours, minutes, _ = _hm(seconds)
    return f"{hours}:{minutes:02d}"


def decimal_of(seconds: float) -> str:
    """Hours with two decimals, as text: ``"1.50"`` for 1 h 30 min."""
    return f"{max(0, int(seconds)) / 3600:.2f}"


def grand_total(seconds: float) -> dict[str, Any]:
    hours, minutes, _ = _hm(seconds)
    return {
        "digital": digital_of(seconds),
        "decimal": decimal_of(seconds),
        "hours": hours,
        "minutes": minutes,
        "text": text_of(seconds),
        "total_seconds": round(seconds, 3),
    }


def short_total(seconds: float) -> dict[str, Any]:
    """``cumulative_total``'s shape."""
    return {
        "seconds": round(seconds, 3),
        "text": text_of(seconds),
        "decimal": decimal_of(seconds),
        "digital": digital_of(seconds),
    }


def items(totals: dict[str, float]) -> list[dict[str, Any]]:
    """A summary list: every value with its time and share, the longest first."""
    whole = sum(totals.values())
    result = []
    for name, seconds in ranked(totals):
        hours, minutes, secs = _hm(seconds)
        result.append(
            {
                "name": name,
                "total_seconds": round(seconds, 3),
                "percent": round(100.0 * seconds / whole, 2) if whole > 0 else 0.0,
                "digital": digital_of(seconds),
                "decimal": decimal_of(seconds),
                "text": text_of(seconds),
                "hours": hours,
                "minutes": minutes,
                "seconds": secs,
            }
        )
    return result


# ---- ranges -------------------------------------------------------------------------------------


def range_key(name: str) -> str:
    """``"Last 7 Days"`` and ``"last_7_days"`` name the same range."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _invalid_range(name: str, allowed: Sequence[str], extra: str = "") -> ApiError:
    message = f"invalid range {name!r}: use one of {', '.join(allowed)}{extra}"
    return ApiError(
        400, message, code="validation_error", details={"fields": {"range": "unknown range"}}
    )


def summary_range(name: str, today: date, tz: str) -> NamedRange:
    key = range_key(name)
    monday = today - timedelta(days=today.weekday())
    first_of_month = today.replace(day=1)
    spans: dict[str, tuple[date, date]] = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "last_7_days": (today - timedelta(days=6), today),
        "last_7_days_from_yesterday": (today - timedelta(days=7), today - timedelta(days=1)),
        "last_14_days": (today - timedelta(days=13), today),
        "last_30_days": (today - timedelta(days=29), today),
        "this_week": (monday, today),
        "last_week": (monday - timedelta(days=7), monday - timedelta(days=1)),
        "this_month": (first_of_month, today),
        "last_month": (
            (first_of_month - timedelta(days=1)).replace(day=1),
            first_of_month - timedelta(days=1),
        ),
    }
    if key not in spans:
        raise _invalid_range(name, SUMMARY_RANGES)
    start, end = spans[key]
    return NamedRange(DateRange(start, end, tz), key, key.replace("_", " ").title())


def stats_range(name: str, today: date, tz: str, first_active: date | None) -> NamedRange:
    """``today``, ``yesterday``, ``last_7_days`` ... ``all_time``, a year ``YYYY`` or a month
    ``YYYY-MM``."""
    key = range_key(name)
    if key == "yesterday":
        day = today - timedelta(days=1)
        return NamedRange(DateRange(day, day, tz), key, "yesterday")
    if key == "today":
        start, text = today, "today"
    elif key == "last_7_days":
        start, text = today - timedelta(days=6), "last 7 days"
    elif key == "last_30_days":
        start, text = today - timedelta(days=29), "last 30 days"
    elif key == "last_6_months":
        start, text = _months_back(today, 6) + timedelta(days=1), "last 6 months"
    elif key == "last_year":
        start, text = _months_back(today, 12) + timedelta(days=1), "last year"
    elif key == "all_time":
        start, text = min(first_active or today, today), "all time"
    else:
        return _calendar_range(name, tz)
    return NamedRange(DateRange(start, today, tz), key, text)


def _months_back(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _calendar_range(name: str, tz: str) -> NamedRange:
    try:
        if len(name) == 4 and name.isdigit():
            start, end = date(int(name), 1, 1), date(int(name), 12, 31)
            text = name
        elif len(name) == 7 and name[4] == "-" and name[:4].isdigit() and name[5:].isdigit():
            year, month = int(name[:4]), int(name[5:])
            start = date(year, month, 1)
            end = date(year, month, calendar.monthrange(year, month)[1])
            text = start.strftime("%B %Y")
        else:
            raise ValueError(name)
    except ValueError:
        raise _invalid_range(name, STATS_RANGES, ", YYYY or YYYY-MM") from None
    start, end = max(start, EARLIEST), min(end, LATEST)  # nothing is stored outside them
    if start > end:
        raise _invalid_range(name, STATS_RANGES, f", YYYY or YYYY-MM from {EARLIEST.year}")
    return NamedRange(DateRange(start, end, tz), name, text)


def day_range(day: date, tz: str) -> dict[str, Any]:
    """One local day as WakaTime names it: from its midnight to its last second, 23:59:59
    local (never the next day's midnight, which is another day's)."""
    start, end = DateRange(day, day, tz).closed_bounds()
    return {
        "date": day.isoformat(),
        "start": start,
        "end": end,
        "text": day.strftime("%a %b %d %Y"),
        "timezone": tz,
    }


# ---- response shapes ----------------------------------------------------------------------------


def summary_day(
    day: date, rows: Sequence[DailyRow], tz: str, *, project_detail: bool
) -> dict[str, Any]:
    """One day of ``summaries`` (and the ``data`` of ``statusbar/today``)."""
    total = sum(row.total_seconds for row in rows)
    body: dict[str, Any] = {"grand_total": grand_total(total)}
    lists = {**SUMMARY_LISTS, **(PROJECT_DETAIL_LISTS if project_detail else {})}
    for key, dimension in lists.items():
        body[key] = items(sum_breakdown(rows, dimension))
    body["dependencies"] = []
    body["range"] = day_range(day, tz)
    return body


def days_of(span: DateRange) -> list[date]:
    return [span.start + timedelta(days=i) for i in range(span.days)]


def summaries(span: DateRange, rows: Sequence[DailyRow], *, project_detail: bool) -> dict[str, Any]:
    by_day: dict[date, list[DailyRow]] = {}
    for row in rows:
        by_day.setdefault(row.date, []).append(row)
    data = [
        summary_day(day, by_day.get(day, []), span.timezone, project_detail=project_detail)
        for day in days_of(span)
    ]
    total = sum(row.total_seconds for row in rows)
    start, end = span.closed_bounds()
    return {
        "data": data,
        "cumulative_total": short_total(total),
        "daily_average": average_block(span, rows),
        "start": start,
        "end": end,
    }


def _per_day(rows: Iterable[DailyRow]) -> dict[date, float]:
    totals: dict[date, float] = {}
    for row in rows:
        totals[row.date] = totals.get(row.date, 0.0) + row.total_seconds
    return totals


def average_block(span: DateRange, rows: Sequence[DailyRow]) -> dict[str, Any]:
    """WakaTime's ``daily_average``: over the days with activity ("holidays" are the others)."""
    active = [seconds for seconds in _per_day(rows).values() if seconds > 0]
    average = sum(active) / len(active) if active else 0.0
    return {
        "holidays": span.days - len(active),
        "days_including_holidays": span.days,
        "days_minus_holidays": len(active),
        "seconds": round(average),
        "text": text_of(average),
        "seconds_including_other_language": round(average),
        "text_including_other_language": text_of(average),
    }


def best_day(rows: Sequence[DailyRow]) -> dict[str, Any] | None:
    totals = _per_day(rows)
    if not totals or max(totals.values()) <= 0:
        return None
    # The longest day; the earliest of equals, so the answer does not depend on row order.
    day, seconds = min(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"date": day.isoformat(), "text": text_of(seconds), "total_seconds": round(seconds, 3)}


@dataclass(frozen=True, slots=True)
class Visibility:
    """What a reader may see of a user's stats: everything for the owner, the profile's
    ``profile_show_*`` choices for anybody else."""

    languages: bool = True
    projects: bool = True
    other: bool = True  # editors, operating systems, categories
    machines: bool = True

    @classmethod
    def public(cls, user: User) -> Visibility:
        return cls(
            languages=user.profile_show_languages,
            projects=user.profile_show_projects,
            other=True,
            machines=False,
        )


def stats(
    user: User,
    named: NamedRange,
    rows: Sequence[DailyRow],
    *,
    timeout_minutes: int,
    writes_only: bool,
    visible: Visibility,
    now_iso: str,
) -> dict[str, Any]:
    """The ``data`` of ``stats/{range}``."""
    span = named.span
    average = average_block(span, rows)
    total = sum(row.total_seconds for row in rows)
    start, end = span.closed_bounds()

    def listed(dimension: str, shown: bool) -> list[dict[str, Any]]:
        return items(sum_breakdown(rows, dimension)) if shown else []

    return {
        "id": f"{user.user_id}:{named.name}",
        "user_id": user.user_id,
        "username": user.username,
        "range": named.name,
        "human_readable_range": named.text,
        "start": start,
        "end": end,
        "timezone": span.timezone,
        "timeout": timeout_minutes,
        "writes_only": writes_only,
        "status": "ok",
        "is_up_to_date": True,
        "is_up_to_date_pending_future": False,
        "is_already_updating": False,
        "is_stuck": False,
        "percent_calculated": 100,
        "is_including_today": span.start <= date.fromisoformat(now_iso[:10]) <= span.end,
        "is_coding_activity_visible": True,
        "is_other_usage_visible": visible.other,
        "holidays": average["holidays"],
        "days_including_holidays": average["days_including_holidays"],
        "days_minus_holidays": average["days_minus_holidays"],
        "total_seconds": round(total, 3),
        "total_seconds_including_other_language": round(total, 3),
        "human_readable_total": text_of(total),
        "human_readable_total_including_other_language": text_of(total),
        "daily_average": average["seconds"],
        "daily_average_including_other_language": average["seconds"],
        "human_readable_daily_average": average["text"],
        "human_readable_daily_average_including_other_language": average["text"],
        "languages": listed("language", visible.languages),
        "projects": listed("project", visible.projects),
        "editors": listed("editor", visible.other),
        "operating_systems": listed("os", visible.other),
        "categories": listed("category", visible.other),
        "machines": listed("machine", visible.machines),
        "dependencies": [],
        "best_day": best_day(rows),
        "created_at": now_iso,
        "modified_at": now_iso,
    }


def insight(kind: str, span: DateRange, rows: Sequence[DailyRow]) -> Any:
    """The value of one insight over the range's days."""
    per_day = _per_day(rows)
    if kind == "days":
        return [
            {"date": day.isoformat(), "total": round(per_day.get(day, 0.0), 3)}
            for day in days_of(span)
        ]
    if kind == "weekday":
        sums = [0.0] * 7
        counts = [0] * 7
        for day in days_of(span):
            sums[day.weekday()] += per_day.get(day, 0.0)
            counts[day.weekday()] += 1
        return [
            {
                "name": calendar.day_name[i],
                "total": round(sums[i], 3),
                "average": round(sums[i] / counts[i], 3) if counts[i] else 0.0,
                "days": counts[i],
            }
            for i in range(7)
        ]
    if kind == "best_day":
        best = best_day(rows)
        return None if best is None else {"date": best["date"], "total": best["total_seconds"]}
    if kind == "daily_average":
        return average_block(span, rows)
    dimension = {**SUMMARY_LISTS}.get(kind)
    if dimension is None:
        raise ApiError(
            400,
            f"invalid insight type {kind!r}: use one of {', '.join(INSIGHT_TYPES)}",
            code="validation_error",
            details={"fields": {"insight_type": "unknown insight type"}},
        )
    return [
        {"name": name, "total": round(seconds, 3)}
        for name, seconds in ranked(sum_breakdown(rows, dimension))
    ]


def durations(spans: Iterable[Span], slice_by: str) -> list[dict[str, Any]]:
    """Spans as WakaTime durations: per project (and ``slice_by`` value), consecutive spans
    that touch are joined; a gap of at least the timeout separates two durations."""
    if slice_by not in SLICE_BY:
        raise ApiError(
            400,
            f"invalid slice_by {slice_by!r}: use one of {', '.join(SLICE_BY)}",
            code="validation_error",
            details={"fields": {"slice_by": "unknown field"}},
        )
    result: list[dict[str, Any]] = []
    last_end: float | None = None
    for span in spans:
        project = span.value("project") or "Unknown Project"
        value = span.value(slice_by)
        if slice_by == "language":  # spans of heartbeats archived before names were canonical
            value = canonical_language(value)
        key = {"project": project}
        if slice_by != "project":
            key[slice_by] = value
        if result and last_end == span.start and all(result[-1][k] == v for k, v in key.items()):
            result[-1]["duration"] = round(span.end - result[-1]["time"], 3)
        else:
            result.append({**key, "time": span.start, "duration": round(span.seconds, 3)})
        last_end = span.end
    return result
