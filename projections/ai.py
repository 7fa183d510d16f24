"""Pure rules of AI coding activity (docs/ai.md): the heartbeats a record stands for, the rows
the API reads, tool-call statistics.

**AI time is heartbeat time.** Each activity record of a session (its start and end, a message, a
file activity, a tool call) stands for one heartbeat of category ``ai coding`` with the
assistant as editor (``Claude Code``), in the session's project, stamped with the timezone the
request was received in. The projector archives them with the user's other heartbeats, so the
one durations rule (:mod:`projections.durations`) counts them: gaps under the timeout join
them into time, a session idle for an hour is not an hour of work, and an hour in which the user
also edits by hand is counted once, because the fold measures the union of everyone's coverage
whatever the editor or category. Their ids are deterministic (``heartbeat_event_id``): a record
sent twice is one heartbeat.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.ai import (
    ASSISTANT,
    AiFileActivity,
    AiProject,
    AiRecord,
    AiSessionStart,
    AiToolCall,
    AiUsage,
    project_name_of,
)
from schemas.heartbeat import MAX_DURATION_SECONDS, Heartbeat, heartbeat_event_id

__all__ = [
    "AI_CATEGORY",
    "AI_EXPORT_COLUMNS",
    "ALL_TIME",
    "SearchQuery",
    "SessionOrigin",
    "TimeWindow",
    "ToolStats",
    "ai_heartbeats",
    "percentile",
    "session_origins_in",
    "stamped",
    "tool_stats",
]

AI_CATEGORY = "ai coding"


@dataclass(frozen=True, slots=True)
class SessionOrigin:
    """Where a session ran: its project's path and the assistant (from its start record)."""

    project_path: str
    assistant: str = ASSISTANT


def session_origins_in(records: Iterable[AiRecord]) -> dict[str, SessionOrigin]:
    """The origins the start records among ``records`` tell (the earliest start of a session
    wins, as the tables' reads decide)."""
    starts = sorted(
        (r for r in records if isinstance(r, AiSessionStart)), key=lambda r: (r.time, r.id)
    )
    found: dict[str, SessionOrigin] = {}
    for start in starts:
        found.setdefault(start.session_id, SessionOrigin(start.project_path, start.assistant))
    return found


def _file_of_parameters(parameters: str) -> str | None:
    """The file a tool call names (``file_path``/``path``/``notebook_path``), if any."""
    try:
        value = json.loads(parameters)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    for name in ("file_path", "path", "notebook_path"):
        found = value.get(name)
        if isinstance(found, str) and found.strip():
            return found.strip()[:2048]
    return None


def stamped(record: AiRecord, origin: SessionOrigin | None) -> AiRecord:
    """Pure: ``record`` with where its session runs (``origin``), unless it names that itself.

    The API stamps each record it receives with its session's origin (from the client, a
    hook's working directory, or the session's start), so the heartbeat the record stands for
    is derived from the record alone: the same in a replay as live, whatever was erased since.
    The record's id does not change (a retry collapses with the first copy).
    """
    if origin is None or isinstance(record, AiProject | AiSessionStart):
        return record
    update: dict[str, Any] = {}
    if record.project_path is None and origin.project_path:
        update["project_path"] = origin.project_path
    if record.assistant is None:
        update["assistant"] = origin.assistant
    return record.model_copy(update=update) if update else record


def ai_heartbeats(
    user_id: str,
    records: Sequence[AiRecord],
    *,
    timezone: str,
    received_at: float,
) -> list[Heartbeat]:
    """Pure: the heartbeats ``records`` (one event's) stand for (see the module docs).

    A record's project and assistant are its own (stamped when received, :func:`stamped`), else
    those of its session's start in the same event. A project record is no activity and stands
    for nothing.
    """
    origins = session_origins_in(records)
    beats: list[Heartbeat] = []
    for record in records:
        if isinstance(record, AiProject | AiUsage):  # no activity of its own
            continue
        origin = origins.get(record.session_id or "")
        if isinstance(record, AiSessionStart):
            project_path: str | None = record.project_path
            assistant = record.assistant
        else:
            project_path = record.project_path or (origin.project_path if origin else None)
            assistant = record.assistant or (origin.assistant if origin else ASSISTANT)
        entity, kind, is_write, duration = assistant, "app", False, 0.0
        ai_lines: int | None = None
        if isinstance(record, AiFileActivity):
            entity, kind, is_write = record.file_path, "file", True
            ai_lines = record.lines_added + record.lines_removed
        elif isinstance(record, AiToolCall):
            named = _file_of_parameters(record.parameters)
            if named is not None:
                entity, kind = named, "file"
            if record.execution_time_ms is not None:
                duration = min(record.execution_time_ms / 1000.0, MAX_DURATION_SECONDS)
        project = project_name_of(project_path) if project_path else None
        beats.append(
            Heartbeat(
                event_id=heartbeat_event_id(
                    user_id=user_id,
                    entity=entity,
                    type=kind,
                    category=AI_CATEGORY,
                    project=project,
                    branch=None,
                    language=None,
                    is_write=is_write,
                    time=record.time,
                ),
                user_id=user_id,
                time=record.time,
                entity=entity,
                type=kind,
                category=AI_CATEGORY,
                project=project,
                is_write=is_write,
                duration=duration,
                workspace_root=project_path,
                editor=assistant,
                plugin="codetrackr-ai",
                ai_line_changes=ai_lines,
                timezone=timezone,
                received_at=received_at,
                source="codetrackr",
            )
        )
    return beats


