"""Local days on the real engine (chdb in-process), written by the real projector: a heartbeat is
dated by the time the archive stores, a day that mixes timezones keeps every machine's time, and
the read API's folds (rows, the durations endpoint's spans) agree with the stored rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

import pytest

from api.rules.activity import ActivityReader, Question
from api.rules.stats import DateRange
from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import HeartbeatsReceived
from schemas.heartbeat import Heartbeat, heartbeat_event_id
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_clickhouse_store import new_store

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url


@pytest.fixture
def store(chdb_url: str) -> Iterator[ClickHouseProjectionStore]:
    created = new_store(chdb_url)
    created.migrate()
    yield created
    created.close()


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def beat(user: str, time: float, tz: str, machine: str) -> Heartbeat:
    fields = {
        "user_id": user,
        "entity": "/src/main.py",
        "type": "file",
        "category": "coding",
        "project": "core",
        "branch": None,
        "language": "Python",
        "is_write": False,
        "time": time,
    }
    return Heartbeat(
        event_id=heartbeat_event_id(**fields),  # type: ignore[arg-type]
        received_at=time,
        timezone=tz,
        machine=machine,
        source="wakatime",
        **fields,  # type: ignore[arg-type]
    )


def received(user: str, beats: Sequence[Heartbeat], at: float) -> HeartbeatsReceived:
    """One ingest request received at ``at`` (which ingest stamps on its heartbeats)."""
    stamped = tuple(hb.model_copy(update={"received_at": at}) for hb in beats)
    return HeartbeatsReceived(
        event_id=f"{user}-{at}", user_id=user, occurred_at=at, heartbeats=stamped
    )


def test_a_heartbeat_just_before_midnight_is_dated_as_stored(
    store: ClickHouseProjectionStore,
) -> None:
    # 0.4 ms before midnight UTC: the archive keeps milliseconds, so it reads back at 00:00:00.000
    # of the next day, and that next day is where it must be filed and counted.
    midnight = utc(2026, 12, 3)
    almost = beat("u1", midnight - 0.0004, "UTC", "laptop")
    after = beat("u1", midnight + 60, "UTC", "laptop")

    HeartbeatProjector(store).handle([received("u1", [almost, after], midnight + 120)])

    days = store.heartbeats_for_days([("u1", date(2026, 12, 2)), ("u1", date(2026, 12, 3))])
    assert days[("u1", date(2026, 12, 2))] == []
    assert [hb.time for hb in days[("u1", date(2026, 12, 3))]] == [midnight, midnight + 60]
    rows = store.daily_rows("u1", date(2026, 12, 2), date(2026, 12, 3))
    counted = [(row.date, row.heartbeat_count, row.total_seconds) for row in rows]
    assert counted == [(date(2026, 12, 3), 2, pytest.approx(60))]


def test_a_day_that_mixes_zones_keeps_every_machine_s_time(
    store: ClickHouseProjectionStore,
) -> None:
    # 2026-12-01, 20:00 to 20:30 in New York; a machine in Tokyo sends one heartbeat of the same
    # local date (23:00 JST) before, or after, the evening.
    day = date(2026, 12, 1)
    for user, tokyo_last in (("tokyo-last", True), ("tokyo-first", False)):
        evening = [
            beat(user, utc(2026, 12, 2, 1) + 120 * i, "America/New_York", "nyc") for i in range(16)
        ]
        tokyo = [beat(user, utc(2026, 12, 1, 14), "Asia/Tokyo", "tokyo")]
        batches = [evening, tokyo] if tokyo_last else [tokyo, evening]
        projector = HeartbeatProjector(store)
        for index, batch in enumerate(batches):
            projector.handle([received(user, batch, utc(2026, 12, 2, 2) + index)])

        [row] = store.daily_rows(user, day, day)
        assert row.total_seconds == pytest.approx(1800)
        assert row.heartbeat_count == 17
        assert row.timezone == "America/New_York"  # the zone of the day's last heartbeat

        # The read side folds the archive with the same rule: the durations endpoint's spans and
        # a question that forces the fold give the stored seconds.
        reader = ActivityReader(store)
        spans = reader.spans(user, day, "America/New_York", Question())
        assert sum(span.seconds for span in spans) == pytest.approx(1800)
        forced = Question(branches=frozenset({""}))
        [folded] = reader.rows(user, DateRange(day, day, "Europe/Berlin"), forced)
        assert folded.total_seconds == pytest.approx(row.total_seconds)
        assert folded.timezone == row.timezone
