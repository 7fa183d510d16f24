"""Language names projected against the real engine (chdb in-process and the chdb HTTP stand-in,
the fixtures of :mod:`tests.integration.test_clickhouse_store`).

Records appended to the log before names were canonical hold the client's spelling in
``language`` and no ``language_raw``. Projecting them (live, or on ``codetrackr replay``) must
count ``Python``, ``python`` and ``PYTHON`` as one language in the daily and weekly rows and on
the language board, and keep each spelling in the archive.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventlog.port import Delivered
from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.leaderboard import week_of
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountCreated,
    HeartbeatsReceived,
    ProfileUpdated,
    encode_event,
)
from tests.integration import test_clickhouse_store as store_tests
from tests.support.store_inspect import snapshot
from tests.support.store_rows import DAY, epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url
store_url = store_tests.store_url
store = store_tests.store

SPELLINGS: list[str | None] = ["Python", "python", "PYTHON", None, "Unknown", "golang"]


def record(offset: int, topic: str, value: bytes) -> Delivered:
    return Delivered(topic, 0, offset, b"u1", value, 0)


def old_heartbeats_record() -> Delivered:
    """A ``HeartbeatsReceived`` as written before ``language_raw`` existed: one heartbeat a
    minute, each with another spelling, then a last one that closes the final minute."""
    beats = [
        make_heartbeat(f"e{i}", epoch(10, i), language=name)
        for i, name in enumerate([*SPELLINGS, "Python"])
    ]
    event = HeartbeatsReceived(
        event_id="old", user_id="u1", occurred_at=epoch(12), heartbeats=tuple(beats)
    )
    document: dict[str, Any] = json.loads(encode_event(event))
    for beat in document["heartbeats"]:
        beat.pop("language_raw", None)
    return record(0, HEARTBEATS_TOPIC, json.dumps(document).encode())


def member_records() -> list[Delivered]:
    created = AccountCreated(event_id="c", user_id="u1", occurred_at=epoch(1), username="ada")
    shown = ProfileUpdated(
        event_id="p",
        user_id="u1",
        occurred_at=epoch(2),
        is_public=True,
        show_in_leaderboard=True,
        profile_show_languages=True,
    )
    return [
        record(0, ACCOUNTS_TOPIC, encode_event(created)),
        record(1, ACCOUNTS_TOPIC, encode_event(shown)),
    ]


def test_records_from_before_canonical_names_are_merged_when_projected(
    store: ClickHouseProjectionStore,
) -> None:
    projector = HeartbeatProjector(store)
    result = projector.handle_records([*member_records(), old_heartbeats_record()])
    assert result.skipped_records == 0

    [day] = store.daily_rows("u1", DAY, DAY)
    # Three minutes of Python (three spellings), two without a language, one of Go.
    assert day.breakdown["language"] == {"Python": 180.0, "": 120.0, "Go": 60.0}

    [week] = store.weekly_rows_of("u1")
    assert week.breakdown["language"] == {"Python": 180.0, "": 120.0, "Go": 60.0}
    monday = week_of(DAY)
    total, entries = store.leaderboard(monday, language="Python")
    assert (total, [(e.username, e.seconds) for e in entries]) == (1, [("ada", 180.0)])

    archived = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]
    assert [(hb.language, hb.language_raw) for hb in archived] == [
        ("Python", "Python"),
        ("Python", "python"),
        ("Python", "PYTHON"),
        (None, None),
        (None, "Unknown"),
        ("Go", "golang"),
        ("Python", "Python"),
    ]

    # Redelivered, the same records change nothing.
    archive = snapshot(store, "heartbeats")
    projector.handle_records([old_heartbeats_record()])
    assert snapshot(store, "heartbeats") == archive
    assert store.weekly_rows_of("u1") == [week]
