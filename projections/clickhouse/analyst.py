"""Analysts' queries on the projections' engine: read-only, bounded, in the caller's format.

Runs SQL already checked by :func:`api.rules.analyst_sql.check_analyst_sql` with settings the
engine enforces whatever the text says: ``readonly=2`` (no write, no DDL; the query may not set
``readonly`` back), ``max_result_rows`` with ``result_overflow_mode='throw'`` (too many rows is an
error, never a silently cut answer), ``max_execution_time``, ``max_memory_usage``. It has its own
clients, one per thread and database (``readonly`` stays on a client once set, so these are
never the store's), on the same engine: chdb in-process, or the ClickHouse server.

The answer is the engine's own bytes in the requested output format (``TabSeparated``, ``JSON``,
``CSVWithNames``, ``Parquet``, ``Native`` for clickhouse-connect ...). Blocking: call it from a
worker thread.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, Error

_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z_]{3,})\)")


@dataclass(frozen=True, slots=True)
class AnalystLimits:
    max_rows: int = 1_000_000
    max_seconds: float = 30.0
    max_memory_bytes: int = 2 * 1024 * 1024 * 1024

    def settings(self) -> dict[str, Any]:
        return {
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "throw",
            "max_execution_time": self.max_seconds,
            "max_memory_usage": self.max_memory_bytes,
            "allow_introspection_functions": 0,
            "readonly": 2,
        }


class AnalystQueryFailed(Exception):
    """The engine refused or failed the query: ``code`` and ``name`` are ClickHouse's (0 and
    ``UNAVAILABLE`` when the engine could not be reached), ``message`` its text."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name, self.message = code, name, message


class AnalystQueries:
    def __init__(self, url: str, *, limits: AnalystLimits | None = None) -> None:
        self._url = url
        self._limits = limits or AnalystLimits()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._clients: list[Client] = []

    def run(
        self, sql: str, *, database: str, fmt: str | None, parameters: Mapping[str, str]
    ) -> bytes:
        """The result of ``sql`` in ``fmt`` (None: the query's own FORMAT clause)."""
        client = self._client(database)
        try:
            result: bytes = client.raw_query(
                sql,
                parameters=dict(parameters) or None,
                settings=self._limits.settings(),
                fmt=fmt,
            )
        except DatabaseError as exc:
            text = str(exc)
            code = _CODE.search(text)
            name = _NAME.search(text)
            raise AnalystQueryFailed(
                int(code.group(1)) if code else 0,
                name.group(1) if name else "QUERY_FAILED",
                text.strip(),
            ) from None
        except (Error, OSError, RuntimeError) as exc:
            raise AnalystQueryFailed(
                0, "UNAVAILABLE", f"the database is unavailable: {exc}"
            ) from exc
        return result

    def _client(self, database: str) -> Client:
        clients: dict[str, Client] = self._local.__dict__.setdefault("by_database", {})
        client = clients.get(database)
        if client is None:
            try:
                client = clickhouse_connect.get_client(dsn=self._url, database=database)
            except (Error, OSError, RuntimeError) as exc:
                raise AnalystQueryFailed(
                    0, "UNAVAILABLE", f"the database is unavailable: {exc}"
                ) from exc
            with self._lock:
                self._clients.append(client)
            clients[database] = client
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):  # best effort: the engine frees it anyway
                client.close()
