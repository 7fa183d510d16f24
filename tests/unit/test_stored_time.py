"""A heartbeat's time is kept to the millisecond from the moment it is built, so the local date it
is filed under is the date of the time the archive gives back (the ClickHouse round trip itself
is in ``tests/integration/test_local_days.py``)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from ingest.normalize import RequestMeta, wakatime_item
from processors.projectors.heartbeats import touched_days
from schemas.events import HeartbeatsReceived, decode_event, encode_event
from schemas.heartbeat import Heartbeat, at_stored_precision, stored_millis

# Midnight in Berlin between 2026-12-02 and 2026-12-03 (CET, UTC+1).
MIDNIGHT = datetime(2026, 12, 2, 23, 0, tzinfo=UTC).timestamp()
META = RequestMeta(user_id="u1", received_at=MIDNIGHT + 10.0004, timezone="Europe/Berlin")


def test_ingest_keeps_the_time_the_archive_stores() -> None:
    hb = wakatime_item({"entity": "/a.py", "time": MIDNIGHT - 0.0004}, 0, META)

    assert isinstance(hb, Heartbeat)
    assert hb.time == MIDNIGHT
    assert hb.received_at == MIDNIGHT + 10
    assert touched_days([hb]) == {("u1", date(2026, 12, 3))}


def test_a_record_appended_with_a_finer_time_reads_back_rounded() -> None:
    hb = wakatime_item({"entity": "/a.py", "time": MIDNIGHT - 1}, 0, META)
    assert isinstance(hb, Heartbeat)
    event = HeartbeatsReceived(event_id="e", user_id="u1", occurred_at=MIDNIGHT, heartbeats=(hb,))
    raw = json.loads(encode_event(event))
    raw["heartbeats"][0]["time"] = MIDNIGHT - 0.0004  # what the log held before the rule

    decoded = decode_event(json.dumps(raw).encode())

    assert isinstance(decoded, HeartbeatsReceived)
    assert decoded.heartbeats[0].time == MIDNIGHT
    assert touched_days(decoded.heartbeats) == {("u1", date(2026, 12, 3))}


def test_stored_precision_is_a_fixed_point() -> None:
    for time in (MIDNIGHT - 0.0004, MIDNIGHT + 0.0005, 1_700_000_000.123456, 946_684_800.0):
        once = at_stored_precision(time)
        assert at_stored_precision(once) == once
        assert stored_millis(once) == stored_millis(time)
        assert once == stored_millis(time) / 1000
