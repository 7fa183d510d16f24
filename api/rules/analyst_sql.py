"""Analysts' SQL, checked before it reaches ClickHouse. Pure: no I/O.

The engine enforces the hard part itself: every analyst query runs with ``readonly=2`` (no write,
no DDL), a row cap, a time and a memory limit (:mod:`projections.clickhouse.analyst`). What
``readonly`` does not stop is refused here, from sqlglot's parse of the query (ClickHouse
dialect):

* more than one statement, or anything but a query (``SELECT``, ``WITH``, ``UNION``),
  ``DESCRIBE`` or ``SHOW``;
* a ``SETTINGS`` clause (it could lift the limits);
* a table function in ``FROM`` (``file()``, ``url()``, ``remote()``, ``s3()`` ... read files and
  the network under ``readonly``; ``numbers()`` goes too, ``system.numbers`` is there instead);
* a table outside the projections' database, the analytics views' database and a few
  ``system`` tables that describe the schema (what SQL tools read to list tables and columns).

The query text sent to the engine is the analyst's own, never a re-print, so what runs is what was
written; an unqualified table resolves in the request's database (the analytics views' by
default), which is itself checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

MAX_SQL_CHARS = 100_000
# Schema description that SQL tools read (DBeaver, Grafana's data source, clickhouse-connect).
SYSTEM_TABLES = frozenset(
    {
        "columns",
        "data_type_families",
        "databases",
        "formats",
        "functions",
        "numbers",
        "one",
        "settings",
        "table_engines",
        "tables",
        "time_zones",
    }
)


class AnalystSqlRefused(Exception):
    """``code`` is stable (``syntax``, ``empty``, ``too_long``, ``multiple_statements``,
    ``statement_not_allowed``, ``settings_not_allowed``, ``table_function``,
    ``database_not_allowed``, ``system_table``); ``message`` says what to change."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class CheckedSql:
    sql: str
    has_format: bool  # a FORMAT clause of its own: the request's default format does not apply


def check_analyst_sql(sql: str, *, allowed_databases: frozenset[str]) -> CheckedSql:
    """``sql`` if an analyst may run it; raises :class:`AnalystSqlRefused` otherwise."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise AnalystSqlRefused("empty", "no query")
    if len(text) > MAX_SQL_CHARS:
        raise AnalystSqlRefused("too_long", f"a query is at most {MAX_SQL_CHARS} characters")
    if _is_show(text):
        _check_show(text, allowed_databases)
        return CheckedSql(text, has_format=" format " in f" {text.lower()} ")
    try:
        trees = sqlglot.parse(text, read="clickhouse", error_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise AnalystSqlRefused("syntax", f"cannot parse the query: {exc}") from None
    statements = [tree for tree in trees if tree is not None]
    if len(statements) != 1:
        raise AnalystSqlRefused("multiple_statements", "one statement per request")
    (tree,) = statements
    if not isinstance(tree, exp.Query | exp.Describe):
        raise AnalystSqlRefused(
            "statement_not_allowed", "only queries (SELECT), DESCRIBE and SHOW are allowed"
        )
    if isinstance(tree, exp.Describe) and not isinstance(tree.this, exp.Table):
        raise AnalystSqlRefused("table_function", "DESCRIBE takes a table")
    if any(node.args.get("settings") for node in tree.find_all(exp.Query)):
        raise AnalystSqlRefused("settings_not_allowed", "a SETTINGS clause is not allowed")
    for table in tree.find_all(exp.Table):
        _check_table(table, allowed_databases)
    return CheckedSql(text, has_format=tree.args.get("format") is not None)


def _is_show(text: str) -> bool:
    words = text.split(None, 2)
    if len(words) < 2 or words[0].upper() != "SHOW":
        return False
    # SHOW TABLES / DATABASES / COLUMNS / CREATE TABLE: descriptions only, in readonly mode.
    return words[1].upper() in {"TABLES", "DATABASES", "COLUMNS", "CREATE", "FULL"}


_SHOW_NAME = re.compile(r"(?i)\b(?:FROM|IN)\s+`?(\w+)`?|`?(\w+)`?\.`?\w+`?")


def _check_show(text: str, allowed: frozenset[str]) -> None:
    for match in _SHOW_NAME.finditer(text):
        database = match.group(1) or match.group(2)
        if database.lower() != "system" and database not in allowed:
            raise AnalystSqlRefused(
                "database_not_allowed",
                f"database {database} is not open to analysts; "
                f"allowed: {', '.join(sorted(allowed))}",
            )


def _check_table(table: exp.Table, allowed: frozenset[str]) -> None:
    if not isinstance(table.this, exp.Identifier):
        raise AnalystSqlRefused(
            "table_function",
            "table functions are not allowed (use the tables; system.numbers for numbers())",
        )
    database = table.db
    if table.catalog:
        raise AnalystSqlRefused("database_not_allowed", f"{table.sql()} is not allowed")
    if not database:
        return  # a CTE, or a table of the request's database (checked by the caller)
    if database.lower() == "system":
        if table.name.lower() not in SYSTEM_TABLES:
            raise AnalystSqlRefused(
                "system_table",
                f"system.{table.name} is not open to analysts; allowed: "
                + ", ".join(sorted(SYSTEM_TABLES)),
            )
        return
    if database not in allowed:
        raise AnalystSqlRefused(
            "database_not_allowed",
            f"database {database} is not open to analysts; allowed: {', '.join(sorted(allowed))}",
        )
