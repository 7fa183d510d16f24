"""The goals' API shapes (``api.rules.goals``): one object in Chronova's and WakaTime's
vocabularies, the chart ending with the running period, analytics, and the body checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from accounts.goals import Goal
from api.rules.goals import analytics_view, checked_scope, checked_target, goal_view, title_of
from http_edge.problem import ApiError
from projections.daily import DailyRow

TODAY = date(2026, 12, 3)  # a Thursday
OWNER = {"id": "u", "username": "ada", "display_name": "Ada"}


def goal(**fields: object) -> Goal:
    created = datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp()
    values: dict[str, object] = {
        "goal_id": "g1",
        "user_id": "u",
        "period": "daily",
        "kind": "at_least",
        "target_seconds": 3600,
        "title": "",
        "scope": None,
        "scope_value": None,
        "created_at": created,
        "updated_at": created,
    } | fields
    return Goal(**values)  # type: ignore[arg-type]


def row(day: date, seconds: float, **breakdown: dict[str, float]) -> DailyRow:
    return DailyRow("u", day, "Europe/Berlin", seconds, 1, 0.0, 0.0, dict(breakdown))


def test_a_goal_speaks_both_vocabularies() -> None:
    rows = [row(TODAY - timedelta(days=i), 4000 if i else 1800) for i in range(14)]
    view = goal_view(
        goal(scope="language", scope_value="Python"),
        [row(r.date, r.total_seconds, language={"Python": r.total_seconds}) for r in rows],
        tz="Europe/Berlin",
        today=TODAY,
        owner=OWNER,
    )
    # Chronova's
    assert (view["id"], view["type"], view["target_seconds"]) == ("g1", "daily", 3600)
    assert (view["language"], view["project"]) == ("Python", None)
    assert view["progress"]["current_seconds"] == 1800
    assert view["progress"]["percentage"] == 50.0
    assert view["progress"]["streak"] == 13  # every day since the goal was set, today pending
    assert view["progress"]["remaining_seconds"] == 1800
    # WakaTime's
    assert (view["delta"], view["seconds"], view["is_inverse"]) == ("day", 3600, False)
    assert view["languages"] == ["Python"]
    assert view["status"] == "pending"
    assert view["average_status"] == "success"
    assert view["title"] == "Code at least 1 hr per day in Python"
    chart = view["chart_data"]
    assert len(chart) == 7
    assert chart[-1]["range"]["date"] == TODAY.isoformat()
    assert chart[-1]["actual_seconds_text"] == "30 mins"
    assert chart[-1]["range"]["start"] == "2026-12-02T23:00:00Z"  # Berlin's midnight
    assert chart[0]["range_status"] == "success"
    assert view["created_at"] == "2026-11-20T09:00:00Z"


def test_a_new_goal_has_a_one_period_chart_and_an_at_most_title() -> None:
    created = datetime(2026, 12, 3, 8, tzinfo=UTC).timestamp()
    fresh = goal(kind="at_most", period="weekly", created_at=created, updated_at=created)
    view = goal_view(fresh, [], tz="UTC", today=TODAY, owner=OWNER)
    assert [p["range"]["date"] for p in view["chart_data"]] == ["2026-11-30"]
    assert view["chart_data"][0]["range"]["text"] == "Nov 30 until Dec 06 2026"
    assert view["progress"]["status"] == "pending"
    assert title_of(fresh) == "Code at most 1 hr per week"
    assert title_of(goal(title="mine")) == "mine"


def test_analytics_lists_the_latest_weeks_and_months() -> None:
    rows = [row(TODAY - timedelta(days=i), 3600 * (i % 2)) for i in range(20)]
    data = analytics_view(goal(), rows, tz="UTC", today=TODAY, weeks=2, months=1)
    assert data["since"] == "2026-11-20"
    assert [w["week_start"] for w in data["achievement"]["weekly"]] == [
        "2026-11-23",
        "2026-11-30",
    ]
    assert [m["month"] for m in data["achievement"]["monthly"]] == ["2026-12"]
    overall = data["achievement"]["overall"]
    assert overall["decided"] == 13  # Nov 20 to Dec 2; today is pending
    assert overall["ratio"] == round(overall["achieved"] / 13, 4)
    assert data["streak"]["longest"] == 1


def test_scope_and_target_checks() -> None:
    assert checked_scope({"language": "typescript", "project": None}) == ("language", "TypeScript")
    assert checked_scope({"project": " api "}) == ("project", "api")
    assert checked_scope({"language": None}) == (None, None)
    for bad in ({"language": "Go", "project": "x"}, {"editor": "  "}, {"language": "Unknown"}):
        with pytest.raises(ApiError) as refused:
            checked_scope(bad)
        assert refused.value.status == 400
    assert checked_target("weekly", 604_800) == 604_800
    with pytest.raises(ApiError):
        checked_target("daily", 86_401)
