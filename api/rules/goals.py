"""Goals as the API answers them: Chronova's fields and WakaTime's, from the goal rule.

One goal view carries both vocabularies, because ``/api/v1/users/current/goals`` is both
Chronova's path and WakaTime's:

* Chronova's: ``id``, ``type`` (``daily`` / ``weekly``), ``target_seconds``, the scope
  (``language``, ``project``, ``editor`` or ``category``), ``progress`` (``current_seconds``,
  ``percentage``, ``streak``), and CodeTrackr's ``kind`` (``at_least`` / ``at_most``);
* WakaTime's: ``title``, ``delta`` (``day`` / ``week``), ``seconds``, ``is_inverse``, ``status``,
  ``average_status``, ``cumulative_status``, ``languages`` / ``projects`` / ``editors`` /
  ``categories`` (lists), ``range_text``, ``chart_data`` (the latest periods, oldest first, the
  running one last: ``wakatime-cli --today-goal`` reads its last ``actual_seconds_text``),
  ``created_at``, ``modified_at`` and the flags WakaTime clients read (``is_enabled``, ...).

WakaTime's own ``type`` (what is measured, always coding time here) is not carried: ``type`` is
Chronova's period. Pure: no web framework, no database, no clock (``today`` is given).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from accounts.goals import Goal
from api.rules.stats import iso_utc
from api.rules.wakatime import text_of
from http_edge.problem import ApiError
from projections.daily import DailyRow, day_bounds, local_date
from projections.goals import Period, Ratio, achievement, periods, streaks
from schemas.events import MAX_GOAL_SECONDS
from schemas.languages import stored_language

SCOPES = ("language", "project", "editor", "category")
PERIOD_SECONDS = {"daily": 86_400, "weekly": MAX_GOAL_SECONDS}
CHART_PERIODS = 7  # periods in ``chart_data``, as WakaTime's goal charts show
# WakaTime's list field for each scope.
_LIST_OF = {
    "language": "languages",
    "project": "projects",
    "editor": "editors",
    "category": "categories",
}


def invalid(field: str, message: str) -> ApiError:
    return ApiError(
        400,
        f"invalid {field}: {message}",
        code="validation_error",
        details={"fields": {field: message}},
    )


def checked_target(period: str, seconds: int) -> int:
    """A target a period can hold: 1 s to the period's length."""
    longest = PERIOD_SECONDS[period]
    if not 1 <= seconds <= longest:
        raise invalid("target_seconds", f"must be between 1 and {longest} for a {period} goal")
    return seconds


def checked_scope(values: dict[str, str | None]) -> tuple[str | None, str | None]:
    """The one scope a body names (``language``, ``project``, ``editor`` or ``category``), or
    none. Two at once are refused: the daily rows hold each dimension's totals, not their
    intersections, so "Python in project X" cannot be answered from them."""
    given = {name: value for name, value in values.items() if value is not None}
    if len(given) > 1:
        raise invalid(
            "scope",
            "a goal counts all coding time or one language, project, editor or category; "
            f"got {', '.join(sorted(given))}",
        )
    if not given:
        return None, None
    [(name, value)] = given.items()
    text = value.strip()
    if not text:
        raise invalid(name, "must not be blank")
    if name == "language":
        canonical = stored_language(text)
        if canonical is None:
            raise invalid(name, "not a language name")
        text = canonical
    return name, text


def created_on(goal: Goal, tz: str) -> date:
    """The local date the goal was set on: its history starts with that date's period."""
    return local_date(goal.created_at, tz)


def history(goal: Goal, rows: Sequence[DailyRow], tz: str, today: date) -> list[Period]:
    """Every period of ``goal`` from its creation to today."""
    return periods(goal, rows, min(created_on(goal, tz), today), today)


def _range(period: Period, tz: str) -> dict[str, Any]:
    start, _ = day_bounds(period.start, tz)
    _, end = day_bounds(period.end, tz)
    text = (
        period.start.strftime("%a %b %d %Y")
        if period.start == period.end
        else f"{period.start.strftime('%b %d')} until {period.end.strftime('%b %d %Y')}"
    )
    return {
        "date": period.start.isoformat(),
        "start": iso_utc(start),
        "end": iso_utc(end),
        "text": text,
        "timezone": tz,
    }


def _reason(goal: Goal, period: Period) -> str:
    verb = "reached" if goal.kind == "at_least" else "stayed within"
    missed = "did not reach" if goal.kind == "at_least" else "exceeded"
    done = text_of(period.seconds)
    target = text_of(goal.target_seconds)
    if period.status == "success":
        return f"{verb} {target} with {done}"
    if period.status == "fail":
        return f"{missed} {target} with {done}"
    return f"{done} of {target} so far"


def chart_point(goal: Goal, period: Period, tz: str) -> dict[str, Any]:
    return {
        "actual_seconds": round(period.seconds, 3),
        "actual_seconds_text": text_of(period.seconds),
        "goal_seconds": goal.target_seconds,
        "goal_seconds_text": text_of(goal.target_seconds),
        "range_status": period.status,
        "range_status_reason": _reason(goal, period),
        "range_status_reason_short": text_of(period.seconds),
        "range": _range(period, tz),
    }


