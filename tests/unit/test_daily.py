"""Local days: dating heartbeats in their own timezone, DST-correct bounds, and folding a day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from projections.daily import DEFAULT_TIMEOUT_S, DailyRow, compute_day, day_bounds, local_date
from schemas.heartbeat import Heartbeat


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def make_heartbeat(time: float, event_id: str, **fields: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "event_id": event_id,
        "user_id": "u1",
        "time": time,
        "entity": "main.py",
        "project": "codetrackr",
        "language": "Python",
        "timezone": "Europe/Berlin",
        "received_at": time + 1,
        "source": "codetrackr",
    }
    values.update(fields)
    return Heartbeat(**values)


# --- local_date --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "tz", "expected"),
    [
        # Mexico City dropped DST in late 2022: the same UTC clock time lands on different dates.
        ((2022, 4, 10, 5, 30), "America/Mexico_City", date(2022, 4, 10)),  # CDT, UTC-5
        ((2023, 4, 10, 5, 30), "America/Mexico_City", date(2023, 4, 9)),  # CST, UTC-6
        # Berlin switched to CEST at 01:00 UTC on 2024-03-31.
        ((2024, 3, 30, 22, 59), "Europe/Berlin", date(2024, 3, 30)),
        ((2024, 3, 30, 23, 0), "Europe/Berlin", date(2024, 3, 31)),
        ((2024, 10, 26, 21, 59), "Europe/Berlin", date(2024, 10, 26)),  # CEST, UTC+2
        ((2024, 10, 26, 22, 0), "Europe/Berlin", date(2024, 10, 27)),
        # A half-hour offset.
        ((2024, 1, 1, 18, 29), "Asia/Kolkata", date(2024, 1, 1)),
        ((2024, 1, 1, 18, 30), "Asia/Kolkata", date(2024, 1, 2)),
        ((2024, 1, 1, 23, 0), "UTC", date(2024, 1, 1)),
    ],
)
def test_local_date_uses_the_zone_offset_in_force(
    utc: tuple[int, ...], tz: str, expected: date
) -> None:
    assert local_date(epoch(*utc), tz) == expected


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "../../etc/passwd", "/etc/localtime"])
def test_local_date_unknown_timezone_means_utc(tz: str) -> None:
    assert local_date(epoch(2024, 1, 1, 23, 30), tz) == date(2024, 1, 1)


# --- day_bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "tz", "start_utc", "hours"),
    [
        (date(2024, 3, 31), "Europe/Berlin", (2024, 3, 30, 23, 0), 23),
        (date(2024, 10, 27), "Europe/Berlin", (2024, 10, 26, 22, 0), 25),
        (date(2024, 1, 1), "Asia/Kolkata", (2023, 12, 31, 18, 30), 24),
        (date(2024, 6, 1), "America/Mexico_City", (2024, 6, 1, 6, 0), 24),
        # Chile springs forward AT midnight: 00:00 does not exist, the day starts at 01:00 local.
        (date(2024, 9, 8), "America/Santiago", (2024, 9, 8, 4, 0), 23),
    ],
)
def test_day_bounds_are_dst_correct(
    day: date, tz: str, start_utc: tuple[int, ...], hours: int
) -> None:
    start, end = day_bounds(day, tz)

    assert start == epoch(*start_utc)
    assert end - start == hours * 3600


def test_day_bounds_consecutive_days_tile_without_gaps() -> None:
    _, first_end = day_bounds(date(2024, 10, 26), "Europe/Berlin")
    second_start, _ = day_bounds(date(2024, 10, 27), "Europe/Berlin")

    assert first_end == second_start


# --- compute_day -------------------------------------------------------------------------------


def test_compute_day_clips_a_heartbeat_just_before_midnight() -> None:
    # Berlin, 2024-03-30 (CET, UTC+1): local 23:50 and 23:58 (with 10 minutes of explicit
    # duration), then 00:05 on the next day.
    beats = [
        make_heartbeat(epoch(2024, 3, 30, 22, 50), "a"),
        make_heartbeat(epoch(2024, 3, 30, 22, 58), "b", duration=600.0),
        make_heartbeat(epoch(2024, 3, 30, 23, 5), "c", project="next-day"),
    ]

    row = compute_day("u1", date(2024, 3, 30), beats)

    # 8 minutes of gap, then 2 of the 10 minutes before midnight; the rest is not this day's.
    assert row.total_seconds == pytest.approx(600)
    assert row.heartbeat_count == 2
    assert row.first_time == beats[0].time
    assert row.last_time == beats[1].time
    assert row.breakdown["project"] == pytest.approx({"codetrackr": 600})


def test_compute_day_next_day_starts_fresh() -> None:
    beats = [
        make_heartbeat(epoch(2024, 3, 30, 22, 58), "b", duration=600.0),
        make_heartbeat(epoch(2024, 3, 30, 23, 5), "c", project="next-day"),
    ]

    row = compute_day("u1", date(2024, 3, 31), beats)

    assert row.heartbeat_count == 1
    assert row.total_seconds == 0
    assert row.breakdown["project"] == {"next-day": 0.0}


def test_compute_day_dates_heartbeats_in_their_own_timezone() -> None:
    # 19:00 UTC on Jan 1 is Jan 2 in Kolkata: it belongs to Jan 2 whatever the row's zone.
    beat = make_heartbeat(epoch(2024, 1, 1, 19, 0), "k", timezone="Asia/Kolkata", duration=60.0)

    assert compute_day("u1", date(2024, 1, 1), [beat]).heartbeat_count == 0
    assert compute_day("u1", date(2024, 1, 2), [beat]).total_seconds == 60


def test_compute_day_ignores_other_users_and_counts_duplicates_once() -> None:
    mine = make_heartbeat(epoch(2024, 5, 1, 10, 0), "x", duration=30.0)
    beats = [mine, mine, make_heartbeat(epoch(2024, 5, 1, 10, 0), "y", user_id="u2")]

    row = compute_day("u1", date(2024, 5, 1), beats)

    assert row.heartbeat_count == 1
    assert row.total_seconds == pytest.approx(30)


def test_compute_day_applies_the_timeout() -> None:
    beats = [
        make_heartbeat(epoch(2024, 5, 1, 10, 0), "x"),
        make_heartbeat(epoch(2024, 5, 1, 10, 20), "y"),
    ]

    day = date(2024, 5, 1)
    assert compute_day("u1", day, beats).total_seconds == 0  # 20 min > 15
    assert compute_day("u1", day, beats, timeout_s=1800).total_seconds == 1200
    assert DEFAULT_TIMEOUT_S == 900


def test_compute_day_without_heartbeats_is_an_empty_row() -> None:
    row = compute_day("u1", date(2024, 5, 1), [])

    assert row == DailyRow(
        user_id="u1",
        date=date(2024, 5, 1),
        timezone="UTC",
        total_seconds=0.0,
        heartbeat_count=0,
        first_time=0.0,
        last_time=0.0,
        breakdown={
            "project": {},
            "language": {},
            "editor": {},
            "os": {},
            "machine": {},
            "branch": {},
            "category": {},
            "entity": {},
        },
    )
