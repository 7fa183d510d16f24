"""Streaming one user's data out of the real engine, for the exports (``api/routes_export.py``):
chdb in-process and the chdb HTTP stand-in (the fixtures of
:mod:`tests.integration.test_clickhouse_store`).

The heartbeat stream must hold exactly the user's heartbeats that were not deleted, each once,
in ``(time, event_id)`` order across the windows it reads in, and its memory must not grow with
the size of the archive.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any

import clickhouse_connect
import pytest

from projections.clickhouse import ClickHouseProjectionStore
from projections.leaderboard import WEEKLY_DIMENSIONS, Member, WeeklyRow
from schemas.events import HeartbeatsDeleted
from schemas.heartbeat import Heartbeat
from tests.integration import test_clickhouse_store as store_tests
from tests.support.store_inspect import count_heartbeats
from tests.support.store_rows import DAY, epoch, full_heartbeat, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url
store_url = store_tests.store_url
store = store_tests.store


def deletion(user: str, day: date, *ids: str) -> HeartbeatsDeleted:
    return HeartbeatsDeleted(
        event_id=f"del-{uuid.uuid4().hex}", user_id=user, occurred_at=epoch(23), date=day, ids=ids
    )


def as_stored(hb: Heartbeat, local_date: date) -> dict[str, Any]:
    """What the stream yields for ``hb``: its fields but two, and its local date."""
    record = hb.model_dump(exclude={"schema_version", "user_id"})
    record["dependencies"] = list(hb.dependencies)
    record["local_date"] = local_date
    return record


def streamed(blocks: Iterator[list[Any]], block_rows: int) -> list[Any]:
    found: list[Any] = []
    for block in blocks:
        assert 0 < len(block) <= block_rows
        found.extend(block)
    return found


def test_stream_heartbeats_is_the_users_live_heartbeats_in_time_order(
    store: ClickHouseProjectionStore,
) -> None:
    days = [DAY + timedelta(days=n) for n in (0, 1, 2, 5, 6, 30)]
    beats = [
        make_heartbeat(f"d{n}-{i}", epoch(10 + i, day=day) + n * 0.001, entity=f"/src/{n}.py")
        for n, day in enumerate(days)
        for i in range(3)
    ]
    # Late in the evening in Los Angeles is the next UTC day: its window is the UTC day's.
    evening = make_heartbeat("la", epoch(3, 30, day=days[1]), timezone="America/Los_Angeles")
    same_time = [make_heartbeat(f"tie-{c}", epoch(12, day=days[3])) for c in "ba"]
    full = full_heartbeat()
    others = [
        make_heartbeat(f"o{i}", epoch(11, day=day), user_id="u2") for i, day in enumerate(days)
    ]
    store.insert_heartbeats([*beats, evening, *same_time, full, *others])
    store.insert_heartbeats(beats[:4])  # redelivered: still once each
    store.delete_heartbeats(
        [
            deletion("u1", days[0], "d0-1"),
            deletion("u1", days[5], "d5-0", "d5-1", "d5-2"),  # a whole window's worth
            deletion("u1", days[2], "o2"),  # another user's id: changes nothing
        ]
    )
    expected = sorted(
        [
            hb
            for hb in [*beats, evening, *same_time, full]
            if hb.event_id not in {"d0-1", "d5-0", "d5-1", "d5-2"}
        ],
        key=lambda hb: (hb.time, hb.event_id),
    )

    # Windows of about 4 rows: several of them, and days of 3 rows never share one.
    found = streamed(store.stream_heartbeats("u1", block_rows=2, window_rows=4), 2)

    assert [r["event_id"] for r in found] == [hb.event_id for hb in expected]
    assert found[1] == as_stored(full, DAY)  # every field; 10:15 UTC is DAY in Berlin too
    la = next(r for r in found if r["event_id"] == "la")
    assert la["local_date"] == days[0]  # 03:30 UTC on days[1] is days[0] in Los Angeles
    assert [r["event_id"] for r in found if r["event_id"].startswith("tie")] == ["tie-a", "tie-b"]
    # One window for everything gives the same records.
    assert streamed(store.stream_heartbeats("u1", window_rows=10**9), 2000) == found
    assert count_heartbeats(store, "u1") == len(found)


def test_stream_heartbeats_of_a_user_without_any_is_empty(store: ClickHouseProjectionStore) -> None:
    store.insert_heartbeats([make_heartbeat("x", epoch(9), user_id="someone")])

    assert list(store.stream_heartbeats("u1")) == []


def test_stream_deletions_lists_the_users_tombstones(store: ClickHouseProjectionStore) -> None:
    store.delete_heartbeats(
        [
            deletion("u1", DAY + timedelta(days=1), "b", "a"),
            deletion("u1", DAY, "z"),
            deletion("u2", DAY, "other"),
        ]
    )

    found = streamed(store.stream_deletions("u1", block_rows=2), 2)

    assert found == [
        (DAY, "z", epoch(23)),
        (DAY + timedelta(days=1), "a", epoch(23)),
        (DAY + timedelta(days=1), "b", epoch(23)),
    ]


def test_weekly_rows_and_leaderboard_member_of_one_user(store: ClickHouseProjectionStore) -> None:
    def weekly(user: str, week: date, seconds: float) -> WeeklyRow:
        breakdown = {dim: {"x": seconds} for dim in WEEKLY_DIMENSIONS}
        return WeeklyRow(user_id=user, week=week, total_seconds=seconds, breakdown=breakdown)

    monday = date(2024, 3, 25)
    rows = [weekly("u1", monday + timedelta(weeks=1), 7.0), weekly("u1", monday, 5.0)]
    store.upsert_weekly([*rows, weekly("u2", monday, 9.0)])
    store.upsert_weekly([weekly("u1", monday, 6.0)])  # a recompute replaces the week
    member = Member("u1", "ada", True, "DE", False, 7)
    store.upsert_members([member, Member("u2", "bob", False, "", True, 8, languages_public=True)])

    assert store.weekly_rows_of("u1") == [weekly("u1", monday, 6.0), rows[0]]
    assert store.weekly_rows_of("nobody") == []
    assert store.leaderboard_member("u1") == member
    assert store.leaderboard_member("u2") == Member("u2", "bob", False, "", True, 8, True)
    assert store.leaderboard_member("nobody") is None


def test_stream_has_its_own_client_and_may_move_between_threads(
    store: ClickHouseProjectionStore,
) -> None:
    store.insert_heartbeats([make_heartbeat(f"e{i:03d}", epoch(9) + i) for i in range(50)])
    stream = store.stream_heartbeats("u1", block_rows=10)
    pulled = [next(stream)]
    # The thread that opened the stream keeps querying with its own client meanwhile...
    assert count_heartbeats(store, "u1") == 50
    # ...and the blocks may be pulled from any thread, one at a time (a response's thread pool).
    with ThreadPoolExecutor(max_workers=3) as pool:
        while (block := pool.submit(next, stream, None).result()) is not None:
            pulled.append(block)
    assert [r["event_id"] for block in pulled for r in block] == [f"e{i:03d}" for i in range(50)]
    # Stopped early and closed: its client is released, so the store still works.
    early = store.stream_heartbeats("u1", block_rows=10)
    next(early)
    closer = threading.Thread(target=early.close)
    closer.start()
    closer.join(timeout=10)
    assert not closer.is_alive()
    assert count_heartbeats(store, "u1") == 50


# --- memory: an export of any size holds one block -------------------------------------------

BIG_ROWS = 200_000


def insert_many(url: str, database: str, user: str, rows: int) -> None:
    """``rows`` heartbeats of ``user``, one every 90 s (about 200 days), written by the engine:
    building them in Python would take longer than the export under test."""
    client = clickhouse_connect.get_client(dsn=url)
    try:
        client.command(
            f"INSERT INTO `{database}`.heartbeats (schema_version, event_id, user_id, time, entity,"
            " type, category, project, language, dependencies, is_write, duration, timezone,"
            " received_at, source, editor, os, local_date)"
            " SELECT 1, lower(hex(MD5(toString(number)))), {user:String},"
            " fromUnixTimestamp64Milli(toInt64(1704067200000 + number * 90000), 'UTC') AS t,"
            # A comma, quotes, a line break and non-ASCII: what CSV must quote.
            " concat('/src/pkg, \"', toString(number % 977), '\"/módulo\\n',"
            " toString(number), '.py'),"
            " 'file', 'coding', concat('project-', toString(number % 7)), 'Python', ['fastapi'],"
            " number % 3 = 0, 30, 'UTC', t + INTERVAL 1 SECOND, 'wakatime', 'vim', 'Linux',"
            " toDate(t) FROM numbers({rows:UInt64})",
            parameters={"user": user, "rows": rows},
        )
    finally:
        client.close()


@pytest.mark.slow
def test_stream_of_200k_heartbeats_holds_one_block_at_a_time(chdb_url: str) -> None:
    """The store's side of an export (the formatters in ``api.rules.export`` turn each block into
    one chunk before asking for the next: ``tests/unit/test_export_formats.py``)."""
    started = time.monotonic()
    big = store_tests.new_store(chdb_url)
    big.migrate()
    try:
        insert_many(chdb_url, big._database, "big", BIG_ROWS)
        assert count_heartbeats(big, "big") == BIG_ROWS
        tracemalloc.start()
        try:
            # What holding every record would take: measured on the first 20,000, scaled up.
            stream = big.stream_heartbeats("big")
            held: list[dict[str, Any]] = []
            while len(held) < 20_000:
                held.extend(next(stream))
            stream.close()
            materialized = tracemalloc.get_traced_memory()[0] / len(held) * BIG_ROWS
            del held

            tracemalloc.reset_peak()
            baseline = tracemalloc.get_traced_memory()[0]
            rows, last = 0, (0.0, "")
            for block in big.stream_heartbeats("big"):  # default block and window sizes
                rows += len(block)
                assert last <= (block[0]["time"], block[0]["event_id"])
                last = (block[-1]["time"], block[-1]["event_id"])
            peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
    finally:
        big.close()
    print(
        f"\n{BIG_ROWS} heartbeats streamed: peak {peak / 1e6:.1f} MB traced; holding them would"
        f" take {materialized / 1e6:.0f} MB; {time.monotonic() - started:.1f} s"
    )
    assert rows == BIG_ROWS
    assert peak < 32e6
    assert peak < materialized / 10
