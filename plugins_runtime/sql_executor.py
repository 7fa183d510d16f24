"""Runs a plugin's ``ctx.db.query`` on ClickHouse: scoped, read-only, bounded. The I/O edge.

:func:`plugins_runtime.sql_scope.scope_query` has already refused what a plugin may not run and
confined every table to the caller; this module binds the caller's id and the host relations'
rows, and runs the result with settings that hold even if a check were wrong:

* ``readonly=2``: no write or DDL reaches the engine. (``readonly=1`` also forbids changing
  settings, which bit the host's own limits: measured on chdb, a query carrying ``readonly=1``
  with ``max_execution_time=0.5`` failed with READONLY. Plugins cannot send settings: SETTINGS
  is refused at parse.) Table functions are NOT refused by ``readonly=2`` (``url()`` tried to
  connect): that refusal is :mod:`plugins_runtime.sql_scope`'s alone.
* ``max_result_rows`` with ``result_overflow_mode='throw'``: more rows than the cap is an error,
  never a silently truncated answer.
* ``max_execution_time``, ``max_memory_usage``: a runaway query fails, it does not hog the engine.

Besides the projection store, this is the one module that talks to ClickHouse, and it only reads:
plugins_runtime may not import projections (they are one layer), so it holds its own clients.

Threads: every method blocks; async callers run it in a thread pool (the GIL is released while the
engine works). Each thread gets its own clickhouse-connect client, as in the projection store: a
client shared by threads serializes on chdb and raises over HTTP. Several clients on one chdb path
in one process share the engine, so this runs beside the projection store in the same process.

Errors: :class:`~plugins_runtime.sql_scope.PluginSqlRefused` before anything runs;
:class:`PluginQueryFailed` (``code`` ``too_many_rows``, ``timeout``, ``memory_limit``,
``query_failed`` or ``unavailable``) when the engine refuses or fails it; its message carries the
engine's reason without our rewritten SQL.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, Error, OperationalError

from plugins_runtime.relations import RELATIONS, USER_PARAMETER, host_parameter
from plugins_runtime.sql_scope import check_scoped, scope_query

__all__ = [
    "ClickHousePluginQueries",
    "PluginQueries",
    "PluginQueryFailed",
    "QueryLimits",
    "prepare_query",
]

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# ClickHouse error codes worth telling a plugin author apart.
_CODES = {
    396: "too_many_rows",  # TOO_MANY_ROWS_OR_BYTES (max_result_rows, result_overflow_mode=throw)
    159: "timeout",  # TIMEOUT_EXCEEDED
    241: "memory_limit",  # MEMORY_LIMIT_EXCEEDED
    164: "write_not_allowed",  # READONLY
}
# The engine's reason ends where it starts quoting our SQL or its own version.
_REASON_END = re.compile(r"\. \(| \(version |: In scope |\. In scope ")


class PluginQueryFailed(Exception):
    """The engine refused or failed a scoped query (``code`` says how; see the module docs)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Per-query limits, sent as ClickHouse settings with every plugin query."""

    max_rows: int = 1_000
    max_seconds: float = 5.0
    max_memory_bytes: int = 256 * 1024 * 1024

    def settings(self) -> dict[str, Any]:
        return {
            "readonly": 2,
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "throw",
            "max_execution_time": self.max_seconds,
            "max_memory_usage": self.max_memory_bytes,
            # chdb turns these on for embedded use; a plugin has no business with them.
            "allow_introspection_functions": 0,
        }


class PluginQueries(Protocol):
    """``ctx.db.query`` as the plugin host calls it (blocking; from a worker thread):
    :class:`ClickHousePluginQueries` in the server, a proxy to it in a hook process."""

    def query(
        self,
        user_id: str,
        sql: str,
        params: Sequence[object] = (),
        *,
        host_rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def prepare_query(
    user_id: str,
    sql: str,
    params: Sequence[object] = (),
    *,
    host_rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    database: str = "codetrackr",
) -> tuple[str, dict[str, Any]]:
    """The plugin's ``sql`` scoped to ``user_id`` and its parameters bound (the caller's id, the
    host relations' rows): what :meth:`ClickHousePluginQueries.run_scoped` runs. No I/O; raises
    :class:`~plugins_runtime.sql_scope.PluginSqlRefused`."""
    scoped = scope_query(sql, params, database=database)
    parameters: dict[str, Any] = dict(scoped.parameters)
    parameters[USER_PARAMETER] = user_id
    for name in scoped.host_relations:
        rows = (host_rows or {}).get(name, ())
        parameters[host_parameter(name)] = _rows_json(name, user_id, rows)
    return scoped.sql, parameters


class _ThreadClient(threading.local):
    client: Client | None = None


class ClickHousePluginQueries:
    """``ctx.db.query`` for plugins: one caller's rows, read-only, within :class:`QueryLimits`.

    Construction does no I/O; the first query in each thread connects.
    """

    def __init__(
        self, url: str, database: str = "codetrackr", *, limits: QueryLimits | None = None
    ) -> None:
        if urlsplit(url).scheme not in ("chdb", "http", "https"):
            raise ValueError("unsupported ClickHouse URL scheme: use chdb, http or https")
        if not _IDENTIFIER.fullmatch(database):
            raise ValueError(f"database name must be an identifier, got {database!r}")
        self._url = url
        self._database = database
        self._limits = limits or QueryLimits()
        self._local = _ThreadClient()
        self._clients: list[Client] = []
        self._lock = threading.Lock()

    def query(
        self,
        user_id: str,
        sql: str,
        params: Sequence[object] = (),
        *,
        host_rows: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[dict[str, Any]]:
        """The caller's rows the plugin's ``sql`` selects, as JSON-safe dicts.

        ``host_rows`` holds, per host relation the query reads (``ScopedQuery.host_relations``:
        ``users``, ``api_keys``, ``user_follows``, ``installed_plugins``, ``plugin_settings``,
        ``plugin_store``, ``plugin_reviews``), the rows from the accounts and store states. For
        an owner-only relation, rows that do not name ``user_id`` in its owner columns are
        dropped here, whatever the host passed; a public relation (``plugin_store``,
        ``plugin_reviews``) keeps every row, so the host passes only public ones (published,
        not banned, plus the caller's own entries; the reviews of those). Raises
        :class:`PluginSqlRefused` or :class:`PluginQueryFailed`.
        """
        scoped_sql, parameters = prepare_query(
            user_id, sql, params, host_rows=host_rows, database=self._database
        )
        return self._run(scoped_sql, parameters)

    def run_scoped(self, sql: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run SQL that :func:`prepare_query` produced in another process (a hook process has
        no engine of its own: :mod:`codetrackr.hook_channel`). It is checked again here
        (:func:`~plugins_runtime.sql_scope.check_scoped`: one SELECT of our tables) and runs
        with the same read-only settings and limits as :meth:`query`."""
        check_scoped(sql, self._database)
        return self._run(sql, parameters)

    def _run(self, sql: str, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            result = self._client().query(
                sql, parameters=dict(parameters), settings=self._limits.settings()
            )
        except (OperationalError, OSError) as exc:
            raise PluginQueryFailed("unavailable", "the database is unavailable, retry") from exc
        except DatabaseError as exc:
            code, reason = _reason(exc)
            raise PluginQueryFailed(code, reason) from exc
        except Error as exc:
            raise PluginQueryFailed("query_failed", str(exc).splitlines()[0][:300]) from exc
        names = list(result.column_names)
        return [
            {name: _json_safe(value) for name, value in zip(names, row, strict=True)}
            for row in result.result_rows
        ]

    def close(self) -> None:
        """Close every thread's client."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:  # best effort: the engine handle is freed regardless
                logger.debug("error closing a ClickHouse client", exc_info=True)

    def _client(self) -> Client:
        client = self._local.client
        if client is None:
            try:
                client = clickhouse_connect.get_client(dsn=self._url)
            except (Error, OSError, RuntimeError) as exc:
                raise PluginQueryFailed("unavailable", "the database is unavailable") from exc
            with self._lock:
                self._clients.append(client)
            self._local.client = client
        return client


def _rows_json(relation: str, user_id: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The caller's rows of a host relation as the JSON array its scoped SELECT unpacks."""
    spec = RELATIONS[relation]
    kept = []
    for row in rows:
        if spec.visibility == "owner" and not any(
            row.get(column) == user_id for column in spec.owner_columns
        ):
            continue  # not the caller's: never handed to the query
        kept.append(
            {column.name: _json_value(row.get(column.name), column.type) for column in spec.columns}
        )
    return json.dumps(kept)


def _json_value(value: Any, column_type: str) -> Any:
    # JSONExtract reads DateTime64 from its text form: datetimes and the accounts state's epoch
    # seconds are turned into that form here.
    if (
        "DateTime64" in column_type
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if column_type == "String" and isinstance(value, Mapping | list):
        # a JSON document held as text (plugin_settings.settings): settings->>'key' reads it
        return json.dumps(value, separators=(",", ":"))
    return value


def _reason(exc: DatabaseError) -> tuple[str, str]:
    code = _CODES.get(getattr(exc, "code", 0) or 0, "query_failed")
    tail = str(exc).rsplit("DB::Exception: ", 1)[-1]
    reason = _REASON_END.split(tail, maxsplit=1)[0].strip().splitlines()
    return code, (reason[0] if reason else "query failed")[:300]


def _json_safe(value: Any) -> Any:
    """A value as JSON can carry it: times as ISO 8601, maps as objects, big numbers as text."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        # Beyond 2**53 a JavaScript number loses digits: hand those over as text.
        return value if abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID | IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    return str(value)
