"""The pure and edge parts of deleting heartbeats: the appended events and the emptied day."""

from __future__ import annotations

from datetime import date

import pydantic
import pytest

from eventlog.port import LogUnavailable, Record
from http_edge.errors import ApiError
from ingest.appender import MAX_DELETED_IDS_PER_RECORD, HeartbeatAppender
from processors.decoding import heartbeat_event
from processors.projectors.heartbeats import day_rows, deleted_days
from projections.daily import EMPTY_DAY_TIMEZONE
from projections.durations import DIMENSIONS
from schemas.events import (
    HEARTBEATS_TOPIC,
    AccountCreated,
    HeartbeatsDeleted,
    decode_event,
    encode_event,
)

DAY = date(2024, 3, 30)


class RecordingLog:
    """The one EventLog method the appender calls."""

    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.appended: list[list[Record]] = []

    async def append(self, records: list[Record]) -> None:
        if self.down:
            raise LogUnavailable("broker gone")
        self.appended.append(records)


async def test_append_deletion_keys_records_by_user_on_the_heartbeats_topic() -> None:
    log = RecordingLog()
    ids = [f"id{i}" for i in range(MAX_DELETED_IDS_PER_RECORD + 2)]

    await HeartbeatAppender(log).append_deletion("u1", DAY, ids)  # type: ignore[arg-type]

    (records,) = log.appended  # one append call: all or nothing on the embedded log
    assert [(r.topic, r.key) for r in records] == [(HEARTBEATS_TOPIC, b"u1")] * 2
    events = [decode_event(r.value) for r in records]
    assert all(isinstance(e, HeartbeatsDeleted) for e in events)
    assert [i for e in events for i in e.ids] == ids  # type: ignore[union-attr]
    assert {(e.user_id, e.date) for e in events} == {("u1", DAY)}  # type: ignore[union-attr]


async def test_append_deletion_of_nothing_appends_nothing() -> None:
    log = RecordingLog(down=True)
    await HeartbeatAppender(log).append_deletion("u1", DAY, [])  # type: ignore[arg-type]
    assert log.appended == []


async def test_append_deletion_when_the_log_is_down_is_a_503() -> None:
    appender = HeartbeatAppender(RecordingLog(down=True))  # type: ignore[arg-type]
    with pytest.raises(ApiError) as raised:
        await appender.append_deletion("u1", DAY, ["a"])
    assert raised.value.status == 503
    assert raised.value.headers == {"Retry-After": "5"}


def test_day_left_without_heartbeats_gets_a_row_of_zeros() -> None:
    (row,) = day_rows({("u1", DAY): []})
    assert (row.user_id, row.date, row.timezone) == ("u1", DAY, EMPTY_DAY_TIMEZONE)
    assert (row.total_seconds, row.heartbeat_count, row.first_time, row.last_time) == (0, 0, 0, 0)
    assert all(not row.breakdown.get(dim) for dim in DIMENSIONS)


def test_deleted_days_are_the_events_user_and_date() -> None:
    events = [
        HeartbeatsDeleted(event_id=f"e{i}", user_id=u, occurred_at=1.0, date=DAY, ids=("a",))
        for i, u in enumerate(["u1", "u2", "u1"])
    ]
    assert deleted_days(events) == {("u1", DAY), ("u2", DAY)}


def test_heartbeats_deleted_round_trips_and_old_heartbeats_still_decode() -> None:
    event = HeartbeatsDeleted(event_id="d", user_id="u1", occurred_at=1.5, date=DAY, ids=("a",))
    raw = encode_event(event)
    assert b'"date":"2024-03-30"' in raw
    assert decode_event(raw) == event
    # A heartbeat recorded before `plugin` existed decodes, without one.
    old = (
        b'{"type":"HeartbeatsReceived","version":1,"event_id":"b","user_id":"u1",'
        b'"occurred_at":1.0,"heartbeats":[{"event_id":"e","user_id":"u1","time":1.7e9,'
        b'"entity":"a.py","received_at":1.7e9,"source":"wakatime"}]}'
    )
    (heartbeat,) = decode_event(old).heartbeats  # type: ignore[union-attr]
    assert heartbeat.plugin is None


def test_every_runner_takes_deletions_from_the_heartbeats_topic() -> None:
    deletion = HeartbeatsDeleted(event_id="d", user_id="u1", occurred_at=1.0, date=DAY, ids=("a",))
    account = AccountCreated(
        event_id="a", user_id="u1", occurred_at=1.0, username="n", account_number_hash="h"
    )
    assert heartbeat_event(encode_event(deletion)) == deletion
    assert heartbeat_event(encode_event(account)) is None
    with pytest.raises(pydantic.ValidationError):
        heartbeat_event(b"not json")
