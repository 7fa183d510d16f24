"""The pure rules of the WakaTime-compatible read API: formats, ranges, shapes, durations."""

from __future__ import annotations

from datetime import date

import pytest

from accounts.state import User
from api.rules.stats import DateRange
from api.rules.wakatime import (
    INSIGHT_TYPES,
    Visibility,
    best_day,
    day_range,
    decimal_of,
    digital_of,
    durations,
    grand_total,
    insight,
    items,
    range_key,
    stats,
    stats_range,
    summaries,
    summary_range,
    text_of,
)
from http_edge.errors import ApiError
from projections.daily import DailyRow
from projections.durations import DIMENSIONS, Span

TZ = "Europe/Berlin"
TODAY = date(2026, 11, 18)  # a Wednesday


def row(day: date, seconds: float, **breakdown: dict[str, float]) -> DailyRow:
    full = {dim: breakdown.get(dim, {}) for dim in DIMENSIONS}
    return DailyRow("u1", day, TZ, seconds, 1, 0.0, 0.0, full)


@pytest.mark.parametrize(
    ("seconds", "text", "digital", "decimal"),
    [
        (0, "0 secs", "0:00", "0.00"),
        (1, "1 sec", "0:00", "0.00"),
        (45, "45 secs", "0:00", "0.01"),
        (60, "1 min", "0:01", "0.02"),
        (3599, "59 mins", "0:59", "1.00"),
        (3600, "1 hr", "1:00", "1.00"),
        (3660, "1 hr 1 min", "1:01", "1.02"),
        (7500, "2 hrs 5 mins", "2:05", "2.08"),
        (90000, "25 hrs", "25:00", "25.00"),
    ],
)
def test_time_formats(seconds: float, text: str, digital: str, decimal: str) -> None:
    assert (text_of(seconds), digital_of(seconds), decimal_of(seconds)) == (text, digital, decimal)


def test_grand_total_and_items_shapes() -> None:
    assert grand_total(3725.5) == {
        "digital": "1:02",
        "decimal": "1.03",
        "hours": 1,
        "minutes": 2,
        "text": "1 hr 2 mins",
        "total_seconds": 3725.5,
    }
    listed = items({"b": 100.0, "a": 300.0, "c": 0.0})
    assert [i["name"] for i in listed] == ["a", "b", "c"]
    assert [i["percent"] for i in listed] == [75.0, 25.0, 0.0]
    assert set(listed[0]) == {
        "name",
        "total_seconds",
        "percent",
        "digital",
        "decimal",
        "text",
        "hours",
        "minutes",
        "seconds",
    }


def test_range_names_in_either_spelling() -> None:
    assert range_key("Last 7 Days from Yesterday") == "last_7_days_from_yesterday"
    week = summary_range("This Week", TODAY, TZ).span
    assert (week.start, week.end) == (date(2026, 11, 16), TODAY)
    last_week = summary_range("last_week", TODAY, TZ).span
    assert (last_week.start, last_week.end) == (date(2026, 11, 9), date(2026, 11, 15))
    last_month = summary_range("Last Month", TODAY, TZ).span
    assert (last_month.start, last_month.end) == (date(2026, 10, 1), date(2026, 10, 31))
    yesterday = summary_range("Last 7 Days from Yesterday", TODAY, TZ).span
    assert (yesterday.start, yesterday.end) == (date(2026, 11, 11), date(2026, 11, 17))
    with pytest.raises(ApiError) as bad:
        summary_range("fortnight", TODAY, TZ)
    assert bad.value.status == 400


