"""The SVG badges and heatmap, parsed back with an XML parser: texts, escaping, colours, cells."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from api.rules.badges import (
    GREY,
    HEAT_COLOURS,
    LEVEL_COLOURS,
    METRICS,
    PRIVATE_BADGE,
    Badge,
    clean,
    heat_levels,
    hidden_badge,
    hours_text,
    language_badge,
    level_of,
    metric_badge,
    render_badge,
    render_heatmap,
    short_time,
    text_width,
)

NS = {"svg": "http://www.w3.org/2000/svg"}
HOUR = 3600.0


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def badge_texts(svg: str) -> list[str]:
    """The visible texts of a flat badge (not the shadows under them)."""
    root = parse(svg)
    return [
        t.text or "" for t in root.iterfind(".//svg:text", NS) if t.get("aria-hidden") != "true"
    ]


def value_colour(svg: str) -> str:
    pills = parse(svg).findall("./svg:g/svg:rect", NS)
    return pills[1].get("fill", "")


def test_badge_has_label_and_message_and_matching_title() -> None:
    svg = render_badge(Badge("code time", "14h 32m", "#4c1"))
    root = parse(svg)
    assert badge_texts(svg) == ["code time", "14h 32m"]
    assert root.findtext("svg:title", namespaces=NS) == "code time: 14h 32m"
    assert root.get("aria-label") == "code time: 14h 32m"
    assert value_colour(svg) == "#4c1"
    shadows = [t.text for t in root.iterfind(".//svg:text", NS) if t.get("aria-hidden")]
    assert shadows == ["code time", "14h 32m"]


def test_badge_pills_fill_the_width_and_grow_with_the_text() -> None:
    short = parse(render_badge(Badge("a", "b", GREY)))
    long = parse(render_badge(Badge("a", "a much longer message", GREY)))
    assert float(long.get("width", 0)) > float(short.get("width", 0))
    left, right, _ = long.findall("./svg:g/svg:rect", NS)
    assert float(left.get("width", 0)) + float(right.get("width", 0)) == pytest.approx(
        float(long.get("width", 0))
    )
    assert float(right.get("x", 0)) == float(left.get("width", 0))


@pytest.mark.parametrize(
    "text",
    ["<script>alert(1)</script>", "C & C++", 'say "hi"', "it's", "]]><!--", "a\x00b\x1bc"],
)
def test_badge_text_is_escaped_and_always_parses(text: str) -> None:
    svg = render_badge(language_badge(text, 90 * 60))
    assert "<script>" not in svg
    label, message = badge_texts(svg)
    assert label == clean(text)
    assert message == "1h 30m"
    assert parse(svg).get("aria-label") == f"{clean(text)}: 1h 30m"


def test_clean_drops_what_xml_cannot_hold_and_cuts_long_text() -> None:
    assert clean("a\x00b\x08c\x1f\ufffed") == "abcd"
    assert clean("tab\tstays") == "tab\tstays"
    cut = clean("x" * 100)
    assert len(cut) == 40
    assert cut.endswith("…")
    assert parse(render_badge(Badge("l" * 500, "v", GREY))) is not None


def test_text_width_grows_with_length_and_counts_wide_characters() -> None:
    assert text_width("") == 0
    assert text_width("mmmm") > text_width("iiii")
    assert text_width("abc") < text_width("abcd")
    assert text_width("🔥") > text_width("a")


def test_time_texts() -> None:
    assert short_time(0) == "0m"
    assert short_time(59) == "0m"
    assert short_time(45 * 60) == "45m"
    assert short_time(14 * HOUR + 32 * 60 + 59) == "14h 32m"
    assert hours_text(1234 * HOUR + 59 * 60) == "1,234h"
    assert hours_text(10 * 60) == "10m"
    assert hours_text(-5) == "0m"


def test_levels_follow_the_steps() -> None:
    steps = (1.0, 2.0, 4.0)
    assert [level_of(v, steps) for v in (0, -1, 0.5, 1, 1.5, 2, 3.9, 4, 100)] == [
        0,
        0,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
    ]


@pytest.mark.parametrize(
    ("metric", "value", "message", "colour"),
    [
        ("coding-time", 0, "0m", LEVEL_COLOURS[0]),
        ("coding-time", 2 * HOUR, "2h 0m", LEVEL_COLOURS[1]),
        ("coding-time", 14 * HOUR + 32 * 60, "14h 32m", LEVEL_COLOURS[3]),
        ("coding-time", 40 * HOUR, "40h 0m", LEVEL_COLOURS[4]),
        ("today", 2 * HOUR + 15 * 60, "2h 15m", LEVEL_COLOURS[3]),
        ("today", 10 * 60, "10m", LEVEL_COLOURS[1]),
        ("all-time", 1234 * HOUR, "1,234h", LEVEL_COLOURS[4]),
        ("all-time", 50 * HOUR, "50h", LEVEL_COLOURS[2]),
        ("streak", 0, "0 days", LEVEL_COLOURS[0]),
        ("streak", 1, "1 day 🔥", LEVEL_COLOURS[1]),
        ("streak", 7, "7 days 🔥", LEVEL_COLOURS[3]),
    ],
)
def test_metric_badges_text_and_colour_by_activity(
    metric: str, value: float, message: str, colour: str
) -> None:
    svg = render_badge(metric_badge(metric, value))
    assert badge_texts(svg) == [METRICS[metric], message]
    assert value_colour(svg) == colour


def test_top_language_badge_names_the_language_or_none() -> None:
    svg = render_badge(metric_badge("top-language", 12 * HOUR, language="Rust"))
    assert badge_texts(svg) == ["language", "Rust"]
    assert value_colour(svg) == LEVEL_COLOURS[3]
    nothing = render_badge(metric_badge("top-language", 0.0))
    assert badge_texts(nothing) == ["language", "none"]
    assert value_colour(nothing) == GREY
    with pytest.raises(KeyError):
        metric_badge("lines-of-code", 1)


def test_private_and_hidden_badges() -> None:
    assert badge_texts(PRIVATE_BADGE) == ["codetrackr", "profile private"]
    assert value_colour(PRIVATE_BADGE) == GREY
    assert badge_texts(hidden_badge("streak")) == ["streak", "hidden"]
    assert value_colour(hidden_badge("streak")) == GREY


def test_heat_levels_shade_each_quarter_of_the_active_days() -> None:
    assert heat_levels([]) == []
    assert heat_levels([0, 0]) == [0, 0]
    assert heat_levels([0, 5, 0]) == [0, 4, 0]  # the busiest day is the darkest
    assert heat_levels([4, 0, 1, 3, 2]) == [4, 0, 1, 3, 2]
    assert heat_levels([HOUR, 2 * HOUR, 4 * HOUR]) == [2, 3, 4]
    assert heat_levels([7, 7, 7, 1]) == [4, 4, 4, 1]  # equal days share a shade
    levels = heat_levels([float(s) for s in range(1, 101)])
    assert levels == [1] * 25 + [2] * 25 + [3] * 25 + [4] * 25


def year(end: date, seconds: dict[date, float]) -> list[tuple[date, float]]:
    days = [end - timedelta(days=364 - i) for i in range(365)]
    return [(day, seconds.get(day, 0.0)) for day in days]


def cells(svg: str) -> list[ET.Element]:
    return [r for r in parse(svg).iterfind(".//svg:rect", NS) if r.get("data-date")]


def test_heatmap_has_a_cell_per_day_in_weeks_as_columns() -> None:
    end = date(2026, 3, 10)  # a Tuesday
    svg = render_heatmap(year(end, {}), title="someone")
    found = cells(svg)
    assert len(found) == 365
    dates = [c.get("data-date") for c in found]
    assert dates[0] == (end - timedelta(days=364)).isoformat()
    assert dates[-1] == end.isoformat()
    assert {c.get("fill") for c in found} == {HEAT_COLOURS[0]}
    by_date = {c.get("data-date"): c for c in found}
    monday, sunday, next_monday = date(2026, 3, 2), date(2026, 3, 8), date(2026, 3, 9)
    assert by_date[monday.isoformat()].get("x") == by_date[sunday.isoformat()].get("x")
    assert float(by_date[next_monday.isoformat()].get("x", 0)) > float(
        by_date[sunday.isoformat()].get("x", 0)
    )
    assert float(by_date[monday.isoformat()].get("y", 0)) < float(
        by_date[sunday.isoformat()].get("y", 0)
    )
    assert len({c.get("x") for c in found}) == 53  # 2025-03-11 is a Tuesday: 53 weeks


def test_heatmap_colours_active_days_by_level_with_titles() -> None:
    end = date(2026, 3, 10)
    active = {end: 4 * HOUR, end - timedelta(days=1): HOUR, end - timedelta(days=100): 2 * HOUR}
    svg = render_heatmap(year(end, active), title="someone")
    by_date = {c.get("data-date"): c for c in cells(svg)}
    assert by_date[end.isoformat()].get("data-level") == "4"
    assert by_date[end.isoformat()].get("fill") == HEAT_COLOURS[4]
    assert by_date[(end - timedelta(days=1)).isoformat()].get("data-level") == "2"
    assert by_date[(end - timedelta(days=100)).isoformat()].get("data-level") == "3"
    assert by_date[(end - timedelta(days=2)).isoformat()].get("fill") == HEAT_COLOURS[0]
    title = by_date[end.isoformat()].findtext("svg:title", namespaces=NS)
    assert title == f"{end.isoformat()}: 4h 0m"
    quiet = by_date[(end - timedelta(days=2)).isoformat()].findtext("svg:title", namespaces=NS)
    assert quiet is not None
    assert quiet.endswith(": no coding")
    texts = [t.text for t in parse(svg).iterfind(".//svg:text", NS)]
    assert "7h 0m in 365 days" in texts
    assert {"Mon", "Wed", "Fri", "Less", "More"} <= set(texts)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_labels(end: date) -> list[str | None]:
    svg = render_heatmap(year(end, {}), title="someone")
    return [t.text for t in parse(svg).iterfind(".//svg:text", NS) if t.text in MONTHS]


def test_heatmap_labels_each_month_where_it_starts() -> None:
    # 2025-03-11 to 2026-03-10: the first March has three columns, room for its label
    assert month_labels(date(2026, 3, 10)) == [*MONTHS[2:], *MONTHS[:3]]
    # 2025-03-25 to 2026-03-24: April starts in the second column, so the first March has none
    assert month_labels(date(2026, 3, 24)) == [*MONTHS[3:], *MONTHS[:3]]


def test_heatmap_title_is_escaped() -> None:
    svg = render_heatmap(year(date(2026, 3, 10), {}), title="<b>&co</b>")
    root = parse(svg)
    assert root.findtext("svg:title", namespaces=NS) == "<b>&co</b>"
    assert "<b>" not in svg
    with pytest.raises(ValueError, match="at least one day"):
        render_heatmap([], title="x")
