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

import random
import socket
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from projections.clickhouse import ClickHouseProjectionStore
from projections.ports import ProjectionStoreError, ProjectionStoreUnavailable
from tests.support import clickhouse_fixtures
from tests.support.store_inspect import snapshot
from tests.support.store_rows import daily_row, epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = clickhouse_fixtures.chdb_url
standin_url = clickhouse_fixtures.standin_url
store_url = clickhouse_fixtures.store_url


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
        clickhouse_fixtures.drop_database(store_url, created._database)


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
            "m0009_ai_projects_sessions",
            "m0010_ai_messages",
            "m0011_ai_activities_tool_calls",
            "m0012_ai_usage",
            "m0013_day_folds",
        ]
        assert first.migrate() == []
        assert first.table_names() == [
            "account_events",
            "ai_activities",
            "ai_messages",
            "ai_projects",
            "ai_sessions",
            "ai_tool_calls",
            "ai_usage",
            "daily_stats",
            "day_folds",
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


# --- operations (ClickHouse's own) -------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("url", "database"),
    [("mysql://localhost", "codetrackr"), ("chdb:///tmp/x", "bad-name"), ("chdb:///tmp/x", "a;b")],
)
def test_store_rejects_bad_url_or_database(url: str, database: str) -> None:
    with pytest.raises(ValueError, match=r"scheme|identifier"):
        ClickHouseProjectionStore(url, database)
