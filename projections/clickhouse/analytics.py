"""Stable views for analysts, in a database of their own: ``<db>_analytics`` (docs/analytics.md).

The projection tables are built for the product's reads: ``ReplacingMergeTree`` copies to collapse
with ``FINAL``, tombstones to leave out, one map column per breakdown. These views read them the
right way once, so an analyst's ``SELECT`` is honest without knowing any of that, and they keep
their names and columns while the tables under them change: they are re-created at the end of
every ``migrate`` (``CREATE OR REPLACE VIEW``), and ClickHouse checks a view's query when it is
created, so a migration that removes what a view reads fails there, and in
``tests/integration/test_analytics_views.py``, not in an analyst's dashboard.

Pure: SQL text only. ``{db}`` stands for the projections' database, ``{adb}`` for the analytics one.
"""

from __future__ import annotations

from projections.durations import DIMENSIONS


def analytics_database(db: str) -> str:
    return f"{db}_analytics"


_HEARTBEAT_COLUMNS = (
    "event_id, user_id, time, local_date, timezone, entity, type, category, project, branch,"
    " language, language_raw, editor, plugin, os, machine, is_write, duration, lines,"
    " line_additions, line_deletions, lineno, cursorpos, ai_line_changes, human_line_changes,"
    " dependencies, source, received_at"
)

# The maps of ``daily_stats`` by the name analysts see in ``daily_breakdown.dimension``.
_MAPS = {
    "project": "projects",
    "language": "languages",
    "editor": "editors",
    "operating_system": "operating_systems",
    "machine": "machines",
    "branch": "branches",
    "category": "categories",
    "entity": "entities",
}
assert len(_MAPS) == len(DIMENSIONS), "a breakdown of the durations rule is missing here"

_BREAKDOWN = "\nUNION ALL\n".join(
    f"SELECT user_id, date, '{dimension}' AS dimension, item.1 AS value, item.2 AS seconds"
    f" FROM {{db}}.daily_stats FINAL ARRAY JOIN CAST({column}, 'Array(Tuple(String, Float64))')"
    " AS item WHERE heartbeat_count > 0"
    for dimension, column in _MAPS.items()
)

# The AI coding activity's tables (docs/ai.md), one view each, copies collapsed.
_AI = {
    "ai_projects": "AI coding projects per user: id, path, name",
    "ai_sessions": "session starts and ends (kind), with project and assistant",
    "ai_messages": "conversation messages: session, role, content, project",
    "ai_activities": "files touched per session: path, action, lines added and removed",
    "ai_tool_calls": "tool calls: tool, parameters, result status, execution time in ms",
    "ai_usage": "tokens per model request: model, input, output, cache writes and reads",
}

# (name, what it holds, SELECT). The order is the order of creation.
VIEWS: tuple[tuple[str, str, str], ...] = (
    (
        "heartbeats",
        "every heartbeat kept: copies collapsed, deleted ones left out (erased ones are gone)",
        f"SELECT {_HEARTBEAT_COLUMNS} FROM {{db}}.heartbeats FINAL"
        " WHERE (user_id, local_date, event_id) NOT IN"
        " (SELECT user_id, local_date, event_id FROM {db}.heartbeat_deletions)",
    ),
    (
        "daily",
        "one row per user and local day with coding time: totals and breakdown maps (seconds)",
        "SELECT user_id, date, timezone, total_seconds, heartbeat_count, first_time, last_time,"
        " projects, languages, editors, operating_systems, machines, branches, categories,"
        " entities FROM {db}.daily_stats FINAL WHERE heartbeat_count > 0",
    ),
    (
        "daily_breakdown",
        "the breakdown maps of `daily` as rows: user, day, dimension, value, seconds",
        _BREAKDOWN,
    ),
    (
        "weekly",
        "one row per ISO week (its Monday) and user: the weekly totals the boards rank",
        "SELECT week, user_id, total_seconds, languages, editors, operating_systems"
        " FROM {db}.weekly_stats FINAL WHERE total_seconds > 0",
    ),
    (
        "users",
        "one row per account as the boards see it: username, country, hireable, ranked or not",
        "SELECT user_id, username, eligible AS on_leaderboards, country, available_for_hire,"
        " languages_public FROM {db}.leaderboard_members FINAL",
    ),
    *(
        (name, what, f"SELECT * EXCEPT computed_at FROM {{db}}.{name} FINAL")
        for name, what in _AI.items()
    ),
)


def view_statements(database: str) -> list[str]:
    """The statements that (re)create the analytics database and its views (``database``: the
    projections' database name, unquoted)."""
    db, adb = f"`{database}`", f"`{analytics_database(database)}`"
    statements = [f"CREATE DATABASE IF NOT EXISTS {adb}"]
    for name, _, select in VIEWS:
        sql = select.replace("{db}", db)
        statements.append(f"CREATE OR REPLACE VIEW {adb}.{name} AS {sql}")
    return statements
