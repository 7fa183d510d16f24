"""``erase_from_log`` on the real embedded log: what an erasure leaves of the records, and that
nothing more of a deleted account can be appended (the ingest answers 401, not a 500 or 503)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from eventlog.embedded import SqliteEventLog
from eventlog.port import Record, RecordRefused
from http_edge.errors import ApiError
from ingest.appender import HeartbeatAppender
from processors.erasure import erase_from_log
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountCreated,
    AccountDeleted,
    HeartbeatsReceived,
    UserDataErased,
    decode_event,
    encode_event,
)
from schemas.heartbeat import Heartbeat

T0 = 1_772_000_000.0


def beat(user: str, event_id: str, at: float) -> Heartbeat:
    return Heartbeat(
        event_id=event_id,
        user_id=user,
        time=at,
        entity="/a.py",
        timezone="UTC",
        received_at=at,
        source="wakatime",
    )


def received(user: str, *times: float) -> Record:
    event = HeartbeatsReceived(
        event_id=f"r-{user}-{times[0]}",
        user_id=user,
        occurred_at=T0,
        heartbeats=tuple(beat(user, f"{user}-{t}", t) for t in times),
    )
    return Record(HEARTBEATS_TOPIC, user.encode(), encode_event(event))


def account(user: str) -> Record:
    event = AccountCreated(event_id=f"c-{user}", user_id=user, occurred_at=T0, username=user)
    return Record(ACCOUNTS_TOPIC, user.encode(), encode_event(event))


async def heartbeat_times(log: SqliteEventLog, user: str) -> list[float]:
    times: list[float] = []

    def collect(records: object) -> dict[tuple[int, int], bytes | None]:
        assert isinstance(records, list)
        for record in records:
            event = decode_event(record.value)
            if isinstance(event, HeartbeatsReceived):
                times.extend(hb.time for hb in event.heartbeats)
        return {}

    await log.rewrite(HEARTBEATS_TOPIC, collect, key=user.encode())
    return sorted(times)


async def test_range_and_full_erasure_of_the_embedded_log(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.sqlite", default_partitions=2)
    await log.start()
    try:
        await log.append([account("u1"), account("u2")])
        await log.append([received("u1", T0, T0 + 60, T0 + 120), received("u2", T0, T0 + 60)])
        cut = UserDataErased(
            event_id="x1", user_id="u1", occurred_at=T0, start=T0 + 30, end=T0 + 90
        )
        await log.append([Record(HEARTBEATS_TOPIC, b"u1", encode_event(cut))])
        await log.append([received("u1", T0 + 45)])  # after the erasure: stays

        assert await erase_from_log(log, cut) == 1
        assert await heartbeat_times(log, "u1") == [T0, T0 + 45, T0 + 120]
        assert await heartbeat_times(log, "u2") == [T0, T0 + 60]

        gone = AccountDeleted(event_id="d1", user_id="u1", occurred_at=T0)
        await log.append([Record(ACCOUNTS_TOPIC, b"u1", encode_event(gone))])
        full = UserDataErased(event_id="d1", user_id="u1", occurred_at=T0)
        await erase_from_log(log, full)

        assert await heartbeat_times(log, "u1") == []
        assert await heartbeat_times(log, "u2") == [T0, T0 + 60]
        with pytest.raises(RecordRefused):
            await log.append([account("u1")])
        with pytest.raises(ApiError) as refused:
            await HeartbeatAppender(log).append("u1", [beat("u1", "late", time.time())])
        assert refused.value.status == 401
        await HeartbeatAppender(log).append("u2", [beat("u2", "more", time.time())])
        assert len(await heartbeat_times(log, "u2")) == 3
    finally:
        await log.close()
    raw = (tmp_path / "log.sqlite").read_bytes()
    assert b'"u1"' not in raw
    assert b'"u2"' in raw
