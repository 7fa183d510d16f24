"""AI coding activity (m0009-m0011, docs/ai.md): projects, sessions, messages, file activities
and tool calls, and the reads behind the AI API.

Rows are written once per record and never updated; every read deduplicates (``FINAL``) and
aggregates a session's start and end rows. A message, activity or tool call belongs to the project
of its session's start when the session is known, else to the project its record named: resolved
at read time (a join on the session), so it does not depend on which record was projected first.
Times are read back as integer milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from projections.ai import (
    AI_EXPORT_COLUMNS,
    ALL_TIME,
    SearchQuery,
    SessionOrigin,
    TimeWindow,
    ToolStats,
)
from projections.ai_usage import KINDS, UsageEntry, UsageSums
from projections.clickhouse.client import KEYS_PER_QUERY, StoreClient
from schemas.ai import (
    AiFileActivity,
    AiMessage,
    AiProject,
    AiRecord,
    AiSessionEnd,
    AiSessionStart,
    AiToolCall,
    AiUsage,
    project_id_of,
    project_name_of,
)
from schemas.heartbeat import stored_millis

__all__ = ["AI_TABLES", "USAGE_GROUPS", "AiTables"]

AI_TABLES = (
    "ai_projects",
    "ai_sessions",
    "ai_messages",
    "ai_activities",
    "ai_tool_calls",
    "ai_usage",
)


def _stored(table: str) -> tuple[str, ...]:
    """A table's columns as inserted: the owner, what an export holds, the version column."""
    return ("user_id", *AI_EXPORT_COLUMNS[table], "computed_at")


_PROJECT_COLUMNS = ("user_id", "project_id", "record_id", "path", "name", "time", "computed_at")
_SESSION_COLUMNS = (
    "user_id",
    "session_id",
    "kind",
    "record_id",
    "time",
    "project_id",
    "project_path",
    "client_user",
    "assistant",
    "computed_at",
)
_MESSAGE_COLUMNS = _stored("ai_messages")
_ACTIVITY_COLUMNS = _stored("ai_activities")
_TOOL_COLUMNS = _stored("ai_tool_calls")
_USAGE_COLUMNS = _stored("ai_usage")
# The groups a usage report may have (docs/ai.md#tokens-and-cost), as ClickHouse expressions of a
# deduplicated usage row with ``pid``, its project.
USAGE_GROUPS = {
    "day": "toString(toDate(time, {tz:String}))",
    "month": "substring(toString(toDate(time, {tz:String})), 1, 7)",
    "session": "session_id",
    "project": "toString(ifNull(pid, 0))",
    "model": "model",
}
_THRESHOLD = 200_000


def _project_of_path(user_id: str, path: str | None) -> int | None:
    return project_id_of(user_id, path) if path else None


