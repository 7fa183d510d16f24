"""The analysts' views on the real engine: created by ``migrate`` (again on every run), and
reading the projections the honest way: copies collapsed, deleted heartbeats left out, emptied
days gone, breakdowns as rows that add up to the day."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from processors.handlers import HeartbeatProjector
from projections.clickhouse import ClickHouseProjectionStore
from projections.clickhouse.analytics import VIEWS, analytics_database
from schemas.events import HeartbeatsReceived
from tests.integration import test_clickhouse_store as store_tests
from tests.support.store_rows import DAY, NEXT_DAY, deleted, epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url
store_url = store_tests.store_url
store = store_tests.store


def rows(store: ClickHouseProjectionStore, sql: str) -> list[tuple[Any, ...]]:
    adb = f"`{analytics_database(store._database)}`"
    return [tuple(r) for r in store._query(sql.replace("{adb}", adb))]


def test_every_view_exists_and_survives_a_second_migrate(store: ClickHouseProjectionStore) -> None:
    store.migrate()  # nothing pending: the views are re-created all the same
    adb = analytics_database(store._database)
    found = {
        r[0]
        for r in store._query(
            "SELECT name FROM system.tables WHERE database = {adb:String}", {"adb": adb}
        )
    }
    assert found == {name for name, _, _ in VIEWS}
    for name, _, _ in VIEWS:
        assert rows(store, f"SELECT count() FROM {{adb}}.{name}") == [(0,)]


def test_views_read_the_projections_honestly(store: ClickHouseProjectionStore) -> None:
    beats = [
        make_heartbeat(f"k{i}", epoch(10, 2 * i), project="alpha", language="Python")
        for i in range(4)
    ] + [make_heartbeat("n0", epoch(9, day=NEXT_DAY), project="beta", language="Go")]
    batch = HeartbeatsReceived(
        event_id="r", user_id="u1", occurred_at=epoch(12), heartbeats=tuple(beats)
    )
    projector = HeartbeatProjector(store)
    projector.handle([batch])
    projector.handle([batch])  # redelivered: copies in the archive until merged
    projector.handle([deleted(["k3"])])
    projector.handle([deleted(["n0"], day=NEXT_DAY)])  # NEXT_DAY is emptied

    assert rows(store, "SELECT event_id FROM {adb}.heartbeats ORDER BY event_id") == [
        ("k0",),
        ("k1",),
        ("k2",),
    ]
    (day,) = store.daily_rows("u1", DAY, DAY)
    assert rows(store, "SELECT user_id, date, total_seconds FROM {adb}.daily") == [
        ("u1", DAY, day.total_seconds)
    ]
    breakdown = rows(
        store,
        "SELECT dimension, value, seconds FROM {adb}.daily_breakdown"
        " WHERE dimension IN ('project', 'language') ORDER BY dimension",
    )
    assert breakdown == [
        ("language", "Python", day.total_seconds),
        ("project", "alpha", day.total_seconds),
    ]
    # Every dimension's rows add up to the day's total.
    sums = rows(
        store, "SELECT dimension, sum(seconds) FROM {adb}.daily_breakdown GROUP BY dimension"
    )
    assert {dimension for dimension, _ in sums} >= {"project", "language", "editor", "entity"}
    assert all(abs(total - day.total_seconds) < 1e-6 for _, total in sums)


def test_the_documented_queries_run(store: ClickHouseProjectionStore) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "analytics.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", doc, flags=re.DOTALL)
    queries = [q.strip() for block in blocks for q in block.split(";") if q.strip()]
    assert len(queries) >= 3
    adb = f"`{analytics_database(store._database)}`"
    for query in queries:
        sql = "\n".join(line for line in query.splitlines() if not line.startswith("--"))
        store._query(sql.replace("codetrackr_analytics", adb))  # raises if it does not run
