"""Pure rules of Wakapi's read API: its intervals, its time parameters, its summary shape and its
Prometheus metrics.

Nothing here reads a clock, a database or a request: routes (:mod:`api.routes.wakapi`) pass in
"now", the user's timezone and the folded spans. Wakapi's ranges are instants, not local days:
``last_7_days`` is the last 7 × 24 hours up to now, ``today`` is local midnight up to now, and
``to=2026-03-02`` is the first instant of that date. Spans are clipped to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from api.rules.projects import NO_NAMING, ProjectNaming
from api.rules.stats import UNKNOWN
from api.rules.wakatime import SUMMARY_LISTS as WAKATIME_LISTS
from api.rules.wakatime import grand_total, items
from http_edge.problem import ApiError
from projections.durations import Span

# Wakapi's interval names (and WakaTime's spellings it accepts), each to one canonical key.
INTERVAL_ALIASES: dict[str, tuple[str, ...]] = {
    "today": ("today", "Today"),
    "yesterday": ("day", "yesterday", "Yesterday"),
    "last_24_hours": ("24_hours", "last_24_hours", "last_day", "Last 24 Hours"),
    "this_week": ("week", "This Week"),
    "last_week": ("last_week", "Last Week"),
    "this_month": ("month", "This Month"),
    "last_month": ("last_month", "Last Month"),
    "this_year": ("year", "This Year"),
    "last_7_days": ("7_days", "last_7_days", "Last 7 Days"),
    "last_7_days_from_yesterday": ("Last 7 Days from Yesterday",),
    "last_14_days": ("14_days", "last_14_days", "Last 14 Days"),
    "last_30_days": ("30_days", "last_30_days", "Last 30 Days"),
    "last_6_months": ("6_months", "last_6_months", "Last 6 Months"),
    "last_12_months": ("12_months", "last_12_months", "last_year", "Last 12 Months"),
    "all_time": ("any", "all_time", "All Time"),
}
_INTERVALS = {alias: key for key, aliases in INTERVAL_ALIASES.items() for alias in aliases}

# The summary's lists and the span dimension each sums (Wakapi's names).
SUMMARY_LISTS: dict[str, str] = {
    "projects": "project",
    "languages": "language",
    "editors": "editor",
    "operating_systems": "os",
    "machines": "machine",
    "categories": "category",
}
# Listed only when a project filter is given (Wakapi computes them for one project).
PROJECT_DETAIL_LISTS: dict[str, str] = {"branches": "branch", "entities": "entity"}
# Wakapi's filter query parameters, each to the span dimension it keeps.
FILTER_DIMENSIONS: dict[str, str] = {
    "project": "project",
    "language": "language",
    "editor": "editor",
    "operating_system": "os",
    "machine": "machine",
    "branch": "branch",
    "entity": "entity",
    "category": "category",
}
UNKNOWN_KEY = "unknown"  # Wakapi's name for "no value"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _bad(field: str, message: str) -> ApiError:
    return ApiError(
        400,
        f"invalid {field}: {message}",
        code="validation_error",
        details={"fields": {field: message}},
    )


def interval_key(name: str) -> str:
    """The canonical key of one of Wakapi's interval names (``7_days`` → ``last_7_days``)."""
    key = _INTERVALS.get(name)
    if key is None:
        raise _bad("interval", f"unknown interval {name!r}; use one of {', '.join(_INTERVALS)}")
    return key


