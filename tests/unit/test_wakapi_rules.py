"""Wakapi's read rules: intervals as instants, from/to parsing, clipping, the summary shape and
the metrics in Prometheus' text format."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.rules.wakapi import (
    INTERVAL_ALIASES,
    Filters,
    UserMetrics,
    clip,
    interval_key,
    metrics_text,
    parse_instant,
    resolve_interval,
    statusbar_data,
    summary,
)
from http_edge.problem import ApiError
from projections.durations import SPAN_KEYS, Span, filter_spans

BERLIN = ZoneInfo("Europe/Berlin")


def span(start: float, end: float, **values: str) -> Span:
    return Span(start, end, tuple(values.get(key, "") for key in SPAN_KEYS))


def test_every_alias_names_its_interval() -> None:
    for key, aliases in INTERVAL_ALIASES.items():
        for alias in aliases:
            assert interval_key(alias) == key
    with pytest.raises(ApiError) as refused:
        interval_key("fortnight")
    assert refused.value.status == 400


def test_intervals_are_instants_in_the_users_zone() -> None:
    now = datetime(2026, 3, 31, 15, 30, tzinfo=BERLIN)  # a Tuesday, two days after DST began
    midnight = datetime(2026, 3, 31, tzinfo=BERLIN)
    assert resolve_interval("today", now) == (midnight, now)
    assert resolve_interval("day", now) == (datetime(2026, 3, 30, tzinfo=BERLIN), midnight)
    assert resolve_interval("week", now)[0] == datetime(2026, 3, 30, tzinfo=BERLIN)
    assert resolve_interval("last_week", now) == (
        datetime(2026, 3, 23, tzinfo=BERLIN),
        datetime(2026, 3, 30, tzinfo=BERLIN),
    )
    start, end = resolve_interval("7_days", now)
    assert (end - start).total_seconds() == 7 * 86400
    assert resolve_interval("last_month", now) == (
        datetime(2026, 2, 1, tzinfo=BERLIN),
        datetime(2026, 3, 1, tzinfo=BERLIN),
    )
    # Six months before March 31 is a September day that exists: the 30th.
    assert resolve_interval("6_months", now)[0].date().isoformat() == "2025-09-30"
    assert resolve_interval("year", now)[0] == datetime(2026, 1, 1, tzinfo=BERLIN)
    assert resolve_interval("any", now)[0].timestamp() == 0
    # Seven local days before yesterday's midnight, across the DST switch.
    from_yesterday = resolve_interval("Last 7 Days from Yesterday", now)
    assert from_yesterday == (datetime(2026, 3, 23, tzinfo=BERLIN), midnight.replace(day=30))


def test_from_and_to_parse_as_wakapi_does() -> None:
    assert parse_instant("2026-03-02", "Europe/Berlin", "from") == datetime(
        2026, 3, 2, tzinfo=BERLIN
    )
    assert parse_instant("2026-03-02 10:30:00", "Europe/Berlin", "from") == datetime(
        2026, 3, 2, 10, 30, tzinfo=BERLIN
    )
    parsed = parse_instant("2026-03-02T10:30:00Z", "Europe/Berlin", "from")
    assert parsed == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    assert parsed.utcoffset() == BERLIN.utcoffset(datetime(2026, 3, 2))
    for bad in (None, "", "2026-3-2", "yesterday", "2026-03-02T10:30:00", "1900-01-01"):
        with pytest.raises(ApiError) as refused:
            parse_instant(bad, "UTC", "to")
        assert refused.value.details["fields"].keys() == {"to"}


def test_clip_keeps_only_what_lies_inside() -> None:
    spans = [span(0, 100, project="a"), span(100, 200, project="b"), span(250, 250)]
    assert clip(spans, 50, 150) == [span(50, 100, project="a"), span(100, 150, project="b")]
    assert clip(spans, 200, 300) == []


def test_summary_shape_and_filters() -> None:
    spans = [
        span(0, 120, project="P", language="Go", branch="main", entity="/a.go"),
        span(120, 300, project="", language="", editor="vim", entity="/b"),
    ]
    start = datetime(2026, 3, 2, tzinfo=BERLIN)
    end = datetime(2026, 3, 3, tzinfo=BERLIN)
    body = summary("ann", start, end, spans, project_detail=False)
    assert body["user_id"] == "ann"
    assert body["from"] == "2026-03-02T00:00:00+01:00"
    assert body["projects"] == [{"key": "unknown", "total": 180}, {"key": "P", "total": 120}]
    assert body["editors"] == [{"key": "vim", "total": 180}, {"key": "unknown", "total": 120}]
    assert body["branches"] == body["entities"] == body["labels"] == []
    detail = summary("ann", start, end, spans[:1], project_detail=True)
    assert detail["branches"] == [{"key": "main", "total": 120}]

    equals = Filters({"project": "unknown", "language": "go"}).equals("Go")
    assert equals == {"project": frozenset({"unknown", ""}), "language": frozenset({"Go"})}
    assert filter_spans(spans, **Filters({"editor": "vim"}).equals(None)) == spans[1:]


def test_statusbar_names_missing_values_as_wakatime_does() -> None:
    start = datetime(2026, 3, 2, tzinfo=BERLIN)
    data = statusbar_data([span(0, 60)], start, start, "today", "Europe/Berlin")
    assert data["grand_total"]["total_seconds"] == 60
    assert [p["name"] for p in data["projects"]] == ["Unknown Project"]
    assert [p["name"] for p in data["languages"]] == ["Other"]


def test_metrics_text_parses_with_wakapis_names() -> None:
    today = [span(0, 90, project="a b", language="Go"), span(90, 100, project='q"x', os="Linux")]
    text = metrics_text(UserMetrics(all_time_seconds=3600.9, today=today, heartbeats=7, rank=2))
    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }
    assert samples[("wakatime_cumulative_seconds_total", ())] == 3600
    assert samples[("wakatime_seconds_total", ())] == 100
    assert samples[("wakatime_heartbeats_total", ())] == 7
    assert samples[("wakatime_rank", ())] == 2
    assert samples[("wakatime_project_seconds_total", (("name", "a b"),))] == 90
    assert samples[("wakatime_project_seconds_total", (("name", 'q"x'),))] == 10
    assert samples[("wakatime_language_seconds_total", (("name", "unknown"),))] == 10
    assert samples[("wakatime_operating_system_seconds_total", (("name", "Linux"),))] == 10
    names = [line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE")]
    assert names == sorted(names)
    assert "wakatime_label_seconds_total" not in names
