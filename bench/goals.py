"""Figure 8: what a goal costs to answer from a user-year of daily rows, against a stats read.

Value: :func:`api.rules.goals.goal_view` and :func:`api.rules.goals.analytics_view` of five goals
(daily and weekly, at least and at most, one scoped to a language) over 365 daily rows with a
few languages, projects and categories each: everything ``GET /users/current/goals`` plus
``/goals/analytics`` compute once the rows are read. Baseline, interleaved: the language
breakdown of the same rows (:func:`api.rules.stats.sum_breakdown`), what ``/api/v1/stats``
computes over rows it read. No server, no store: the row read is the same for both.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta

from accounts.goals import Goal
from api.rules.goals import analytics_view, goal_view
from api.rules.stats import sum_breakdown
from bench.report import Row, percentile
from projections.daily import DailyRow

SAMPLES_AT_SCALE_1 = 300
_TODAY = date(2026, 11, 30)
_CREATED = datetime(2025, 12, 1, tzinfo=UTC).timestamp()


def _rows() -> list[DailyRow]:
    rng = random.Random(8)
    rows = []
    for offset in range(365):
        day = _TODAY - timedelta(days=offset)
        total = rng.uniform(0, 8 * 3600)
        split = [rng.random() for _ in range(3)]
        share = [total * s / sum(split) for s in split]
        rows.append(
            DailyRow(
                "u",
                day,
                "Europe/Berlin",
                total,
                500,
                0.0,
                0.0,
                {
                    "language": dict(zip(("Python", "TypeScript", "Go"), share, strict=True)),
                    "project": dict(zip(("api", "web", "cli"), share, strict=True)),
                    "category": dict(zip(("coding", "meeting", "debugging"), share, strict=True)),
                },
            )
        )
    return rows


def _goals() -> list[Goal]:
    def goal(n: int, period: str, kind: str, target: int, scope: str | None = None) -> Goal:
        return Goal(
            goal_id=f"g{n}",
            user_id="u",
            period=period,  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            target_seconds=target,
            title="",
            scope=scope,  # type: ignore[arg-type]
            scope_value={"language": "Python", "category": "meeting"}.get(scope or ""),
            created_at=_CREATED,
            updated_at=_CREATED,
        )

    return [
        goal(1, "daily", "at_least", 4 * 3600),
        goal(2, "weekly", "at_least", 20 * 3600),
        goal(3, "daily", "at_least", 3600, "language"),
        goal(4, "daily", "at_most", 2 * 3600, "category"),
        goal(5, "weekly", "at_most", 50 * 3600),
    ]


def _answer(goals: list[Goal], rows: list[DailyRow]) -> None:
    owner = {"id": "u", "username": "u", "display_name": "u"}
    for goal in goals:
        goal_view(goal, rows, tz="Europe/Berlin", today=_TODAY, owner=owner)
        analytics_view(goal, rows, tz="Europe/Berlin", today=_TODAY, weeks=12, months=6)


async def figure_goals(scale: float) -> list[Row]:
    samples = max(30, round(SAMPLES_AT_SCALE_1 * scale))
    rows, goals = _rows(), _goals()
    answers: list[float] = []
    stats: list[float] = []
    for _ in range(5):  # warm caches (zone lookups, canonical names)
        _answer(goals, rows)
        sum_breakdown(rows, "language")
    for _ in range(samples):
        started = time.perf_counter()
        _answer(goals, rows)
        answers.append(time.perf_counter() - started)
        started = time.perf_counter()
        sum_breakdown(rows, "language")
        stats.append(time.perf_counter() - started)
    return [
        Row(
            mode="embedded",
            figure="8 goals: 5 goals' views and analytics over a user-year of day rows, p50",
            unit="s",
            value=percentile(answers, 50),
            baseline=percentile(stats, 50),
            baseline_label="language breakdown of the same 365 rows (a stats read), p50",
            notes=[
                f"goals p99 {percentile(answers, 99) * 1e3:.2f} ms, "
                f"breakdown p99 {percentile(stats, 99) * 1e3:.2f} ms, {samples} samples each, "
                "interleaved; the rows' read from the store is the same for both and not timed",
            ],
        )
    ]