def test_stats_ranges() -> None:
    def bounds(name: str, first: date | None = None) -> tuple[date, date]:
        span = stats_range(name, TODAY, TZ, first).span
        return span.start, span.end

    assert bounds("last_7_days") == (date(2026, 11, 12), TODAY)
    # Chronova's ranges (its stats/{range} lists today and yesterday too).
    assert bounds("today") == (TODAY, TODAY)
    assert bounds("yesterday") == (date(2026, 11, 17), date(2026, 11, 17))
    assert stats_range("Yesterday", TODAY, TZ, None).name == "yesterday"
    assert bounds("last_30_days") == (date(2026, 10, 20), TODAY)
    assert bounds("last_6_months") == (date(2026, 5, 19), TODAY)
    assert bounds("last_year") == (date(2025, 11, 19), TODAY)
    assert bounds("all_time", date(2024, 2, 29)) == (date(2024, 2, 29), TODAY)
    assert bounds("all_time") == (TODAY, TODAY)
    assert bounds("2024") == (date(2024, 1, 1), date(2024, 12, 31))
    assert bounds("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    assert stats_range("2024-02", TODAY, TZ, None).text == "February 2024"
    for bad in ("2024-13", "1900", "last_decade", "20245"):
        with pytest.raises(ApiError):
            stats_range(bad, TODAY, TZ, None)


def test_summaries_fill_every_day_and_average_over_active_days() -> None:
    span = DateRange(date(2026, 11, 16), TODAY, TZ)
    rows = [
        row(date(2026, 11, 16), 3600, project={"a": 3600.0}, language={"Go": 3600.0}),
        row(TODAY, 1800, project={"": 1800.0}, language={"": 1800.0}),
    ]
    body = summaries(span, rows, project_detail=False)
    assert [d["range"]["date"] for d in body["data"]] == ["2026-11-16", "2026-11-17", "2026-11-18"]
    assert [d["grand_total"]["total_seconds"] for d in body["data"]] == [3600, 0, 1800]
    assert body["data"][2]["projects"][0]["name"] == "Unknown Project"
    assert body["data"][2]["languages"][0]["name"] == "Other"
    assert "branches" not in body["data"][0]
    assert "entities" not in body["data"][0]
    assert body["cumulative_total"]["seconds"] == 5400
    assert body["daily_average"]["seconds"] == 2700
    assert body["daily_average"]["days_minus_holidays"] == 2
    assert body["daily_average"]["holidays"] == 1
    # Berlin is UTC+1 in November: the day starts at 23:00 UTC the evening before.
    assert body["start"] == "2026-11-15T23:00:00Z"
    detail = summaries(span, rows, project_detail=True)
    assert "branches" in detail["data"][0]
    assert "entities" in detail["data"][0]


def test_stats_hides_what_the_profile_does_not_show() -> None:
    user = User("u1", "ada", TZ, 0.0, profile_show_languages=True)
    named = stats_range("last_7_days", TODAY, TZ, None)
    rows = [row(TODAY, 100, project={"secret": 100.0}, language={"Go": 100.0})]
    common = {"timeout_minutes": 15, "writes_only": False, "now_iso": "2026-11-18T10:00:00Z"}
    public = stats(user, named, rows, visible=Visibility.public(user), **common)
    assert public["projects"] == []
    assert public["machines"] == []
    assert public["languages"][0]["name"] == "Go"
    mine = stats(user, named, rows, visible=Visibility(), **common)
    assert mine["projects"][0]["name"] == "secret"
    assert mine["best_day"] == {"date": TODAY.isoformat(), "text": "1 min", "total_seconds": 100}
    assert mine["is_including_today"] is True


def test_best_day_is_none_without_time_and_earliest_of_equals() -> None:
    assert best_day([]) is None
    rows = [row(date(2026, 11, 17), 50), row(date(2026, 11, 16), 50)]
    assert best_day(rows) == {"date": "2026-11-16", "text": "50 secs", "total_seconds": 50}


def test_insights() -> None:
    span = DateRange(date(2026, 11, 16), TODAY, TZ)
    rows = [row(date(2026, 11, 16), 60, editor={"vim": 60.0}), row(TODAY, 120)]
    weekdays = insight("weekday", span, rows)
    assert weekdays[0] == {"name": "Monday", "total": 60, "average": 60, "days": 1}
    assert weekdays[2]["total"] == 120
    assert weekdays[4]["days"] == 0
    assert [d["total"] for d in insight("days", span, rows)] == [60, 0, 120]
    assert insight("best_day", span, rows) == {"date": "2026-11-18", "total": 120}
    assert insight("editors", span, rows) == [{"name": "vim", "total": 60}]
    for kind in INSIGHT_TYPES:
        insight(kind, span, rows)
    with pytest.raises(ApiError):
        insight("moods", span, rows)


def _span(start: float, end: float, project: str, language: str = "Go") -> Span:
    values = {"project": project, "language": language}
    return Span(start, end, tuple(values.get(d, "") for d in (*DIMENSIONS, "is_write")))


def test_durations_join_touching_spans_of_one_project_only() -> None:
    spans = [
        _span(0, 60, "a", "Go"),
        _span(60, 100, "a", "Rust"),  # touches: same project, joined by project
        _span(100, 130, "b"),
        _span(2000, 2010, "b"),  # a gap: a new duration
    ]
    assert durations(spans, "project") == [
        {"project": "a", "time": 0, "duration": 100},
        {"project": "b", "time": 100, "duration": 30},
        {"project": "b", "time": 2000, "duration": 10},
    ]
    by_language = durations(spans, "language")
    assert [(d["language"], d["duration"]) for d in by_language] == [
        ("Go", 60),
        ("Rust", 40),
        ("Go", 30),
        ("Go", 10),
    ]
    with pytest.raises(ApiError):
        durations(spans, "dependencies")


def test_a_day_ends_at_its_last_second_local_not_the_next_midnight() -> None:
    berlin = day_range(date(2026, 1, 15), "Europe/Berlin")
    assert (berlin["start"], berlin["end"]) == ("2026-01-14T23:00:00Z", "2026-01-15T22:59:59Z")
    # The day DST begins is 23 hours long; its end is still 23:59:59 local.
    spring = day_range(date(2026, 3, 29), "Europe/Berlin")
    assert (spring["start"], spring["end"]) == ("2026-03-28T23:00:00Z", "2026-03-29T21:59:59Z")
    span = DateRange(date(2026, 1, 1), date(2026, 1, 7), "America/New_York")
    assert span.closed_bounds() == ("2026-01-01T05:00:00Z", "2026-01-08T04:59:59Z")
    body = summaries(span, [], project_detail=False)
    assert (body["start"], body["end"]) == span.closed_bounds()
    assert body["data"][-1]["range"]["end"] == "2026-01-08T04:59:59Z"