# -- exports -------------------------------------------------------------------------------------

# What an export holds of each AI table, in this order (times as epoch seconds): every column
# but the owner and the bookkeeping. Both stores stream rows keyed by exactly these names.
AI_EXPORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "ai_projects": ("record_id", "project_id", "path", "name", "time"),
    "ai_sessions": (
        "record_id",
        "session_id",
        "kind",
        "time",
        "project_id",
        "project_path",
        "client_user",
        "assistant",
    ),
    "ai_messages": (
        "message_id",
        "session_id",
        "role",
        "content",
        "project_id",
        "project_path",
        "time",
    ),
    "ai_activities": (
        "activity_id",
        "session_id",
        "file_path",
        "action",
        "lines_added",
        "lines_removed",
        "project_id",
        "project_path",
        "time",
    ),
    "ai_tool_calls": (
        "call_id",
        "session_id",
        "tool_name",
        "parameters",
        "result_status",
        "execution_time_ms",
        "project_id",
        "project_path",
        "time",
    ),
    "ai_usage": (
        "usage_id",
        "session_id",
        "model",
        "message_id",
        "request_id",
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
        "project_id",
        "project_path",
        "time",
    ),
}


# -- reads: time windows and searches -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Optional bounds on a record's time, epoch milliseconds (``start <= time < end``)."""

    start_ms: int | None = None
    end_ms: int | None = None

    def condition(self, column: str, parameters: dict[str, Any]) -> str:
        parts = []
        if self.start_ms is not None:
            parts.append(f"{column} >= fromUnixTimestamp64Milli({{since:Int64}}, 'UTC')")
            parameters["since"] = self.start_ms
        if self.end_ms is not None:
            parts.append(f"{column} < fromUnixTimestamp64Milli({{until:Int64}}, 'UTC')")
            parameters["until"] = self.end_ms
        return " AND ".join(parts) or "1"


ALL_TIME = TimeWindow()


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A conversation search: every word must occur as a token, every phrase as a substring
    (both lower-cased); filters as in :meth:`AiTables.messages`."""

    words: tuple[str, ...]
    phrases: tuple[str, ...]


# -- tool-call statistics -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolStats:
    """One tool's calls: how many, how many succeeded, and execution time percentiles (ms;
    ``None`` when no call reported one)."""

    tool_name: str
    count: int
    success_count: int
    p50_ms: float | None
    p95_ms: float | None
    avg_ms: float | None

    @property
    def success_rate(self) -> float:
        return round(self.success_count / self.count, 4) if self.count else 0.0


SUCCESS_STATUSES = frozenset({"success", "ok", "succeeded", "completed"})


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Pure: the ``fraction`` percentile of ``values`` by linear interpolation between the
    closest ranks (numpy's default, and ClickHouse's ``quantileExactInclusive``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def tool_stats(calls: Iterable[tuple[str, str, float | None]]) -> list[ToolStats]:
    """Pure: per tool, from ``(tool_name, result_status, execution_time_ms)`` of its calls;
    most used first, then by name."""
    by_tool: dict[str, list[tuple[str, float | None]]] = {}
    for name, status, elapsed in calls:
        by_tool.setdefault(name, []).append((status, elapsed))
    stats = []
    for name, rows in by_tool.items():
        times = [elapsed for _, elapsed in rows if elapsed is not None]
        stats.append(
            ToolStats(
                tool_name=name,
                count=len(rows),
                success_count=sum(status.lower() in SUCCESS_STATUSES for status, _ in rows),
                p50_ms=percentile(times, 0.5),
                p95_ms=percentile(times, 0.95),
                avg_ms=sum(times) / len(times) if times else None,
            )
        )
    return sorted(stats, key=lambda s: (-s.count, s.tool_name))
