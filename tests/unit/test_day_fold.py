"""A day's fold carried on between batches equals the reference fold over the whole day.

First the pure rule (:mod:`projections.dayfold` against :func:`projections.daily.compute_day`,
which folds everything at once): exact equality, not closeness. Then the projector over the
in-memory store, which decides per batch whether a day's stored fold can be carried on or the day
must be folded again: random histories (machines in many zones, DST switches), deletions,
re-sends, any order and batching, redeliveries; its day rows must equal the reference fold over
the archive it built, and a heartbeat later than the day's others must not read the day.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.handlers import HeartbeatProjector
from projections.daily import DailyRow, compute_day, local_date
from projections.dayfold import (
    DayFold,
    decode_fold,
    encode_fold,
    extend_day,
    fold_day,
    follows,
    row_of_fold,
)
from projections.memory import InMemoryProjectionStore
from projections.ports import DayKey
from schemas.events import HeartbeatEvent, HeartbeatsDeleted, HeartbeatsReceived
from schemas.heartbeat import Heartbeat
from tests.unit.test_day_zones import ANCHORS, beat, stretches, timeouts

histories = stretches(min_size=1)


def days_of(beats: Iterable[Heartbeat]) -> dict[DayKey, list[Heartbeat]]:
    found: dict[DayKey, list[Heartbeat]] = {}
    for hb in beats:
        found.setdefault((hb.user_id, local_date(hb.time, hb.timezone)), []).append(hb)
    return found


def in_order(beats: Iterable[Heartbeat]) -> list[Heartbeat]:
    return sorted(beats, key=lambda hb: (hb.time, hb.event_id))


def cut(beats: Sequence[Heartbeat], rng: random.Random) -> list[list[Heartbeat]]:
    """``beats`` cut into consecutive runs of random length (some empty)."""
    runs: list[list[Heartbeat]] = []
    rest = list(beats)
    while rest:
        size = rng.randint(0, len(rest))
        runs.append(rest[:size])
        rest = rest[size:]
    return runs


# --- the pure rule -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(histories, timeouts, st.randoms(use_true_random=False))
def test_a_fold_carried_on_run_after_run_equals_the_reference_at_every_step(
    beats: list[Heartbeat], timeout: float, rng: random.Random
) -> None:
    for (user_id, day), todays in days_of(beats).items():
        fold = fold_day(user_id, day, (), timeout_s=timeout)
        seen: list[Heartbeat] = []
        for run in cut(in_order(todays), rng):
            carried = extend_day(fold, run, timeout_s=timeout)
            assert carried is not None
            fold = carried
            seen += run
            # Exactly equal: the same float operations in the same order.
            assert row_of_fold(fold) == compute_day(user_id, day, seen, timeout_s=timeout)
            assert fold == fold_day(user_id, day, seen, timeout_s=timeout)
            assert decode_fold(user_id, day, encode_fold(fold)) == fold


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(histories, timeouts, st.data())
def test_a_heartbeat_at_or_before_the_days_last_is_refused(
    beats: list[Heartbeat], timeout: float, data: st.DataObject
) -> None:
    for (user_id, day), todays in days_of(beats).items():
        ordered = in_order(todays)
        split = data.draw(st.integers(min_value=1, max_value=len(ordered)))
        fold = fold_day(user_id, day, ordered[:split], timeout_s=timeout)
        late = data.draw(st.sampled_from(ordered[:split]))  # a redelivery, or earlier
        assert not follows(fold, [*ordered[split:], late], timeout_s=timeout)
        assert extend_day(fold, [*ordered[split:], late], timeout_s=timeout) is None
        assert follows(fold, ordered[split:], timeout_s=timeout)
        assert not follows(fold, ordered[split:], timeout_s=timeout + 1)
        assert extend_day(fold, ordered[split:], timeout_s=timeout + 1) is None


def test_an_empty_days_fold_is_the_row_of_zeros() -> None:
    fold = fold_day("u1", date(2024, 3, 10), [], timeout_s=900.0)
    assert row_of_fold(fold) == compute_day("u1", date(2024, 3, 10), [], timeout_s=900.0)
    assert decode_fold("u1", date(2024, 3, 10), encode_fold(fold)) == fold
    with pytest.raises(ValueError, match="not a day fold"):
        decode_fold("u1", date(2024, 3, 10), '{"count": 1}')


# --- the projector over the in-memory store ----------------------------------------------------


class CountingStore(InMemoryProjectionStore):
    """Records which days were read back from the archive."""

    def __init__(self) -> None:
        super().__init__()
        self.read: list[DayKey] = []

    def beats_for_days(self, keys: Iterable[DayKey]) -> dict[DayKey, list[object]]:  # type: ignore[override]
        wanted = list(keys)
        self.read += wanted
        return super().beats_for_days(wanted)  # type: ignore[return-value]


def received(beats: Sequence[Heartbeat], n: int) -> HeartbeatsReceived:
    return HeartbeatsReceived(
        event_id=f"r{n}", user_id="u1", occurred_at=2e9, heartbeats=tuple(beats)
    )


def deletion(ids: Sequence[str], day: date, n: int) -> HeartbeatsDeleted:
    return HeartbeatsDeleted(
        event_id=f"d{n}", user_id="u1", occurred_at=2e9 + n, date=day, ids=tuple(ids)
    )


def reference_rows(store: InMemoryProjectionStore, timeout: float) -> dict[DayKey, DailyRow]:
    """The reference fold over the archive the store holds (tombstones applied)."""
    keys = {(user, day) for user, day, _ in store._heartbeats}
    return {
        key: compute_day(*key, beats, timeout_s=timeout)
        # Not through the store's own method, which a test may count.
        for key, beats in InMemoryProjectionStore.beats_for_days(store, keys).items()
    }


def assert_rows_are_the_reference(store: InMemoryProjectionStore, timeout: float) -> None:
    expected = reference_rows(store, timeout)
    stored = {(row.user_id, row.date): row for row in store.daily_rows("u1", date.min, date.max)}
    for key, row in expected.items():
        got = stored[key]
        # The store keeps first/last time to the ms, as daily_stats does; the rest is exact.
        assert (got.total_seconds, got.breakdown, got.heartbeat_count, got.timezone) == (
            row.total_seconds,
            row.breakdown,
            row.heartbeat_count,
            row.timezone,
        ), key
        assert (got.first_time, got.last_time) == (row.first_time, row.last_time)
    for key in stored.keys() - expected.keys():
        assert (stored[key].heartbeat_count, stored[key].total_seconds) == (0, 0.0)


@st.composite
def logs(draw: st.DrawFn) -> list[HeartbeatEvent]:
    """A user's log: a history's heartbeats in requests, in time order or shuffled, with
    re-sends (a request again, or one heartbeat) and deletions of some of them."""
    beats = draw(histories)
    rng = draw(st.randoms(use_true_random=False))
    ordered = in_order(beats)
    if draw(st.booleans()):
        rng.shuffle(ordered)
    log: list[HeartbeatEvent] = []
    sent: list[Heartbeat] = []
    for n, run in enumerate(cut(ordered, rng)):
        log.append(received(run, n))
        sent += run
        if sent and rng.random() < 0.3:  # deleted by the user, maybe re-sent by a client
            victims = rng.sample(sent, k=rng.randint(1, min(3, len(sent))))
            if rng.random() < 0.5:  # the day's last: a re-send then sorts after the day
                victims = list({hb.event_id: hb for hb in [*victims, in_order(sent)[-1]]}.values())
            for day, ids in days_of(victims).items():
                log.append(deletion([hb.event_id for hb in ids], day[1], n))
            if rng.random() < 0.5:
                log.append(received(victims, 1000 + n))
        if sent and rng.random() < 0.2:
            log.append(received([rng.choice(sent)], 2000 + n))
    return log


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.large_base_example])
@given(logs(), timeouts, st.randoms(use_true_random=False))
def test_projected_days_equal_the_reference_in_any_batching_with_redelivery(
    log: list[HeartbeatEvent], timeout: float, rng: random.Random
) -> None:
    store = InMemoryProjectionStore()
    projector = HeartbeatProjector(store, timeout_s=timeout)
    position = 0
    while position < len(log):  # batches of the log; a crash redelivers part of one
        end = rng.randint(position + 1, len(log))
        projector.handle(log[position:end])
        if rng.random() < 0.3:
            projector.handle(log[rng.randint(position, end - 1) : end])
        position = end
        assert_rows_are_the_reference(store, timeout)
    # Replaying the whole log into an empty store ends with the same tables.
    again = InMemoryProjectionStore()
    HeartbeatProjector(again, timeout_s=timeout).handle(log)
    for table in ("daily_stats", "day_folds", "weekly_stats"):
        assert again._projection_tables()[table] == store._projection_tables()[table]


def test_a_heartbeat_after_the_days_last_does_not_read_the_day() -> None:
    store = CountingStore()
    projector = HeartbeatProjector(store)
    start = ANCHORS[-1] - 3600
    day = ("u1", local_date(start, "America/New_York"))
    projector.handle([received([beat(start + i * 30, "nyc-laptop") for i in range(50)], 0)])
    assert store.read == [day]  # a day without a fold is folded from the archive
    for n in range(1, 20):
        projector.handle([received([beat(start + 3000 + n * 30, "nyc-laptop")], n)])
    assert store.read == [day]
    assert_rows_are_the_reference(store, 900.0)
    # A late heartbeat (and a redelivery) folds the day again, once each.
    projector.handle([received([beat(start + 15, "nyc-laptop")], 100)])
    projector.handle([received([beat(start + 15, "nyc-laptop")], 100)])
    assert store.read == [day, day, day]
    # And the in-order heartbeats are carried on again afterwards.
    projector.handle([received([beat(start + 3600 - 1, "nyc-laptop")], 101)])
    assert store.read == [day, day, day]
    assert_rows_are_the_reference(store, 900.0)
    assert_rows_are_the_reference(store, 900.0)


def test_a_deleted_last_heartbeat_sent_again_stays_deleted() -> None:
    store = InMemoryProjectionStore()
    projector = HeartbeatProjector(store)
    start = ANCHORS[-1] - 3600
    beats = [beat(start + i * 60, "nyc-laptop", duration=30.0) for i in range(5)]
    day = local_date(start, "America/New_York")
    projector.handle([received(beats, 0), deletion([beats[-1].event_id], day, 0)])
    projector.handle([received(beats[-1:], 1)])  # after the day's last live one: carried on
    assert store.daily_rows("u1", day, day)[0].heartbeat_count == 4
    assert_rows_are_the_reference(store, 900.0)


def test_a_fold_of_another_timeout_is_not_carried_on() -> None:
    store = InMemoryProjectionStore()
    start = ANCHORS[-1] - 3600
    HeartbeatProjector(store, timeout_s=900.0).handle(
        [received([beat(start, "ci"), beat(start + 600, "ci")], 0)]
    )
    HeartbeatProjector(store, timeout_s=300.0).handle([received([beat(start + 700, "ci")], 1)])
    assert_rows_are_the_reference(store, 300.0)


def stored_fold(store: InMemoryProjectionStore, key: DayKey) -> DayFold | None:
    return store.day_folds([key]).get(key)


def test_a_fold_is_forgotten_before_the_archive_changes() -> None:
    """A pass that stops after writing the archive leaves no fold that would miss the late
    heartbeat: the next in-order heartbeat then folds the day again."""

    class Failing(InMemoryProjectionStore):
        fail = False

        def upsert_daily(self, rows: Sequence[DailyRow]) -> None:
            if self.fail:
                raise RuntimeError("crash after the archive write")
            super().upsert_daily(rows)

    store = Failing()
    projector = HeartbeatProjector(store)
    start = ANCHORS[-1] - 3600
    key = ("u1", local_date(start, "UTC"))
    projector.handle([received([beat(start, "ci"), beat(start + 600, "ci")], 0)])
    assert stored_fold(store, key) is not None
    store.fail = True
    with pytest.raises(RuntimeError):
        projector.handle([received([beat(start + 300, "ci")], 1)])  # late
    assert stored_fold(store, key) is None
    store.fail = False
    projector.handle([received([beat(start + 900, "ci")], 2)])  # never redelivered: lost
    assert_rows_are_the_reference(store, 900.0)
