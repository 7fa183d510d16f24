"""Plugin SQL: what is refused (and with which code), and how what runs is confined to the caller.

Pure: no engine here. The same rules against the real engine are in
``tests/integration/test_plugin_queries.py``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlglot
from sqlglot import exp

from plugins_runtime import sql_scope
from plugins_runtime.relations import BACKING_TABLES, RELATIONS, Column, Relation
from plugins_runtime.sql_executor import _json_safe, _rows_json
from plugins_runtime.sql_scope import (
    MAX_SQL_CHARS,
    PluginSqlRefused,
    scope_query,
    spaced_parameters,
)

DB = "codetrackr"
UID = "{_uid: String}"

REFUSED: list[tuple[str, str]] = [
    # shape
    ("", "empty"),
    ("   ;  ", "empty"),
    ("SELEC 1", "syntax"),
    ("SELECT * FROM heartbeats SETTINGS max_threads = 1", "syntax"),
    ("SELECT * FROM heartbeats FORMAT JSON", "syntax"),
    ("SELECT * FROM heartbeats INTO OUTFILE '/tmp/x'", "syntax"),
    ("SELECT 1; SELECT 2", "multiple_statements"),
    ("SELECT 1; DROP TABLE heartbeats", "multiple_statements"),
    ("SELECT * FROM heartbeats; DELETE FROM heartbeats", "multiple_statements"),
    # writes (for now) and everything that is not a query
    ("INSERT INTO plugin_settings (user_id, plugin) VALUES ($1, $2)", "write_not_allowed"),
    ("UPDATE plugin_settings SET settings = settings || $1 WHERE plugin = $2", "write_not_allowed"),
    ("DELETE FROM users WHERE id = $1", "write_not_allowed"),
    ("WITH x AS (DELETE FROM heartbeats RETURNING *) SELECT * FROM x", "write_not_allowed"),
    ("SELECT * INTO stolen FROM heartbeats", "write_not_allowed"),
    ("COPY heartbeats TO '/tmp/x'", "write_not_allowed"),
    ("DROP TABLE heartbeats", "statement_not_allowed"),
    ("CREATE TABLE x (a int)", "statement_not_allowed"),
    ("ALTER TABLE heartbeats DELETE WHERE 1", "statement_not_allowed"),
    ("TRUNCATE heartbeats", "statement_not_allowed"),
    ("RENAME TABLE heartbeats TO h2", "statement_not_allowed"),
    ("ATTACH TABLE heartbeats", "syntax"),
    ("SET readonly = 0", "statement_not_allowed"),
    ("SHOW TABLES", "statement_not_allowed"),
    ("EXPLAIN SELECT 1", "statement_not_allowed"),
    ("GRANT ALL ON heartbeats TO bob", "statement_not_allowed"),
    # sources
    ("SELECT * FROM url('http://127.0.0.1:1/x', CSV, 'a String')", "table_function"),
    ("SELECT * FROM \"file\"('/etc/passwd', 'LineAsString')", "table_function"),
    # Postgres reads an unquoted file(...) in FROM as a table named file with column aliases
    ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "unknown_table"),
    ("SELECT * FROM remote('127.0.0.1', system.users)", "table_function"),
    ("SELECT * FROM s3('http://x/y', 'CSV')", "table_function"),
    ("SELECT * FROM numbers(10)", "table_function"),
    ("SELECT * FROM generate_series(1, 10)", "table_function"),
    ("SELECT * FROM system.users", "system_table"),
    ('SELECT * FROM "system"."tables"', "system_table"),
    ("SELECT * FROM information_schema.tables", "system_table"),
    ("SELECT * FROM pg_catalog.pg_user", "system_table"),
    ("SELECT * FROM heartbeats UNION ALL SELECT * FROM system.query_log", "system_table"),
    ("SELECT * FROM codetrackr.heartbeats", "qualified_table"),
    ("SELECT * FROM codetrackr.daily_stats", "qualified_table"),
    ("SELECT * FROM a.b.heartbeats", "qualified_table"),
    ("SELECT * FROM daily_stats", "unknown_table"),
    ("SELECT * FROM leaderboard_members", "unknown_table"),
    ("SELECT * FROM heartbeat_deletions", "unknown_table"),
    ("SELECT * FROM heartbeats WHERE id IN (SELECT event_id FROM account_events)", "unknown_table"),
    # a CTE name seen outside its scope would reach a real table of that name: refused
    (
        "SELECT * FROM (WITH weekly_stats AS (SELECT 1 AS a) SELECT * FROM weekly_stats) x"
        " CROSS JOIN weekly_stats",
        "unknown_table",
    ),
    ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "unknown_table"),
    # ClickHouse matches CTE names by exact case: mine would be a table of the current database
    ("WITH Mine AS (SELECT 1 AS x) SELECT * FROM mine", "unknown_table"),
    ("WITH heartbeats AS (SELECT 1 AS user_id) SELECT * FROM heartbeats", "cte_shadows_table"),
    ("WITH Users AS (SELECT 1) SELECT * FROM users", "cte_shadows_table"),
    ("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r", "recursive_cte"),
    # ClickHouse would resolve our own codetrackr.heartbeat_deletions to such a CTE
    (
        'WITH "codetrackr.heartbeat_deletions" AS (SELECT 1 AS x) SELECT * FROM heartbeats',
        "bad_identifier",
    ),
    ("WITH heartbeat_deletions AS (SELECT 1 AS x) SELECT * FROM heartbeats", "cte_shadows_table"),
    ("WITH codetrackr AS (SELECT 1 AS x) SELECT * FROM heartbeats", "cte_shadows_table"),
    ("WITH daily_stats AS (SELECT 1 AS x) SELECT * FROM daily_stats_cache", "cte_shadows_table"),
    ("SELECT * FROM heartbeats h, LATERAL (SELECT 1) x", "clause_not_allowed"),
    ("SELECT * FROM unnest(ARRAY[1, 2])", "table_function"),
    ("SELECT * FROM heartbeats TABLESAMPLE SYSTEM (10)", "clause_not_allowed"),
    # ClickHouse reads IN name / IN (name) as membership in the TABLE name
    (
        "SELECT count(*) FROM heartbeats WHERE user_id IN codetrackr.leaderboard_members",
        "clause_not_allowed",
    ),
    (
        "SELECT count(*) FROM heartbeats WHERE (user_id) IN (codetrackr.heartbeats)",
        "clause_not_allowed",
    ),
    ("SELECT count(*) FROM heartbeats WHERE user_id NOT IN weekly_stats", "clause_not_allowed"),
    ("SELECT codetrackr.heartbeats.user_id FROM heartbeats", "qualified_table"),
    # functions that reach outside the query
    ("SELECT dictGet('d', 'a', 1)", "function_not_allowed"),
    ("SELECT currentUser()", "function_not_allowed"),
    ("SELECT current_user", "function_not_allowed"),
    ("SELECT currentDatabase()", "function_not_allowed"),
    ("SELECT hostName()", "function_not_allowed"),
    ("SELECT getSetting('readonly')", "function_not_allowed"),
    ("SELECT version()", "function_not_allowed"),
    ("SELECT sleep(3)", "function_not_allowed"),
    ("SELECT hasColumnInTable('codetrackr', 'heartbeats', 'user_id')", "function_not_allowed"),
    ("SELECT count(*) FROM heartbeats WHERE project = getMacro('x')", "function_not_allowed"),
    ("SELECT joinGet('t', 'v', 1)", "function_not_allowed"),
    ("SELECT {a:String}", "function_not_allowed"),
    # secrets
    ("SELECT key_hash FROM api_keys", "secret_column"),
    ("SELECT k.key_hash FROM api_keys k", "secret_column"),
    ("SELECT id FROM api_keys WHERE hash = $1", "secret_column"),
    ("SELECT * FROM heartbeats WHERE id IN (SELECT token FROM api_keys)", "secret_column"),
    ("SELECT email FROM users", "secret_column"),
    # parameters
    ("SELECT * FROM heartbeats WHERE user_id = ?", "bad_parameter"),
    ("SELECT * FROM heartbeats WHERE user_id = :uid", "bad_parameter"),
    ("SELECT * FROM heartbeats WHERE user_id = $3", "missing_parameter"),
]


@pytest.mark.parametrize(("sql", "code"), REFUSED)
def test_scope_query_refuses_hostile_sql_with_its_code(sql: str, code: str) -> None:
    with pytest.raises(PluginSqlRefused) as refused:
        scope_query(sql, ["u1", "plugin"], database=DB)
    assert refused.value.code == code, refused.value.message
    assert refused.value.message


def test_scope_query_refuses_writes_saying_what_a_write_may_be() -> None:
    with pytest.raises(PluginSqlRefused) as refused:
        scope_query("UPDATE plugin_settings SET settings = $1", ["{}"])
    assert refused.value.code == "write_not_allowed"
    assert "plugin_settings" in refused.value.message
    assert "on its own" in refused.value.message


def test_scope_query_refuses_a_query_over_the_size_cap() -> None:
    sql = "SELECT 1" + " + 1" * (MAX_SQL_CHARS // 4)
    with pytest.raises(PluginSqlRefused) as refused:
        scope_query(sql)
    assert refused.value.code == "too_long"


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, b"x", 2**64])
def test_scope_query_refuses_parameters_it_cannot_type(value: object) -> None:
    with pytest.raises(PluginSqlRefused) as refused:
        scope_query("SELECT $1", [value])
    assert refused.value.code == "bad_parameter"


def _tables(sql: str) -> list[exp.Table]:
    return list(sqlglot.parse_one(sql, read="clickhouse").find_all(exp.Table))


SCOPED = [
    "SELECT COUNT(*) AS n, SUM(duration_seconds) AS s FROM heartbeats WHERE user_id = $1",
    "SELECT * FROM heartbeats UNION ALL SELECT * FROM heartbeats WHERE user_id = 'bob'",
    "SELECT * FROM heartbeats WHERE id IN (SELECT id FROM heartbeats h2 WHERE h2.user_id = $1)",
    "SELECT a.id FROM heartbeats a JOIN heartbeats b ON a.user_id <> b.user_id",
    "WITH mine AS (SELECT * FROM heartbeats), days AS (SELECT * FROM daily_stats_cache)"
    " SELECT * FROM mine, days, projects",
    "SELECT * FROM (SELECT * FROM (SELECT project FROM heartbeats) x) y",
    "SELECT * FROM heartbeats WHERE project IN ($1, 'a', project)"
    " AND id IN (SELECT id FROM heartbeats)",
]


@pytest.mark.parametrize("sql", SCOPED)
def test_scope_query_leaves_only_scoped_archive_reads(sql: str) -> None:
    scoped = scope_query(sql, ["bob"], database=DB)
    tables = _tables(scoped.sql)
    archive = [t for t in tables if t.db == DB]
    assert archive, scoped.sql
    for table in tables:
        assert (table.db == DB and table.name in BACKING_TABLES) or table.name in {"mine", "days"}
    # Every read of the archive or the daily table is filtered by the caller's id, and every
    # read of the archive leaves out tombstones.
    scopes = scoped.sql.count(f"user_id = {UID}")
    assert scopes == len(archive)
    reads = [t for t in archive if t.name == "heartbeats"]
    assert scoped.sql.count(f'"{DB}".heartbeat_deletions') == len(reads)
    assert "bob" not in scoped.sql.replace("'bob'", "")  # the value is bound, never pasted in


def test_scope_query_keeps_the_plugins_alias_and_columns() -> None:
    scoped = scope_query("SELECT h.project FROM heartbeats AS h WHERE h.user_id = $1", ["u"])
    tree = sqlglot.parse_one(scoped.sql, read="clickhouse")
    subquery = tree.find(exp.Subquery)
    assert subquery is not None
    assert subquery.alias == "h"
    assert subquery.this.named_selects == list(RELATIONS["heartbeats"].column_names)


def test_scope_query_aliases_an_unaliased_table_with_its_own_name() -> None:
    scoped = scope_query("SELECT heartbeats.project FROM heartbeats")
    subquery = sqlglot.parse_one(scoped.sql, read="clickhouse").find(exp.Subquery)
    assert subquery is not None
    assert subquery.alias == "heartbeats"


def test_scope_query_binds_placeholders_as_typed_server_parameters() -> None:
    params: list[object] = ["' OR 1=1 --", 7, 2.5, True, None]
    scoped = scope_query("SELECT $1, $2, $3, $4, $5, '$1' AS literal, $1", params)
    assert scoped.parameters == {"p1": params[0], "p2": 7, "p3": 2.5, "p4": True, "p5": None}
    for placeholder in (
        "{p1: String}",
        "{p2: Int64}",
        "{p3: Float64}",
        "{p4: Bool}",
        "{p5: Nullable(String)}",
    ):
        assert placeholder in scoped.sql
    assert "OR 1=1" not in scoped.sql
    assert "'$1' AS literal" in scoped.sql  # a $1 inside a string is text, not a placeholder


def test_scope_query_names_the_host_relations_it_reads() -> None:
    scoped = scope_query("SELECT * FROM users u JOIN api_keys k ON k.user_id = u.id, heartbeats")
    assert scoped.host_relations == {"users", "api_keys"}
    assert "{_rows_users: String}" in scoped.sql
    assert "{_rows_api_keys: String}" in scoped.sql


def test_store_tables_are_host_relations_with_the_seeds_columns() -> None:
    scoped = scope_query("SELECT settings FROM plugin_settings WHERE user_id = $1", ["u"])
    assert scoped.host_relations == {"plugin_settings"}
    assert "{_rows_plugin_settings: String}" in scoped.sql
    subquery = sqlglot.parse_one(scoped.sql, read="clickhouse").find(exp.Subquery)
    assert subquery is not None
    assert subquery.this.named_selects == ["user_id", "plugin", "settings", "updated_at"]
    store = scope_query(
        "SELECT p.name FROM installed_plugins i JOIN plugin_store p ON p.id = i.plugin_id"
        " LEFT JOIN plugin_reviews r ON r.plugin_id = p.id"
    )
    assert store.host_relations == {"installed_plugins", "plugin_store", "plugin_reviews"}
    assert not {"script", "server_script"} & set(RELATIONS["plugin_store"].column_names)


def test_store_entries_and_reviews_are_public_installs_and_settings_are_the_callers() -> None:
    visibility = {name: RELATIONS[name].visibility for name in RELATIONS}
    assert visibility["plugin_store"] == visibility["plugin_reviews"] == "public"
    for name in ("installed_plugins", "plugin_settings", "users", "api_keys", "user_follows"):
        assert visibility[name] == "owner"
        assert RELATIONS[name].owner_columns


def test_a_relation_cannot_be_public_or_ownerless_by_mistake() -> None:
    with pytest.raises(ValueError, match="only host relations"):
        Relation("x", "clickhouse", (Column("a"),), select="SELECT 1", visibility="public")
    with pytest.raises(ValueError, match="needs owner columns"):
        Relation("x", "host", (Column("a"),))
    with pytest.raises(ValueError, match="not columns"):
        Relation("x", "host", (Column("a"),), owner_columns=("user_id",))


def test_an_empty_relation_reads_no_rows_with_typed_columns() -> None:
    empty = Relation("later", "empty", (Column("id"), Column("n", "UInt64")))
    printed = sql_scope._scoped_select(empty, DB).sql(dialect="clickhouse")
    assert "JSONExtract('[]'" in printed
    assert "Tuple(id String, n UInt64)" in printed


def test_secret_columns_are_not_in_any_relation() -> None:
    for relation in RELATIONS.values():
        assert not set(relation.column_names) & relation.secret_columns


def test_host_rows_keep_only_the_callers_rows_and_columns() -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    rows = [
        {"id": "k1", "user_id": "alice", "name": "a", "key_hash": "SECRET", "created_at": at},
        {"id": "k2", "user_id": "bob", "name": "b", "key_hash": "BOBS", "created_at": at},
    ]
    kept = json.loads(_rows_json("api_keys", "alice", rows))
    assert [row["id"] for row in kept] == ["k1"]
    assert "key_hash" not in kept[0]
    assert kept[0]["created_at"] == "2024-01-02 03:04:05.678"
    epoch = json.loads(_rows_json("api_keys", "bob", [{**rows[1], "created_at": at.timestamp()}]))
    assert epoch[0]["created_at"] == "2024-01-02 03:04:05.678"
    follows = [
        {"follower_id": "alice", "following_id": "carol"},
        {"follower_id": "carol", "following_id": "alice"},
        {"follower_id": "bob", "following_id": "carol"},
    ]
    assert len(json.loads(_rows_json("user_follows", "alice", follows))) == 2
    settings = [
        {"user_id": "alice", "plugin": "p", "settings": {"notify": True}, "updated_at": at},
        {"user_id": "bob", "plugin": "p", "settings": {"notify": False}, "updated_at": at},
    ]
    (mine,) = json.loads(_rows_json("plugin_settings", "alice", settings))
    assert json.loads(mine["settings"]) == {"notify": True}  # an object is held as JSON text


def test_public_host_rows_are_all_kept() -> None:
    entries = [
        {"id": "s1", "name": "mine", "author_id": "alice", "is_published": False},
        {"id": "s2", "name": "theirs", "author_id": "bob", "is_published": True, "rating": 4.5},
    ]
    kept = json.loads(_rows_json("plugin_store", "alice", entries))
    assert [row["name"] for row in kept] == ["mine", "theirs"]
    assert kept[1]["rating"] == 4.5
    assert "script" not in kept[0]


def test_json_safe_values_survive_json() -> None:
    value = {
        "t": datetime(2024, 1, 2, tzinfo=UTC),
        "m": {"a": 1.5},
        "big": 2**60,
        "nan": float("nan"),
        "l": (1, "x"),
    }
    safe = _json_safe(value)
    assert json.loads(json.dumps(safe)) == {
        "t": "2024-01-02T00:00:00Z",
        "m": {"a": 1.5},
        "big": str(2**60),
        "nan": None,
        "l": [1, "x"],
    }


def test_warm_up_parses_every_relation_once() -> None:
    sql_scope._parsed_select.cache_clear()
    sql_scope.warm_up("warm")
    assert sql_scope._parsed_select.cache_info().currsize == len(RELATIONS)


def test_placeholders_glued_to_commas_and_operators_are_read_as_placeholders() -> None:
    scoped = scope_query(
        "SELECT count(*) AS n FROM heartbeats WHERE project IN ($1,$2) AND lines>=$3",
        ["a", "b", 1],
    )
    assert set(scoped.parameters) == {"p1", "p2", "p3"}
    # Literals, quoted names, dollar-quoted strings and comments keep their text.
    assert spaced_parameters("SELECT 'it''s,$1',$1") == "SELECT 'it''s,$1', $1"
    assert spaced_parameters('SELECT "a,$1",$1') == 'SELECT "a,$1", $1'
    assert spaced_parameters("SELECT $t$ a,$1 $t$,$2") == "SELECT $t$ a,$1 $t$, $2"
    assert spaced_parameters("SELECT $$,$1$$,$1") == "SELECT $$,$1$$, $1"
    assert spaced_parameters("SELECT 1 /* ,$1 */,$1 -- ,$2") == "SELECT 1 /* ,$1 */, $1 -- ,$2"
