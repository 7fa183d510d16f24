"""Day folds on the real engine (chdb in-process), written by the real projector: whatever the
batching, order, redeliveries, deletions and re-sends, the day rows equal the reference fold
(:func:`projections.daily.compute_day`) over what the archive holds, the stored folds survive
ClickHouse's round trip exactly, and a heartbeat later than the day's last is projected
without reading the day's heartbeats back.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterator, Sequence
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.daily import DailyRow, compute_day, local_date
from projections.dayfold import fold_day
from projections.ports import DayKey
from schemas.events import HeartbeatEvent, HeartbeatsDeleted, HeartbeatsReceived, UserDataErased
from tests.integration import test_clickhouse_store as store_tests
from tests.integration.test_clickhouse_store import new_store
from tests.unit.test_day_fold import logs
from tests.unit.test_day_zones import ANCHORS, beat, timeouts

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
_users = itertools.count()


@pytest.fixture(scope="module")
def shared(chdb_url: str) -> Iterator[ClickHouseProjectionStore]:
    """One migrated store for the module: every example projects a user of its own."""
    created = new_store(chdb_url)
    created.migrate()
    yield created
    created.close()


def as_user(events: Sequence[HeartbeatEvent], user: str) -> list[HeartbeatEvent]:
    moved: list[HeartbeatEvent] = []
    for event in events:
        if isinstance(event, HeartbeatsReceived):
            beats = tuple(hb.model_copy(update={"user_id": user}) for hb in event.heartbeats)
            moved.append(event.model_copy(update={"user_id": user, "heartbeats": beats}))
        else:
            moved.append(event.model_copy(update={"user_id": user}))
    return moved


def days_of(store: ClickHouseProjectionStore, user: str) -> dict[date, DailyRow]:
    return {row.date: row for row in store.daily_rows(user, date.min, date.max)}


def assert_rows_are_the_reference(
    store: ClickHouseProjectionStore, user: str, days: set[date], timeout: float
) -> None:
    stored = days_of(store, user)
    archive = store.beats_for_days((user, day) for day in days)
    for (_, day), beats in archive.items():
        expected = compute_day(user, day, beats, timeout_s=timeout)
        if not beats:
            assert day not in stored or stored[day].heartbeat_count == 0
            continue
        got = stored[day]
        assert (got.total_seconds, got.breakdown, got.heartbeat_count, got.timezone) == (
            expected.total_seconds,
            expected.breakdown,
            expected.heartbeat_count,
            expected.timezone,
        ), day
        assert (got.first_time, got.last_time) == (expected.first_time, expected.last_time)
        # The fold kept for the day is the one folding the archive gives, to the last bit.
        assert store.day_folds([(user, day)]) == {
            (user, day): fold_day(user, day, beats, timeout_s=timeout)
        }


def touched(events: Sequence[HeartbeatEvent]) -> set[date]:
    days: set[date] = set()
    for event in events:
        if isinstance(event, HeartbeatsReceived):
            days |= {local_date(hb.time, hb.timezone) for hb in event.heartbeats}
        elif isinstance(event, HeartbeatsDeleted):
            days.add(event.date)
    return days


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.large_base_example, HealthCheck.function_scoped_fixture],
)
@given(logs(), timeouts, st.randoms(use_true_random=False))
def test_days_on_chdb_equal_the_reference_in_any_batching_with_redelivery(
    shared: ClickHouseProjectionStore,
    log: list[HeartbeatEvent],
    timeout: float,
    rng: random.Random,
) -> None:
    user, replayed = f"chdb-{next(_users)}", f"chdb-{next(_users)}"
    events = as_user(log, user)
    projector = HeartbeatProjector(shared, timeout_s=timeout)
    position = 0
    while position < len(events):
        end = rng.randint(position + 1, len(events))
        projector.handle(events[position:end])
        if rng.random() < 0.3:  # a crash before the commit: part of the batch again
            projector.handle(events[rng.randint(position, end - 1) : end])
        position = end
    days = touched(events)
    assert_rows_are_the_reference(shared, user, days, timeout)
    # A replay (one batch, another user) rebuilds the same rows and folds.
    projector.handle(as_user(log, replayed))
    live, rebuilt = days_of(shared, user), days_of(shared, replayed)
    assert {day: (row.total_seconds, row.breakdown) for day, row in live.items()} == {
        day: (row.total_seconds, row.breakdown) for day, row in rebuilt.items()
    }
    assert {day: fold for (_, day), fold in shared.day_folds((user, d) for d in days).items()} == {
        day: dataclasses.replace(fold, user_id=user)
        for (_, day), fold in shared.day_folds((replayed, d) for d in days).items()
    }


class CountingStore(ClickHouseProjectionStore):
    """Records the days read back from the archive."""

    read: list[DayKey]

    def beats_for_days(self, keys):  # type: ignore[no-untyped-def]
        wanted = list(keys)
        self.read = [*getattr(self, "read", []), *wanted]
        return super().beats_for_days(wanted)


@pytest.fixture
def counting(chdb_url: str) -> Iterator[CountingStore]:
    plain = new_store(chdb_url)
    created = CountingStore(plain._url, database=plain._database)
    created.migrate()
    created.read = []
    yield created
    created.close()
    plain.close()


def test_later_heartbeats_do_not_read_the_day_and_an_erasure_folds_it_again(
    counting: CountingStore,
) -> None:
    start = ANCHORS[-1] - 3 * 3600
    day = local_date(start, "America/New_York")
    first = [beat(start + i * 20, "nyc-laptop", duration=10.0) for i in range(300)]
    projector = HeartbeatProjector(counting)
    projector.handle(
        [HeartbeatsReceived(event_id="r0", user_id="u1", occurred_at=0, heartbeats=tuple(first))]
    )
    assert counting.read == [("u1", day)]
    later = [beat(start + 7000 + i * 20, "nyc-laptop") for i in range(20)]
    for n, hb in enumerate(later, start=1):
        projector.handle(
            [HeartbeatsReceived(event_id=f"r{n}", user_id="u1", occurred_at=0, heartbeats=(hb,))]
        )
    assert counting.read == [("u1", day)]
    assert_rows_are_the_reference(counting, "u1", {day}, 900.0)

    # An erasure of a stretch in the middle: the day is folded again, then carried on.
    projector.handle(
        [
            UserDataErased(
                event_id="x", user_id="u1", occurred_at=0, start=start + 100, end=start + 2000
            )
        ]
    )
    assert counting.read[-1] == ("u1", day)
    assert_rows_are_the_reference(counting, "u1", {day}, 900.0)
    reads = len(counting.read)
    projector.handle(
        [
            HeartbeatsReceived(
                event_id="r99",
                user_id="u1",
                occurred_at=0,
                heartbeats=(beat(start + 7000 + 21 * 20, "nyc-laptop"),),
            )
        ]
    )
    assert len(counting.read) == reads
    assert_rows_are_the_reference(counting, "u1", {day}, 900.0)
