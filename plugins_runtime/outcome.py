"""What one plugin execution ends with: a typed success or one failure kind, plus its logs."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from plugins_runtime.host import JSON


class FailureKind(StrEnum):
    """Why an execution did not produce a result. Each maps to one HTTP status (see below)."""

    PLUGIN_ERROR = "plugin_error"  # the script threw (or failed to compile); message and stack
    TIMEOUT = "timeout"  # the CPU or wall-clock cap was reached
    OUT_OF_MEMORY = "out_of_memory"
    STACK_OVERFLOW = "stack_overflow"
    TOO_MANY_HOST_CALLS = "too_many_host_calls"
    NEVER_SETTLED = "never_settled"  # nothing left to run, yet the hook's promise is pending
    INVALID_RESULT = "invalid_result"  # the return value is not JSON (or is too large)
    UNKNOWN_HANDLER = "unknown_handler"  # the script defines no such hook or RPC handler


_STATUS: dict[FailureKind, int] = {
    FailureKind.TIMEOUT: 504,
    FailureKind.UNKNOWN_HANDLER: 404,
}


def http_status(kind: FailureKind) -> int:
    """The HTTP status an RPC caller gets: 504 for a timeout, 404 for an unknown handler, else 400.

    Everything else is the plugin's own fault, so it is a client error of the plugin's author,
    never a 5xx of ours.
    """
    return _STATUS.get(kind, 400)


LogLevel = Literal["log", "warn", "error"]


@dataclass(frozen=True, slots=True)
class LogLine:
    level: LogLevel
    text: str


@dataclass(frozen=True, slots=True)
class SandboxOk:
    """The hook's return value (JSON; ``None`` for ``undefined``) and what it cost."""

    result: JSON
    logs: tuple[LogLine, ...]
    cpu_s: float
    wall_s: float
    host_calls: int
    ok: Literal[True] = True


@dataclass(frozen=True, slots=True)
class SandboxFailure:
    """``message`` is safe to show the plugin's author; ``stack`` is the JS stack, if any."""

    kind: FailureKind
    message: str
    stack: str | None
    logs: tuple[LogLine, ...]
    cpu_s: float
    wall_s: float
    host_calls: int
    ok: Literal[False] = False


SandboxResult = SandboxOk | SandboxFailure
