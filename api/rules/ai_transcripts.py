"""Pure rules: the AI records a coding assistant's own session log holds (docs/ai.md#transcripts).

Two formats, one JSON object per line:

* **Claude Code** (``~/.claude/projects/<project-dir>/<session-id>.jsonl``): lines of ``type``
  ``user`` and ``assistant`` carry ``sessionId``, ``timestamp`` (ISO 8601, UTC), ``cwd``,
  ``isSidechain`` (a subagent's line) and ``message``. An assistant line's ``message`` has
  ``id``, ``model``, ``usage`` (``input_tokens``, ``output_tokens``,
  ``cache_creation_input_tokens``, ``cache_read_input_tokens``) and ``content`` blocks (``text``,
  ``tool_use`` with ``id``, ``name``, ``input``); the line has ``requestId``. A user line's
  ``content`` is the prompt (a string or ``text`` blocks) or ``tool_result`` blocks
  (``tool_use_id``, ``is_error``). Claude Code writes one line per content block of a long answer,
  each repeating the answer's usage: the usage record is named by ``message.id`` and
  ``requestId``, so it counts once (as ccusage counts it). Other lines (``summary``,
  ``system``, snapshots) hold no activity.
* **OpenAI Codex CLI** (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``): ``{"timestamp",
  "type", "payload"}`` lines; ``session_meta`` (the session's ``id`` and ``cwd``),
  ``turn_context`` (the ``model``), ``event_msg`` of ``user_message``/``agent_message`` (the
  conversation) and ``token_count`` (``info.total_token_usage``: ``input_tokens`` with its
  ``cached_input_tokens``, ``output_tokens``), and ``response_item`` of ``function_call`` /
  ``custom_tool_call`` and their ``*_output`` (tool calls). A request's usage is the growth of
  the running total since the previous ``token_count`` (a repeated total adds nothing); its
  cached input is cache reads, the rest of its input plain input.

From them: the session (started at its first line's time in ``cwd``, ended at its last), the
messages (a subagent's prompts and answers are not the user's conversation and are left out),
the tool calls (``error`` when the result says so, ``no_result`` when the log has none; timed
from the call to its result), the file activities of ``Write``/``Edit``/``MultiEdit`` calls that
did not fail, and each request's token usage. Every record's id is derived from what it holds,
so importing a file again, or two files holding the same lines, adds nothing. A line that is not
JSON, or lacks what its kind needs, is skipped and named; the rest is imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from api.rules.ai import moment
from http_edge.problem import ApiError
from schemas.ai import (
    MAX_CONTENT,
    MAX_PARAMETERS,
    MAX_PATH,
    AiRecord,
    file_activity_record,
    message_record,
    session_end_record,
    session_start_record,
    tool_call_record,
    usage_record,
)
from schemas.ai_files import bounded_input, file_change

__all__ = ["CLAUDE_CODE", "CODEX", "Source", "TranscriptPlan", "plan_transcript"]

Source = Literal["claude", "codex"]
CLAUDE_CODE = "Claude Code"
CODEX = "Codex"
MAX_SKIPPED_NAMED = 100  # skipped lines named in an answer (all are counted)


@dataclass
class TranscriptPlan:
    """The records a log holds, and the lines skipped (``(line number, why)``)."""

    records: list[AiRecord] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, line: int, why: str) -> None:
        self.skipped.append((line, why))


@dataclass
class _Session:
    session_id: str
    first: float
    last: float
    cwd: str | None = None


@dataclass
class _PendingTool:
    session_id: str
    name: str
    arguments: Any
    time: float
    cwd: str | None


def plan_transcript(
    user_id: str,
    source: Source,
    text: str,
    *,
    now: float,
    first_line: int = 1,
    session_hint: str | None = None,
    project_hint: str | None = None,
) -> TranscriptPlan:
    """Pure: what ``text`` (lines of a Claude Code or Codex session log) holds for ``user_id``.
    ``first_line`` numbers the first line (a file sent in parts); ``session_hint`` names the
    session of lines that name none (a Codex file's id), ``project_hint`` the project of
    sessions that name no directory."""
    parser = _Claude(user_id, now) if source == "claude" else _Codex(user_id, now, session_hint)
    for number, line in enumerate(text.splitlines(), start=first_line):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            parser.plan.skip(number, "not JSON")
            continue
        if not isinstance(value, dict):
            parser.plan.skip(number, "not a JSON object")
            continue
        try:
            parser.line(number, value)
        except (ApiError, ValidationError, TypeError, ValueError, KeyError, OverflowError) as exc:
            parser.plan.skip(number, _reason(exc))
    parser.finish(project_hint)
    return parser.plan


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))
    if isinstance(exc, KeyError):
        return f"{exc.args[0]} is required"
    return str(exc) or type(exc).__name__


def _text(value: Any, max_length: int = MAX_CONTENT) -> str:
    return value[:max_length] if isinstance(value, str) else ""


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"usage.{name} must be a count of tokens")
    return int(value)


def bounded_parameters(arguments: Any) -> str:
    """A tool's input as JSON text, long strings cut (a ``Write``'s whole file is not kept)."""
    if not isinstance(arguments, dict):
        arguments = {"input": arguments} if arguments is not None else {}
    out = bounded_input(arguments)
    text = json.dumps(out, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_PARAMETERS else "{}"


class _Parser:
    assistant = CLAUDE_CODE

    def __init__(self, user_id: str, now: float) -> None:
        self.user_id = user_id
        self.now = now
        self.plan = TranscriptPlan()
        self.sessions: dict[str, _Session] = {}
        self.pending: dict[str, _PendingTool] = {}

    def when(self, value: Any) -> float:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError("timestamp is required")
        return moment(value, "UTC", now=self.now, name="timestamp")

    def seen(self, session_id: str, at: float, cwd: Any) -> None:
        session = self.sessions.get(session_id)
        path = cwd if isinstance(cwd, str) and cwd.strip() and len(cwd) <= MAX_PATH else None
        if session is None:
            self.sessions[session_id] = _Session(session_id, at, at, path)
            return
        session.first = min(session.first, at)
        session.last = max(session.last, at)
        if session.cwd is None:
            session.cwd = path

    def message(
        self, session_id: str, role: Literal["user", "assistant"], content: str, at: float
    ) -> None:
        if content.strip():
            self.plan.records.append(
                message_record(self.user_id, session_id, role, content[:MAX_CONTENT], at)
            )

    def tool_called(self, key: str, tool: _PendingTool) -> None:
        self.pending.setdefault(key, tool)

    def tool_done(self, key: str, at: float, failed: bool, result: Any = None) -> None:
        tool = self.pending.pop(key, None)
        if tool is None:
            return
        self.record_tool(tool, "error" if failed else "success", max(0.0, at - tool.time) * 1000)
        change = None if failed else file_change(tool.name, tool.arguments, result)
        if change is not None:
            path, action, added, removed = change
            self.plan.records.append(
                file_activity_record(
                    self.user_id,
                    tool.session_id,
                    path,
                    action,
                    tool.time,
                    lines_added=added,
                    lines_removed=removed,
                    project_path=tool.cwd,
                )
            )

    def record_tool(self, tool: _PendingTool, status: str, elapsed_ms: float | None) -> None:
        self.plan.records.append(
            tool_call_record(
                self.user_id,
                tool.name[:200],
                tool.time,
                session_id=tool.session_id,
                parameters=bounded_parameters(tool.arguments),
                result_status=status,
                execution_time_ms=None if elapsed_ms is None else min(elapsed_ms, 86_400_000),
                project_path=tool.cwd,
            )
        )

    def finish(self, project_hint: str | None) -> None:
        for tool in self.pending.values():
            self.record_tool(tool, "no_result", None)
        self.pending.clear()
        for session in self.sessions.values():
            path = session.cwd or project_hint or ""
            self.plan.records.append(
                session_start_record(
                    self.user_id,
                    session.session_id,
                    path[:MAX_PATH],
                    session.first,
                    assistant=self.assistant,
                )
            )
            self.plan.records.append(
                session_end_record(self.user_id, session.session_id, session.last)
            )

    def line(self, number: int, value: Mapping[str, Any]) -> None:
        raise NotImplementedError


def _session_of(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise ValueError("sessionId is required")
    return value


class _Claude(_Parser):
    def line(self, number: int, value: Mapping[str, Any]) -> None:
        kind = value.get("type")
        if kind not in ("user", "assistant"):
            return  # summaries, system lines, snapshots: no activity
        message = value.get("message")
        if not isinstance(message, dict):
            raise ValueError("message must be an object")
        session_id = _session_of(value.get("sessionId"))
        at = self.when(value.get("timestamp"))
        cwd = value.get("cwd")
        self.seen(session_id, at, cwd)
        path = self.sessions[session_id].cwd
        sidechain = value.get("isSidechain") is True
        content = message.get("content")
        if kind == "user":
            self._user(
                session_id, at, content, value, sidechain=sidechain or bool(value.get("isMeta"))
            )
            return
        texts: list[str] = []
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(_text(block.get("text")))
            elif block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                key = f"{session_id}:{block.get('id') or number}"
                self.tool_called(
                    key, _PendingTool(session_id, block["name"], block.get("input"), at, path)
                )
        if isinstance(content, str):
            texts.append(content)
        if not sidechain:
            self.message(session_id, "assistant", "\n".join(t for t in texts if t), at)
        usage = message.get("usage")
        model = message.get("model")
        if isinstance(usage, dict) and model != "<synthetic>":
            self.plan.records.append(
                usage_record(
                    self.user_id,
                    session_id,
                    at,
                    model=_text(model, 200),
                    message_id=_text(message.get("id"), 200),
                    request_id=_text(value.get("requestId"), 200),
                    input_tokens=_count(usage.get("input_tokens"), "input_tokens"),
                    output_tokens=_count(usage.get("output_tokens"), "output_tokens"),
                    cache_creation_tokens=_count(
                        usage.get("cache_creation_input_tokens"), "cache_creation_input_tokens"
                    ),
                    cache_read_tokens=_count(
                        usage.get("cache_read_input_tokens"), "cache_read_input_tokens"
                    ),
                    project_path=path,
                    assistant=self.assistant,
                )
            )

    def _user(
        self,
        session_id: str,
        at: float,
        content: Any,
        value: Mapping[str, Any],
        *,
        sidechain: bool,
    ) -> None:
        if isinstance(content, str):
            if not sidechain:
                self.message(session_id, "user", content, at)
            return
        texts: list[str] = []
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                texts.append(_text(block.get("text")))
            elif block.get("type") == "tool_result":
                failed = block.get("is_error") is True
                result = value.get("toolUseResult")
                self.tool_done(f"{session_id}:{block.get('tool_use_id')}", at, failed, result)
        if not sidechain:
            self.message(session_id, "user", "\n".join(t for t in texts if t), at)


_CODEX_TOOL_CALLS = ("function_call", "custom_tool_call", "local_shell_call")
_CODEX_TOOL_OUTPUTS = ("function_call_output", "custom_tool_call_output")


class _Codex(_Parser):
    assistant = CODEX

    def __init__(self, user_id: str, now: float, session_hint: str | None) -> None:
        super().__init__(user_id, now)
        self.session_id = session_hint
        self.cwd: str | None = None
        self.model = ""
        self.total: dict[str, int] | None = None

    def _session(self) -> str:
        if not self.session_id:
            raise ValueError("no session: the file names none before this line")
        return self.session_id

    def line(self, number: int, value: Mapping[str, Any]) -> None:
        kind = value.get("type")
        payload = value.get("payload")
        if kind is None and "id" in value and "timestamp" in value:  # the older first line
            kind, payload = "session_meta", value
        if not isinstance(payload, dict):
            if kind in ("session_meta", "turn_context", "event_msg", "response_item"):
                raise ValueError("payload must be an object")
            return
        if kind == "session_meta":
            if isinstance(payload.get("id"), str) and payload["id"]:
                self.session_id = _session_of(payload["id"])
            if isinstance(payload.get("cwd"), str):
                self.cwd = payload["cwd"]
            if isinstance(payload.get("model"), str):
                self.model = payload["model"][:200]
        elif kind == "turn_context":
            if isinstance(payload.get("cwd"), str):
                self.cwd = payload["cwd"]
            if isinstance(payload.get("model"), str):
                self.model = payload["model"][:200]
            return
        if kind not in ("session_meta", "event_msg", "response_item"):
            return
        session_id = self._session()
        at = self.when(value.get("timestamp") or payload.get("timestamp"))
        self.seen(session_id, at, self.cwd)
        inner = payload.get("type")
        if kind == "event_msg":
            if inner == "user_message":
                self.message(session_id, "user", _text(payload.get("message")), at)
            elif inner == "agent_message":
                self.message(session_id, "assistant", _text(payload.get("message")), at)
            elif inner == "token_count":
                self._tokens(session_id, at, payload.get("info"))
        elif kind == "response_item":
            if inner in _CODEX_TOOL_CALLS:
                arguments: Any = payload.get("arguments", payload.get("input"))
                if isinstance(arguments, str):
                    try:
                        arguments = json.loads(arguments)
                    except ValueError:
                        arguments = {"input": arguments}
                name = payload.get("name") or inner
                key = f"{session_id}:{payload.get('call_id') or number}"
                self.tool_called(key, _PendingTool(session_id, str(name), arguments, at, self.cwd))
            elif inner in _CODEX_TOOL_OUTPUTS:
                key = f"{session_id}:{payload.get('call_id')}"
                self.tool_done(key, at, _codex_failed(payload.get("output")))

    def _tokens(self, session_id: str, at: float, info: Any) -> None:
        if not isinstance(info, dict):
            return  # a rate-limit-only update
        total = info.get("total_token_usage")
        last = info.get("last_token_usage")
        if isinstance(total, dict):
            counts = _codex_counts(total)
            if self.total is not None:
                delta = {k: counts[k] - self.total.get(k, 0) for k in counts}
                if any(v < 0 for v in delta.values()):  # a restarted total
                    delta = _codex_counts(last) if isinstance(last, dict) else counts
            else:
                delta = _codex_counts(last) if isinstance(last, dict) else counts
            self.total = counts
        elif isinstance(last, dict):
            delta = _codex_counts(last)
        else:
            raise ValueError("token_count.info holds no token usage")
        if not any(delta.values()):
            return  # the same total again
        cached = min(delta["cached"], delta["input"])
        self.plan.records.append(
            usage_record(
                self.user_id,
                session_id,
                at,
                model=self.model,
                input_tokens=delta["input"] - cached,
                output_tokens=delta["output"],
                cache_read_tokens=cached,
                project_path=self.cwd,
                assistant=self.assistant,
            )
        )


def _codex_counts(usage: Mapping[str, Any]) -> dict[str, int]:
    return {
        "input": _count(usage.get("input_tokens"), "input_tokens"),
        "cached": _count(usage.get("cached_input_tokens"), "cached_input_tokens"),
        "output": _count(usage.get("output_tokens"), "output_tokens"),
    }


def _codex_failed(output: Any) -> bool:
    """Whether a Codex tool's output says it failed (a non-zero exit code, or an error)."""
    if isinstance(output, str):
        try:
            output = json.loads(output)
        except ValueError:
            return False
    if not isinstance(output, dict):
        return False
    metadata = output.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("exit_code"), int):
        return bool(metadata["exit_code"] != 0)
    return output.get("success") is False or bool(output.get("error"))


def skipped_view(skipped: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """The first skipped lines, as an answer names them."""
    out: list[dict[str, Any]] = []
    for line, why in skipped:
        if len(out) >= MAX_SKIPPED_NAMED:
            break
        out.append({"line": line, "reason": why})
    return out