def title_of(goal: Goal) -> str:
    if goal.title:
        return goal.title
    how = "at least" if goal.kind == "at_least" else "at most"
    per = "per day" if goal.period == "daily" else "per week"
    what = f" in {goal.scope_value}" if goal.scope_value else ""
    return f"Code {how} {text_of(goal.target_seconds)} {per}{what}"


def _majority(found: Sequence[Period]) -> str:
    decided = [p for p in found if p.status != "pending"]
    if not decided:
        return "pending"
    wins = sum(p.status == "success" for p in decided)
    return "success" if wins * 2 >= len(decided) else "fail"


def progress(goal: Goal, found: Sequence[Period]) -> dict[str, Any]:
    """Chronova's ``progress`` of the running period, with its bounds and status."""
    now = found[-1]
    current, longest = streaks(found)
    # at least: what is still to do; at most: what is still allowed
    remaining = max(0.0, goal.target_seconds - now.seconds)
    return {
        "current_seconds": round(now.seconds, 3),
        "target_seconds": goal.target_seconds,
        "percentage": round(100.0 * now.seconds / goal.target_seconds, 2),
        "remaining_seconds": round(remaining, 3),
        "status": now.status,
        "period_start": now.start.isoformat(),
        "period_end": now.end.isoformat(),
        "streak": current,
        "longest_streak": longest,
    }


def goal_view(
    goal: Goal, rows: Sequence[DailyRow], *, tz: str, today: date, owner: dict[str, Any]
) -> dict[str, Any]:
    """One goal with its progress, in both vocabularies (see the module docs)."""
    found = history(goal, rows, tz, today)
    chart = found[-CHART_PERIODS:]
    scope: dict[str, Any] = {name: None for name in SCOPES}
    lists: dict[str, list[str]] = {plural: [] for plural in _LIST_OF.values()}
    if goal.scope is not None and goal.scope_value is not None:
        scope[goal.scope] = goal.scope_value
        lists[_LIST_OF[goal.scope]] = [goal.scope_value]
    first = found[0]
    return {
        "id": goal.goal_id,
        "type": goal.period,
        "kind": goal.kind,
        "target_seconds": goal.target_seconds,
        **scope,
        "progress": progress(goal, found),
        "title": title_of(goal),
        "delta": "day" if goal.period == "daily" else "week",
        "seconds": goal.target_seconds,
        "is_inverse": goal.kind == "at_most",
        "is_enabled": True,
        "is_snoozed": False,
        "snooze_until": None,
        "is_tweeting": False,
        "ignore_zero_days": False,
        "ignore_days": [],
        "improve_by_percent": None,
        "is_current_user_owner": True,
        "owner": owner,
        "subscribers": [],
        "shared_with": [],
        **lists,
        "status": found[-1].status,
        "average_status": _majority(found),
        "cumulative_status": _majority(found),
        "range_text": f"from {first.start.strftime('%b %d %Y')} until today",
        "chart_data": [chart_point(goal, period, tz) for period in chart],
        "created_at": iso_utc(goal.created_at),
        "modified_at": iso_utc(goal.updated_at),
    }


def _ratio(item: Ratio, *, key: str, value: str) -> dict[str, Any]:
    return {key: value, "achieved": item.achieved, "decided": item.decided, "ratio": item.ratio}


def analytics_view(
    goal: Goal,
    rows: Sequence[DailyRow],
    *,
    tz: str,
    today: date,
    weeks: int,
    months: int,
) -> dict[str, Any]:
    """Streaks and achievement ratios of one goal: per calendar week (the latest ``weeks``)
    and month (the latest ``months``) since it was set, and overall."""
    found = history(goal, rows, tz, today)
    current, longest = streaks(found)
    decided = [p for p in found if p.status != "pending"]
    achieved = sum(p.status == "success" for p in decided)
    weekly = achievement(found, "week")[-weeks:]
    monthly = achievement(found, "month")[-months:]
    return {
        "id": goal.goal_id,
        "title": title_of(goal),
        "type": goal.period,
        "kind": goal.kind,
        "target_seconds": goal.target_seconds,
        "scope": goal.scope,
        "scope_value": goal.scope_value,
        "since": found[0].start.isoformat(),
        "streak": {"current": current, "longest": longest},
        "current_period": progress(goal, found),
        "achievement": {
            "overall": {
                "achieved": achieved,
                "decided": len(decided),
                "ratio": round(achieved / len(decided), 4) if decided else None,
            },
            "weekly": [
                _ratio(w, key="week_start", value=w.start.isoformat())
                | {"week_end": (w.start + timedelta(days=6)).isoformat()}
                for w in weekly
            ],
            "monthly": [_ratio(m, key="month", value=m.start.strftime("%Y-%m")) for m in monthly],
        },
    }


def earliest_needed(goals: Sequence[Goal], tz: str, today: date) -> date:
    """The first local date whose row any of ``goals`` reads (its creation week's Monday)."""
    first = min((created_on(goal, tz) for goal in goals), default=today)
    first = min(first, today)
    return first - timedelta(days=first.weekday())
