"""The canonical heartbeat (schema version 1) and the dialects clients send.

Every heartbeat that enters CodeTrackr, whichever API it came through, is normalized into one
:class:`Heartbeat`. It carries every field of the WakaTime heartbeat schema (under the same names,
except where noted), CodeTrackr's own fields, AI-coding fields, the owner and ingest metadata.

WakaTime name        -> canonical field
``id``               -> ``event_id`` (deterministic, see :func:`heartbeat_event_id`)
``user_id``          -> ``user_id``
``machine_name_id``  -> ``machine``
``user_agent_id``    -> ``user_agent``
``created_at``       -> ``received_at``
``modified_at``      -> ``received_at`` (heartbeats are immutable: never modified)
CodeTrackr ``file``  -> ``entity``;  ``lang`` -> ``language``
``language``         -> ``language`` (canonical name) and ``language_raw`` (as sent)
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

SCHEMA_VERSION: Literal[1] = 1

EntityType = Literal["file", "domain", "app", "url"]
Dialect = Literal["codetrackr", "wakatime", "import"]

CATEGORIES: frozenset[str] = frozenset(
    {
        "coding",
        "building",
        "indexing",
        "debugging",
        "browsing",
        "running tests",
        "writing tests",
        "manual testing",
        "code reviewing",
        "designing",
        "communicating",
        "meeting",
        "learning",
        "researching",
        "writing docs",
        "ai coding",
        "planning",
        "supporting",
        "translating",
    }
)

# Earliest accepted heartbeat time (2000-01-01) and how far in the future a client clock may be.
MIN_TIME = 946684800.0
MAX_FUTURE_SECONDS = 24 * 3600.0
MAX_DURATION_SECONDS = 12 * 3600.0
MAX_TEXT = 2048


def _int_or_none(value: Any) -> Any:
    """Legacy clients send ``lineno``/``cursorpos`` as strings; blank means absent.

    Fractional numbers (``"12.0"``, ``12.7``) are truncated: a position is not worth dropping a
    heartbeat over.
    """
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else value
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return None
        try:
            return int(float(stripped))
        except (ValueError, OverflowError):  # not a number, or "inf" / "1e400"
            return value  # let pydantic name the field in its error
    return value


_TRUE_WORDS = frozenset({"true", "t", "yes", "y", "on"})
_FALSE_WORDS = frozenset({"false", "f", "no", "n", "off", "null", "none"})


def _loose_bool(value: Any) -> Any:
    """``is_write`` arrives as a bool, a number or a string (``"true"``, ``"1"``, ``"False"``).

    Any non-zero number is true; blank means absent (false); anything else is left for pydantic
    to reject with a field error.
    """
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value != 0 if math.isfinite(value) else value
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in _TRUE_WORDS or word in _FALSE_WORDS:
            return word in _TRUE_WORDS
        try:
            number = float(word)
        except ValueError:
            return value
        return number != 0 if math.isfinite(number) else value
    return value


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


# Counts and positions fit ClickHouse's Int64 columns with a wide margin; anything larger is a
# client bug, refused at the edge instead of poisoning a batch downstream.
_INT_LIMIT = 2**31 - 1
_BoundedInt = Annotated[int, Field(ge=-_INT_LIMIT, le=_INT_LIMIT)]
LooseInt = Annotated[_BoundedInt | None, BeforeValidator(_int_or_none)]
LooseBool = Annotated[bool | None, BeforeValidator(_loose_bool)]
# The length limit applies to the string, not to the union: on `str | None` pydantic would apply
# it to None too (an explicit null, or a blank string) and raise a TypeError, not a field error.
OptText = Annotated[
    Annotated[str, Field(max_length=MAX_TEXT)] | None, BeforeValidator(_blank_to_none)
]


def stored_millis(epoch: float) -> int:
    """Epoch seconds as the whole milliseconds every store keeps (the archive's
    ``DateTime64(3)``, heartbeat ids)."""
    return round(epoch * 1000)


# The integer counters of a heartbeat: every store keeps them as Int64 (the archive's columns),
# and one outside it as no value, rather than refusing the whole batch forever.
INT64_COUNTERS: tuple[str, ...] = (
    "project_root_count",
    "lines",
    "line_additions",
    "line_deletions",
    "lineno",
    "cursorpos",
    "ai_line_changes",
    "human_line_changes",
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def fits_int64(value: int | None) -> bool:
    """True when a counter can be stored as it is (``None`` always can)."""
    return value is None or _INT64_MIN <= value <= _INT64_MAX


def at_stored_precision(epoch: float) -> float:
    """``epoch`` rounded to the millisecond: the value the archive gives back."""
    return stored_millis(epoch) / 1000 if math.isfinite(epoch) else epoch


class Heartbeat(BaseModel):
    """One immutable unit of activity, as stored on the log and in ClickHouse.

    ``time`` and ``received_at`` are kept to the millisecond, the precision of the archive, so
    every consumer (the local date a heartbeat is filed under, the day a batch touches, the fold)
    sees the value the archive gives back: a heartbeat 0.4 ms before midnight is a heartbeat of
    00:00:00.000 everywhere, not of the day before in one place and of the next in another.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str
    user_id: str
    time: float
    entity: str
    type: EntityType = "file"
    category: str = "coding"
    project: str | None = None
    project_root_count: int | None = None
    branch: str | None = None
    # The canonical name (schemas.languages.canonical_language: "Python", "C++", "Other"), and
    # the name the client sent, kept as it was. Records appended before ``language_raw``
    # existed lack it and hold the client's name in ``language``: projecting them fills both.
    language: str | None = None
    language_raw: str | None = None
    dependencies: tuple[str, ...] = ()
    lines: int | None = None
    line_additions: int | None = None
    line_deletions: int | None = None
    lineno: int | None = None
    cursorpos: int | None = None
    is_write: bool = False
    # CodeTrackr fields
    duration: float = 0.0
    commit: str | None = None
    workspace_root: str | None = None
    package_path: str | None = None
    editor: str | None = None
    os: str | None = None
    machine: str | None = None
    plugin: str | None = None  # the editor plugin, e.g. "vscode-wakatime" (from the User-Agent)
    # AI-coding fields
    ai_line_changes: int | None = None
    human_line_changes: int | None = None
    # ingest metadata
    timezone: str = "UTC"
    received_at: float
    source: Dialect
    user_agent: str | None = None

    @field_validator("time", "received_at")
    @classmethod
    def _stored_precision(cls, value: float) -> float:
        # Rounded once, when the heartbeat is built (at ingest, and when decoded from the log,
        # so records appended before this rule read the same way).
        return at_stored_precision(value)


