"""Goal progress from daily rows. Pure: no I/O, no clock, no database.

A goal asks for ``target_seconds`` per period, at least (reach it) or at most (stay within it),
of all coding time or of one value of one dimension (a language, project, editor or category).
A period is a local day (``daily``) or an ISO week, Monday to Sunday (``weekly``), of the user's
local dates; its seconds are the sum of its daily rows (or of the scoped value's share of them),
so a period's answer depends only on the rows of its days: a late heartbeat that recomputes a
past day moves that period's status too, and a DST switch changes nothing but how long the
switching day is.

Status of a period, given ``today`` (the user's local date now):

* ``at_least``: ``success`` once its seconds reach the target (even before it ends), else
  ``pending`` while it is running and ``fail`` once it ended;
* ``at_most``: ``fail`` once its seconds exceed the target (even before it ends), else
  ``pending`` while it is running and ``success`` once it ended.

Streaks count consecutive successful periods: the current one ends at the latest period, which
counts when it already succeeded and is skipped while pending; the longest is the longest run
anywhere. Achievement ratios group periods by calendar week (Monday to Sunday) and month
(a weekly period belongs to the month of its Thursday, as ISO weeks belong to years); each is
the share of successes among the periods decided (pending ones are left out).

Used by the read API (``api.rules.goals``) and by live push (``processors.projectors.goals``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Literal, NamedTuple, Protocol

from projections.daily import DailyRow
from schemas.languages import canonical_language

__all__ = [
    "GoalTerms",
    "Period",
    "Ratio",
    "Status",
    "achievement",
    "first_period_start",
    "month_of",
    "period_bounds",
    "period_progress",
    "periods",
    "scoped_seconds",
    "status_of",
    "streaks",
]

Status = Literal["success", "fail", "pending"]
_WEEK = timedelta(days=7)
_THURSDAY = timedelta(days=3)


class GoalTerms(Protocol):
    """What the rule reads of a goal (``accounts.goals.Goal`` has these fields)."""

    @property
    def period(self) -> Literal["daily", "weekly"]: ...

    @property
    def kind(self) -> Literal["at_least", "at_most"]: ...

    @property
    def target_seconds(self) -> int: ...

    @property
    def scope(self) -> Literal["language", "project", "editor", "category"] | None: ...

    @property
    def scope_value(self) -> str | None: ...


class Period(NamedTuple):
    """One period of a goal: its first and last local date, its seconds and its status (a
    tuple: a user-year holds hundreds, built at every read)."""

    start: date
    end: date
    seconds: float
    target_seconds: int
    status: Status
    running: bool  # today is one of its days


class Ratio(NamedTuple):
    """Periods of one week or month: how many were decided and how many succeeded."""

    start: date  # the week's Monday, or the month's first day
    achieved: int
    decided: int

    @property
    def ratio(self) -> float | None:
        return round(self.achieved / self.decided, 4) if self.decided else None


def period_bounds(period: Literal["daily", "weekly"], day: date) -> tuple[date, date]:
    """The first and last local date of the period holding ``day``."""
    if period == "daily":
        return day, day
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=6)


def first_period_start(period: Literal["daily", "weekly"], day: date) -> date:
    return period_bounds(period, day)[0]


def scoped_seconds(row: DailyRow, scope: str | None, scope_value: str | None) -> float:
    """The seconds of ``row`` a goal counts: all of them, or the scoped value's share.

    Languages match by their canonical name (``python`` is ``Python``); editors and categories
    ignore case; projects match exactly.
    """
    if scope is None or scope_value is None:
        return row.total_seconds
    values = row.breakdown.get(scope, {})
    if scope == "language":
        wanted = canonical_language(scope_value)
        return sum(s for name, s in values.items() if canonical_language(name) == wanted)
    if scope == "project":
        return values.get(scope_value, 0.0)
    wanted = scope_value.casefold()
    return sum(s for name, s in values.items() if name.casefold() == wanted)


def status_of(
    kind: Literal["at_least", "at_most"], seconds: float, target: int, *, ended: bool
) -> Status:
    if kind == "at_least":
        if seconds >= target:
            return "success"
        return "fail" if ended else "pending"
    if seconds > target:
        return "fail"
    return "success" if ended else "pending"


def period_progress(
    goal: GoalTerms, rows: Iterable[DailyRow], start: date, end: date, today: date
) -> Period:
    """The one period ``[start, end]`` of ``goal`` from the rows (others are ignored)."""
    seconds = sum(
        scoped_seconds(row, goal.scope, goal.scope_value)
        for row in rows
        if start <= row.date <= end
    )
    return Period(
        start=start,
        end=end,
        seconds=seconds,
        target_seconds=goal.target_seconds,
        status=status_of(goal.kind, seconds, goal.target_seconds, ended=end < today),
        running=start <= today <= end,
    )


def periods(goal: GoalTerms, rows: Iterable[DailyRow], first: date, today: date) -> list[Period]:
    """Every period of ``goal`` from the one holding ``first`` to the one holding ``today``,
    oldest first (empty when ``first`` is after ``today``)."""
    # Day ordinals, not dates: a user-year of periods is a few hundred additions.
    by_day: dict[int, float] = {}
    for row in rows:
        seconds = scoped_seconds(row, goal.scope, goal.scope_value)
        day = row.date.toordinal()
        by_day[day] = by_day.get(day, 0.0) + seconds
    length = 1 if goal.period == "daily" else 7
    start = first_period_start(goal.period, first).toordinal()
    last = first_period_start(goal.period, today).toordinal()
    now = today.toordinal()
    target, kind = goal.target_seconds, goal.kind
    found: list[Period] = []
    for begin in range(start, last + 1, length):
        end = begin + length - 1
        if length == 1:
            seconds = by_day.get(begin, 0.0)
        else:
            seconds = sum(by_day.get(day, 0.0) for day in range(begin, end + 1))
        found.append(
            Period(
                start=date.fromordinal(begin),
                end=date.fromordinal(end),
                seconds=seconds,
                target_seconds=target,
                status=status_of(kind, seconds, target, ended=end < now),
                running=begin <= now <= end,
            )
        )
    return found


def streaks(found: Sequence[Period]) -> tuple[int, int]:
    """(current, longest) runs of successful periods; a pending period neither counts nor
    breaks a run (only the running period can be pending)."""
    longest = run = 0
    for period in found:
        if period.status == "pending":
            continue
        run = run + 1 if period.status == "success" else 0
        longest = max(longest, run)
    current = 0
    for period in reversed(found):
        if period.status == "pending":
            continue
        if period.status != "success":
            break
        current += 1
    return current, longest


def month_of(period: Period) -> date:
    """The first day of the month a period belongs to: a day's own, a week's Thursday's."""
    anchor = period.start if period.start == period.end else period.start + _THURSDAY
    return date(anchor.year, anchor.month, 1)


def achievement(found: Sequence[Period], by: Literal["week", "month"]) -> list[Ratio]:
    """Decided and achieved periods per calendar week or month, oldest first."""
    groups: dict[date, list[int]] = {}
    week_start: date | None = None
    for period in found:
        if by == "month":
            key = month_of(period)
        else:
            # Periods come in order: a week's Monday is worked out once per week.
            if week_start is None or not week_start <= period.start < week_start + _WEEK:
                week_start = period.start - timedelta(days=period.start.weekday())
            key = week_start
        counts = groups.get(key)
        if counts is None:
            counts = groups[key] = [0, 0]
        if period.status != "pending":
            counts[1] += 1
            counts[0] += period.status == "success"
    return [
        Ratio(start, achieved, decided) for start, (achieved, decided) in sorted(groups.items())
    ]