def resolve_interval(name: str, now: datetime) -> tuple[datetime, datetime]:
    """``[from, to)`` of a Wakapi interval at ``now`` (an aware datetime in the user's zone).

    Weeks start on Monday. ``all_time`` starts at the Unix epoch (callers bound it by the first
    activity)."""
    key = interval_key(name)
    tz = now.tzinfo
    midnight = datetime(now.year, now.month, now.day, tzinfo=tz)
    monday = midnight - timedelta(days=now.weekday())
    first_of_month = midnight.replace(day=1)
    previous_month = (first_of_month - timedelta(days=1)).replace(day=1)
    spans: dict[str, tuple[datetime, datetime]] = {
        "today": (midnight, now),
        "yesterday": (_days_before(midnight, 1), midnight),
        "last_24_hours": (now - timedelta(hours=24), now),
        "this_week": (monday, now),
        "last_week": (_days_before(monday, 7), monday),
        "this_month": (first_of_month, now),
        "last_month": (previous_month, first_of_month),
        "this_year": (midnight.replace(month=1, day=1), now),
        "last_7_days": (now - timedelta(days=7), now),
        "last_7_days_from_yesterday": (_days_before(midnight, 8), _days_before(midnight, 1)),
        "last_14_days": (now - timedelta(days=14), now),
        "last_30_days": (now - timedelta(days=30), now),
        "last_6_months": (_months_before(now, 6), now),
        "last_12_months": (_months_before(now, 12), now),
        "all_time": (EPOCH, now),
    }
    return spans[key]


def _days_before(local_midnight: datetime, days: int) -> datetime:
    """Local midnight ``days`` calendar days earlier (right across DST switches)."""
    day = local_midnight.date() - timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=local_midnight.tzinfo)


def _months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    # Go's AddDate normalizes an overflowing day (Mar 31 - 1 month = Mar 3); clamping to the
    # month's last day differs by at most three days, only on such dates.
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month + 1, day=min(moment.day, 28))


def parse_instant(value: str | None, tz: str, field: str) -> datetime:
    """Wakapi's ``from``/``to``: RFC 3339 with an offset, else ``YYYY-MM-DD HH:MM:SS`` or
    ``YYYY-MM-DD`` (its first instant) in the user's zone."""
    if not value:
        raise _bad(field, "missing; give a date (YYYY-MM-DD), a date-time, or an interval")
    text = value.strip()
    try:
        if len(text) == 10:
            parsed = datetime.strptime(text, "%Y-%m-%d")
        elif "T" in text:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise ValueError("RFC 3339 needs an offset")
        else:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise _bad(field, "expected YYYY-MM-DD, 'YYYY-MM-DD HH:MM:SS' or RFC 3339") from None
    if not 1970 <= parsed.year <= 2099:
        raise _bad(field, "must be between 1970 and 2099")
    zone = ZoneInfo(tz)
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)


def clip(spans: Iterable[Span], start: float, end: float) -> list[Span]:
    """The parts of ``spans`` inside ``[start, end)``, in order; empty parts are dropped."""
    out = []
    for span in spans:
        lo, hi = max(span.start, start), min(span.end, end)
        if hi > lo:
            out.append(Span(lo, hi, span.group))
    return out


@dataclass(frozen=True, slots=True)
class Filters:
    """Wakapi's summary filters: query parameter → the one value it keeps."""

    values: Mapping[str, str]

    def equals(self, canonical_language: str | None) -> dict[str, frozenset[str]]:
        """For :func:`projections.durations.filter_spans`: ``unknown`` also keeps spans
        without a value; a language is matched under its canonical name."""
        out: dict[str, frozenset[str]] = {}
        for name, value in self.values.items():
            if name == "language" and canonical_language is not None:
                value = canonical_language
            allowed = {value}
            if value == UNKNOWN_KEY:
                allowed.add("")
            out[FILTER_DIMENSIONS[name]] = frozenset(allowed)
        return out


