"""Weekly leaderboards as projections. Pure: no I/O, no clock, no database.

A week is an ISO week (Monday to Sunday) of the user's local days, so a heartbeat counts in the
week of the local day the daily projection put it on. ``weekly_stats`` holds one row per user
and week, summed from that week's daily rows; ``leaderboard_members`` holds one row per account:
who may be ranked (a public profile that opted in), under which name, country and hire flag, and
whether their languages may be shown (language boards rank only those who show them).
Ranking itself is an ``ORDER BY`` over those two tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from projections.daily import DailyRow

__all__ = ["Member", "WeeklyRow", "iso_week_id", "week_of", "week_start_of_id", "weekly_row"]

# The breakdowns a leaderboard shows (language boards rank by one of them).
WEEKLY_DIMENSIONS = ("language", "editor", "os")


@dataclass(frozen=True, slots=True)
class WeeklyRow:
    user_id: str
    week: date  # the Monday
    total_seconds: float
    breakdown: dict[str, dict[str, float]]  # WEEKLY_DIMENSIONS -> {value: seconds}


@dataclass(frozen=True, slots=True)
class Member:
    """An account as leaderboards see it. ``version`` is the log offset of its latest event."""

    user_id: str
    username: str
    eligible: bool
    country: str
    available_for_hire: bool
    version: int
    languages_public: bool = False  # profile_show_languages: language boards, top language


def week_of(day: date) -> date:
    """The Monday of ``day``'s ISO week."""
    return day - timedelta(days=day.weekday())


def iso_week_id(monday: date) -> str:
    """``2026-W10``: the ISO year and week number (the ISO year of a week is its Thursday's)."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def week_start_of_id(week_id: str) -> date:
    """The Monday of an ISO week id such as ``2026-W10``; ValueError when it is not one."""
    year, sep, week = week_id.partition("-W")
    if not (sep and year.isdigit() and week.isdigit() and len(year) == 4 and len(week) == 2):
        raise ValueError(f"not an ISO week id: {week_id!r}")
    return date.fromisocalendar(int(year), int(week), 1)


def weekly_row(user_id: str, monday: date, days: Iterable[DailyRow]) -> WeeklyRow:
    """Sum the user's daily rows of the week starting ``monday`` (others are ignored).

    Summed in date order, so the same days always give the same floating-point result.
    """
    sunday = monday + timedelta(days=6)
    mine = sorted(
        (row for row in days if row.user_id == user_id and monday <= row.date <= sunday),
        key=lambda row: row.date,
    )
    breakdown: dict[str, dict[str, float]] = {dim: {} for dim in WEEKLY_DIMENSIONS}
    total = 0.0
    for row in mine:
        total += row.total_seconds
        for dim in WEEKLY_DIMENSIONS:
            bucket = breakdown[dim]
            for value, seconds in row.breakdown.get(dim, {}).items():
                bucket[value] = bucket.get(value, 0.0) + seconds
    return WeeklyRow(user_id, monday, total, breakdown)
