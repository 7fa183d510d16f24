"""AI coding activity as it travels on the log: projects, sessions, messages, file activities and
tool calls of a coding assistant (Claude Code by default), one user's.

Every write of the AI API (and every record an import finds) becomes one :class:`AiRecord` with
a deterministic id, so the same activity sent twice (a retry, an import run again) collapses in
every projection. One request's records travel together in one
:class:`schemas.events.AiActivityReceived` on the heartbeats topic, keyed by the user id: they are
appended atomically, stay ordered with the user's heartbeats and erasures, and are replayed and
erased with them (see docs/ai.md).

Each record has a ``time`` (epoch seconds, kept to the millisecond like a heartbeat's): a
time-range erasure removes the records whose ``time`` it covers, one by one, in the log and in
every table, so a replay after an erasure ends where the live run did.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.ai_files import MAX_PATH as MAX_PATH
from schemas.heartbeat import at_stored_precision, stored_millis

__all__ = [
    "ASSISTANT",
    "AiFileActivity",
    "AiMessage",
    "AiProject",
    "AiRecord",
    "AiSessionEnd",
    "AiSessionStart",
    "AiToolCall",
    "AiUsage",
    "FileAction",
    "MessageRole",
    "ai_id",
    "project_id_of",
    "project_name_of",
]

ASSISTANT = "Claude Code"
MAX_CONTENT = 100_000  # characters of one message kept
MAX_PARAMETERS = 20_000  # characters of a tool call's parameters (JSON text)

MessageRole = Literal["user", "assistant"]
FileAction = Literal["created", "modified", "deleted"]

# Project ids are integers (the API's contract) derived from the owner and the path, so every
# process, import and replay names a project the same way without a counter. 53 bits: exact in
# JavaScript's numbers and in JSON parsers that read floats.
_PROJECT_ID_BITS = 53


def project_id_of(user_id: str, path: str) -> int:
    """Pure: the project id of ``path`` for ``user_id`` (positive, below 2**53)."""
    digest = hashlib.sha256(f"{user_id}\x1f{path}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> (64 - _PROJECT_ID_BITS)) or 1


def project_name_of(path: str) -> str:
    """Pure: a project's name, the last part of its path (``/home/u/claude-tracker`` ->
    ``claude-tracker``); the path itself when it has no such part."""
    trimmed = path.rstrip("/\\")
    name = posixpath.basename(trimmed.replace("\\", "/"))
    return name or path


def ai_id(*parts: str | float | int | None) -> str:
    """Pure: a deterministic id from the fields that make two records the same activity."""
    text = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    time: float  # epoch seconds (ms precision)

    @field_validator("time")
    @classmethod
    def _stored_precision(cls, value: float) -> float:
        return at_stored_precision(value)


class AiProject(_Record):
    """A project (a directory the assistant worked in) known to the user."""

    kind: Literal["project"] = "project"
    project_id: int
    path: Annotated[str, Field(max_length=MAX_PATH)]


class AiSessionStart(_Record):
    """An assistant session began in ``project_path`` (which names its project)."""

    kind: Literal["session_start"] = "session_start"
    session_id: Annotated[str, Field(min_length=1, max_length=200)]
    project_id: int
    project_path: Annotated[str, Field(max_length=MAX_PATH)]
    client_user: Annotated[str, Field(max_length=200)] | None = None
    assistant: Annotated[str, Field(min_length=1, max_length=100)] = ASSISTANT


class AiSessionEnd(_Record):
    kind: Literal["session_end"] = "session_end"
    session_id: Annotated[str, Field(min_length=1, max_length=200)]
    project_path: Annotated[str, Field(max_length=MAX_PATH)] | None = None
    assistant: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class AiMessage(_Record):
    """One message of a session's conversation (a prompt or an answer)."""

    kind: Literal["message"] = "message"
    session_id: Annotated[str, Field(min_length=1, max_length=200)]
    role: MessageRole
    content: Annotated[str, Field(max_length=MAX_CONTENT)]
    # Where the session runs, stamped on the record when it is received (from the client, a
    # hook's ``cwd``, or the session's start), so the heartbeat it stands for is derived from
    # the record alone, in a replay as live.
    project_path: Annotated[str, Field(max_length=MAX_PATH)] | None = None
    assistant: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class AiFileActivity(_Record):
    """The assistant created, modified or deleted a file."""

    kind: Literal["file_activity"] = "file_activity"
    session_id: Annotated[str, Field(min_length=1, max_length=200)]
    file_path: Annotated[str, Field(min_length=1, max_length=MAX_PATH)]
    action: FileAction
    lines_added: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    lines_removed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    project_path: Annotated[str, Field(max_length=MAX_PATH)] | None = None
    assistant: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class AiToolCall(_Record):
    """The assistant called a tool (``Read``, ``Edit``, ``Bash``...)."""

    kind: Literal["tool_call"] = "tool_call"
    session_id: Annotated[str, Field(max_length=200)] | None = None
    tool_name: Annotated[str, Field(min_length=1, max_length=200)]
    parameters: Annotated[str, Field(max_length=MAX_PARAMETERS)] = "{}"  # a JSON object's text
    result_status: Annotated[str, Field(min_length=1, max_length=50)] = "success"
    execution_time_ms: Annotated[float, Field(ge=0, le=86_400_000)] | None = None
    project_path: Annotated[str, Field(max_length=MAX_PATH)] | None = None
    assistant: Annotated[str, Field(min_length=1, max_length=100)] | None = None


