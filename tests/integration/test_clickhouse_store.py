"""The ClickHouse projection store against the real engine, three ways: chdb in-process
(``chdb``), the chdb HTTP stand-in over clickhouse-connect's HTTP client (``http-standin``, see
:mod:`tests.support.chdb_http`), and a server when ``CODETRACKR_TEST_CLICKHOUSE_URL`` names one
(``http://user:password@host:8123``).

chdb hosts one data path per process, so every in-process test shares ONE session-wide path and
gets its own database (``t_<hex>``). Each test closes its store, which releases the engine, so
other test modules may open a different path afterwards. The stand-in is a child process holding
its own data directory, so it never collides with the in-process path.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import clickhouse_connect
import pytest

from projections.clickhouse import ClickHouseProjectionStore
from projections.daily import DailyRow, compute_day
from projections.durations import DIMENSIONS
from projections.ports import ProjectionStoreError, ProjectionStoreUnavailable
from schemas.heartbeat import Heartbeat
from tests.support.chdb_http import ChdbHttpProcess
from tests.support.store_inspect import count_heartbeats, snapshot

pytestmark = pytest.mark.clickhouse

SERVER_URL_ENV = "CODETRACKR_TEST_CLICKHOUSE_URL"
DAY = date(2024, 3, 30)


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture(scope="session")
def standin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chdb HTTP stand-in (a child process with its own data directory) for the session."""
    standin = ChdbHttpProcess(tmp_path_factory.mktemp("chdb-http-standin")).start()
    yield standin.url
    standin.stop()


@pytest.fixture(params=["chdb", "http-standin", "server"])
def store_url(request: pytest.FixtureRequest, chdb_url: str) -> str:
    if request.param == "chdb":
        return chdb_url
    if request.param == "http-standin":
        url: str = request.getfixturevalue("standin_url")
        return url
    url = os.environ.get(SERVER_URL_ENV)
    if not url:
        pytest.skip(f"{SERVER_URL_ENV} is not set: no ClickHouse server to test against")
    return url


def new_store(url: str) -> ClickHouseProjectionStore:
    return ClickHouseProjectionStore(url, database=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def store(store_url: str) -> Iterator[ClickHouseProjectionStore]:
    created = new_store(store_url)
    created.migrate()
    yield created
    created.close()
    if not store_url.startswith("chdb:"):
        # A shared server keeps test databases forever unless dropped; chdb's live in tmp.
        admin = clickhouse_connect.get_client(dsn=store_url)
        admin.command(f"DROP DATABASE IF EXISTS `{created._database}`")
        admin.close()


def epoch(hour: int, minute: int = 0, *, day: date = DAY) -> float:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp()


def make_heartbeat(event_id: str, time: float, **fields: Any) -> Heartbeat:
    values: dict[str, Any] = {
        "event_id": event_id,
        "user_id": "u1",
        "time": time,
        "entity": "/src/main.py",
        "project": "codetrackr",
        "language": "Python",
        "timezone": "UTC",
        "received_at": time + 1,
        "source": "wakatime",
    }
    values.update(fields)
    return Heartbeat(**values)


def full_heartbeat() -> Heartbeat:
    """Every field set to a non-default value (times at millisecond precision)."""
    return Heartbeat(
        event_id="full",
        user_id="u1",
        time=epoch(10, 15) + 0.123,
        entity="/src/api/routes.py",
        type="file",
        category="debugging",
        project="codetrackr",
        project_root_count=3,
        branch="feature/x",
        language="Python",
        language_raw="python",
        dependencies=("fastapi", "pydantic"),
        lines=420,
        line_additions=12,
        line_deletions=-3,
        lineno=77,
        cursorpos=12,
        is_write=True,
        duration=30.5,
        commit="abc123",
        workspace_root="/src",
        package_path="api",
        editor="neovim",
        os="Linux",
        machine="laptop",
        plugin="neovim-wakatime",
        ai_line_changes=5,
        human_line_changes=7,
        timezone="Europe/Berlin",
        received_at=epoch(10, 16) + 0.456,
        source="codetrackr",
        user_agent="codetrackr-cli/1.0",
    )


def daily_row(
    day: date = DAY, *, total: float = 100.0, projects: dict[str, float] | None = None
) -> DailyRow:
    breakdown: dict[str, dict[str, float]] = {dim: {} for dim in DIMENSIONS}
    breakdown["project"] = projects if projects is not None else {"codetrackr": total}
    breakdown["language"] = {"Python": total}
    return DailyRow(
        user_id="u1",
        date=day,
        timezone="Europe/Berlin",
        total_seconds=total,
        heartbeat_count=3,
        first_time=epoch(9, day=day),
        last_time=epoch(17, day=day) + 0.5,
        breakdown=breakdown,
    )


# --- migrations --------------------------------------------------------------------------------


def test_migrate_is_idempotent(store_url: str) -> None:
    first = new_store(store_url)
    try:
        assert first.migrate() == [
            "m0001_heartbeats",
            "m0002_daily_stats",
            "m0003_heartbeat_deletions",
            "m0004_heartbeat_plugin",
            "m0005_leaderboards",
            "m0006_erasures",
            "m0007_language_raw",
            "m0008_member_languages",
        ]
        assert first.migrate() == []
        assert first.table_names() == [
            "account_events",
            "daily_stats",
            "heartbeat_deletions",
            "heartbeats",
            "leaderboard_members",
            "weekly_stats",
        ]
        second = ClickHouseProjectionStore(store_url, database=first._database)
        try:
            assert second.migrate() == []  # the record outlives the instance
        finally:
            second.close()
    finally:
        first.close()


# --- the raw archive ---------------------------------------------------------------------------


def test_insert_heartbeats_round_trips_every_field(store: ClickHouseProjectionStore) -> None:
    original = full_heartbeat()
    store.insert_heartbeats([original])

    found = store.heartbeats_for_days([("u1", DAY)])

    assert found == {("u1", DAY): [original]}


def test_insert_heartbeats_duplicates_collapse_to_one_row(store: ClickHouseProjectionStore) -> None:
    beats = [make_heartbeat(f"e{i}", epoch(10, i)) for i in range(5)]
    store.insert_heartbeats(beats + beats[:2])  # duplicates within a batch
    store.insert_heartbeats(beats)  # and redelivery of the whole batch

    assert count_heartbeats(store, "u1") == 5
    assert len(snapshot(store, "heartbeats")) == 5


def test_insert_heartbeats_copy_received_last_wins(store: ClickHouseProjectionStore) -> None:
    early = make_heartbeat("same", epoch(10), duration=10.0, received_at=epoch(11))
    late = make_heartbeat("same", epoch(10), duration=20.0, received_at=epoch(12))
    store.insert_heartbeats([late])
    store.insert_heartbeats([early])

    assert store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)] == [late]