def _like_pattern(text: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


class AiTables(StoreClient):
    """The AI tables' writes (the projector's) and reads (the AI API's)."""

    # ---- writes ---------------------------------------------------------------------------------

    def insert_ai_records(self, user_id: str, records: Sequence[AiRecord]) -> None:
        """Insert one user's records into their tables. Idempotent (keys are deterministic)."""
        version = self._next_version_ms()
        rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in AI_TABLES}
        for r in records:
            at = stored_millis(r.time)
            if isinstance(r, AiProject):
                rows["ai_projects"].append(
                    (user_id, r.project_id, r.id, r.path, project_name_of(r.path), at, version)
                )
            elif isinstance(r, AiSessionStart):
                rows["ai_projects"].append(
                    (
                        user_id,
                        r.project_id,
                        r.id,
                        r.project_path,
                        project_name_of(r.project_path),
                        at,
                        version,
                    )
                )
                rows["ai_sessions"].append(
                    (
                        user_id,
                        r.session_id,
                        "start",
                        r.id,
                        at,
                        r.project_id,
                        r.project_path,
                        r.client_user,
                        r.assistant,
                        version,
                    )
                )
            elif isinstance(r, AiSessionEnd):
                rows["ai_sessions"].append(
                    (user_id, r.session_id, "end", r.id, at, None, None, None, "", version)
                )
            elif isinstance(r, AiMessage):
                rows["ai_messages"].append(
                    (
                        user_id,
                        r.id,
                        r.session_id,
                        r.role,
                        r.content,
                        _project_of_path(user_id, r.project_path),
                        r.project_path,
                        at,
                        version,
                    )
                )
            elif isinstance(r, AiFileActivity):
                rows["ai_activities"].append(
                    (
                        user_id,
                        r.id,
                        r.session_id,
                        r.file_path,
                        r.action,
                        r.lines_added,
                        r.lines_removed,
                        _project_of_path(user_id, r.project_path),
                        r.project_path,
                        at,
                        version,
                    )
                )
            elif isinstance(r, AiUsage):
                rows["ai_usage"].append(
                    (
                        user_id,
                        r.id,
                        r.session_id,
                        r.model,
                        r.message_id,
                        r.request_id,
                        r.input_tokens,
                        r.output_tokens,
                        r.cache_creation_tokens,
                        r.cache_read_tokens,
                        _project_of_path(user_id, r.project_path),
                        r.project_path,
                        at,
                        version,
                    )
                )
            else:
                assert isinstance(r, AiToolCall)
                rows["ai_tool_calls"].append(
                    (
                        user_id,
                        r.id,
                        r.session_id or "",
                        r.tool_name,
                        r.parameters,
                        r.result_status,
                        r.execution_time_ms,
                        _project_of_path(user_id, r.project_path),
                        r.project_path,
                        at,
                        version,
                    )
                )
        columns = {
            "ai_projects": _PROJECT_COLUMNS,
            "ai_sessions": _SESSION_COLUMNS,
            "ai_messages": _MESSAGE_COLUMNS,
            "ai_activities": _ACTIVITY_COLUMNS,
            "ai_tool_calls": _TOOL_COLUMNS,
            "ai_usage": _USAGE_COLUMNS,
        }
        for table, table_rows in rows.items():
            if not table_rows:
                continue
            names = columns[table]
            data = [list(column) for column in zip(*table_rows, strict=True)]
            with self._edge(f"insert {table}"):
                self._insert(table, names, data)

    def ai_session_origins(
        self, user_id: str, session_ids: Iterable[str]
    ) -> dict[str, SessionOrigin]:
        """Where these sessions of the user ran (from their earliest start), those known."""
        wanted = sorted(set(session_ids))
        found: dict[str, SessionOrigin] = {}
        for first in range(0, len(wanted), KEYS_PER_QUERY):
            with self._edge("read AI session origins"):
                rows = self._query(
                    "SELECT session_id, argMin(project_path, (time, record_id)),"
                    " argMin(assistant, (time, record_id))"
                    f" FROM {self._db}.ai_sessions FINAL"
                    " WHERE user_id = {user:String} AND kind = 'start'"
                    " AND session_id IN {ids:Array(String)} GROUP BY session_id",
                    {"user": user_id, "ids": wanted[first : first + KEYS_PER_QUERY]},
                )
            for session_id, path, assistant in rows:
                found[str(session_id)] = SessionOrigin(str(path or ""), str(assistant))
        return found

    def ai_known_ids(self, user_id: str, ids: Iterable[str]) -> set[str]:
        """Which of these record ids the user's AI tables hold already (an import run again)."""
        wanted = sorted(set(ids))
        found: set[str] = set()
        for first in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = {"user": user_id, "ids": wanted[first : first + KEYS_PER_QUERY]}
            sql = " UNION ALL ".join(
                f"SELECT {column} FROM {self._db}.{table}"
                f" WHERE user_id = {{user:String}} AND {column} IN {{ids:Array(String)}}"
                for table, column in (
                    ("ai_projects", "record_id"),
                    ("ai_sessions", "record_id"),
                    ("ai_messages", "message_id"),
                    ("ai_activities", "activity_id"),
                    ("ai_tool_calls", "call_id"),
                    ("ai_usage", "usage_id"),
                )
            )
            with self._edge("read known AI ids"):
                found |= {str(row[0]) for row in self._query(sql, chunk)}
        return found

    def erase_ai(self, user_id: str, start_epoch: float | None, end_epoch: float | None) -> None:
        """Remove the user's AI rows whose ``time`` is in ``[start, end)`` (``None``: unbounded),
        from every AI table, as the log's rewrite removes the records. Idempotent."""
        condition = "user_id = {user:String}"
        parameters: dict[str, Any] = {"user": user_id}
        if start_epoch is not None:
            condition += " AND time >= fromUnixTimestamp64Milli({t0:Int64}, 'UTC')"
            parameters["t0"] = stored_millis(start_epoch)
        if end_epoch is not None:
            condition += " AND time < fromUnixTimestamp64Milli({t1:Int64}, 'UTC')"
            parameters["t1"] = stored_millis(end_epoch)
        for table in AI_TABLES:
            sql = (
                f"ALTER TABLE {self._db}.`{table}` DELETE WHERE {condition}"
                " SETTINGS mutations_sync = 2"
            )
            with self._edge(f"erase from {table}"):
                self._client().command(sql, parameters=parameters)

    # ---- reads ----------------------------------------------------------------------------------

    def _sessions_sql(self) -> str:
        """One row per session of ``{user}``: its earliest start and latest end (ms)."""
        return (
            "SELECT session_id,"
            " minIf(time, kind = 'start') AS started,"
            " maxIf(time, kind = 'end') AS ended,"
            " countIf(kind = 'start') > 0 AS has_start,"
            " countIf(kind = 'end') > 0 AS has_end,"
            " argMinIf(project_id, (time, record_id), kind = 'start') AS sp,"
            " argMinIf(project_path, (time, record_id), kind = 'start') AS spath,"
            " argMinIf(client_user, (time, record_id), kind = 'start') AS client,"
            " argMinIf(assistant, (time, record_id), kind = 'start') AS assistant"
            f" FROM {self._db}.ai_sessions FINAL WHERE user_id = {{user:String}}"
            " GROUP BY session_id"
        )

    def ai_sessions(
        self,
        user_id: str,
        *,
        project_id: int | None = None,
        window: TimeWindow = ALL_TIME,
        session_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """The user's sessions that have a start (newest first), each with its counts."""
        parameters: dict[str, Any] = {"user": user_id}
        where = ["has_start", window.condition("started", parameters)]
        if project_id is not None:
            where.append("sp = {pid:Int64}")
            parameters["pid"] = project_id
        if session_id is not None:
            where.append("session_id = {sid:String}")
            parameters["sid"] = session_id
        limit_sql = ""
        if limit is not None:
            limit_sql = " LIMIT {limit:UInt32}"
            parameters["limit"] = limit
        sql = (
            "SELECT s.session_id, toUnixTimestamp64Milli(s.started),"
            " if(s.has_end, toUnixTimestamp64Milli(s.ended), NULL), s.sp, s.spath, s.client,"
            " s.assistant, ifNull(m.n, 0), ifNull(a.n, 0), ifNull(a.files, 0),"
            " ifNull(a.added, 0), ifNull(a.removed, 0), ifNull(t.n, 0)"
            f" FROM ({self._sessions_sql()}) AS s"
            " LEFT JOIN (SELECT session_id, count() AS n"
            f"  FROM {self._db}.ai_messages FINAL WHERE user_id = {{user:String}}"
            "  GROUP BY session_id) AS m ON m.session_id = s.session_id"
            " LEFT JOIN (SELECT session_id, count() AS n, uniqExact(file_path) AS files,"
            "  sum(lines_added) AS added, sum(lines_removed) AS removed"
            f"  FROM {self._db}.ai_activities FINAL WHERE user_id = {{user:String}}"
            "  GROUP BY session_id) AS a ON a.session_id = s.session_id"
            " LEFT JOIN (SELECT session_id, count() AS n"
            f"  FROM {self._db}.ai_tool_calls FINAL WHERE user_id = {{user:String}}"
            "  GROUP BY session_id) AS t ON t.session_id = s.session_id"
            f" WHERE {' AND '.join(where)}"
            f" ORDER BY s.started DESC, s.session_id{limit_sql}"
            " SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI sessions"):
            rows = self._query(sql, parameters)
        return [
            {
                "session_id": str(r[0]),
                "start_ms": int(r[1]),
                "end_ms": None if r[2] is None else int(r[2]),
                "project_id": None if r[3] is None else int(r[3]),
                "project_path": r[4],
                "client_user": r[5],
                "assistant": str(r[6]),
                "messages": int(r[7]),
                "activities": int(r[8]),
                "files": int(r[9]),
                "lines_added": int(r[10]),
                "lines_removed": int(r[11]),
                "tool_calls": int(r[12]),
            }
            for r in rows
        ]

    def ai_projects(self, user_id: str, project_id: int | None = None) -> list[dict[str, Any]]:
        """The user's projects with their totals (most recent session first)."""
        parameters: dict[str, Any] = {"user": user_id}
        only = ""
        if project_id is not None:
            only = " AND project_id = {pid:Int64}"
            parameters["pid"] = project_id
        sessions = self._sessions_sql()
        sql = (
            "SELECT p.project_id, p.path, p.name, toUnixTimestamp64Milli(p.created),"
            " ifNull(s.n, 0), ifNull(s.seconds, 0), s.last,"
            " ifNull(f.files, 0), ifNull(f.lines, 0)"
            " FROM (SELECT project_id, argMin(path, time) AS path, argMin(name, time) AS name,"
            f"  min(time) AS created FROM {self._db}.ai_projects FINAL"
            f"  WHERE user_id = {{user:String}}{only} GROUP BY project_id) AS p"
            " LEFT JOIN (SELECT sp AS project_id, count() AS n,"
            "  sumIf(dateDiff('millisecond', started, ended), has_end AND ended >= started)"
            "  / 1000 AS seconds,"
            "  toUnixTimestamp64Milli(max(started)) AS last"
            f"  FROM ({sessions}) WHERE has_start GROUP BY sp) AS s"
            " ON s.project_id = p.project_id"
            " LEFT JOIN (SELECT pid AS project_id, uniqExact(file_path) AS files,"
            "  sum(lines_added + lines_removed) AS lines FROM ("
            f"{self._resolved_sql('ai_activities', 'file_path, lines_added, lines_removed')}"
            ") GROUP BY pid) AS f ON f.project_id = p.project_id"
            " ORDER BY s.last DESC NULLS LAST, p.created DESC, p.project_id"
            " SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI projects"):
            rows = self._query(sql, parameters)
        return [
            {
                "project_id": int(r[0]),
                "path": str(r[1]),
                "name": str(r[2]),
                "created_ms": int(r[3]),
                "total_sessions": int(r[4]),
                "total_seconds": float(r[5]),
                "last_session_ms": None if r[6] is None else int(r[6]),
                "files_modified": int(r[7]),
                "lines_changed": int(r[8]),
            }
            for r in rows
        ]

    def _resolved_sql(self, table: str, columns: str) -> str:
        """Rows of ``table`` of ``{user}`` with ``pid``, the project they belong to: their
        session's (from its start), else the one their record named."""
        return (
            f"SELECT x.*, if(isNull(s.sp), x.project_id, s.sp) AS pid"
            f" FROM (SELECT session_id, project_id, time, {columns}"
            f"  FROM {self._db}.{table} FINAL WHERE user_id = {{user:String}}) AS x"
            " LEFT JOIN (SELECT session_id, argMin(project_id, (time, record_id)) AS sp"
            f"  FROM {self._db}.ai_sessions FINAL"
            "  WHERE user_id = {user:String} AND kind = 'start' GROUP BY session_id) AS s"
            " ON s.session_id = x.session_id"
        )

    def ai_project_series(
        self, user_id: str, project_id: int, timezone: str
    ) -> dict[str, list[tuple[Any, ...]]]:
        """A project's activity per local day (in ``timezone``): messages, file activities with
        lines added and removed, tool calls, sessions started; and its top files and tools."""
        parameters: dict[str, Any] = {"user": user_id, "pid": project_id, "tz": timezone}
        day = "toDate(time, {tz:String})"
        out: dict[str, list[tuple[Any, ...]]] = {}
        queries = {
            "messages": (
                f"SELECT {day} AS d, count(), countIf(role = 'user'), countIf(role = 'assistant')"
                f" FROM ({self._resolved_sql('ai_messages', 'role')})"
                " WHERE pid = {pid:Int64} GROUP BY d ORDER BY d"
            ),
            "activities": (
                f"SELECT {day} AS d, count(), sum(lines_added), sum(lines_removed),"
                " uniqExact(file_path)"
                f" FROM ({self._resolved_sql('ai_activities', 'file_path, lines_added, lines_removed')})"  # noqa: E501
                " WHERE pid = {pid:Int64} GROUP BY d ORDER BY d"
            ),
            "tool_calls": (
                f"SELECT {day} AS d, count()"
                f" FROM ({self._resolved_sql('ai_tool_calls', 'tool_name')})"
                " WHERE pid = {pid:Int64} GROUP BY d ORDER BY d"
            ),
            "sessions": (
                "SELECT toDate(started, {tz:String}) AS d, count(),"
                " sumIf(dateDiff('millisecond', started, ended), has_end AND ended >= started)"
                f" / 1000 FROM ({self._sessions_sql()}) WHERE has_start AND sp = {{pid:Int64}}"
                " GROUP BY d ORDER BY d"
            ),
            "files": (
                "SELECT file_path, count(), sum(lines_added), sum(lines_removed)"
                f" FROM ({self._resolved_sql('ai_activities', 'file_path, lines_added, lines_removed')})"  # noqa: E501
                " WHERE pid = {pid:Int64} GROUP BY file_path ORDER BY count() DESC, file_path"
                " LIMIT 20"
            ),
            "actions": (
                "SELECT action, count()"
                f" FROM ({self._resolved_sql('ai_activities', 'action')})"
                " WHERE pid = {pid:Int64} GROUP BY action ORDER BY action"
            ),
        }
        for name, sql in queries.items():
            with self._edge(f"read AI project {name}"):
                out[name] = [tuple(row) for row in self._query(sql, parameters)]
        return out

    def ai_messages(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        project_id: int | None = None,
        role: str | None = None,
        window: TimeWindow = ALL_TIME,
        search: SearchQuery | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """A page of the user's messages (newest first, or by relevance when searching) and how
        many match in all. A search ranks by how often its words occur (each word's count
        dampened by a logarithm, divided by the square root of the message's length in tokens),
        doubled for a message holding every phrase; ties go to the newer message."""
        parameters: dict[str, Any] = {"user": user_id, "limit": limit, "offset": offset}
        where = [window.condition("time", parameters)]
        if session_id is not None:
            where.append("session_id = {sid:String}")
            parameters["sid"] = session_id
        if project_id is not None:
            where.append("pid = {pid:Int64}")
            parameters["pid"] = project_id
        if role is not None:
            where.append("role = {role:String}")
            parameters["role"] = role
        score = "0"
        order = "time DESC, message_id"
        if search is not None:
            terms = []
            for index, word in enumerate(search.words):
                parameters[f"w{index}"] = word
                where.append(f"hasToken(lower(content), {{w{index}:String}})")
                terms.append(
                    f"log(1 + arrayCount(t -> t = {{w{index}:String}}, tokens(lower(content))))"
                )
            for index, phrase in enumerate(search.phrases):
                parameters[f"p{index}"] = _like_pattern(phrase)
                where.append(f"lower(content) LIKE {{p{index}:String}}")
            length = "sqrt(greatest(1, length(tokens(content))))"
            tf = " + ".join(terms) if terms else "1"
            bonus = "2" if search.phrases else "1"
            score = f"({tf}) * {bonus} / {length}"
            order = "score DESC, time DESC, message_id"
        matching = (
            f"FROM ({self._resolved_sql('ai_messages', 'message_id, role, content')})"
            f" WHERE {' AND '.join(where)}"
        )
        sql = (
            "SELECT message_id, session_id, role, content, toUnixTimestamp64Milli(time), pid,"
            f" {score} AS score, count() OVER () AS total {matching}"
            f" ORDER BY {order} LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}"
            " SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI messages"):
            rows = self._query(sql, parameters)
            total = int(rows[0][7]) if rows else 0
            if not rows and offset > 0:  # a page past the end: no row tells the total
                counted = f"SELECT count() {matching} SETTINGS join_use_nulls = 1"
                total = int(self._query(counted, parameters)[0][0])
        return total, [
            {
                "message_id": str(r[0]),
                "session_id": str(r[1]),
                "role": str(r[2]),
                "content": str(r[3]),
                "time_ms": int(r[4]),
                "project_id": None if r[5] is None else int(r[5]),
                "score": float(r[6]),
            }
            for r in rows
        ]

    def ai_activities(
        self,
        user_id: str,
        *,
        session_id: str | None = None,
        project_id: int | None = None,
        file_path: str | None = None,
        action: str | None = None,
        window: TimeWindow = ALL_TIME,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The user's file activities, newest first."""
        parameters: dict[str, Any] = {"user": user_id, "limit": limit, "offset": offset}
        where = [window.condition("time", parameters)]
        for column, value, kind in (
            ("session_id", session_id, "String"),
            ("pid", project_id, "Int64"),
            ("file_path", file_path, "String"),
            ("action", action, "String"),
        ):
            if value is not None:
                where.append(f"{column} = {{{column}:{kind}}}")
                parameters[column] = value
        sql = (
            "SELECT activity_id, session_id, file_path, action, lines_added, lines_removed,"
            " toUnixTimestamp64Milli(time), pid"
            " FROM ("
            f"{self._resolved_sql('ai_activities', 'activity_id, file_path, action, lines_added, lines_removed')}"  # noqa: E501
            f") WHERE {' AND '.join(where)}"
            " ORDER BY time DESC, activity_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}"
            " SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI activities"):
            rows = self._query(sql, parameters)
        return [
            {
                "activity_id": str(r[0]),
                "session_id": str(r[1]),
                "file_path": str(r[2]),
                "action": str(r[3]),
                "lines_added": int(r[4]),
                "lines_removed": int(r[5]),
                "time_ms": int(r[6]),
                "project_id": None if r[7] is None else int(r[7]),
            }
            for r in rows
        ]

    def ai_tool_calls(
        self, user_id: str, *, session_id: str, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The tool calls of one session of the user, in time order."""
        sql = (
            "SELECT call_id, session_id, tool_name, parameters, result_status,"
            " execution_time_ms, toUnixTimestamp64Milli(time)"
            f" FROM {self._db}.ai_tool_calls FINAL"
            " WHERE user_id = {user:String} AND session_id = {sid:String}"
            " ORDER BY time, call_id LIMIT {limit:UInt32}"
        )
        with self._edge("read AI tool calls"):
            rows = self._query(sql, {"user": user_id, "sid": session_id, "limit": limit})
        return [
            {
                "call_id": str(r[0]),
                "session_id": str(r[1]),
                "tool_name": str(r[2]),
                "parameters": str(r[3]),
                "result_status": str(r[4]),
                "execution_time_ms": None if r[5] is None else float(r[5]),
                "time_ms": int(r[6]),
            }
            for r in rows
        ]

    def ai_tool_stats(
        self, user_id: str, *, project_id: int | None = None, window: TimeWindow = ALL_TIME
    ) -> list[ToolStats]:
        """Per tool: calls, successes, and execution time p50/p95/mean (ms), computed by
        ClickHouse (``quantileExactInclusive``, the interpolation of ``projections.ai``)."""
        parameters: dict[str, Any] = {"user": user_id}
        where = [window.condition("time", parameters)]
        if project_id is not None:
            where.append("pid = {pid:Int64}")
            parameters["pid"] = project_id
        sql = (
            "SELECT tool_name, count(),"
            " countIf(lower(result_status) IN ('success', 'ok', 'succeeded', 'completed')),"
            " quantileExactInclusiveIf(0.5)(execution_time_ms, isNotNull(execution_time_ms)),"
            " quantileExactInclusiveIf(0.95)(execution_time_ms, isNotNull(execution_time_ms)),"
            " avgIf(execution_time_ms, isNotNull(execution_time_ms)),"
            " countIf(isNotNull(execution_time_ms))"
            f" FROM ({self._resolved_sql('ai_tool_calls', 'tool_name, result_status, execution_time_ms')})"  # noqa: E501
            f" WHERE {' AND '.join(where)}"
            " GROUP BY tool_name ORDER BY count() DESC, tool_name SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI tool stats"):
            rows = self._query(sql, parameters)
        return [
            ToolStats(
                tool_name=str(r[0]),
                count=int(r[1]),
                success_count=int(r[2]),
                p50_ms=float(r[3]) if r[6] else None,
                p95_ms=float(r[4]) if r[6] else None,
                avg_ms=float(r[5]) if r[6] else None,
            )
            for r in rows
        ]

    def _usage_sql(self, window: TimeWindow, parameters: dict[str, Any]) -> str:
        """The user's usage rows, one per request (the earliest copy of an id read twice), with
        ``pid``, the project (its session's, else the one its record named), in ``window``."""
        return (
            "SELECT u.*, if(isNull(s.sp), u.project_id, s.sp) AS pid FROM ("
            "SELECT usage_id, session_id, model, input_tokens, output_tokens,"
            " cache_creation_tokens, cache_read_tokens, project_id, time"
            f" FROM {self._db}.ai_usage FINAL WHERE user_id = {{user:String}}"
            " ORDER BY usage_id, time LIMIT 1 BY usage_id) AS u"
            " LEFT JOIN (SELECT session_id, argMin(project_id, (time, record_id)) AS sp"
            f"  FROM {self._db}.ai_sessions FINAL"
            "  WHERE user_id = {user:String} AND kind = 'start' GROUP BY session_id) AS s"
            " ON s.session_id = u.session_id"
            f" WHERE {window.condition('u.time', parameters)}"
        )

    def ai_usage_sums(
        self,
        user_id: str,
        group: str,
        *,
        timezone: str = "UTC",
        window: TimeWindow = ALL_TIME,
        project_id: int | None = None,
    ) -> list[tuple[str, str, UsageSums, int, int]]:
        """Per ``group`` (a key of :data:`USAGE_GROUPS`) and model: the requests' token sums
        (with the parts past the pricing threshold) and the first and last request (epoch ms),
        the groups in time order of their first request."""
        parameters: dict[str, Any] = {"user": user_id, "tz": timezone}
        inner = self._usage_sql(window, parameters)
        where = ""
        if project_id is not None:
            where = " WHERE pid = {pid:Int64}"
            parameters["pid"] = project_id
        sums = ", ".join(
            f"sum({column}), sum(greatest({column}, {_THRESHOLD}) - {_THRESHOLD})"
            for column in (
                "input_tokens",
                "output_tokens",
                "cache_creation_tokens",
                "cache_read_tokens",
            )
        )
        sql = (
            f"SELECT {USAGE_GROUPS[group]} AS k, model, count(), {sums},"
            " toUnixTimestamp64Milli(min(time)) AS first, toUnixTimestamp64Milli(max(time))"
            f" FROM ({inner}){where} GROUP BY k, model"
            " ORDER BY min(first) OVER (PARTITION BY k), k, model"
            " SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI usage"):
            rows = self._query(sql, parameters)
        out = []
        for r in rows:
            tokens = {kind: int(r[3 + 2 * i]) for i, kind in enumerate(KINDS)}
            above = {kind: int(r[4 + 2 * i]) for i, kind in enumerate(KINDS)}
            out.append(
                (str(r[0]), str(r[1]), UsageSums(int(r[2]), tokens, above), int(r[11]), int(r[12]))
            )
        return out

    def ai_usage_entries(
        self, user_id: str, *, window: TimeWindow = ALL_TIME, project_id: int | None = None
    ) -> list[UsageEntry]:
        """The user's requests in ``window``, one per id, in time order."""
        parameters: dict[str, Any] = {"user": user_id}
        inner = self._usage_sql(window, parameters)
        where = ""
        if project_id is not None:
            where = " WHERE pid = {pid:Int64}"
            parameters["pid"] = project_id
        sql = (
            "SELECT toUnixTimestamp64Milli(time), model, input_tokens, output_tokens,"
            f" cache_creation_tokens, cache_read_tokens FROM ({inner}){where}"
            " ORDER BY time, usage_id SETTINGS join_use_nulls = 1"
        )
        with self._edge("read AI usage requests"):
            rows = self._query(sql, parameters)
        return [
            UsageEntry(int(r[0]), str(r[1]), dict(zip(KINDS, map(int, r[2:6]), strict=True)))
            for r in rows
        ]

    def ai_line_changes(
        self, user_id: str, first: date | None = None, last: date | None = None
    ) -> list[tuple[date, str, int, int]]:
        """Per local day and project (``""``: none), the lines the heartbeats say an assistant
        changed (``ai_line_changes``: the AI file activities' and what editors report) and those
        changed by hand (``human_line_changes``); deleted heartbeats left out, days in order."""
        parameters: dict[str, Any] = {"user": user_id}
        where = ["user_id = {user:String}"]
        if first is not None:
            where.append("local_date >= {first:Date}")
            parameters["first"] = first
        if last is not None:
            where.append("local_date <= {last:Date}")
            parameters["last"] = last
        sql = (
            "SELECT local_date, ifNull(project, '') AS p,"
            " sum(ifNull(ai_line_changes, 0)) AS ai, sum(ifNull(human_line_changes, 0)) AS hand"
            f" FROM {self._db}.heartbeats FINAL WHERE {' AND '.join(where)}"
            " AND (user_id, local_date, event_id) NOT IN (SELECT user_id, local_date, event_id"
            f"  FROM {self._db}.heartbeat_deletions WHERE user_id = {{user:String}})"
            " GROUP BY local_date, p HAVING ai != 0 OR hand != 0 ORDER BY local_date, p"
        )
        with self._edge("read AI line changes"):
            rows = self._query(sql, parameters)
        return [(r[0], str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def stream_ai_rows(
        self, user_id: str, table: str, *, block_rows: int = 5000
    ) -> Iterator[list[dict[str, Any]]]:
        """The user's rows of one AI table (``AI_EXPORT_COLUMNS``), in time order, in blocks."""
        names = AI_EXPORT_COLUMNS[table]
        columns = ", ".join(
            "toUnixTimestamp64Milli(time)" if name == "time" else f"`{name}`" for name in names
        )
        with self._edge(f"export {table}"):
            rows = self._query(
                f"SELECT {columns} FROM {self._db}.`{table}` FINAL"
                " WHERE user_id = {user:String} ORDER BY time, 1",
                {"user": user_id},
            )
        for first in range(0, len(rows), block_rows):
            block = []
            for row in rows[first : first + block_rows]:
                record = dict(zip(names, row, strict=True))
                record["time"] = int(record["time"]) / 1000
                block.append(record)
            yield block
