"""What tests read of a projection store beyond its port: row counts and whole-table snapshots.

Production code never needs these (they scan whole tables), so they live here, as functions
taking the store. Each knows both adapters: ClickHouse through its client (unmerged copies and
``FINAL`` are the point of some tests), the in-memory store through its tables.
"""

from __future__ import annotations

from typing import Any

from projections.clickhouse import ClickHouseProjectionStore
from projections.clickhouse.archive import not_deleted
from projections.memory import InMemoryProjectionStore
from projections.ports import ProjectionStoreError

Store = ClickHouseProjectionStore | InMemoryProjectionStore


def count_heartbeats(store: Store, user_id: str) -> int:
    """How many distinct heartbeats (not deleted) the archive holds for the user."""
    if isinstance(store, InMemoryProjectionStore):
        with store._open():
            return sum(1 for (user, _, _), _ in store._live_heartbeats() if user == user_id)
    scope = "user_id = {user:String}"
    sql = (
        f"SELECT count() FROM {store._db}.heartbeats FINAL"
        f" WHERE {scope} AND {not_deleted(store._db, scope)}"
    )
    with store._edge("count heartbeats"):
        rows = store._query(sql, {"user": user_id})
    return int(rows[0][0])


def rows_of_user(store: Store, user_id: str) -> dict[str, int]:
    """How many stored rows (on ClickHouse, unmerged copies included) each table holds for the
    user; the erasure ledger is left out."""
    if isinstance(store, InMemoryProjectionStore):
        with store._open():
            tables = store._projection_tables()
            return {name: sum(key[0] == user_id for key in rows) for name, rows in tables.items()}
    counts = {}
    for table in store._tables_with_user_id():
        with store._edge(f"count {table}"):
            rows = store._query(
                f"SELECT count() FROM {store._db}.`{table}` WHERE user_id = {{user:String}}",
                {"user": user_id},
            )
        counts[table] = int(rows[0][0])
    return counts


def snapshot(store: Store, table: str) -> list[tuple[Any, ...]]:
    """Every row of a projection table, deduplicated, in sorting-key order, without
    ``computed_at``: equal snapshots prove a replay rebuilt exactly the live table.
    """
    if table not in store.table_names():
        raise ProjectionStoreError(f"unknown projection table {table!r}")
    if isinstance(store, InMemoryProjectionStore):
        # Keys are the sorting keys: their order is the table's; the value is the row.
        with store._open():
            return [(*key, row) for key, row in sorted(store._projection_tables()[table].items())]
    with store._edge(f"snapshot {table}"):
        names = [
            str(row[0])
            for row in store._query(
                "SELECT name FROM system.columns WHERE database = {db:String}"
                " AND table = {table:String} AND name != 'computed_at' ORDER BY position",
                {"db": store._database, "table": table},
            )
        ]
        engine, sorting_key = store._query(
            "SELECT engine, sorting_key FROM system.tables"
            " WHERE database = {db:String} AND name = {table:String}",
            {"db": store._database, "table": table},
        )[0]
        # FINAL makes the sorting key unique on Replacing tables, so the order is total.
        final = " FINAL" if engine != "MergeTree" and str(engine).endswith("MergeTree") else ""
        order = f" ORDER BY {sorting_key}" if sorting_key else ""
        columns = ", ".join(f"`{name}`" for name in names)
        rows = store._query(f"SELECT {columns} FROM {store._db}.`{table}`{final}{order}")
    return [tuple(row) for row in rows]
