"""One user's local day, folded into a daily-stats row. Pure: no I/O, no clock, no database.

Days are the user's local days, never UTC by default. A heartbeat belongs to the local date of its
``time`` in its OWN ``timezone`` field (what was stamped on it at ingest), so a day's set of
heartbeats never changes when the user later moves. Each heartbeat also counts only up to the end
of that local day in that same zone: a day whose machines report different zones (a laptop in
New York, a server in Tokyo) counts each machine's time up to its own midnight, and a gap after a
heartbeat is counted no later than the latest midnight among the heartbeats before it (see
:func:`projections.durations.fold_spans`). No single zone is picked for the day, so the result
depends only on the day's heartbeats: not on which arrived last, nor on batching. Time after
midnight is not carried into the next day, because each day is recomputed from its own heartbeats
only (which is what lets any day be recomputed alone, in any order, with the same result).

The row's ``timezone`` is a label (:func:`day_timezone`): the zone of the day's last heartbeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from projections.durations import FoldInput, Span, fold_spans, totals, unique_heartbeats

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "EMPTY_DAY_TIMEZONE",
    "DailyRow",
    "compute_day",
    "day_bounds",
    "day_heartbeats",
    "day_spans",
    "day_timezone",
    "local_date",
    "row_of",
    "zone",
]

# WakaTime's default; Wakapi uses 10 minutes. Per-user timeouts are the caller's business.
DEFAULT_TIMEOUT_S = 900.0
# A day without heartbeats (all deleted) is labelled UTC; its row holds only zeros.
EMPTY_DAY_TIMEZONE = "UTC"

_UTC = ZoneInfo("UTC")
B = TypeVar("B", bound=FoldInput)


@dataclass(frozen=True)
class DailyRow:
    """The folded totals of one user's local day.

    ``timezone`` labels the row (:func:`day_timezone`). ``breakdown`` maps each dimension of
    :data:`projections.durations.DIMENSIONS` to ``{value: seconds}``. ``first_time`` and
    ``last_time`` are the earliest and latest heartbeat times (epoch seconds; both 0.0 for a day
    without heartbeats).
    """

    user_id: str
    date: date
    timezone: str
    total_seconds: float
    heartbeat_count: int
    first_time: float
    last_time: float
    breakdown: dict[str, dict[str, float]]


@lru_cache(maxsize=512)
def zone(tz: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; an unknown or malformed name means UTC.

    Clients send whatever their OS reports, so an unknown zone must not fail a heartbeat.
    Cached because the lookup (and the failed lookup) is the hot path of dating heartbeats.
    """
    if not tz:
        return _UTC
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: keys such as "../etc/passwd" or absolute paths; OSError: odd file names.
        return _UTC


def local_date(time: float, tz: str) -> date:
    """The calendar date of epoch ``time`` in timezone ``tz`` (unknown zones mean UTC)."""
    return datetime.fromtimestamp(time, zone(tz)).date()


def day_bounds(day: date, tz: str) -> tuple[float, float]:
    """``[start, end)`` of local ``day`` in ``tz`` as epoch seconds, correct across DST.

    A day is 23 or 25 hours long on a DST switch. Where midnight itself does not exist (zones that
    switch at 00:00), ``fold=0`` resolves it with the pre-transition offset, which is exactly the
    transition instant: the first instant that has this local date.
    """
    tzinfo = zone(tz)
    start = datetime.combine(day, clock_time(0), tzinfo=tzinfo)
    end = datetime.combine(day + timedelta(days=1), clock_time(0), tzinfo=tzinfo)
    return start.timestamp(), end.timestamp()


def day_timezone(heartbeats: Sequence[FoldInput]) -> str:
    """The zone a day's row is labelled with: that of its last heartbeat in ``(time, event_id)``
    order (where the day ended), :data:`EMPTY_DAY_TIMEZONE` for a day without heartbeats. It
    labels only: each heartbeat is dated and cut in its own zone."""
    if not heartbeats:
        return EMPTY_DAY_TIMEZONE
    return max(heartbeats, key=lambda hb: (hb.time, hb.event_id)).timezone


def day_spans(
    user_id: str,
    day: date,
    heartbeats: Iterable[B],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[list[B], list[Span]]:
    """The heartbeats of ``user_id``'s local ``day`` (deduplicated, in time order) and their spans.

    Heartbeats of other users, or whose local date (in their own timezone) is not ``day``, are
    ignored, so callers may pass a superset. Each heartbeat's time ends with ``day`` in its own
    zone. This is the one fold behind both the stored daily rows and every read that filters
    spans (writes only, one project) or uses another timeout.
    """
    todays, period_end = day_heartbeats(user_id, day, heartbeats)
    return todays, fold_spans(todays, timeout_s=timeout_s, period_end=period_end)


def day_heartbeats(
    user_id: str, day: date, heartbeats: Iterable[B]
) -> tuple[list[B], Callable[[FoldInput], float]]:
    """The heartbeats of ``user_id``'s local ``day`` among ``heartbeats`` (deduplicated, in
    ``(time, event_id)`` order), and the period end the fold cuts each one at: the end of
    ``day`` in the heartbeat's own zone."""
    # The day's bounds per timezone, computed once: comparing times is far cheaper than a
    # timezone conversion per heartbeat.
    bounds: dict[str, tuple[float, float]] = {}

    def bounds_of(hb: FoldInput) -> tuple[float, float]:
        found = bounds.get(hb.timezone)
        return found or bounds.setdefault(hb.timezone, day_bounds(day, hb.timezone))

    def on_day(hb: FoldInput) -> bool:
        if hb.user_id != user_id:
            return False
        first, last = bounds_of(hb)
        return first <= hb.time < last

    todays = unique_heartbeats(hb for hb in heartbeats if on_day(hb))
    return todays, lambda hb: bounds_of(hb)[1]


def compute_day(
    user_id: str,
    day: date,
    heartbeats: Iterable[FoldInput],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> DailyRow:
    """Fold ``user_id``'s heartbeats of local ``day`` into one :class:`DailyRow`.

    Heartbeats of other users, or whose local date (in their own timezone) is not ``day``, are
    ignored, so callers may pass a superset. Duplicates count once. The row is labelled with
    :func:`day_timezone`.
    """
    todays, spans = day_spans(user_id, day, heartbeats, timeout_s=timeout_s)
    return row_of(user_id, day, day_timezone(todays), todays, spans)


def row_of(
    user_id: str, day: date, tz: str, heartbeats: Sequence[FoldInput], spans: Iterable[Span]
) -> DailyRow:
    """A :class:`DailyRow` labelled ``tz`` from a day's (time-ordered) heartbeats and the spans
    to count."""
    folded = totals(spans)
    return DailyRow(
        user_id=user_id,
        date=day,
        timezone=tz,
        total_seconds=folded.total_seconds,
        heartbeat_count=len(heartbeats),
        # unique_heartbeats orders by time, so the ends of the list are the extremes.
        first_time=heartbeats[0].time if heartbeats else 0.0,
        last_time=heartbeats[-1].time if heartbeats else 0.0,
        breakdown=folded.by_dimension,
    )