def is_timezone(name: str) -> bool:
    """True when ``name`` is a zone of the IANA database (e.g. ``America/Mexico_City``)."""
    if not name or name != name.strip() or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", overlong names
        return False
    return True


def heartbeat_event_id(
    *,
    user_id: str,
    entity: str,
    type: str,
    category: str,
    project: str | None,
    branch: str | None,
    language: str | None,
    is_write: bool,
    time: float,
) -> str:
    """Deterministic id from the fields that make two heartbeats the same activity.

    Duplicates (same user, entity, type, category, project, branch, language, is_write and time
    to the millisecond) get the same id, so every projection collapses them.
    """
    parts = [
        user_id,
        entity,
        type,
        category,
        project or "",
        branch or "",
        language or "",
        "1" if is_write else "0",
        str(stored_millis(time)),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


class HeartbeatFieldsIn(BaseModel):
    """Fields and checks shared by both dialects. Unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    time: float | None = None
    type: EntityType = "file"
    category: str | None = None
    project: OptText = None
    project_root_count: LooseInt = None
    branch: OptText = None
    dependencies: list[Annotated[str, Field(max_length=MAX_TEXT)]] | None = Field(
        default=None, max_length=1000
    )
    lines: LooseInt = None
    line_additions: LooseInt = None
    line_deletions: LooseInt = None
    lineno: LooseInt = None
    cursorpos: LooseInt = None
    is_write: LooseBool = False
    commit: OptText = None
    workspace_root: OptText = None
    package_path: OptText = None
    editor: OptText = None
    os: OptText = None
    machine: OptText = None
    plugin: OptText = None
    ai_line_changes: LooseInt = None
    human_line_changes: LooseInt = None

    @field_validator("time")
    @classmethod
    def _finite_time(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("time must be a finite number of epoch seconds")
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        lowered = value.lower()
        if lowered not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}")
        return lowered


class WakaTimeHeartbeatIn(HeartbeatFieldsIn):
    """A heartbeat as WakaTime editor plugins and CLIs send it."""

    entity: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    language: OptText = None
    time: float  # required in this dialect
    user_agent: OptText = None


class CodeTrackrHeartbeatIn(HeartbeatFieldsIn):
    """A heartbeat in CodeTrackr's own dialect (``file``, ``lang``, ``duration``)."""

    project: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
    file: OptText = None
    entity: OptText = None
    lang: OptText = None
    language: OptText = None
    # An export's record carries the name its client first sent: re-imported, it stays the raw one.
    language_raw: OptText = None
    duration: float | None = None

    @field_validator("duration")
    @classmethod
    def _sane_duration(cls, value: float | None) -> float | None:
        if value is None:
            return None
        if not math.isfinite(value) or value < 0 or value > MAX_DURATION_SECONDS:
            raise ValueError(f"duration must be between 0 and {int(MAX_DURATION_SECONDS)} seconds")
        return value