def totals_by(spans: Iterable[Span], dimension: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for span in spans:
        key = span.value(dimension) or UNKNOWN_KEY
        out[key] = out.get(key, 0.0) + span.seconds
    return out


def summary_items(totals: Mapping[str, float]) -> list[dict[str, Any]]:
    """Wakapi's ``[{key, total}]``: whole seconds (truncated, as Wakapi does), longest first."""
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [{"key": key, "total": int(seconds)} for key, seconds in ranked]


def summary(
    username: str,
    start: datetime,
    end: datetime,
    spans: Sequence[Span],
    *,
    project_detail: bool,
    naming: ProjectNaming = NO_NAMING,
) -> dict[str, Any]:
    """Wakapi's ``models.Summary``: ``from``/``to`` in the user's zone, one list per dimension,
    and ``labels``: the time of each of the user's project labels (``spans`` already carry the
    aliased project names)."""
    body: dict[str, Any] = {
        "user_id": username,
        "from": start.isoformat(),
        "to": end.isoformat(),
    }
    lists = {**SUMMARY_LISTS, **PROJECT_DETAIL_LISTS}
    for name, dimension in lists.items():
        shown = dimension in SUMMARY_LISTS.values() or project_detail
        body[name] = summary_items(totals_by(spans, dimension)) if shown else []
    body["labels"] = summary_items(naming.label_totals(totals_by(spans, "project")))
    return body


def statusbar_data(
    spans: Sequence[Span], start: datetime, end: datetime, text: str, tz: str
) -> dict[str, Any]:
    """WakaTime's status bar ``data`` (one summary day) over Wakapi's ``[start, end)``."""
    body: dict[str, Any] = {"grand_total": grand_total(sum(s.seconds for s in spans))}
    for name, dimension in WAKATIME_LISTS.items():
        totals: dict[str, float] = {}
        for key, seconds in totals_by(spans, dimension).items():
            shown = UNKNOWN.get(dimension, "Other") if key == UNKNOWN_KEY else key
            totals[shown] = totals.get(shown, 0.0) + seconds
        body[name] = items(totals)
    body["dependencies"] = []
    body["range"] = {
        "date": end.date().isoformat(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "text": text,
        "timezone": tz,
    }
    return body


# ---- /api/metrics ---------------------------------------------------------------------------

PREFIX = "wakatime"
# Per dimension of today's summary: (metric name, help text, span dimension).
_DIMENSION_METRICS: tuple[tuple[str, str, str], ...] = (
    ("project", "Total seconds for each project.", "project"),
    ("language", "Total seconds for each language.", "language"),
    ("editor", "Total seconds for each editor.", "editor"),
    ("operating_system", "Total seconds for each operating system.", "os"),
    ("machine", "Total seconds for each machine.", "machine"),
    ("label", "Total seconds for each project label.", "label"),
    ("category", "Total seconds for each category.", "category"),
)


@dataclass(frozen=True, slots=True)
class UserMetrics:
    """What Wakapi's per-user metrics are made of."""

    all_time_seconds: float
    today: Sequence[Span]
    heartbeats: int
    rank: int  # 0: not on the board
    naming: ProjectNaming = NO_NAMING  # for the label metrics (``today`` is already aliased)


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def metric_families(m: UserMetrics) -> list[Metric]:
    """Wakapi's per-user gauges, under Wakapi's names, sorted by name as Wakapi prints them."""
    families: list[Metric] = []

    def gauge(name: str, doc: str, value: float) -> None:
        family = GaugeMetricFamily(f"{PREFIX}_{name}", doc)
        family.add_metric([], int(value))
        families.append(family)

    gauge("cumulative_seconds_total", "Total seconds (all time).", m.all_time_seconds)
    gauge("seconds_total", "Total seconds.", sum(s.seconds for s in m.today))
    gauge("heartbeats_total", "Total number of tracked heartbeats.", m.heartbeats)
    gauge("rank", "User's current rank in the public leaderboard.", m.rank)
    for name, doc, dimension in _DIMENSION_METRICS:
        if dimension == "label":
            by_key = m.naming.label_totals(totals_by(m.today, "project"))
        else:
            by_key = totals_by(m.today, dimension)
        if not by_key:
            continue  # as Wakapi: a family without samples is not printed
        family = GaugeMetricFamily(f"{PREFIX}_{name}_seconds_total", doc, labels=["name"])
        for key, seconds in sorted(by_key.items()):
            family.add_metric([key], int(seconds))
        families.append(family)
    return sorted(families, key=lambda f: f.name)


def metrics_text(m: UserMetrics) -> bytes:
    """The Prometheus text exposition (version 0.0.4) of :func:`metric_families`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(metric_families(m)))
    return generate_latest(registry)