Tokens = Annotated[int, Field(ge=0, le=2**53)]


class AiUsage(_Record):
    """The tokens one model request of the assistant used (Claude's ``message.usage``, Codex's
    ``token_count``): input, output, cache writes and cache reads. ``message_id`` and
    ``request_id`` name the request; the same request read from two files (a resumed session
    copies its history) has the same record id and is counted once, as ccusage counts it. No
    heartbeat: the message or tool call of the same moment stands for the activity."""

    kind: Literal["usage"] = "usage"
    session_id: Annotated[str, Field(min_length=1, max_length=200)]
    model: Annotated[str, Field(max_length=200)] = ""
    message_id: Annotated[str, Field(max_length=200)] = ""
    request_id: Annotated[str, Field(max_length=200)] = ""
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cache_creation_tokens: Tokens = 0
    cache_read_tokens: Tokens = 0
    project_path: Annotated[str, Field(max_length=MAX_PATH)] | None = None
    assistant: Annotated[str, Field(min_length=1, max_length=100)] | None = None


AiRecord: TypeAlias = Annotated[
    AiProject | AiSessionStart | AiSessionEnd | AiMessage | AiFileActivity | AiToolCall | AiUsage,
    Field(discriminator="kind"),
]


# -- builders: a record with its deterministic id ------------------------------------------------


def _content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def project_record(user_id: str, path: str, time: float) -> AiProject:
    project_id = project_id_of(user_id, path)
    return AiProject(
        id=ai_id(user_id, "project", project_id, stored_millis(time)),
        time=time,
        project_id=project_id,
        path=path,
    )


def session_start_record(
    user_id: str,
    session_id: str,
    project_path: str,
    time: float,
    *,
    client_user: str | None = None,
    assistant: str = ASSISTANT,
) -> AiSessionStart:
    return AiSessionStart(
        id=ai_id(user_id, "session_start", session_id, stored_millis(time)),
        time=time,
        session_id=session_id,
        project_id=project_id_of(user_id, project_path),
        project_path=project_path,
        client_user=client_user,
        assistant=assistant,
    )


def session_end_record(user_id: str, session_id: str, time: float) -> AiSessionEnd:
    return AiSessionEnd(
        id=ai_id(user_id, "session_end", session_id, stored_millis(time)),
        time=time,
        session_id=session_id,
    )


def message_record(
    user_id: str,
    session_id: str,
    role: MessageRole,
    content: str,
    time: float,
    *,
    project_path: str | None = None,
) -> AiMessage:
    return AiMessage(
        id=ai_id(user_id, "message", session_id, role, stored_millis(time), _content_hash(content)),
        time=time,
        session_id=session_id,
        role=role,
        content=content,
        project_path=project_path,
    )


def file_activity_record(
    user_id: str,
    session_id: str,
    file_path: str,
    action: FileAction,
    time: float,
    *,
    lines_added: int = 0,
    lines_removed: int = 0,
    project_path: str | None = None,
) -> AiFileActivity:
    return AiFileActivity(
        id=ai_id(
            user_id,
            "file_activity",
            session_id,
            file_path,
            action,
            stored_millis(time),
            lines_added,
            lines_removed,
        ),
        time=time,
        session_id=session_id,
        file_path=file_path,
        action=action,
        lines_added=lines_added,
        lines_removed=lines_removed,
        project_path=project_path,
    )


def tool_call_record(
    user_id: str,
    tool_name: str,
    time: float,
    *,
    session_id: str | None = None,
    parameters: str = "{}",
    result_status: str = "success",
    execution_time_ms: float | None = None,
    project_path: str | None = None,
) -> AiToolCall:
    return AiToolCall(
        id=ai_id(
            user_id,
            "tool_call",
            session_id,
            tool_name,
            stored_millis(time),
            _content_hash(parameters),
            result_status,
        ),
        time=time,
        session_id=session_id,
        tool_name=tool_name,
        parameters=parameters,
        result_status=result_status,
        execution_time_ms=execution_time_ms,
        project_path=project_path,
    )


def usage_record(
    user_id: str,
    session_id: str,
    time: float,
    *,
    model: str = "",
    message_id: str = "",
    request_id: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_creation_tokens: int = 0,
    cache_read_tokens: int = 0,
    project_path: str | None = None,
    assistant: str | None = None,
) -> AiUsage:
    """A request's usage; named by its message and request ids when it has both (ccusage's
    rule: the same pair is one request wherever it is read), else by its session, time and
    counts."""
    if message_id and request_id:
        record_id = ai_id(user_id, "usage", message_id, request_id)
    else:
        record_id = ai_id(
            user_id,
            "usage",
            session_id,
            stored_millis(time),
            model,
            message_id,
            input_tokens,
            output_tokens,
            cache_creation_tokens,
            cache_read_tokens,
        )
    return AiUsage(
        id=record_id,
        time=time,
        session_id=session_id,
        model=model,
        message_id=message_id,
        request_id=request_id,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_creation_tokens=cache_creation_tokens,
        cache_read_tokens=cache_read_tokens,
        project_path=project_path,
        assistant=assistant,
    )
