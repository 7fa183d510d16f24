"""The tables a plugin's SQL may name, and what each one really reads: one declarative table.

A plugin writes SQL against the seed's Postgres tables (``heartbeats``, ``projects``, ...). None of
them exists as such: every name is replaced by a user-scoped subquery (:mod:`plugins_runtime.
sql_scope`) aliased with the name the plugin wrote, so the query sees only the calling user's rows
whatever its ``WHERE`` says. Each :class:`Relation` here says which columns the plugin sees and how
they are made from our data:

* ``clickhouse``: a ``SELECT`` over our ClickHouse projections (``{db}`` stands for the store's
  database, ``{_uid:String}`` for the caller's id, bound by the host, never by the plugin).
* ``host``: rows the host hands over for this one query (account data lives in the accounts state
  folded from the log, the store in the store's state, not in ClickHouse); the executor binds them
  as one JSON parameter and the query unpacks them with typed columns. Which rows it keeps is the
  relation's ``visibility``: ``owner`` keeps only rows whose ``owner_columns`` name the caller,
  whatever the host passed; ``public`` (the store's entries and reviews, readable by everyone)
  keeps every row the host passed, so the host must pass only public rows (and the caller's own).
* ``empty``: no backing data; an empty relation with the right columns, so plugins written for
  the seed run and see nothing (no table uses it today).

``secret_columns`` are names a query may not mention at all on that table (api key hashes...): the
relation does not carry them either, so even a trick that slips past the check finds nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Source = Literal["clickhouse", "host", "empty"]
Visibility = Literal["owner", "public"]

# The caller's id as a ClickHouse query parameter; plugin parameters are named p1, p2, ...
USER_PARAMETER = "_uid"


@dataclass(frozen=True, slots=True)
class Column:
    """One column the plugin sees: its name, and its ClickHouse type for host or empty rows."""

    name: str
    type: str = "String"


@dataclass(frozen=True, slots=True)
class Relation:
    """One allowed table name and how the calling user's rows of it are produced."""

    name: str
    source: Source
    columns: tuple[Column, ...]
    # clickhouse: the scoped SELECT; it must filter by {_uid:String} itself.
    select: str = ""
    # host, visibility "owner": a row is kept only when one of these columns holds the caller's
    # id. visibility "public": every row the host passes is kept (it passes only public ones).
    owner_columns: tuple[str, ...] = ()
    visibility: Visibility = "owner"
    secret_columns: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.visibility == "public" and self.source != "host":
            raise ValueError(f"{self.name}: only host relations can be public")
        if self.source == "host" and self.visibility == "owner" and not self.owner_columns:
            raise ValueError(f"{self.name}: an owner-only host relation needs owner columns")
        unknown = set(self.owner_columns) - set(self.column_names)
        if unknown:
            raise ValueError(f"{self.name}: owner columns {sorted(unknown)} are not columns")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


def _cols(*specs: str) -> tuple[Column, ...]:
    """``"name"`` or ``"name Type"`` (the type as ClickHouse writes it) per column."""
    columns = []
    for spec in specs:
        name, _, type_ = spec.partition(" ")
        columns.append(Column(name, type_ or "String"))
    return tuple(columns)


# Every read of the archive leaves out tombstoned heartbeats (ClickHouseProjectionStore's rule);
# naming only sorting-key columns, it holds with or without FINAL.
_LIVE_HEARTBEATS = (
    "FROM {db}.heartbeats FINAL WHERE user_id = {_uid:String}"
    " AND (user_id, local_date, event_id) NOT IN (SELECT user_id, local_date, event_id"
    " FROM {db}.heartbeat_deletions WHERE user_id = {_uid:String})"
)

_HEARTBEATS = Relation(
    name="heartbeats",
    source="clickhouse",
    # The seed's heartbeat fields; duration_seconds is the duration the client declared, not the
    # time we count (that is daily_stats_cache.total_seconds, from the gap-based fold).
    columns=_cols(
        "id",
        "user_id",
        "time",
        "project",
        "language",
        "file",
        "type",
        "category",
        "branch",
        "commit",
        "workspace_root",
        "editor",
        "os",
        "machine",
        "plugin",
        "is_write",
        "duration_seconds",
        "lines",
        "line_additions",
        "line_deletions",
        "created_at",
    ),
    select=(
        "SELECT event_id AS id, user_id, time, project, language, entity AS file, type,"
        " category, branch, commit, workspace_root, editor, os, machine, plugin, is_write,"
        " duration AS duration_seconds, lines, line_additions, line_deletions,"
        " received_at AS created_at " + _LIVE_HEARTBEATS
    ),
)

_PROJECTS = Relation(
    name="projects",
    source="clickhouse",
    columns=_cols("user_id", "name", "created_at", "last_heartbeat_at", "heartbeat_count"),
    # Projects are not entities here: one row per project name the caller's heartbeats carry.
    select=(
        "SELECT user_id, assumeNotNull(project) AS name, min(time) AS created_at,"
        " max(time) AS last_heartbeat_at, count() AS heartbeat_count "
        + _LIVE_HEARTBEATS
        + " AND project IS NOT NULL GROUP BY user_id, name"
    ),
)

