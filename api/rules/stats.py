"""Pure rules of the read API: ranges in the user's timezone, breakdowns, averages, streaks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from http_edge.problem import ApiError
from projections.daily import DailyRow, day_bounds
from schemas.languages import merge_languages

RANGE_DAYS = {"7d": 7, "30d": 30, "90d": 90}
# The days a range may name: from the local date of the earliest accepted heartbeat (2000-01-01
# UTC, a day earlier west of UTC) to a far but bounded future. Beyond them nothing is stored, and
# day arithmetic overflows (years 1 and 9999) as do ClickHouse's Date columns (1970 to 2149).
EARLIEST = date(1999, 12, 31)
LATEST = date(2099, 12, 31)
UNKNOWN = {"project": "Unknown Project"}


@dataclass(frozen=True, slots=True)
class DateRange:
    start: date
    end: date
    timezone: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def iso_bounds(self) -> tuple[str, str]:
        start_epoch, _ = day_bounds(self.start, self.timezone)
        _, end_epoch = day_bounds(self.end, self.timezone)
        return iso_utc(start_epoch), iso_utc(end_epoch)

    def closed_bounds(self) -> tuple[str, str]:
        """The first instant of the first day and the last whole second of the last, 23:59:59
        local (WakaTime's and Wakapi's ``end``), in UTC."""
        start_epoch, _ = day_bounds(self.start, self.timezone)
        _, end_epoch = day_bounds(self.end, self.timezone)
        return iso_utc(start_epoch), iso_utc(end_epoch - 1)


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def today_in(tz: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()


def _parse_day(value: str, tz: str, name: str) -> date:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
        else:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            day = parsed.date() if parsed.tzinfo is None else parsed.astimezone(ZoneInfo(tz)).date()
    except ValueError:
        raise ApiError(
            400,
            f"invalid {name}: expected an ISO 8601 date or datetime",
            code="validation_error",
            details={"fields": {name: "not ISO 8601"}},
        ) from None
    except OverflowError:  # the shift to the user's timezone leaves years 1 to 9999
        day = date.min
    if not EARLIEST <= day <= LATEST:
        raise ApiError(
            400,
            f"invalid {name}: must be between {EARLIEST} and {LATEST}",
            code="validation_error",
            details={"fields": {name: f"not between {EARLIEST} and {LATEST}"}},
        )
    return day


def resolve_range(
    range_: str | None,
    start: str | None,
    end: str | None,
    *,
    tz: str,
    today: date,
    first_active: date | None = None,
) -> DateRange:
    """The local-day range a query covers. ``start``/``end`` override ``range`` (default 7d)."""
    if start or end:
        first = _parse_day(start, tz, "start") if start else (first_active or today)
        last = _parse_day(end, tz, "end") if end else today
        if last < first:
            raise ApiError(400, "end is before start", code="validation_error")
        return DateRange(first, last, tz)
    key = range_ or "7d"
    if key == "all":
        return DateRange(min(first_active or today, today), today, tz)
    if key not in RANGE_DAYS:
        raise ApiError(
            400,
            "invalid range: use 7d, 30d, 90d or all",
            code="validation_error",
            details={"fields": {"range": "must be 7d, 30d, 90d or all"}},
        )
    return DateRange(today - timedelta(days=RANGE_DAYS[key] - 1), today, tz)


def sum_breakdown(rows: Iterable[DailyRow], dimension: str) -> dict[str, float]:
    """Seconds per value of ``dimension`` over ``rows``; a missing value has a name.

    Languages are read through their canonical names, so days projected before names were
    canonical count ``python`` and ``Python`` as one language until a replay rewrites them.
    """
    if dimension == "language":
        return merge_languages(
            pair for row in rows for pair in row.breakdown.get(dimension, {}).items()
        )
    totals: dict[str, float] = {}
    for row in rows:
        for name, seconds in row.breakdown.get(dimension, {}).items():
            label = name or UNKNOWN.get(dimension, "Other")
            totals[label] = totals.get(label, 0.0) + seconds
    return totals


def ranked(totals: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def top(totals: dict[str, float]) -> str | None:
    best = ranked(totals)
    return best[0][0] if best and best[0][1] > 0 else None


def daily_series(rows: Sequence[DailyRow], span: DateRange) -> list[tuple[date, float]]:
    by_day = {row.date: row.total_seconds for row in rows}
    return [
        (span.start + timedelta(days=i), by_day.get(span.start + timedelta(days=i), 0.0))
        for i in range(span.days)
    ]


def daily_average(rows: Sequence[DailyRow]) -> int:
    """Average over the days with any coding time (WakaTime leaves idle days out too)."""
    active = [row.total_seconds for row in rows if row.total_seconds > 0]
    return round(sum(active) / len(active)) if active else 0


def streaks(active_days: Iterable[date], today: date) -> tuple[int, int]:
    """(current, longest). The current streak ends today, or yesterday if today is still empty."""
    days = sorted(set(active_days))
    longest = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    active = set(days)
    cursor = today if today in active else today - timedelta(days=1)
    current = 0
    while cursor in active:
        current += 1
        cursor -= timedelta(days=1)
    return current, longest
