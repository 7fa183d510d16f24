"""Days that mix timezones: machines in different zones, DST switches, any order of arrival.

A heartbeat joins the local day of its own stamped timezone, and counts only up to the end of
that day in that zone. These properties drive the projector's pure steps (``touched_days``, then
``day_rows`` over an in-memory archive keyed like the ClickHouse one) through random batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.projectors.heartbeats import day_rows, touched_days
from projections.daily import DailyRow, day_bounds, local_date
from projections.ports import DayKey
from schemas.heartbeat import Heartbeat, heartbeat_event_id

# Each machine sits in its own zone (the zone its client sends in the Timezone header).
MACHINES: dict[str, str] = {
    "nyc-laptop": "America/New_York",
    "tokyo-desktop": "Asia/Tokyo",
    "berlin-laptop": "Europe/Berlin",
    "pune-vm": "Asia/Kolkata",
    "lord-howe": "Australia/Lord_Howe",  # half-hour DST shift
    "santiago": "America/Santiago",  # springs forward at midnight
    "kiritimati": "Pacific/Kiritimati",  # UTC+14
    "pago-pago": "Pacific/Pago_Pago",  # UTC-11
    "ci": "UTC",
}


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


# DST switches of the zones above; the nine zones' midnights are never more than 6 hours apart,
# so a window of +-4 hours around any anchor holds at least one local midnight.
ANCHORS = (
    utc(2024, 3, 10, 7),  # New York springs forward
    utc(2024, 11, 3, 6),  # New York falls back
    utc(2024, 3, 31, 1),  # Berlin springs forward
    utc(2024, 10, 27, 1),  # Berlin falls back
    utc(2024, 4, 6, 15),  # Lord Howe falls back half an hour
    utc(2024, 9, 8, 4),  # Santiago: 00:00 does not exist
    utc(2026, 12, 2, 1),  # an ordinary evening in New York
)


def beat(
    time: float, machine: str, *, duration: float = 0.0, received_at: float = 0.0, **fields: str
) -> Heartbeat:
    values = {
        "user_id": "u1",
        "entity": fields.get("entity", "main.py"),
        "type": "file",
        "category": "coding",
        "project": fields.get("project", "core"),
        "branch": None,
        "language": "Python",
        "is_write": False,
        "time": time,
    }
    return Heartbeat(
        event_id=heartbeat_event_id(**values),  # type: ignore[arg-type]
        duration=duration,
        machine=machine,
        timezone=MACHINES[machine],
        received_at=received_at or time,
        source="codetrackr",
        **values,  # type: ignore[arg-type]
    )


@st.composite
def stretches(draw: st.DrawFn, *, min_size: int = 0) -> list[Heartbeat]:
    """Up to 40 heartbeats in a walk from 4 hours before an anchor (steps of 0 to 40 minutes,
    to the millisecond), each from a machine in any of the zones.

    Distinct heartbeats only: two that share an id (same time, file, project...) yet differ
    (machine, duration) are one heartbeat re-sent with changes, where the copy received last
    wins by design; that rule has its own tests in ``test_durations.py``.
    """
    time = draw(st.sampled_from(ANCHORS)) - 4 * 3600
    count = draw(st.integers(min_value=min_size, max_value=40))
    beats: dict[str, Heartbeat] = {}
    for _ in range(count):
        time += draw(st.sampled_from([0, 30, 120, 300, 600, 1200, 2400]))
        time += draw(st.integers(min_value=0, max_value=999)) / 1000
        drawn = beat(
            time,
            draw(st.sampled_from(sorted(MACHINES))),
            duration=draw(st.sampled_from([0.0, 0.0, 30.0, 600.0, 3600.0])),
            project=draw(st.sampled_from(["core", "web"])),
            entity=draw(st.sampled_from(["a.py", "b.py"])),
        )
        beats.setdefault(drawn.event_id, drawn)
    return list(beats.values())


heartbeat_lists = stretches()
timeouts = st.sampled_from([60.0, 900.0, 1800.0])


def project(batches: Iterable[Sequence[Heartbeat]], *, timeout_s: float) -> dict[DayKey, DailyRow]:
    """What the projector writes: archive each batch, then recompute the days it touched.

    Every batch is one ingest request, received a second after the one before (so the heartbeat
    received last differs with the order of arrival).
    """
    archive: dict[DayKey, list[Heartbeat]] = {}
    rows: dict[DayKey, DailyRow] = {}
    for index, batch in enumerate(batches):
        arrived = [hb.model_copy(update={"received_at": 2e9 + index}) for hb in batch]
        for hb in arrived:
            archive.setdefault((hb.user_id, local_date(hb.time, hb.timezone)), []).append(hb)
        touched = touched_days(arrived)
        for row in day_rows({key: archive[key] for key in touched}, timeout_s=timeout_s):
            rows[(row.user_id, row.date)] = row
    return rows


def comparable(rows: dict[DayKey, DailyRow]) -> dict[DayKey, tuple[object, ...]]:
    return {
        key: (
            round(row.total_seconds, 6),
            row.heartbeat_count,
            row.timezone,
            {dim: {k: round(v, 6) for k, v in row.breakdown[dim].items()} for dim in ("project",)},
        )
        for key, row in rows.items()
    }


def random_batches(beats: list[Heartbeat], rng: random.Random) -> list[list[Heartbeat]]:
    """``beats`` shuffled and cut into batches, with some heartbeats delivered again."""
    shuffled = list(beats)
    rng.shuffle(shuffled)
    batches: list[list[Heartbeat]] = []
    while shuffled:
        size = rng.randint(1, len(shuffled))
        batch, shuffled = shuffled[:size], shuffled[size:]
        seen = [hb for earlier in batches for hb in earlier]
        batches.append(batch + rng.sample(seen, k=min(len(seen), rng.randint(0, 2))))
    return batches


# --- the reported case -------------------------------------------------------------------------


def test_a_tokyo_heartbeat_received_last_keeps_a_new_york_evening() -> None:
    # 2026-12-01, 20:00 to 20:30 in New York (01:00 to 01:30 UTC on Dec 2): 30 minutes.
    evening = [beat(utc(2026, 12, 2, 1) + 120 * i, "nyc-laptop") for i in range(16)]
    # Then a machine in Tokyo sends one heartbeat of the same local date (Dec 1, 23:00 JST).
    tokyo = beat(utc(2026, 12, 1, 14), "tokyo-desktop")
    assert local_date(tokyo.time, tokyo.timezone) == date(2026, 12, 1)

    for order in ([evening, [tokyo]], [[tokyo], evening], [[tokyo, *evening]]):
        rows = project(order, timeout_s=900)
        assert set(rows) == {("u1", date(2026, 12, 1))}
        day = rows[("u1", date(2026, 12, 1))]
        assert day.total_seconds == pytest.approx(1800)
        assert day.heartbeat_count == 17
        assert day.breakdown["machine"] == pytest.approx({"nyc-laptop": 1800, "tokyo-desktop": 0})


def test_each_heartbeat_counts_up_to_its_own_midnight() -> None:
    # Tokyo 23:50 with 20 minutes of duration, New York on the same local date (Dec 1) at the
    # same instant with 20 minutes too: Tokyo's day ends at 00:00 JST, New York's much later.
    tokyo = beat(utc(2026, 12, 1, 14, 50), "tokyo-desktop", duration=1200)
    nyc = beat(utc(2026, 12, 1, 14, 50), "nyc-laptop", duration=1200, project="web")

    day = project([[tokyo, nyc]], timeout_s=900)[("u1", date(2026, 12, 1))]

    # Both cover 14:50 to 15:10 UTC; counted once, all of it (New York's day is still running).
    assert day.total_seconds == pytest.approx(1200)
    assert project([[tokyo]], timeout_s=900)[("u1", date(2026, 12, 1))].total_seconds == 600


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(stretches(min_size=1), timeouts, st.data())
def test_adding_a_heartbeat_never_lowers_a_day(
    beats: list[Heartbeat], timeout: float, data: st.DataObject
) -> None:
    extra = beats.pop(data.draw(st.integers(min_value=0, max_value=len(beats) - 1)))
    # The new heartbeat arrives after the others, or with them: neither may lower any day.
    before = project([beats], timeout_s=timeout)
    for after in (
        project([beats, [extra]], timeout_s=timeout),
        project([[*beats, extra]], timeout_s=timeout),
    ):
        for key, row in before.items():
            assert after[key].total_seconds >= row.total_seconds - 1e-6, key
        assert (
            sum(r.total_seconds for r in after.values())
            >= sum(r.total_seconds for r in before.values()) - 1e-6
        )


@settings(max_examples=100, deadline=None)
@given(heartbeat_lists, timeouts, st.randoms(use_true_random=False))
def test_days_do_not_depend_on_order_of_arrival_or_batching(
    beats: list[Heartbeat], timeout: float, rng: random.Random
) -> None:
    one_shot = project([beats], timeout_s=timeout)
    streamed = project(random_batches(beats, rng), timeout_s=timeout)

    assert comparable(streamed) == comparable(one_shot)


@settings(max_examples=100, deadline=None)
@given(heartbeat_lists, timeouts)
def test_a_day_is_the_documented_rule(beats: list[Heartbeat], timeout: float) -> None:
    for (_, day), row in project([beats], timeout_s=timeout).items():
        todays = [hb for hb in beats if local_date(hb.time, hb.timezone) == day]
        assert row.total_seconds == pytest.approx(counted_time(day, todays, timeout), abs=1e-6)


def counted_time(day: date, todays: Sequence[Heartbeat], timeout: float) -> float:
    """The rule of ``docs/architecture.md`` stated as sets, not as a fold: each heartbeat covers
    ``[time, time + duration]`` cut at the end of ``day`` in its own zone; a hole in that coverage
    shorter than the timeout is counted up to the latest end of day among the heartbeats before
    it."""
    ends = {hb.event_id: day_bounds(day, hb.timezone)[1] for hb in todays}
    covered = sorted((hb.time, min(hb.time + hb.duration, ends[hb.event_id])) for hb in todays)
    merged: list[list[float]] = []
    for start, end in covered:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    total = sum(end - start for start, end in merged)
    for (_, hole_start), (hole_end, _) in pairwise(merged):
        if hole_end - hole_start < timeout:
            reach = max(ends[hb.event_id] for hb in todays if hb.time <= hole_start)
            total += max(0.0, min(hole_end, reach) - hole_start)
    return total