def test_insert_heartbeats_out_of_range_counter_is_stored_as_null(
    store: ClickHouseProjectionStore,
) -> None:
    store.insert_heartbeats([make_heartbeat("big", epoch(10), lines=2**70, lineno=5)])

    (stored,) = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]

    assert (stored.lines, stored.lineno) == (None, 5)


def test_heartbeats_for_days_returns_deduplicated_heartbeats_per_key(
    store: ClickHouseProjectionStore,
) -> None:
    # 20:00 UTC on Mar 30 is Mar 31 in Kolkata (UTC+5:30): the heartbeat's own zone decides.
    kolkata = make_heartbeat("k", epoch(20), timezone="Asia/Kolkata")
    a1 = make_heartbeat("a1", epoch(9))
    a2 = make_heartbeat("a2", epoch(8))
    other_user = make_heartbeat("b1", epoch(9), user_id="o'brien ✓")
    store.insert_heartbeats([a1, a2, kolkata, other_user])
    store.insert_heartbeats([a1, kolkata])

    found = store.heartbeats_for_days(
        [("u1", DAY), ("u1", date(2024, 3, 31)), ("o'brien ✓", DAY), ("u3", DAY), ("u1", DAY)]
    )

    assert found == {
        ("u1", DAY): [a2, a1],  # ordered by time
        ("u1", date(2024, 3, 31)): [kolkata],
        ("o'brien ✓", DAY): [other_user],
        ("u3", DAY): [],
    }


def test_heartbeats_for_days_without_keys_is_empty(store: ClickHouseProjectionStore) -> None:
    assert store.heartbeats_for_days([]) == {}


def test_last_heartbeat_by_project_uses_half_open_range(store: ClickHouseProjectionStore) -> None:
    store.insert_heartbeats(
        [
            make_heartbeat("a", epoch(9), project="api"),
            make_heartbeat("b", epoch(11), project="api"),
            make_heartbeat("c", epoch(10), project=None),
            make_heartbeat("d", epoch(12), project="web"),  # exactly at the end: excluded
            make_heartbeat("e", epoch(11), project="other", user_id="u2"),
        ]
    )

    latest = store.last_heartbeat_by_project("u1", epoch(9), epoch(12))

    assert latest == {"api": epoch(11), "": epoch(10)}


# --- daily stats -------------------------------------------------------------------------------


def test_upsert_daily_newer_row_wins_and_vanished_values_are_gone(
    store: ClickHouseProjectionStore,
) -> None:
    store.upsert_daily([daily_row(total=300.0, projects={"a": 100.0, "b": 200.0})])
    replacement = daily_row(total=50.0, projects={"a": 50.0})
    store.upsert_daily([replacement])

    assert store.daily_rows("u1", DAY, DAY) == [replacement]
    assert len(snapshot(store, "daily_stats")) == 1


def test_upsert_daily_last_row_for_a_day_in_one_batch_wins(
    store: ClickHouseProjectionStore,
) -> None:
    final = daily_row(total=2.0)
    store.upsert_daily([daily_row(total=1.0), final])

    assert store.daily_rows("u1", DAY, DAY) == [final]


