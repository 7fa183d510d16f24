from __future__ import annotations

from datetime import date, timedelta

import pytest

from api.rules.stats import daily_average, daily_series, resolve_range, streaks, sum_breakdown, top
from http_edge.errors import ApiError
from projections.daily import DailyRow

TODAY = date(2026, 3, 10)


def row(day: date, seconds: float, **breakdown: dict[str, float]) -> DailyRow:
    return DailyRow(
        user_id="u",
        date=day,
        timezone="UTC",
        total_seconds=seconds,
        heartbeat_count=1,
        first_time=0.0,
        last_time=0.0,
        breakdown=dict(breakdown),
    )


def test_resolve_range_presets_include_today() -> None:
    span = resolve_range("7d", None, None, tz="UTC", today=TODAY)
    assert (span.start, span.end, span.days) == (TODAY - timedelta(days=6), TODAY, 7)
    assert resolve_range(None, None, None, tz="UTC", today=TODAY).days == 7
    everything = resolve_range(
        "all", None, None, tz="UTC", today=TODAY, first_active=date(2025, 1, 1)
    )
    assert everything.start == date(2025, 1, 1)


def test_resolve_range_start_end_in_user_timezone() -> None:
    span = resolve_range(
        None, "2026-03-01T02:00:00Z", "2026-03-02", tz="America/Mexico_City", today=TODAY
    )
    # 02:00 UTC on March 1st is still February 28th in Mexico City.
    assert (span.start, span.end) == (date(2026, 2, 28), date(2026, 3, 2))


@pytest.mark.parametrize(("range_", "start", "end"), [("1y", None, None), (None, "x", None)])
def test_resolve_range_rejects_bad_input(
    range_: str | None, start: str | None, end: str | None
) -> None:
    with pytest.raises(ApiError) as info:
        resolve_range(range_, start, end, tz="UTC", today=TODAY)
    assert info.value.status == 400


def test_resolve_range_rejects_end_before_start() -> None:
    with pytest.raises(ApiError):
        resolve_range(None, "2026-03-05", "2026-03-01", tz="UTC", today=TODAY)


def test_streaks_current_allows_empty_today_and_longest_spans_history() -> None:
    days = [TODAY - timedelta(days=i) for i in (1, 2, 3)] + [date(2026, 1, d) for d in range(1, 6)]
    assert streaks(days, TODAY) == (3, 5)
    assert streaks([TODAY - timedelta(days=2)], TODAY) == (0, 1)
    assert streaks([], TODAY) == (0, 0)


def test_breakdowns_sum_across_days_and_name_unknowns() -> None:
    rows = [
        row(TODAY, 100, project={"a": 60, "": 40}, language={"Go": 100}),
        row(TODAY - timedelta(days=1), 50, project={"a": 50}, language={"Rust": 50}),
    ]
    assert sum_breakdown(rows, "project") == {"a": 110, "Unknown Project": 40}
    assert top(sum_breakdown(rows, "language")) == "Go"
    assert top({}) is None
    assert daily_average([*rows, row(TODAY - timedelta(days=2), 0)]) == 75


def test_daily_series_fills_missing_days_with_zero() -> None:
    span = resolve_range("7d", None, None, tz="UTC", today=TODAY)
    series = daily_series([row(TODAY, 30)], span)
    assert len(series) == 7
    assert series[-1] == (TODAY, 30)
    assert sum(sec for _, sec in series) == 30
