"""Pure normalization of every dialect into the canonical :class:`schemas.heartbeat.Heartbeat`.

No I/O: the caller passes who sent it, when it arrived and the request metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from schemas.heartbeat import (
    MAX_FUTURE_SECONDS,
    MIN_TIME,
    CodeTrackrHeartbeatIn,
    Dialect,
    Heartbeat,
    HeartbeatFieldsIn,
    WakaTimeHeartbeatIn,
    heartbeat_event_id,
    is_timezone,
)
from schemas.languages import stored_language

CODETRACKR_DEFAULT_DURATION = 30.0
IMPORT_DEFAULT_DURATION = 60.0
# Local dates a heartbeat can have: from the day before MIN_TIME (in the westernmost zone) to far
# beyond any accepted time, and well inside ClickHouse's Date range (1970 to 2149).
EARLIEST_DAY = date(1999, 12, 31)
LATEST_DAY = date(2099, 12, 31)
MAX_ID_LENGTH = 64
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class RequestMeta:
    """What the request tells about every heartbeat in it."""

    user_id: str
    received_at: float
    timezone: str = "UTC"
    user_agent: str | None = None
    machine: str | None = None


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item of a request was rejected: ``fields`` maps a field path to the problem."""

    index: int
    fields: dict[str, str]

    @property
    def message(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.fields.items())


_UA_OS = re.compile(r"\(([A-Za-z]+)[-\s)]")
_UA_TOKEN = re.compile(r"([A-Za-z][\w.\-]*)/([\w.\-]+)")
# The Go CLI reports GOOS (`linux`, `darwin`), the legacy Python CLI `platform.platform()`
# (`Linux`, `macOS`, `Darwin`): one name per OS, WakaTime's, so one OS is one stats entry.
_OS_NAMES = {
    "linux": "Linux",
    "darwin": "Mac",
    "macos": "Mac",
    "mac": "Mac",
    "windows": "Windows",
    "win": "Windows",
    "freebsd": "FreeBSD",
    "openbsd": "OpenBSD",
    "netbsd": "NetBSD",
    "android": "Android",
    "ios": "iOS",
}


class UserAgent(NamedTuple):
    """What a WakaTime-style User-Agent tells: the editor, the OS and the editor plugin."""

    editor: str | None
    os: str | None
    plugin: str | None


@lru_cache(maxsize=4096)  # every item of a request, and most requests of a client, share one
def parse_user_agent(user_agent: str | None) -> UserAgent:
    """Editor, OS and plugin from a WakaTime-style User-Agent.

    ``wakatime/13.1.0 (Linux-6.1-x86_64) Python3.9 vscode/1.80.0 vscode-wakatime/4.0.0``
    gives ``("vscode", "Linux", "vscode-wakatime")``: the plugin is the last ``name/version``
    token after the parentheses, the editor the one before it, the OS the first word inside the
    parentheses (``darwin`` and ``macOS`` both become ``Mac``, as WakaTime names it).
    """
    if not user_agent:
        return UserAgent(None, None, None)
    os_match = _UA_OS.search(user_agent)
    os_name = _OS_NAMES.get(os_match.group(1).lower(), os_match.group(1)) if os_match else None
    tail = user_agent.split(")", 1)[1] if ")" in user_agent else user_agent
    tokens = [name for name, _ in _UA_TOKEN.findall(tail)]
    if len(tokens) < 2:
        return UserAgent(None, os_name, None)
    return UserAgent(tokens[-2], os_name, tokens[-1])


def _timely(time: float, received_at: float) -> dict[str, str]:
    if time < MIN_TIME:
        return {"time": "is before the year 2000; send Unix epoch seconds"}
    if time > received_at + MAX_FUTURE_SECONDS:
        return {"time": "is more than a day in the future"}
    return {}


