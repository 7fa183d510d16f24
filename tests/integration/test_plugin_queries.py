"""A plugin's ``ctx.db.query`` against the real engine: the caller's rows, and never anyone else's.

Two users' heartbeats (one of alice's deleted) and daily rows in our real schema, on chdb
in-process and through the chdb HTTP stand-in (the fixtures of
:mod:`tests.integration.test_clickhouse_store`). Every query runs as alice; bob's rows carry
markers (his id, his project names) that must never come back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from plugins_runtime.relations import RELATIONS
from plugins_runtime.sql_executor import ClickHousePluginQueries, PluginQueryFailed, QueryLimits
from plugins_runtime.sql_scope import PluginSqlRefused
from projections.clickhouse import ClickHouseProjectionStore
from projections.daily import compute_day
from schemas.events import HeartbeatsDeleted
from tests.integration import test_clickhouse_store as store_tests
from tests.support.store_inspect import count_heartbeats
from tests.support.store_rows import DAY, epoch, make_heartbeat

pytestmark = pytest.mark.clickhouse

chdb_url = store_tests.chdb_url
standin_url = store_tests.standin_url

ALICE, BOB = "alice", "bob"
AT = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
HOST_ROWS: dict[str, list[dict[str, Any]]] = {
    "users": [
        # created_at as the accounts state holds it: epoch seconds
        {
            "id": ALICE,
            "username": "al",
            "timezone": "UTC",
            "is_public": True,
            "created_at": AT.timestamp(),
        },
        {"id": BOB, "username": "bob-secret-name", "timezone": "UTC", "created_at": AT},
    ],
    "api_keys": [
        {
            "id": "k-alice",
            "user_id": ALICE,
            "name": "laptop",
            "key_hash": "HASH-A",
            "created_at": AT,
        },
        {
            "id": "k-bob",
            "user_id": BOB,
            "name": "bob-secret-key",
            "key_hash": "HASH-B",
            "created_at": AT,
        },
    ],
    "user_follows": [
        {"follower_id": ALICE, "following_id": "carol"},
        {"follower_id": "carol", "following_id": ALICE},
        {"follower_id": BOB, "following_id": "carol"},
    ],
    # The store: carol's published entry and her review are public; alice's own entry is not
    # published yet. Bob's install and settings are passed by mistake and must never show.
    "plugin_store": [
        {
            "id": "s-carol",
            "name": "pomodoro",
            "display_name": "Pomodoro",
            "description": "25 minutes at a time",
            "author_id": "carol",
            "version": "1.2.0",
            "icon": "tomato",
            "widget_type": "timer",
            "repository": "https://example.org/pomodoro",
            "is_published": True,
            "is_banned": False,
            "install_count": 12,
            "rating": 4.5,
            "review_count": 2,
            "created_at": AT,
            "updated_at": AT.timestamp(),
            "script": "const endpoints = {};",
        },
        {
            "id": "s-alice",
            "name": "my-plugin",
            "author_id": ALICE,
            "version": "0.1.0",
            "is_published": False,
            "install_count": 1,
            "rating": None,
            "review_count": 0,
            "created_at": AT,
            "updated_at": AT,
        },
    ],
    "installed_plugins": [
        {
            "id": "i-a1",
            "user_id": ALICE,
            "plugin_id": "s-carol",
            "plugin": "pomodoro",
            "installed_at": AT,
            "suspended": False,
        },
        {
            "id": "i-a2",
            "user_id": ALICE,
            "plugin_id": "s-alice",
            "plugin": "my-plugin",
            "installed_at": AT.timestamp(),
            "suspended": True,
            "suspended_reason": "too many errors",
        },
        {
            "id": "i-bob",
            "user_id": BOB,
            "plugin_id": "s-carol",
            "plugin": "bob-secret-install",
            "installed_at": AT,
        },
    ],
    "plugin_settings": [
        {
            "user_id": ALICE,
            "plugin": "my-plugin",
            "settings": {"notify": True, "threshold": 3600},
            "updated_at": AT,
        },
        {"user_id": ALICE, "plugin": "pomodoro", "settings": '{"minutes": 25}', "updated_at": AT},
        {"user_id": BOB, "plugin": "my-plugin", "settings": {"bob-secret": 1}, "updated_at": AT},
    ],
    "plugin_reviews": [
        {
            "id": "r-carol",
            "plugin_id": "s-carol",
            "plugin": "pomodoro",
            "user_id": "carol",
            "rating": 5,
            "comment": "great",
            "created_at": AT,
            "updated_at": AT,
        },
        {
            "id": "r-alice",
            "plugin_id": "s-carol",
            "plugin": "pomodoro",
            "user_id": ALICE,
            "rating": 4,
            "comment": "nice",
            "created_at": AT,
            "updated_at": AT.timestamp(),
        },
    ],
}
BOB_MARKERS = ("bob", "HASH")


@dataclass
class World:
    store: ClickHouseProjectionStore
    queries: ClickHousePluginQueries
    url: str

    def run(self, sql: str, params: list[object] | None = None) -> list[dict[str, Any]]:
        return self.queries.query(ALICE, sql, params or [], host_rows=HOST_ROWS)


@pytest.fixture(scope="module", params=["chdb", "http-standin"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    url: str = request.getfixturevalue("chdb_url" if request.param == "chdb" else "standin_url")
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ClickHouseProjectionStore(url, database=database)
    store.migrate()
    beats = [
        make_heartbeat("a1", epoch(10), user_id=ALICE, project="core", duration=60.0),
        make_heartbeat("a2", epoch(10, 5), user_id=ALICE, project="web", duration=30.0),
        make_heartbeat("a3", epoch(10, 10), user_id=ALICE, project="core", duration=15.0),
        make_heartbeat("a-gone", epoch(10, 12), user_id=ALICE, project="deleted-proj"),
        make_heartbeat("bob1", epoch(10), user_id=BOB, project="bob-secret-proj", duration=999.0),
        make_heartbeat("bob2", epoch(11), user_id=BOB, project="bob-other", duration=5.0),
    ]
    store.insert_heartbeats(beats)
    store.delete_heartbeats(
        [
            HeartbeatsDeleted(
                event_id="del", user_id=ALICE, occurred_at=epoch(20), date=DAY, ids=("a-gone",)
            )
        ]
    )
    live = [beat for beat in beats if beat.event_id != "a-gone"]
    store.upsert_daily([compute_day(user, DAY, live) for user in (ALICE, BOB)])
    queries = ClickHousePluginQueries(url, database=database)
    yield World(store, queries, url)
    queries.close()
    store.close()


def assert_nothing_of_bob(rows: list[dict[str, Any]]) -> None:
    text = json.dumps(rows)
    for marker in BOB_MARKERS:
        assert marker not in text, rows


# ---- the seed's own examples ----------------------------------------------------------------


def test_seed_heartbeat_example_counts_the_callers_project(world: World) -> None:
    rows = world.run(
        "SELECT COUNT(*) as n, SUM(duration_seconds) as total_secs FROM heartbeats"
        " WHERE user_id = $1 AND project = $2",
        [ALICE, "core"],
    )
    assert rows == [{"n": 2, "total_secs": 75.0}]


def test_seed_rpc_example_leaves_out_deleted_heartbeats(world: World) -> None:
    rows = world.run(
        "SELECT COUNT(*) as sessions, SUM(duration_seconds) as total_secs"
        " FROM heartbeats WHERE user_id = $1",
        [ALICE],
    )
    assert rows == [{"sessions": 3, "total_secs": 105.0}]


def test_seed_settings_example_reads_the_callers_settings(world: World) -> None:
    rows = world.run(
        "SELECT settings FROM plugin_settings WHERE user_id = $1 AND plugin = $2",
        [ALICE, "my-plugin"],
    )
    assert [json.loads(row["settings"]) for row in rows] == [{"notify": True, "threshold": 3600}]
    rows = world.run(
        "SELECT (settings->>'threshold')::int AS threshold, settings->>'notify' AS notify"
        " FROM plugin_settings WHERE plugin = $1",
        ["my-plugin"],
    )
    assert rows == [{"threshold": 3600, "notify": "true"}]


# ---- Postgres idioms a plugin author writes: translated and run, not refused -------------------

IDIOMS: list[tuple[str, list[object], list[dict[str, Any]]]] = [
    (
        "SELECT count(*) AS n FROM heartbeats WHERE project = ANY(ARRAY['core', 'x'])",
        [],
        [{"n": 2}],
    ),
    (
        "SELECT project, sum(duration_seconds) AS s FROM heartbeats"
        " GROUP BY project ORDER BY s DESC",
        [],
        [{"project": "core", "s": 75.0}, {"project": "web", "s": 30.0}],
    ),
    (
        "SELECT date(time) AS d, sum(duration_seconds)::int AS s FROM heartbeats GROUP BY d",
        [],
        [{"d": "2024-03-30", "s": 105}],
    ),
    ("SELECT count(*) FILTER (WHERE project = 'web') AS web FROM heartbeats", [], [{"web": 1}]),
    ("SELECT DISTINCT EXTRACT(hour FROM time) AS h FROM heartbeats", [], [{"h": 10}]),
    (
        "SELECT id, row_number() OVER (ORDER BY time) AS r FROM heartbeats ORDER BY r",
        [],
        [{"id": "a1", "r": 1}, {"id": "a2", "r": 2}, {"id": "a3", "r": 3}],
    ),
    (
        "SELECT date_trunc('day', time) AS d, count(*) AS n FROM heartbeats GROUP BY 1",
        [],
        [{"d": "2024-03-30T00:00:00Z", "n": 3}],
    ),
    (
        "SELECT count(*) AS n FROM heartbeats WHERE time >= $1::timestamptz",
        ["2024-03-30 10:05:00"],
        [{"n": 2}],
    ),
    (
        "SELECT DISTINCT ON (project) project, id FROM heartbeats ORDER BY project, time DESC",
        [],
        [{"project": "core", "id": "a3"}, {"project": "web", "id": "a2"}],
    ),
]


@pytest.mark.parametrize(("sql", "params", "expected"), IDIOMS)
def test_postgres_idioms_run_on_clickhouse(
    world: World, sql: str, params: list[object], expected: list[dict[str, Any]]
) -> None:
    assert world.run(sql, params) == expected


# ---- tricks that would read another user's rows: contained ------------------------------------

CONTAINED: list[tuple[str, list[object], list[dict[str, Any]]]] = [
    # no user filter at all
    ("SELECT DISTINCT user_id FROM heartbeats", [], [{"user_id": ALICE}]),
    ("SELECT count(*) AS n FROM heartbeats", [], [{"n": 3}]),
    # a tampered filter naming the other user
    ("SELECT id FROM heartbeats WHERE user_id = $2", [ALICE, BOB], []),
    ("SELECT id FROM heartbeats WHERE user_id = 'bob'", [], []),
    ("SELECT id FROM heartbeats WHERE user_id <> $1", [ALICE], []),
    # UNION, subquery, JOIN, CTE
    (
        "SELECT id FROM heartbeats WHERE user_id = $1"
        " UNION ALL SELECT id FROM heartbeats WHERE user_id = $2 ORDER BY id",
        [ALICE, BOB],
        [{"id": "a1"}, {"id": "a2"}, {"id": "a3"}],
    ),
    (
        "SELECT count(*) AS n FROM heartbeats WHERE id IN"
        " (SELECT id FROM heartbeats WHERE user_id = $1)",
        [BOB],
        [{"n": 0}],
    ),
    ("SELECT b.id FROM heartbeats a JOIN heartbeats b ON a.user_id <> b.user_id", [], []),
    (
        "SELECT h.id FROM users u JOIN heartbeats h ON h.user_id = u.id WHERE u.id = $1",
        [BOB],
        [],
    ),
    (
        "WITH theirs AS (SELECT * FROM heartbeats WHERE user_id = 'bob')"
        " SELECT count(*) AS n FROM theirs",
        [],
        [{"n": 0}],
    ),
    (
        "SELECT * FROM (SELECT * FROM (SELECT user_id FROM heartbeats) x WHERE user_id = $1) y",
        [BOB],
        [],
    ),
    # outer aliases named like the columns our scoped SELECTs filter on change nothing
    (
        "SELECT $1 AS user_id, id FROM heartbeats ORDER BY id",
        [ALICE],
        [{"user_id": ALICE, "id": beat} for beat in ("a1", "a2", "a3")],
    ),
    (
        "SELECT id AS hid, 'a-gone' AS event_id, $1 AS user_id FROM heartbeats ORDER BY hid",
        [ALICE],
        [
            {"hid": "a1", "event_id": "a-gone", "user_id": ALICE},
            {"hid": "a2", "event_id": "a-gone", "user_id": ALICE},
            {"hid": "a3", "event_id": "a-gone", "user_id": ALICE},
        ],
    ),
    # a value that would break out of a pasted-in string
    ("SELECT count(*) AS n FROM heartbeats WHERE project = $1", ["x' OR '1'='1"], [{"n": 0}]),
    # the other tables
    ("SELECT name FROM projects ORDER BY name", [], [{"name": "core"}, {"name": "web"}]),
    (
        "SELECT user_id, total_seconds > 0 AS active FROM daily_stats_cache",
        [],
        [{"user_id": ALICE, "active": True}],
    ),
    (
        "SELECT id, username, created_at FROM users",
        [],
        [{"id": ALICE, "username": "al", "created_at": "2024-01-02T03:04:05Z"}],
    ),
    ("SELECT id, username FROM users WHERE id = $1", [BOB], []),
    ("SELECT id, name FROM api_keys", [], [{"id": "k-alice", "name": "laptop"}]),
    (
        "SELECT follower_id, following_id FROM user_follows ORDER BY follower_id",
        [],
        [
            {"follower_id": ALICE, "following_id": "carol"},
            {"follower_id": "carol", "following_id": ALICE},
        ],
    ),
]


# ---- the store: public entries and reviews, the caller's own installs and settings -------------

STORE: list[tuple[str, list[object], list[dict[str, Any]]]] = [
    (
        "SELECT p.name FROM installed_plugins i JOIN plugin_store p ON p.id = i.plugin_id"
        " ORDER BY p.name",
        [],
        [{"name": "my-plugin"}, {"name": "pomodoro"}],
    ),
    (
        "SELECT plugin, installed_at, suspended, suspended_reason FROM installed_plugins"
        " ORDER BY plugin",
        [],
        [
            {
                "plugin": "my-plugin",
                "installed_at": "2024-01-02T03:04:05Z",
                "suspended": True,
                "suspended_reason": "too many errors",
            },
            {
                "plugin": "pomodoro",
                "installed_at": "2024-01-02T03:04:05Z",
                "suspended": False,
                "suspended_reason": None,
            },
        ],
    ),
    # another user's entry, published, is visible with its average rating; the caller's own
    # unpublished entry too
    (
        "SELECT name, author_id, is_published, is_banned, install_count, rating, review_count"
        " FROM plugin_store ORDER BY name",
        [],
        [
            {
                "name": "my-plugin",
                "author_id": ALICE,
                "is_published": False,
                "is_banned": False,
                "install_count": 1,
                "rating": None,
                "review_count": 0,
            },
            {
                "name": "pomodoro",
                "author_id": "carol",
                "is_published": True,
                "is_banned": False,
                "install_count": 12,
                "rating": 4.5,
                "review_count": 2,
            },
        ],
    ),
    (
        "SELECT icon, widget_type, repository, updated_at FROM plugin_store WHERE id = $1",
        ["s-carol"],
        [
            {
                "icon": "tomato",
                "widget_type": "timer",
                "repository": "https://example.org/pomodoro",
                "updated_at": "2024-01-02T03:04:05Z",
            }
        ],
    ),
    # every review of a public entry, the other user's too
    (
        "SELECT r.user_id, r.rating, r.comment FROM plugin_reviews r"
        " JOIN plugin_store p ON p.id = r.plugin_id WHERE p.name = $1 ORDER BY r.rating DESC",
        ["pomodoro"],
        [
            {"user_id": "carol", "rating": 5, "comment": "great"},
            {"user_id": ALICE, "rating": 4, "comment": "nice"},
        ],
    ),
    (
        "SELECT plugin, avg(rating) AS average, count(*) AS n FROM plugin_reviews GROUP BY plugin",
        [],
        [{"plugin": "pomodoro", "average": 4.5, "n": 2}],
    ),
    # another user's installs and settings never, even when the host passes them
    ("SELECT id FROM installed_plugins WHERE user_id = $1", [BOB], []),
    ("SELECT count(*) AS n FROM installed_plugins WHERE plugin_id = $1", ["s-carol"], [{"n": 1}]),
    ("SELECT plugin, settings FROM plugin_settings WHERE user_id = $1", [BOB], []),
    (
        "SELECT plugin, settings->>'minutes' AS minutes FROM plugin_settings ORDER BY plugin",
        [],
        # ClickHouse's JSON functions read a missing key as "", not NULL as Postgres would
        [{"plugin": "my-plugin", "minutes": ""}, {"plugin": "pomodoro", "minutes": "25"}],
    ),
    (
        "SELECT i.plugin, s.settings FROM installed_plugins i"
        " LEFT JOIN plugin_settings s ON s.plugin = i.plugin AND s.user_id = i.user_id"
        " WHERE i.user_id <> $1",
        [ALICE],
        [],
    ),
]


@pytest.mark.parametrize(("sql", "params", "expected"), STORE)
def test_store_tables_read_public_entries_and_only_the_callers_installs(
    world: World, sql: str, params: list[object], expected: list[dict[str, Any]]
) -> None:
    rows = world.run(sql, params)
    assert rows == expected
    assert_nothing_of_bob(rows)


@pytest.mark.parametrize(("sql", "params", "expected"), CONTAINED)
def test_tricks_read_only_the_callers_rows(
    world: World, sql: str, params: list[object], expected: list[dict[str, Any]]
) -> None:
    rows = world.run(sql, params)
    assert rows == expected
    assert_nothing_of_bob(rows)


def test_whole_rows_are_json_safe_and_carry_no_secret(world: World) -> None:
    tables = ("heartbeats", "projects", "daily_stats_cache", "users", "api_keys")
    store = ("plugin_store", "installed_plugins", "plugin_settings", "plugin_reviews")
    for table in tables + store:
        rows = world.run(f"SELECT * FROM {table}")
        assert rows, table
        assert_nothing_of_bob(json.loads(json.dumps(rows)))
    (key,) = world.run("SELECT * FROM api_keys")
    assert set(key) == {"id", "user_id", "name", "read_only", "created_at", "last_used_at"}
    entry = world.run("SELECT * FROM plugin_store WHERE id = 's-carol'")[0]
    assert "script" not in entry
    assert "server_script" not in entry
    assert set(entry) == set(RELATIONS["plugin_store"].column_names)
    (day,) = world.run("SELECT date, projects FROM daily_stats_cache")
    assert day["date"] == DAY.isoformat()
    assert set(day["projects"]) == {"core", "web"}


# ---- refused before anything runs -------------------------------------------------------------

REFUSED = [
    ("SELECT * FROM system.users", "system_table"),
    ("SELECT name FROM system.tables", "system_table"),
    ("SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a String')", "table_function"),
    ("SELECT * FROM remote('127.0.0.1', system.users)", "table_function"),
    ("DROP TABLE heartbeats", "statement_not_allowed"),
    ("ALTER TABLE heartbeats DELETE WHERE 1", "statement_not_allowed"),
    ("SELECT 1; DROP TABLE heartbeats", "multiple_statements"),
    ("DELETE FROM heartbeats WHERE user_id = $1", "write_not_allowed"),
    ("SELECT key_hash FROM api_keys", "secret_column"),
    ("SELECT * FROM weekly_stats", "unknown_table"),
    ("WITH heartbeats AS (SELECT 'bob' AS user_id) SELECT * FROM heartbeats", "cte_shadows_table"),
    ("SELECT dictGet('d', 'a', 1)", "function_not_allowed"),
    # the engine would take this CTE for our tombstones and bring deleted heartbeats back
    (
        "WITH \"{db}.heartbeat_deletions\" AS (SELECT '' AS user_id, toDate(0) AS local_date,"
        " '' AS event_id) SELECT id FROM heartbeats",
        "bad_identifier",
    ),
    # the engine would read these as membership in the archive table itself
    (
        "SELECT count(*) AS n FROM heartbeats WHERE $1 IN (codetrackr.heartbeats)",
        "clause_not_allowed",
    ),
    (
        "SELECT count(*) AS n FROM heartbeats WHERE $1 NOT IN heartbeat_deletions",
        "clause_not_allowed",
    ),
]


@pytest.mark.parametrize(("sql", "code"), REFUSED)
def test_hostile_queries_are_refused_and_change_nothing(world: World, sql: str, code: str) -> None:
    with pytest.raises(PluginSqlRefused) as refused:
        world.run(sql.replace("{db}", world.store._database), [BOB])
    assert refused.value.code == code
    assert count_heartbeats(world.store, BOB) == 2
    assert count_heartbeats(world.store, ALICE) == 3


# ---- limits -------------------------------------------------------------------------------------


def test_more_rows_than_the_cap_is_an_error_not_a_truncated_answer(world: World) -> None:
    capped = ClickHousePluginQueries(
        world.url, database=world.store._database, limits=QueryLimits(max_rows=2)
    )
    try:
        assert len(capped.query(ALICE, "SELECT id FROM heartbeats LIMIT 2")) == 2
        with pytest.raises(PluginQueryFailed) as failed:
            capped.query(ALICE, "SELECT id FROM heartbeats")
        assert failed.value.code == "too_many_rows"
    finally:
        capped.close()


def test_a_query_over_the_time_cap_fails(world: World) -> None:
    slow = ClickHousePluginQueries(
        world.url, database=world.store._database, limits=QueryLimits(max_seconds=0.2)
    )
    # 3**17 rows to count: 27 times the 3**14 measured at 1.2 s uncapped, far over the 0.2 s cap
    cross = ", ".join(f"heartbeats h{i}" for i in range(17))
    try:
        with pytest.raises(PluginQueryFailed) as failed:
            slow.query(ALICE, f"SELECT count(*) FROM {cross}")
        assert failed.value.code == "timeout"
    finally:
        slow.close()


def test_the_engine_itself_refuses_writes_under_the_plugin_settings(world: World) -> None:
    client = clickhouse_connect.get_client(dsn=world.url)
    try:
        with pytest.raises(DatabaseError) as refused:
            client.command(
                f"INSERT INTO `{world.store._database}`.heartbeat_deletions"
                " (user_id, local_date, event_id, deleted_at) VALUES ('bob', today(), 'bob1', 0)",
                settings=QueryLimits().settings(),
            )
        assert "READONLY" in str(refused.value)
    finally:
        client.close()
    assert count_heartbeats(world.store, BOB) == 2


def test_engine_errors_reach_the_plugin_without_our_sql(world: World) -> None:
    with pytest.raises(PluginQueryFailed) as failed:
        world.run("SELECT no_such_column FROM heartbeats")
    assert failed.value.code == "query_failed"
    assert "no_such_column" in failed.value.message
    assert world.store._database not in failed.value.message
