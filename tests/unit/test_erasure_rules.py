"""The pure rules of erasure: which records of the embedded log a ``UserDataErased`` rewrites,
and which local days it may touch."""

from __future__ import annotations

from datetime import UTC, date, datetime

from eventlog.port import Delivered
from processors.erasure import heartbeats_erasure
from processors.projectors.erasure import erasure_window
from schemas.events import (
    HeartbeatsDeleted,
    HeartbeatsReceived,
    UserDataErased,
    decode_event,
    encode_event,
)
from schemas.heartbeat import Heartbeat

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp()


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


def record(offset: int, event: object) -> Delivered:
    assert isinstance(event, HeartbeatsReceived | HeartbeatsDeleted | UserDataErased)
    return Delivered("codetrackr.heartbeats", 0, offset, b"u1", encode_event(event), 0)


def received(event_id: str, *times: float) -> HeartbeatsReceived:
    return HeartbeatsReceived(
        event_id=event_id,
        user_id="u1",
        occurred_at=T0,
        heartbeats=tuple(beat(f"{event_id}-{i}", t) for i, t in enumerate(times)),
    )


def erasure(start: float | None, end: float | None, event_id: str = "x") -> UserDataErased:
    return UserDataErased(event_id=event_id, user_id="u1", occurred_at=T0, start=start, end=end)


def test_a_range_erasure_rewrites_only_the_records_before_it() -> None:
    cut = erasure(T0 + 60, T0 + 180)
    records = [
        record(0, received("a", T0, T0 + 60, T0 + 120)),  # loses two of three
        record(1, received("b", T0 + 90)),  # loses its only heartbeat: deleted
        record(2, received("c", T0 + 300)),  # outside the range: untouched
        record(
            3,
            HeartbeatsDeleted(
                event_id="d", user_id="u1", occurred_at=T0, date=date(2026, 3, 2), ids=("c-0",)
            ),
        ),
        record(4, cut),
        record(5, received("late", T0 + 100)),  # after the erasure: new activity, kept
    ]

    plan = heartbeats_erasure(records, cut)

    assert set(plan) == {(0, 0), (0, 1)}
    assert plan[(0, 1)] is None
    rewritten = plan[(0, 0)]
    assert rewritten is not None
    event = decode_event(rewritten)
    assert isinstance(event, HeartbeatsReceived)
    assert [hb.time for hb in event.heartbeats] == [T0]
    assert event.event_id == "a"


def test_a_full_erasure_deletes_every_record_of_the_user() -> None:
    full = erasure(None, None)
    records = [record(0, received("a", T0)), record(1, full), record(2, received("b", T0))]

    assert heartbeats_erasure(records, full) == {(0, 0): None, (0, 1): None, (0, 2): None}


def test_erasure_window_covers_every_timezone_and_clamps_to_clickhouse_dates() -> None:
    start = datetime(2026, 3, 2, 0, 30, tzinfo=UTC).timestamp()
    end = datetime(2026, 3, 4, 23, 30, tzinfo=UTC).timestamp()

    assert erasure_window(erasure(start, end)) == (date(2026, 3, 1), date(2026, 3, 5))
    assert erasure_window(erasure(None, None)) == (date(1970, 1, 1), date(2149, 6, 1))
    assert erasure_window(erasure(-1e300, 1e300)) == (date(1970, 1, 1), date(2149, 6, 1))


def test_a_rewritten_record_from_before_canonical_languages_keeps_the_spelling_sent() -> None:
    # A record appended before `language_raw` existed: the client's name in `language`, no raw.
    old = received("old", T0, T0 + 60).model_copy(
        update={
            "heartbeats": tuple(
                Heartbeat(**hb.model_dump(exclude={"language_raw"}) | {"language": "python"})
                for hb in received("old", T0, T0 + 60).heartbeats
            )
        }
    )
    value = encode_event(old).replace(b'"language_raw":null,', b"")
    assert b"language_raw" not in value
    cut = erasure(T0 + 30, T0 + 90)

    plan = heartbeats_erasure([Delivered("codetrackr.heartbeats", 0, 0, b"u1", value, 0)], cut)

    rewritten = plan[(0, 0)]
    assert rewritten is not None
    event = decode_event(rewritten)
    assert isinstance(event, HeartbeatsReceived)
    # Re-encoded without the raw name it would read as "sent no language" from now on.
    assert [(hb.language, hb.language_raw) for hb in event.heartbeats] == [("Python", "python")]