def test_daily_rows_range_is_inclusive_and_ordered(store: ClickHouseProjectionStore) -> None:
    days = [date(2024, 3, d) for d in (28, 29, 30, 31)]
    rows = [daily_row(day) for day in days]
    store.upsert_daily(list(reversed(rows)))

    assert store.daily_rows("u1", days[1], days[2]) == rows[1:3]
    assert store.daily_rows("u2", days[0], days[3]) == []


def test_active_dates_skips_days_recomputed_to_zero(store: ClickHouseProjectionStore) -> None:
    store.upsert_daily([daily_row(date(2024, 3, 29)), daily_row(DAY), daily_row(date(2024, 3, 31))])
    store.upsert_daily([daily_row(DAY, total=0.0, projects={})])

    assert store.active_dates("u1") == [date(2024, 3, 29), date(2024, 3, 31)]


def test_store_feeds_compute_day_from_the_archive(store: ClickHouseProjectionStore) -> None:
    beats = [make_heartbeat(f"e{i}", epoch(10, 2 * i)) for i in range(5)]
    store.insert_heartbeats(beats + beats)
    day_beats = store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)]
    row = compute_day("u1", DAY, day_beats)
    store.upsert_daily([row])

    assert store.daily_rows("u1", DAY, DAY) == [row]
    assert row.total_seconds == 480
    assert row.heartbeat_count == 5


# --- operations --------------------------------------------------------------------------------


def test_snapshot_excludes_computed_at_and_is_order_stable(store_url: str) -> None:
    beats = [make_heartbeat(f"e{i}", epoch(10, i), project=f"p{i % 3}") for i in range(30)]
    rows = [daily_row(date(2024, 3, d)) for d in range(1, 20)]
    live, replay = new_store(store_url), new_store(store_url)
    try:
        live.migrate()
        replay.migrate()
        live.insert_heartbeats(beats)
        live.upsert_daily(rows)
        # The replay sees the same facts in another order, in other batches, with redeliveries.
        shuffled = random.Random(7).sample(beats, len(beats))
        for start in range(0, 30, 7):
            replay.insert_heartbeats(shuffled[start : start + 7] + shuffled[:2])
        for row in reversed(rows):
            replay.upsert_daily([row])

        for table in live.table_names():
            assert snapshot(live, table) == snapshot(replay, table)
        daily = snapshot(live, "daily_stats")
        assert len(daily) == 19
        assert len(daily[0]) == 15  # 16 columns without computed_at
        assert [r[1] for r in daily] == sorted(r[1] for r in daily)
    finally:
        live.close()
        replay.close()


def test_snapshot_of_unknown_table_raises(store: ClickHouseProjectionStore) -> None:
    with pytest.raises(ProjectionStoreError, match="unknown projection table"):
        snapshot(store, "schema_migrations")


def test_truncate_projections_empties_tables_and_keeps_migrations(
    store: ClickHouseProjectionStore,
) -> None:
    store.insert_heartbeats([make_heartbeat("e", epoch(10))])
    store.upsert_daily([daily_row()])

    store.truncate_projections()

    assert all(snapshot(store, table) == [] for table in store.table_names())
    assert store.migrate() == []
    store.insert_heartbeats([make_heartbeat("e", epoch(10))])
    assert count_heartbeats(store, "u1") == 1


def test_store_threads_each_use_their_own_client(store: ClickHouseProjectionStore) -> None:
    batches = [
        [make_heartbeat(f"t{thread}-{i}", epoch(10) + thread * 100 + i) for i in range(50)]
        for thread in range(4)
    ]

    def work(batch: list[Heartbeat]) -> int:
        store.insert_heartbeats(batch)
        return len(store.heartbeats_for_days([("u1", DAY)])[("u1", DAY)])

    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(work, batches))

    assert count_heartbeats(store, "u1") == 200
    assert all(count >= 50 for count in seen)  # each thread reads its own writes


# --- errors ------------------------------------------------------------------------------------


def test_store_unreachable_server_raises_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = ClickHouseProjectionStore(f"http://default:secret@127.0.0.1:{port}", "codetrackr")

    with pytest.raises(ProjectionStoreUnavailable):
        store.migrate()


def test_store_second_chdb_path_in_one_process_is_unavailable(
    chdb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    holder = new_store(chdb_url)
    other = ClickHouseProjectionStore(f"chdb://{tmp_path_factory.mktemp('other')}", "x")
    try:
        holder.migrate()  # holds the engine on the session path
        with pytest.raises(ProjectionStoreUnavailable):
            other.migrate()
    finally:
        other.close()
        holder.close()


def test_store_closed_store_refuses_calls(store_url: str) -> None:
    closed = new_store(store_url)
    closed.close()

    with pytest.raises(ProjectionStoreError, match="closed"):
        closed.migrate()


@pytest.mark.parametrize(
    ("url", "database"),
    [("mysql://localhost", "codetrackr"), ("chdb:///tmp/x", "bad-name"), ("chdb:///tmp/x", "a;b")],
)
def test_store_rejects_bad_url_or_database(url: str, database: str) -> None:
    with pytest.raises(ValueError, match=r"scheme|identifier"):
        ClickHouseProjectionStore(url, database)
