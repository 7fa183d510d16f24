"""Pure rules of the AI API (docs/ai.md): times and date filters, search queries and their
highlighted snippets, the answers' shapes, and what an imported ``claude.json`` holds.

No web framework and no store: bad input raises :class:`http_edge.problem.ApiError`.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from http_edge.problem import ApiError
from projections.ai import ALL_TIME, SearchQuery, TimeWindow, ToolStats
from schemas.ai import AiMessage as _Message
from schemas.ai import AiProject as _Project
from schemas.ai import (
    AiRecord,
    ai_id,
    file_activity_record,
    message_record,
    project_id_of,
    session_end_record,
    session_start_record,
    tool_call_record,
)
from schemas.ai import AiSessionStart as _Start
from schemas.heartbeat import MAX_FUTURE_SECONDS, MIN_TIME

__all__ = [
    "ImportPlan",
    "blocks_view",
    "date_window",
    "day_range",
    "iso_ms",
    "lines_view",
    "moment",
    "parse_search",
    "plan_import",
    "session_lengths_view",
    "snippet",
    "usage_view",
]


# -- times -------------------------------------------------------------------------------------


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ISO 8601 in UTC (``2024-01-15T10:30:00Z``, milliseconds when any)."""
    if ms is None:
        return None
    moment_ = datetime.fromtimestamp(ms / 1000, UTC)
    text = moment_.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")


def moment(value: Any, timezone: str, *, now: float, name: str) -> float:
    """Epoch seconds from what a client sent as a time: ISO 8601 (a time without an offset is
    in ``timezone``, the user's), or epoch seconds; absent means ``now``. Refused (400) when it
    is not a time, before 2000 or more than a day ahead, as a heartbeat's time is."""
    if value is None or value == "":
        return now
    if isinstance(value, bool):
        raise _bad(name, "must be an ISO 8601 time or epoch seconds")
    if isinstance(value, int | float):
        epoch = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise _bad(name, "must be an ISO 8601 time, e.g. 2024-01-15T10:30:00") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
        epoch = parsed.timestamp()
    else:
        raise _bad(name, "must be an ISO 8601 time or epoch seconds")
    if not math.isfinite(epoch) or epoch < MIN_TIME or epoch > now + MAX_FUTURE_SECONDS:
        raise _bad(name, "must be after 2000-01-01 and not more than a day ahead")
    return epoch


def _bad(name: str, problem: str) -> ApiError:
    return ApiError(
        400,
        f"invalid {name}: {problem}",
        code="validation_error",
        details={"fields": {name: problem}},
    )


def _bound(value: str, timezone: str, *, name: str, end: bool) -> int:
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:  # a date bound is the whole day: up to the next midnight
                day += timedelta(days=1)
            instant = datetime.combine(day, time(), tzinfo=ZoneInfo(timezone))
        else:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=ZoneInfo(timezone))
    except (ValueError, OverflowError):
        raise _bad(name, "must be a date (2024-01-15) or an ISO 8601 time") from None
    return round(instant.timestamp() * 1000)


def date_window(start: str | None, end: str | None, timezone: str) -> TimeWindow:
    """``start_date``/``end_date`` filters: dates are whole days in the user's timezone, both
    included; times are exact instants (``end`` excluded). 400 when ``start`` is after ``end``."""
    if start is None and end is None:
        return ALL_TIME
    window = TimeWindow(
        start_ms=None if start is None else _bound(start, timezone, name="start_date", end=False),
        end_ms=None if end is None else _bound(end, timezone, name="end_date", end=True),
    )
    if (
        window.start_ms is not None
        and window.end_ms is not None
        and window.start_ms >= window.end_ms
    ):
        raise _bad("end_date", "must be after start_date")
    return window


# -- search ------------------------------------------------------------------------------------

