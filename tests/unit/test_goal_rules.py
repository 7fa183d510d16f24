"""The goal rule (``projections.goals``): periods from daily rows, statuses, streaks and
achievement ratios, across week and month boundaries, DST switches and late data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from api.rules.stats import today_in
from projections.daily import DailyRow
from projections.goals import (
    Period,
    achievement,
    month_of,
    period_bounds,
    periods,
    scoped_seconds,
    status_of,
    streaks,
)


@dataclass(frozen=True)
class G:
    period: Literal["daily", "weekly"] = "daily"
    kind: Literal["at_least", "at_most"] = "at_least"
    target_seconds: int = 3600
    scope: Literal["language", "project", "editor", "category"] | None = None
    scope_value: str | None = None


def row(day: date, seconds: float, **breakdown: dict[str, float]) -> DailyRow:
    return DailyRow("u", day, "UTC", seconds, 1, 0.0, 0.0, dict(breakdown))


MON = date(2026, 11, 23)  # a Monday
SUN = MON + timedelta(days=6)


def test_period_bounds_are_the_day_or_its_iso_week() -> None:
    assert period_bounds("daily", SUN) == (SUN, SUN)
    assert period_bounds("weekly", SUN) == (MON, SUN)
    assert period_bounds("weekly", MON) == (MON, SUN)
    assert period_bounds("weekly", SUN + timedelta(days=1)) == (
        SUN + timedelta(days=1),
        SUN + timedelta(days=7),
    )


def test_status_rules_for_both_kinds() -> None:
    assert status_of("at_least", 3600, 3600, ended=False) == "success"
    assert status_of("at_least", 3599, 3600, ended=False) == "pending"
    assert status_of("at_least", 3599, 3600, ended=True) == "fail"
    assert status_of("at_most", 3601, 3600, ended=False) == "fail"
    assert status_of("at_most", 3600, 3600, ended=False) == "pending"
    assert status_of("at_most", 3600, 3600, ended=True) == "success"
    assert status_of("at_most", 0, 3600, ended=True) == "success"


def test_weekly_goal_splits_sunday_from_monday() -> None:
    rows = [row(SUN, 2000), row(SUN + timedelta(days=1), 5000), row(MON, 2000)]
    found = periods(G("weekly", target_seconds=4000), rows, MON, SUN + timedelta(days=2))
    assert [(p.start, p.seconds, p.status) for p in found] == [
        (MON, 4000, "success"),
        (SUN + timedelta(days=1), 5000, "success"),
    ]
    assert found[-1].running
    assert not found[0].running


def test_daily_goal_periods_streaks_and_the_running_day() -> None:
    today = MON + timedelta(days=4)  # Friday
    rows = [row(MON, 4000), row(MON + timedelta(days=2), 4000), row(MON + timedelta(days=3), 3600)]
    found = periods(G(), rows, MON, today)
    assert [p.status for p in found] == ["success", "fail", "success", "success", "pending"]
    assert streaks(found) == (2, 2)  # today still pending: it does not break the run
    done = periods(G(), [*rows, row(today, 3600)], MON, today)
    assert streaks(done) == (3, 3)


def test_at_most_goal_fails_as_soon_as_it_is_exceeded() -> None:
    meetings = G(kind="at_most", target_seconds=7200, scope="category", scope_value="Meeting")
    today = MON + timedelta(days=1)
    rows = [
        row(MON, 9000, category={"meeting": 3000, "coding": 6000}),
        row(today, 9000, category={"meeting": 7300}),
    ]
    found = periods(meetings, rows, MON, today)
    assert [(p.seconds, p.status) for p in found] == [(3000, "success"), (7300, "fail")]
    assert streaks(found) == (0, 1)


def test_late_data_moves_a_past_period_and_the_streaks() -> None:
    today = MON + timedelta(days=3)
    rows = [row(MON, 3600), row(MON + timedelta(days=2), 3600)]
    before = periods(G(), rows, MON, today)
    assert [p.status for p in before] == ["success", "fail", "success", "pending"]
    assert streaks(before) == (1, 1)
    # Tuesday's heartbeats arrive late: its row is recomputed and replaces the old one.
    late = periods(G(), [*rows, row(MON + timedelta(days=1), 3700)], MON, today)
    assert [p.status for p in late] == ["success", "success", "success", "pending"]
    assert streaks(late) == (3, 3)


def test_scoped_seconds_match_canonical_languages_and_any_case() -> None:
    r = row(
        MON,
        100,
        language={"Python": 30, "python": 10, "Go": 50},
        editor={"VS Code": 70},
        project={"api": 40, "API": 5},
    )
    assert scoped_seconds(r, None, None) == 100
    assert scoped_seconds(r, "language", "PYTHON") == 40
    assert scoped_seconds(r, "language", "golang") == 50
    assert scoped_seconds(r, "editor", "vs code") == 70
    assert scoped_seconds(r, "project", "api") == 40
    assert scoped_seconds(r, "project", "missing") == 0


def test_achievement_groups_by_week_and_month() -> None:
    first = date(2026, 10, 26)  # Monday; its week's Thursday is Oct 29
    today = date(2026, 11, 4)  # Wednesday
    rows = [row(first + timedelta(days=i), 3600 if i % 2 == 0 else 0) for i in range(10)]
    daily = periods(G(), rows, first, today)
    weeks = achievement(daily, "week")
    assert [(w.start, w.achieved, w.decided) for w in weeks] == [
        (first, 4, 7),
        (date(2026, 11, 2), 1, 2),  # Monday failed, Tuesday succeeded, today is pending
    ]
    months = achievement(daily, "month")
    assert [(m.start, m.achieved, m.decided) for m in months] == [
        (date(2026, 10, 1), 3, 6),
        (date(2026, 11, 1), 2, 3),
    ]
    weekly = periods(G("weekly", target_seconds=3 * 3600), rows, first, today)
    assert [month_of(p) for p in weekly] == [date(2026, 10, 1), date(2026, 11, 1)]
    assert [(m.achieved, m.decided, m.ratio) for m in achievement(weekly, "month")] == [
        (1, 1, 1.0),
        (0, 0, None),
    ]


def test_today_across_dst_switches_picks_the_right_period() -> None:
    # New York springs forward on Sunday 2026-03-08: 01:59 EST is 06:59 UTC, 03:00 EDT 07:00.
    ny = "America/New_York"
    assert today_in(ny, datetime(2026, 3, 8, 6, 59, tzinfo=UTC)) == date(2026, 3, 8)
    assert today_in(ny, datetime(2026, 3, 9, 3, 59, tzinfo=UTC)) == date(2026, 3, 8)
    assert today_in(ny, datetime(2026, 3, 9, 4, 0, tzinfo=UTC)) == date(2026, 3, 9)
    # Berlin falls back on Sunday 2026-10-25: the week ends at 23:00 UTC that day (CET).
    berlin = "Europe/Berlin"
    sunday = today_in(berlin, datetime(2026, 10, 25, 22, 59, tzinfo=UTC))
    monday = today_in(berlin, datetime(2026, 10, 25, 23, 0, tzinfo=UTC))
    assert period_bounds("weekly", sunday) == (date(2026, 10, 19), date(2026, 10, 25))
    assert period_bounds("weekly", monday) == (date(2026, 10, 26), date(2026, 11, 1))
    # The 25-hour day is one row like any other; a weekly goal sums it whole.
    rows = [row(date(2026, 10, 25), 25 * 3600 - 1), row(date(2026, 10, 26), 10)]
    found = periods(G("weekly", target_seconds=25 * 3600), rows, date(2026, 10, 19), monday)
    assert [(p.seconds, p.status) for p in found] == [(25 * 3600 - 1, "fail"), (10, "pending")]


days_st = st.lists(
    st.tuples(st.integers(0, 90), st.floats(0, 30_000, allow_nan=False)), max_size=40
)


def rows_of(spec: list[tuple[int, float]], start: date) -> list[DailyRow]:
    by_day: dict[date, float] = {}
    for offset, seconds in spec:
        by_day[start + timedelta(days=offset)] = seconds  # one row per day, as FINAL reads them
    return [row(day, seconds) for day, seconds in by_day.items()]


@given(
    spec=days_st,
    period=st.sampled_from(["daily", "weekly"]),
    start_offset=st.integers(0, 6),
    span=st.integers(0, 90),
)
def test_periods_tile_the_days_and_keep_every_second(
    spec: list[tuple[int, float]], period: Literal["daily", "weekly"], start_offset: int, span: int
) -> None:
    first = MON + timedelta(days=start_offset)
    today = first + timedelta(days=span)
    rows = rows_of(spec, first)
    found = periods(G(period), rows, first, today)
    assert found[0].start <= first <= found[0].end
    assert found[-1].start <= today <= found[-1].end
    assert [p.running for p in found].count(True) == 1
    for earlier, later in pairwise(found):
        assert later.start == earlier.end + timedelta(days=1)
    if period == "weekly":
        assert all(p.start.weekday() == 0 and p.end.weekday() == 6 for p in found)
    covered = sum(r.total_seconds for r in rows if found[0].start <= r.date <= found[-1].end)
    assert abs(sum(p.seconds for p in found) - covered) < 1e-6 * max(1.0, covered)


@given(
    spec=days_st,
    kind=st.sampled_from(["at_least", "at_most"]),
    late_day=st.integers(0, 60),
    extra=st.floats(1, 20_000, allow_nan=False),
)
def test_more_time_only_helps_at_least_and_only_hurts_at_most(
    spec: list[tuple[int, float]],
    kind: Literal["at_least", "at_most"],
    late_day: int,
    extra: float,
) -> None:
    today = MON + timedelta(days=60)
    rows = rows_of(spec, MON)
    goal = G(kind=kind)
    before = periods(goal, rows, MON, today)
    # A late heartbeat recomputes one day with more time in it.
    day = MON + timedelta(days=late_day)
    old = next((r for r in rows if r.date == day), row(day, 0.0))
    grown = [r for r in rows if r.date != day] + [
        replace(old, total_seconds=old.total_seconds + extra)
    ]
    after = periods(goal, grown, MON, today)
    rank = {"fail": 0, "pending": 1, "success": 2}
    for b, a in zip(before, after, strict=True):
        if kind == "at_least":
            assert rank[a.status] >= rank[b.status]
        else:
            assert rank[a.status] <= rank[b.status] or (b.status == "pending" == a.status)
    current, longest = streaks(after)
    assert 0 <= current <= longest <= len(after)


def test_streaks_of_nothing() -> None:
    assert streaks([]) == (0, 0)
    pending = Period(MON, MON, 0.0, 60, "pending", running=True)
    assert streaks([pending]) == (0, 0)
