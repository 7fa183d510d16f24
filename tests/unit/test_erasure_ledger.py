"""The pure rules of the erasure ledger (``projections.erasures``): what an erasure recorded
earlier removes from an event read again, by the event's position in the log."""

from __future__ import annotations

from datetime import UTC, date, datetime

from projections.erasures import ErasureRecord, LogPosition, erasure_record, unerased
from schemas.events import HEARTBEATS_TOPIC, HeartbeatsDeleted, HeartbeatsReceived, UserDataErased
from schemas.heartbeat import Heartbeat

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp()


def at(offset: int, partition: int = 0) -> LogPosition:
    return LogPosition(HEARTBEATS_TOPIC, partition, offset)


def beat(event_id: str, time: float) -> Heartbeat:
    return Heartbeat(
        event_id=event_id,
        user_id="u1",
        time=time,
        entity="/a.py",
        timezone="UTC",
        received_at=time,
        source="wakatime",
    )


def received(*times: float, user: str = "u1") -> HeartbeatsReceived:
    return HeartbeatsReceived(
        event_id="r",
        user_id=user,
        occurred_at=T0,
        heartbeats=tuple(beat(f"b{i}", t) for i, t in enumerate(times)),
    )


def erasure(start: float | None, end: float | None, offset: int | None = 10) -> ErasureRecord:
    event = UserDataErased(event_id="x", user_id="u1", occurred_at=T0, start=start, end=end)
    return erasure_record(event, None if offset is None else at(offset))


def test_range_erasure_removes_its_range_from_records_before_it_only() -> None:
    ledger = {"u1": [erasure(T0 + 60, T0 + 120)]}
    event = received(T0, T0 + 60, T0 + 119, T0 + 120)

    before = unerased(event, at(9), ledger)
    after = unerased(event, at(11), ledger)

    assert isinstance(before, HeartbeatsReceived)
    assert [hb.event_id for hb in before.heartbeats] == ["b0", "b3"]
    assert after == event
    # Only the range: a record before it entirely outside the range is left as it is.
    assert unerased(received(T0), at(9), ledger) == received(T0)


def test_range_erasure_drops_a_record_left_empty() -> None:
    ledger = {"u1": [erasure(T0, T0 + 60)]}

    assert unerased(received(T0, T0 + 30), at(3), ledger) is None


def test_range_erasure_keeps_what_it_cannot_order() -> None:
    event = received(T0)
    # Unknown positions, another partition, another topic: kept, as if sent after it.
    assert unerased(event, None, {"u1": [erasure(T0, T0 + 60)]}) == event
    assert unerased(event, at(1), {"u1": [erasure(T0, T0 + 60, offset=None)]}) == event
    assert unerased(event, at(1, partition=2), {"u1": [erasure(T0, T0 + 60)]}) == event
    other_topic = LogPosition("codetrackr.accounts", 0, 1)
    assert unerased(event, other_topic, {"u1": [erasure(T0, T0 + 60)]}) == event


def test_open_ended_ranges() -> None:
    event = received(T0 - 1, T0, T0 + 1)

    up_to = unerased(event, at(1), {"u1": [erasure(None, T0)]})
    from_ = unerased(event, at(1), {"u1": [erasure(T0, None)]})

    assert isinstance(up_to, HeartbeatsReceived)
    assert [hb.event_id for hb in up_to.heartbeats] == ["b1", "b2"]
    assert isinstance(from_, HeartbeatsReceived)
    assert [hb.event_id for hb in from_.heartbeats] == ["b0"]


def test_deleted_account_drops_every_event_wherever_it_is() -> None:
    ledger = {"u1": [erasure(None, None)]}
    deletion = HeartbeatsDeleted(
        event_id="d", user_id="u1", occurred_at=T0, date=date(2026, 3, 2), ids=("b0",)
    )

    for position in (at(1), at(11), at(11, partition=1), None):
        assert unerased(received(T0), position, ledger) is None
        assert unerased(deletion, position, ledger) is None


def test_other_users_and_tombstones_are_untouched() -> None:
    ledger = {"u1": [erasure(T0, T0 + 60)]}
    deletion = HeartbeatsDeleted(
        event_id="d", user_id="u1", occurred_at=T0, date=date(2026, 3, 2), ids=("b0",)
    )

    assert unerased(received(T0, user="u2"), at(1), ledger) == received(T0, user="u2")
    assert unerased(deletion, at(1), ledger) == deletion


def test_positions_order_within_one_partition() -> None:
    assert at(1).before(at(2))
    assert not at(2).before(at(2))
    assert not at(3).before(at(2))
    assert not at(1, partition=1).before(at(2))