# ClickHouse's token filter (tokenbf_v1, hasToken) splits text at every ASCII character that is
# not a letter or a digit; bytes of other characters belong to tokens. The same rule here.
_TOKEN = re.compile(r"[0-9a-z\u0080-\U0010ffff]+")
_PHRASE = re.compile(r'"([^"]*)"')
MAX_QUERY = 500
MAX_TERMS = 16


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def parse_search(q: str | None) -> SearchQuery:
    """Pure: ``q`` as words (every one must occur as a whole word) and ``"quoted phrases"``
    (each must occur as written, case aside). 400 for a query without any word."""
    text = (q or "").strip()
    if len(text) > MAX_QUERY:
        raise _bad("q", f"at most {MAX_QUERY} characters")
    phrases = tuple(dict.fromkeys(p.strip().lower() for p in _PHRASE.findall(text) if tokens(p)))
    words = tuple(dict.fromkeys(tokens(_PHRASE.sub(" ", text))))
    # A phrase's words are words of the message too: the token index can skip on them.
    indexed = tuple(dict.fromkeys([*words, *(w for p in phrases for w in tokens(p))]))
    if not indexed:
        raise _bad("q", "must hold at least one word")
    if len(indexed) > MAX_TERMS:
        raise _bad("q", f"at most {MAX_TERMS} words")
    return SearchQuery(words=indexed, phrases=phrases)


def snippet(content: str, query: SearchQuery, *, width: int = 200) -> str:
    """Pure: the part of ``content`` around its first match, about ``width`` characters, as
    HTML-escaped text with every matched word and phrase in ``<mark>``; ``…`` marks a cut."""
    lower = content.lower()
    spans: list[tuple[int, int]] = []
    for phrase in query.phrases:
        spans += [(m.start(), m.end()) for m in re.finditer(re.escape(phrase), lower)]
    for word in query.words:
        pattern = rf"(?<![0-9a-z\u0080-\U0010ffff]){re.escape(word)}(?![0-9a-z\u0080-\U0010ffff])"
        spans += [(m.start(), m.end()) for m in re.finditer(pattern, lower)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    first = merged[0][0] if merged else 0
    begin = max(0, min(first - width // 3, len(content) - width))
    finish = min(len(content), begin + width)
    out = ["…" if begin > 0 else ""]
    cursor = begin
    for start, end in merged:
        if end <= begin or start >= finish:
            continue
        start, end = max(start, begin), min(end, finish)
        out.append(html.escape(content[cursor:start]))
        out.append(f"<mark>{html.escape(content[start:end])}</mark>")
        cursor = end
    out.append(html.escape(content[cursor:finish]))
    out.append("…" if finish < len(content) else "")
    return "".join(out)


# -- answers -----------------------------------------------------------------------------------


def project_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["project_id"],
        "name": row["name"],
        "path": row["path"],
        "total_sessions": row["total_sessions"],
        "total_time_minutes": round(row["total_seconds"] / 60, 2),
        "files_modified_count": row["files_modified"],
        "lines_changed_count": row["lines_changed"],
        "last_session": iso_ms(row["last_session_ms"]),
        "created_at": iso_ms(row["created_ms"]),
    }


def session_view(row: Mapping[str, Any]) -> dict[str, Any]:
    end = row["end_ms"]
    minutes = None if end is None else round(max(0, end - row["start_ms"]) / 60000, 2)
    return {
        "session_id": row["session_id"],
        "project_id": row["project_id"],
        "project_path": row["project_path"],
        "start_time": iso_ms(row["start_ms"]),
        "end_time": iso_ms(end),
        "duration_minutes": minutes,
        "user": row["client_user"],
        "assistant": row["assistant"],
        "messages_count": row["messages"],
        "activities_count": row["activities"],
        "tool_calls_count": row["tool_calls"],
        "files_modified_count": row["files"],
        "lines_added": row["lines_added"],
        "lines_removed": row["lines_removed"],
    }


def message_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["message_id"],
        "session_id": row["session_id"],
        "project_id": row["project_id"],
        "role": row["role"],
        "content": row["content"],
        "timestamp": iso_ms(row["time_ms"]),
    }


def search_hit_view(row: Mapping[str, Any], query: SearchQuery) -> dict[str, Any]:
    return {
        **message_view(row),
        "score": round(row["score"], 6),
        "snippet": snippet(row["content"], query),
    }


def activity_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["activity_id"],
        "session_id": row["session_id"],
        "project_id": row["project_id"],
        "file_path": row["file_path"],
        "action": row["action"],
        "lines_added": row["lines_added"],
        "lines_removed": row["lines_removed"],
        "timestamp": iso_ms(row["time_ms"]),
    }