def _fields_of(error: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in error.errors():
        path = ".".join(str(p) for p in err["loc"]) or "body"
        out[path] = err["msg"]
    return out


def _validate(model: type[BaseModel], item: Any, index: int) -> BaseModel | ItemError:
    if not isinstance(item, dict):
        return ItemError(index, {"body": "each heartbeat must be a JSON object"})
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        return ItemError(index, _fields_of(exc))


def _canonical(
    parsed: HeartbeatFieldsIn,
    meta: RequestMeta,
    *,
    entity: str,
    language: str | None,
    time: float,
    duration: float,
    source: Dialect,
    user_agent: str | None,
) -> Heartbeat:
    ua = parse_user_agent(user_agent)
    category = parsed.category or "coding"
    is_write = bool(parsed.is_write)
    canonical = stored_language(language)
    return Heartbeat(
        event_id=heartbeat_event_id(
            user_id=meta.user_id,
            entity=entity,
            type=parsed.type,
            category=category,
            project=parsed.project,
            branch=parsed.branch,
            # The canonical name, so `python` and `Python` sent by two dialects are one activity.
            language=canonical,
            is_write=is_write,
            time=time,
        ),
        user_id=meta.user_id,
        time=time,
        entity=entity,
        type=parsed.type,
        category=category,
        project=parsed.project,
        project_root_count=parsed.project_root_count,
        branch=parsed.branch,
        language=canonical,
        language_raw=language,
        dependencies=tuple(parsed.dependencies or ()),
        lines=parsed.lines,
        line_additions=parsed.line_additions,
        line_deletions=parsed.line_deletions,
        lineno=parsed.lineno,
        cursorpos=parsed.cursorpos,
        is_write=is_write,
        duration=duration,
        commit=parsed.commit,
        workspace_root=parsed.workspace_root,
        package_path=parsed.package_path,
        editor=parsed.editor or ua.editor,
        os=parsed.os or ua.os,
        machine=parsed.machine or meta.machine,
        plugin=parsed.plugin or ua.plugin,
        ai_line_changes=parsed.ai_line_changes,
        human_line_changes=parsed.human_line_changes,
        timezone=meta.timezone,
        received_at=meta.received_at,
        source=source,
        user_agent=user_agent,
    )


def wakatime_item(item: Any, index: int, meta: RequestMeta) -> Heartbeat | ItemError:
    parsed = _validate(WakaTimeHeartbeatIn, item, index)
    if isinstance(parsed, ItemError):
        return parsed
    assert isinstance(parsed, WakaTimeHeartbeatIn)
    problems = _timely(parsed.time, meta.received_at)
    if problems:
        return ItemError(index, problems)
    return _canonical(
        parsed,
        meta,
        entity=parsed.entity,
        language=parsed.language,
        time=parsed.time,
        duration=0.0,
        source="wakatime",
        user_agent=parsed.user_agent or meta.user_agent,
    )


def codetrackr_item(
    item: Any, index: int, meta: RequestMeta, *, source: Dialect = "codetrackr"
) -> Heartbeat | ItemError:
    parsed = _validate(CodeTrackrHeartbeatIn, item, index)
    if isinstance(parsed, ItemError):
        return parsed
    assert isinstance(parsed, CodeTrackrHeartbeatIn)
    time = parsed.time if parsed.time is not None else meta.received_at
    problems = _timely(time, meta.received_at)
    if problems:
        return ItemError(index, problems)
    default = IMPORT_DEFAULT_DURATION if source == "import" else CODETRACKR_DEFAULT_DURATION
    return _canonical(
        parsed,
        meta,
        entity=parsed.file or parsed.entity or "",
        language=parsed.language_raw or parsed.lang or parsed.language,
        time=time,
        duration=parsed.duration if parsed.duration is not None else default,
        source=source,
        user_agent=meta.user_agent,
    )


def resolve_timezone(user_timezone: str | None, header: str | None) -> str:
    """The timezone that decides a heartbeat's local day.

    The user's own setting wins; otherwise the client's ``Timezone`` header when it names an IANA
    zone; otherwise UTC.
    """
    for candidate in (user_timezone, header):
        if candidate and is_timezone(candidate):
            return candidate
    return "UTC"


def dedupe(heartbeats: list[Heartbeat]) -> list[Heartbeat]:
    """Drop repeats of the same activity within one request, keeping the first."""
    seen: set[str] = set()
    out: list[Heartbeat] = []
    for hb in heartbeats:
        if hb.event_id not in seen:
            seen.add(hb.event_id)
            out.append(hb)
    return out


@dataclass(frozen=True, slots=True)
class DeletionRequest:
    """A valid ``DELETE .../heartbeats.bulk`` body: one local date and distinct heartbeat ids."""

    day: date
    ids: tuple[str, ...]


def deletion_request(body: Any) -> DeletionRequest | ItemError:
    """Validate WakaTime's ``{"date": "YYYY-MM-DD", "ids": ["<heartbeat id>", ...]}``.

    Unknown fields are ignored; ids are deduplicated in order. The date must lie in
    ``[EARLIEST_DAY, LATEST_DAY]``; an id is a non-empty string of at most ``MAX_ID_LENGTH``
    characters (only the first bad id is named, so a huge bad list gives a short answer).
    """
    if not isinstance(body, dict):
        return ItemError(0, {"body": 'expected a JSON object {"date", "ids"}'})
    problems: dict[str, str] = {}
    day = _day(body.get("date"))
    if isinstance(day, str):
        problems["date"] = day
    raw_ids = body.get("ids")
    ids: list[str] = []
    if not isinstance(raw_ids, list):
        problems["ids"] = "must be an array of heartbeat ids"
    else:
        for index, raw in enumerate(raw_ids):
            value = raw.strip() if isinstance(raw, str) else ""
            if not 0 < len(value) <= MAX_ID_LENGTH:
                problems[f"ids.{index}"] = (
                    f"must be a heartbeat id (a string of 1 to {MAX_ID_LENGTH} characters)"
                )
                break
            ids.append(value)
    if problems or isinstance(day, str):
        return ItemError(0, problems)
    return DeletionRequest(day, tuple(dict.fromkeys(ids)))


def _day(value: Any) -> date | str:
    """The date, or what is wrong with it."""
    if not isinstance(value, str) or _ISO_DAY.fullmatch(value) is None:
        return "must be a date as YYYY-MM-DD"
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return "must be a date as YYYY-MM-DD"
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        return f"must be between {EARLIEST_DAY} and {LATEST_DAY}"
    return day
