"""Rows for projection store tests: heartbeats and day rows of one user on one day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from projections.daily import DailyRow
from projections.durations import DIMENSIONS
from schemas.events import HeartbeatsDeleted, HeartbeatsReceived, UserDataErased
from schemas.heartbeat import Heartbeat

DAY = date(2024, 3, 30)
NEXT_DAY = DAY + timedelta(days=1)


def epoch(hour: int, minute: int = 0, *, day: date = DAY) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp()


def make_heartbeat(event_id: str, time: float, **fields: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "event_id": event_id,
        "user_id": "u1",
        "time": time,
        "entity": "/src/main.py",
        "project": "codetrackr",
        "language": "Python",
        "timezone": "UTC",
        "received_at": time + 1,
        "source": "wakatime",
    }
    values.update(fields)
    return Heartbeat(**values)


def full_heartbeat() -> Heartbeat:
    """Every field set to a non-default value (times at millisecond precision)."""
    return Heartbeat(
        event_id="full",
        user_id="u1",
        time=epoch(10, 15) + 0.123,
        entity="/src/api/routes.py",
        type="file",
        category="debugging",
        project="codetrackr",
        project_root_count=3,
        branch="feature/x",
        language="Python",
        language_raw="python",
        dependencies=("fastapi", "pydantic"),
        lines=420,
        line_additions=12,
        line_deletions=-3,
        lineno=77,
        cursorpos=12,
        is_write=True,
        duration=30.5,
        commit="abc123",
        workspace_root="/src",
        package_path="api",
        editor="neovim",
        os="Linux",
        machine="laptop",
        plugin="neovim-wakatime",
        ai_line_changes=5,
        human_line_changes=7,
        timezone="Europe/Berlin",
        received_at=epoch(10, 16) + 0.456,
        source="codetrackr",
        user_agent="codetrackr-cli/1.0",
    )


def daily_row(
    day: date = DAY, *, total: float = 100.0, projects: dict[str, float] | None = None
) -> DailyRow:
    breakdown: dict[str, dict[str, float]] = {dim: {} for dim in DIMENSIONS}
    breakdown["project"] = projects if projects is not None else {"codetrackr": total}
    breakdown["language"] = {"Python": total}
    return DailyRow(
        user_id="u1",
        date=day,
        timezone="Europe/Berlin",
        total_seconds=total,
        heartbeat_count=3,
        first_time=epoch(9, day=day),
        last_time=epoch(17, day=day) + 0.5,
        breakdown=breakdown,
    )


def deleted(
    ids: Sequence[str], *, user: str = "u1", day: date = DAY, at: float = 0.0
) -> HeartbeatsDeleted:
    return HeartbeatsDeleted(
        event_id=f"del-{user}-{day}-{at}",
        user_id=user,
        occurred_at=at or epoch(20),
        date=day,
        ids=tuple(ids),
    )


def received(user: str, beats: Sequence[Heartbeat], event_id: str) -> HeartbeatsReceived:
    return HeartbeatsReceived(
        event_id=event_id, user_id=user, occurred_at=epoch(12), heartbeats=tuple(beats)
    )


def beats(user: str, prefix: str, hour: int, count: int, day: Any = DAY) -> list[Heartbeat]:
    return [
        make_heartbeat(f"{prefix}{i}", epoch(hour, 2 * i, day=day), user_id=user)
        for i in range(count)
    ]


def erased(user: str, start: float | None, end: float | None, event_id: str) -> UserDataErased:
    return UserDataErased(
        event_id=event_id, user_id=user, occurred_at=epoch(20), start=start, end=end
    )


Event = HeartbeatsReceived | HeartbeatsDeleted | UserDataErased


def erasure_log() -> list[Event]:
    """A range erasure of u1 (heartbeats before it in the range go, a later one stays) and the
    deletion of u3's account (what comes after it is never projected), with u2 untouched."""
    return [
        received("u1", beats("u1", "a", 10, 6), "r1"),
        received("u2", beats("u2", "b", 10, 3), "r2"),
        erased("u1", epoch(10, 4), epoch(10, 9), "x1"),
        received("u1", [make_heartbeat("c", epoch(10, 5), user_id="u1")], "r3"),
        received("u3", beats("u3", "d", 9, 3), "r4"),
        erased("u3", None, None, "x2"),
        received("u3", beats("u3", "e", 11, 3), "r5"),
    ]


def redeliveries(log: list[Event], cut: int) -> list[list[list[Event]]]:
    """The same log as several runs of batches: whole, one event a batch, cut in two at ``cut``,
    a crash before the commit (the suffix from ``cut - 1`` is delivered again), and twice."""
    return [
        [log],
        [[event] for event in log],
        [log[:cut], log[cut:]],
        [log[: cut + 1], log[cut - 1 :]],
        [log, log],
    ]