def tool_call_view(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        parameters: Any = json.loads(row["parameters"])
    except ValueError:
        parameters = row["parameters"]
    return {
        "id": row["call_id"],
        "session_id": row["session_id"] or None,
        "tool_name": row["tool_name"],
        "parameters": parameters,
        "result_status": row["result_status"],
        "execution_time_ms": row["execution_time_ms"],
        "timestamp": iso_ms(row["time_ms"]),
    }


def tool_stats_view(stats: Sequence[ToolStats]) -> dict[str, Any]:
    total = sum(s.count for s in stats)
    succeeded = sum(s.success_count for s in stats)
    return {
        "total_calls": total,
        "success_rate": round(succeeded / total, 4) if total else 0.0,
        "tools": [
            {
                "tool_name": s.tool_name,
                "count": s.count,
                "success_count": s.success_count,
                "success_rate": s.success_rate,
                "p50_execution_time_ms": _ms(s.p50_ms),
                "p95_execution_time_ms": _ms(s.p95_ms),
                "avg_execution_time_ms": _ms(s.avg_ms),
            }
            for s in stats
        ],
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def project_stats_view(
    project: Mapping[str, Any],
    series: Mapping[str, Sequence[Sequence[Any]]],
    tools: Sequence[ToolStats],
) -> dict[str, Any]:
    """A project's totals and its time series, one entry per local day with any activity."""
    days: dict[str, dict[str, Any]] = {}

    def day(value: Any) -> dict[str, Any]:
        key = value.isoformat()
        return days.setdefault(
            key,
            {
                "date": key,
                "sessions": 0,
                "session_minutes": 0.0,
                "messages": 0,
                "user_messages": 0,
                "assistant_messages": 0,
                "file_activities": 0,
                "files_modified": 0,
                "lines_added": 0,
                "lines_removed": 0,
                "tool_calls": 0,
            },
        )

    for d, n, seconds in series.get("sessions", ()):
        entry = day(d)
        entry["sessions"], entry["session_minutes"] = int(n), round(float(seconds) / 60, 2)
    for d, n, by_user, by_assistant in series.get("messages", ()):
        entry = day(d)
        entry["messages"] = int(n)
        entry["user_messages"], entry["assistant_messages"] = int(by_user), int(by_assistant)
    for d, n, added, removed, files in series.get("activities", ()):
        entry = day(d)
        entry["file_activities"], entry["files_modified"] = int(n), int(files)
        entry["lines_added"], entry["lines_removed"] = int(added), int(removed)
    for d, n in series.get("tool_calls", ()):
        day(d)["tool_calls"] = int(n)
    time_series = [days[key] for key in sorted(days)]
    return {
        "project": project_view(project),
        "totals": {
            "sessions": project["total_sessions"],
            "time_minutes": round(project["total_seconds"] / 60, 2),
            "messages": sum(e["messages"] for e in time_series),
            "file_activities": sum(e["file_activities"] for e in time_series),
            "files_modified": project["files_modified"],
            "lines_added": sum(e["lines_added"] for e in time_series),
            "lines_removed": sum(e["lines_removed"] for e in time_series),
            "tool_calls": sum(e["tool_calls"] for e in time_series),
            "active_days": len(time_series),
        },
        "time_series": time_series,
        "top_files": [
            {
                "file_path": str(path),
                "activities": int(n),
                "lines_added": int(added),
                "lines_removed": int(removed),
            }
            for path, n, added, removed in series.get("files", ())
        ],
        "actions": {str(action): int(n) for action, n in series.get("actions", ())},
        "tools": tool_stats_view(tools)["tools"],
    }


# -- token usage ----------------------------------------------------------------------------------


def _times_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in entry.items():
        if name.endswith("_ms") and (value is None or isinstance(value, int)):
            out[name[:-3]] = iso_ms(value)
        else:
            out[name] = value
    return out


def usage_view(report: Mapping[str, Any], name: str, timezone: str) -> dict[str, Any]:
    """A usage report (:func:`projections.ai_usage.usage_report`) as the API answers it: its
    entries under ``name``, times as ISO 8601 UTC, and the timezone its days are in."""
    return {
        name: [_times_view(entry) for entry in report["entries"]],
        "totals": report["totals"],
        "unpriced_models": report["unpriced_models"],
        "timezone": timezone,
    }


def blocks_view(blocks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The billing blocks as the API answers them, and their totals."""
    totals: dict[str, Any] = {
        name: sum(int(b[name]) for b in blocks)
        for name in (
            "requests",
            "input_tokens",
            "output_tokens",
            "cache_creation_tokens",
            "cache_read_tokens",
            "total_tokens",
        )
    }
    totals["cost_usd"] = sum(float(b["cost_usd"]) for b in blocks)
    return {"blocks": [_times_view(b) for b in blocks], "totals": totals}


# -- lines by the assistant and by hand; session lengths -------------------------------------------


def day_range(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """The days ``start``..``end`` (both included, dates only; either may be left out)."""
    days: list[date | None] = []
    for name, value in (("start_date", start), ("end_date", end)):
        if value is None or not value.strip():
            days.append(None)
            continue
        try:
            days.append(date.fromisoformat(value.strip()))
        except ValueError:
            raise _bad(name, "must be a date (2024-01-15)") from None
    first, last = days
    if first is not None and last is not None and first > last:
        raise _bad("end_date", "must not be before start_date")
    return first, last


def lines_view(rows: Sequence[tuple[date, str, int, int]]) -> dict[str, Any]:
    """Lines changed per day and project, by the assistant and by hand, with the totals and the
    assistant's share (``None`` when no line changed)."""
    days: dict[date, dict[str, Any]] = {}
    total_ai = total_hand = 0
    for day, project, ai_lines, hand in rows:
        entry = days.setdefault(
            day, {"date": day.isoformat(), "ai_lines": 0, "human_lines": 0, "projects": []}
        )
        entry["projects"].append(
            {"project": project or None, "ai_lines": ai_lines, "human_lines": hand}
        )
        entry["ai_lines"] += ai_lines
        entry["human_lines"] += hand
        total_ai += ai_lines
        total_hand += hand
    changed = total_ai + total_hand
    return {
        "days": list(days.values()),
        "totals": {
            "ai_lines": total_ai,
            "human_lines": total_hand,
            "ai_share": round(total_ai / changed, 4) if changed else None,
        },
    }


# Upper bounds (minutes) of the session length buckets; the last is open.
LENGTH_BUCKETS = (5, 15, 30, 60, 120, 240)


def session_lengths_view(sessions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How long the sessions that ended lasted: counts per bucket (``<5m`` ... ``>=4h``), and
    the median, 90th percentile (linear interpolation) and mean in minutes; open sessions are
    counted apart."""
    minutes: list[float] = sorted(
        float(s["end_ms"] - s["start_ms"]) / 60_000
        for s in sessions
        if s.get("end_ms") is not None and s["end_ms"] >= s["start_ms"]
    )
    labels = [f"<{LENGTH_BUCKETS[0]}m"] + [
        f"{_span(low)}-{_span(high)}" for low, high in itertools.pairwise(LENGTH_BUCKETS)
    ]
    labels.append(f">={_span(LENGTH_BUCKETS[-1])}")
    counts = [0] * len(labels)
    for value in minutes:
        index = next(
            (i for i, bound in enumerate(LENGTH_BUCKETS) if value < bound), len(LENGTH_BUCKETS)
        )
        counts[index] += 1

    def quantile(fraction: float) -> float | None:
        if not minutes:
            return None
        position = fraction * (len(minutes) - 1)
        low = math.floor(position)
        high = min(low + 1, len(minutes) - 1)
        return round(minutes[low] + (minutes[high] - minutes[low]) * (position - low), 2)

    return {
        "ended_sessions": len(minutes),
        "open_sessions": sum(1 for s in sessions if s.get("end_ms") is None),
        "buckets": [
            {"range": label, "sessions": n} for label, n in zip(labels, counts, strict=True)
        ],
        "p50_minutes": quantile(0.5),
        "p90_minutes": quantile(0.9),
        "mean_minutes": round(sum(minutes) / len(minutes), 2) if minutes else None,
    }


def _span(value_minutes: int) -> str:
    return f"{value_minutes // 60}h" if value_minutes >= 60 else f"{value_minutes}m"


# -- import of a claude.json -------------------------------------------------------------------


@dataclass
class ImportPlan:
    """What an imported file holds: the records to append, the seed's counts, and one error
    per record that could not be read (the rest is imported anyway)."""

    records: list[AiRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def counts(self, known: set[str]) -> dict[str, int]:
        """The seed's counts of the records not ``known`` already (an import run again)."""
        fresh = [r for r in self.records if r.id not in known]
        return {
            "projects_imported": len({r.project_id for r in fresh if isinstance(r, _Project)}),
            "sessions_imported": sum(isinstance(r, _Start) for r in fresh),
            "conversations_imported": sum(isinstance(r, _Message) for r in fresh),
            "activities_imported": sum(r.kind in ("file_activity", "tool_call") for r in fresh),
        }


def _field(item: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in item and item[name] is not None:
            return item[name]
    return None


def plan_import(user_id: str, document: Any, *, timezone: str, now: float) -> ImportPlan:
    """Pure: the records an uploaded JSON document holds, in either of two shapes (both may
    be present):

    * Claude Code's own ``~/.claude.json``: ``projects`` maps each project's path to its state;
      its ``history`` (the prompts typed there, newest first, without times) becomes user
      messages of the project's ``lastSessionId`` session (or one named after the project).
      Having no times, they are dated ``now`` and named by their content and rank, so an import
      run again finds them known and adds nothing.
    * the tracker's own export: ``sessions``, each with ``project_path``, ``start_time``,
      ``end_time``, ``user`` and its ``conversations``, ``activities`` and ``tool_calls``, each
      with its ``timestamp``; their ids derive from their times, so importing twice is a no-op.
    """
    plan = ImportPlan()
    if not isinstance(document, dict):
        raise ApiError(
            400,
            "the file must hold a JSON object",
            code="invalid_file",
            details={"file": "not an object"},
        )
    projects = document.get("projects")
    if projects is not None and not isinstance(projects, dict):
        plan.errors.append("projects: must be an object mapping paths to projects")
    elif projects:
        for path, state in projects.items():
            _claude_project(plan, user_id, str(path), state, now=now)
    sessions = document.get("sessions")
    if sessions is not None and not isinstance(sessions, list):
        plan.errors.append("sessions: must be a list")
    elif sessions:
        for index, item in enumerate(sessions):
            _tracker_session(plan, user_id, f"sessions[{index}]", item, timezone, now)
    if projects is None and sessions is None:
        raise ApiError(
            400,
            "the file holds neither `projects` (Claude Code's .claude.json) nor `sessions`",
            code="invalid_file",
            details={"file": "no projects or sessions"},
        )
    return plan


def _claude_project(plan: ImportPlan, user_id: str, path: str, state: Any, *, now: float) -> None:
    where = f"projects[{path!r}]"
    if not path.strip() or len(path) > 4096:
        plan.errors.append(f"{where}: not a project path")
        return
    if not isinstance(state, dict):
        plan.errors.append(f"{where}: must be an object")
        return
    project_id = project_id_of(user_id, path)
    # Named without a time: the project is the same one whenever it is imported.
    plan.records.append(
        _Project(
            id=ai_id(user_id, "claude.json", "project", project_id),
            time=now,
            project_id=project_id,
            path=path,
        )
    )
    session_id = str(state.get("lastSessionId") or f"claude-json-{project_id}")
    history = state.get("history") or []
    if not isinstance(history, list):
        plan.errors.append(f"{where}.history: must be a list")
        return
    prompts: list[str] = []
    for rank, entry in enumerate(history):
        text = entry.get("display") if isinstance(entry, dict) else entry
        if not isinstance(text, str) or not text.strip():
            plan.errors.append(f"{where}.history[{rank}]: no prompt text (`display`)")
            continue
        prompts.append(text)
    if not prompts:
        return
    start = _Start(
        id=ai_id(user_id, "claude.json", "session", session_id),
        time=now,
        session_id=session_id,
        project_id=project_id,
        project_path=path,
    )
    plan.records.append(start)
    # Oldest first, a millisecond apart, so they read back in the order they were typed.
    for rank, text in enumerate(reversed(prompts)):
        try:
            plan.records.append(
                _Message(
                    id=ai_id(user_id, "claude.json", "prompt", path, rank, text),
                    time=now + rank / 1000,
                    session_id=session_id,
                    role="user",
                    content=text,
                    project_path=path,
                )
            )
        except ValidationError as exc:
            plan.errors.append(f"{where}.history: {_first_error(exc)}")


def _tracker_session(
    plan: ImportPlan, user_id: str, where: str, item: Any, timezone: str, now: float
) -> None:
    if not isinstance(item, dict):
        plan.errors.append(f"{where}: must be an object")
        return
    try:
        path = _field(item, "project_path", "path")
        if not isinstance(path, str) or not path.strip():
            raise ValueError("project_path is required")
        started = moment(
            _field(item, "start_time", "started_at"), timezone, now=now, name="start_time"
        )
        session_id = str(_field(item, "session_id", "id") or ai_id(user_id, path, started))
        start = session_start_record(
            user_id, session_id, path, started, client_user=_field(item, "user")
        )
        ended = _field(item, "end_time", "ended_at")
        end = (
            session_end_record(
                user_id, session_id, moment(ended, timezone, now=now, name="end_time")
            )
            if ended is not None
            else None
        )
    except (ApiError, ValueError, ValidationError) as exc:
        plan.errors.append(f"{where}: {_problem(exc)}")
        return
    plan.records.append(start)
    if end is not None:
        plan.records.append(end)
    for name in ("conversations", "messages"):
        for index, message in enumerate(item.get(name) or []):
            _imported(
                plan,
                f"{where}.{name}[{index}]",
                lambda m=message: message_record(
                    user_id,
                    session_id,
                    m["role"],
                    m["content"],
                    moment(_field(m, "timestamp", "time"), timezone, now=now, name="timestamp"),
                ),
            )
    for index, activity in enumerate(item.get("activities") or []):
        _imported(
            plan,
            f"{where}.activities[{index}]",
            lambda a=activity: file_activity_record(
                user_id,
                session_id,
                a["file_path"],
                a["action"],
                moment(_field(a, "timestamp", "time"), timezone, now=now, name="timestamp"),
                lines_added=int(a.get("lines_added") or 0),
                lines_removed=int(a.get("lines_removed") or 0),
            ),
        )
    for index, call in enumerate(item.get("tool_calls") or []):
        _imported(
            plan,
            f"{where}.tool_calls[{index}]",
            lambda c=call: tool_call_record(
                user_id,
                c["tool_name"],
                moment(_field(c, "timestamp", "time"), timezone, now=now, name="timestamp"),
                session_id=session_id,
                parameters=json.dumps(c.get("parameters") or {}, sort_keys=True),
                result_status=str(c.get("result_status") or "success"),
                execution_time_ms=c.get("execution_time_ms"),
            ),
        )


def _imported(plan: ImportPlan, where: str, build: Any) -> None:
    try:
        plan.records.append(build())
    except (ApiError, KeyError, TypeError, ValueError, ValidationError) as exc:
        plan.errors.append(f"{where}: {_problem(exc)}")


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return _first_error(exc)
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, KeyError):
        return f"{exc.args[0]} is required"
    if isinstance(exc, TypeError):
        return "must be an object"
    return str(exc)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error.get("loc", ()))
    return f"{location}: {error.get('msg', 'invalid')}" if location else str(error.get("msg"))