_DAILY = Relation(
    name="daily_stats_cache",
    source="clickhouse",
    columns=_cols(
        "user_id",
        "date",
        "timezone",
        "total_seconds",
        "heartbeat_count",
        "projects",
        "languages",
        "editors",
        "operating_systems",
        "machines",
        "branches",
        "categories",
        "updated_at",
    ),
    select=(
        "SELECT user_id, date, timezone, total_seconds, heartbeat_count, projects, languages,"
        " editors, operating_systems, machines, branches, categories, computed_at AS updated_at"
        " FROM {db}.daily_stats FINAL WHERE user_id = {_uid:String}"
    ),
)

_USERS = Relation(
    name="users",
    source="host",
    columns=_cols(
        "id",
        "username",
        "display_name Nullable(String)",
        "avatar_url Nullable(String)",
        "bio Nullable(String)",
        "website Nullable(String)",
        "country Nullable(String)",
        "timezone",
        "is_public Bool",
        "available_for_hire Bool",
        "profile_show_languages Bool",
        "profile_show_projects Bool",
        "profile_show_activity Bool",
        "profile_show_plugins Bool",
        "profile_show_streak Bool",
        "created_at DateTime64(3, 'UTC')",
    ),
    owner_columns=("id",),
    secret_columns=frozenset(
        {"email", "password", "password_hash", "account_number", "account_hash", "identity"}
    ),
)

_KEY_SECRETS = frozenset({"key", "key_hash", "hash", "key_prefix", "prefix", "token", "secret"})

_API_KEYS = Relation(
    name="api_keys",
    source="host",
    columns=_cols(
        "id",
        "user_id",
        "name",
        "read_only Bool",
        "created_at DateTime64(3, 'UTC')",
        "last_used_at Nullable(DateTime64(3, 'UTC'))",
    ),
    owner_columns=("user_id",),
    secret_columns=_KEY_SECRETS,
)

_FOLLOWS = Relation(
    name="user_follows",
    source="host",
    # The caller's follows both ways: whom they follow and who follows them.
    columns=_cols("follower_id", "following_id"),
    owner_columns=("follower_id", "following_id"),
)

# The store's public rows: every published, not-banned entry plus the caller's own, and every
# review of those entries. The host picks them (the executor cannot tell a public row).
_PLUGIN_STORE = Relation(
    name="plugin_store",
    source="host",
    visibility="public",
    # The scripts are not columns: large, and no query needs them.
    columns=_cols(
        "id",
        "name",
        "display_name",
        "description",
        "author_id",
        "version",
        "icon Nullable(String)",
        "widget_type Nullable(String)",
        "repository Nullable(String)",
        "is_published Bool",
        "is_banned Bool",
        "install_count UInt64",
        "rating Nullable(Float64)",  # the average of the reviews' ratings; null without reviews
        "review_count UInt64",
        "created_at DateTime64(3, 'UTC')",
        "updated_at DateTime64(3, 'UTC')",
    ),
)

_INSTALLED = Relation(
    name="installed_plugins",
    source="host",
    columns=_cols(
        "id",
        "user_id",
        "plugin_id",
        "plugin",
        "installed_at DateTime64(3, 'UTC')",
        "suspended Bool",
        "suspended_reason Nullable(String)",
    ),
    owner_columns=("user_id",),
)

_SETTINGS = Relation(
    name="plugin_settings",
    source="host",
    # settings is a JSON object as text: settings->>'key' reads one value.
    columns=_cols("user_id", "plugin", "settings", "updated_at DateTime64(3, 'UTC')"),
    owner_columns=("user_id",),
)

_REVIEWS = Relation(
    name="plugin_reviews",
    source="host",
    visibility="public",
    columns=_cols(
        "id",
        "plugin_id",
        "plugin",
        "user_id",
        "rating UInt8",
        "comment",
        "created_at DateTime64(3, 'UTC')",
        "updated_at DateTime64(3, 'UTC')",
    ),
)

RELATIONS: Mapping[str, Relation] = {
    relation.name: relation
    for relation in (
        _HEARTBEATS,
        _PROJECTS,
        _DAILY,
        _PLUGIN_STORE,
        _INSTALLED,
        _SETTINGS,
        _REVIEWS,
        _USERS,
        _API_KEYS,
        _FOLLOWS,
    )
}

# The ClickHouse tables the scoped SELECTs read: the only tables a rewritten query may name.
BACKING_TABLES: frozenset[str] = frozenset({"heartbeats", "heartbeat_deletions", "daily_stats"})


def host_parameter(relation: str) -> str:
    """The query parameter that carries a host relation's rows (JSON) for one query."""
    return f"_rows_{relation}"
