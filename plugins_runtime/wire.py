"""The messages between the server and a sandbox process, as JSON frames on a pipe.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON. Everything crossing is
plain data, encoded and decoded here by hand: the sandbox process runs untrusted scripts, so what
it sends is parsed as JSON into known shapes, never unpickled. Pure functions, no I/O.

Server to sandbox: ``run`` (script, call, context, limits), ``replies`` (answers to host calls) or
``timeout`` (the host calls ran out of time). Sandbox to server: ``host`` (host calls to perform,
with the seconds left for them) or ``done`` (the result).
"""

from __future__ import annotations

import json
import struct
from typing import Any

from plugins_runtime.host import JSON, HostReply, HostRequest
from plugins_runtime.invocation import (
    HookCall,
    Invocation,
    LifecycleHook,
    PluginContext,
    PluginScript,
    RpcCall,
)
from plugins_runtime.limits import SandboxLimits
from plugins_runtime.outcome import FailureKind, LogLine, SandboxFailure, SandboxOk, SandboxResult

HEADER = struct.Struct(">I")
# A result is capped at 1 MiB by default and host replies at the SQL row cap; this bounds a frame
# from a misbehaving process far above both.
MAX_FRAME = 256 * 1024 * 1024


class WireError(ValueError):
    """A frame that is not one of the known messages."""


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_FRAME:
        raise WireError(f"frame of {length} bytes")
    return int(length)


def parse(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise WireError("a message is an object with an op")
    return message


# -- server to sandbox -----------------------------------------------------------------------------


def run_message(
    script: PluginScript,
    call: Invocation,
    context: PluginContext,
    limits: SandboxLimits,
    *,
    stream_logs: bool = False,
) -> dict[str, Any]:
    encoded: dict[str, JSON]
    if isinstance(call, HookCall):
        encoded = {"hook": call.hook.value, "event": call.event}
    else:
        encoded = {"handler": call.handler, "body": call.body}
    return {
        "op": "run",
        "script": {"name": script.name, "source": script.source},
        "call": encoded,
        "context": {"user_id": context.user_id, "base_url": context.base_url},
        "stream_logs": stream_logs,
        "limits": {
            "memory_bytes": limits.memory_bytes,
            "stack_bytes": limits.stack_bytes,
            "wall_s": limits.wall_s,
            "cpu_s": limits.cpu_s,
            "max_host_calls": limits.max_host_calls,
            "max_log_lines": limits.max_log_lines,
            "max_log_chars": limits.max_log_chars,
            "max_result_bytes": limits.max_result_bytes,
        },
    }


def read_run(
    message: dict[str, Any],
) -> tuple[PluginScript, Invocation, PluginContext, SandboxLimits]:
    """The execution a ``run`` frame asks for (whether to stream its logs: ``streams_logs``)."""
    script = message["script"]
    call = message["call"]
    context = message["context"]
    invocation: Invocation
    if "hook" in call:
        invocation = HookCall(LifecycleHook(call["hook"]), call["event"])
    else:
        invocation = RpcCall(str(call["handler"]), call["body"])
    return (
        PluginScript(str(script["name"]), str(script["source"])),
        invocation,
        PluginContext(str(context["user_id"]), str(context["base_url"])),
        SandboxLimits(**message["limits"]),
    )


def replies_message(replies: list[HostReply]) -> dict[str, Any]:
    return {"op": "replies", "replies": [[r.id, r.value_json, r.error] for r in replies]}


def read_replies(message: dict[str, Any]) -> list[HostReply]:
    return [
        HostReply(int(i), str(value), None if e is None else str(e))
        for i, value, e in message["replies"]
    ]


TIMEOUT_MESSAGE: dict[str, Any] = {"op": "timeout"}


# -- sandbox to server -----------------------------------------------------------------------------


def host_message(requests: list[HostRequest], timeout_s: float) -> dict[str, Any]:
    return {
        "op": "host",
        "timeout_s": timeout_s,
        "calls": [[r.id, r.kind, r.args] for r in requests],
    }


def read_host(message: dict[str, Any]) -> tuple[list[HostRequest], float]:
    try:
        calls = [HostRequest(int(i), str(kind), list(args)) for i, kind, args in message["calls"]]
        return calls, float(message["timeout_s"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"malformed host calls: {exc}") from None


def streams_logs(message: dict[str, Any]) -> bool:
    return bool(message.get("stream_logs", False))


def log_message(line: LogLine) -> dict[str, Any]:
    """One line logged by a running execution (sent only when its ``run`` asked for them)."""
    return {"op": "log", "level": line.level, "text": line.text}


def read_log(message: dict[str, Any]) -> LogLine:
    try:
        level = message["level"]
        return LogLine(level if level in ("warn", "error") else "log", str(message["text"]))
    except (KeyError, TypeError) as exc:
        raise WireError(f"malformed log line: {exc}") from None


def done_message(result: SandboxResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "logs": [[line.level, line.text] for line in result.logs],
        "cpu_s": result.cpu_s,
        "wall_s": result.wall_s,
        "host_calls": result.host_calls,
    }
    if isinstance(result, SandboxOk):
        body["result"] = result.result
    else:
        body["failure"] = {"kind": result.kind.value, "message": result.message}
        body["stack"] = result.stack
    return {"op": "done", **body}


def read_done(message: dict[str, Any]) -> SandboxResult:
    try:
        logs = tuple(
            LogLine(level if level in ("warn", "error") else "log", str(text))
            for level, text in message["logs"]
        )
        cpu, wall, calls = (
            float(message["cpu_s"]),
            float(message["wall_s"]),
            int(message["host_calls"]),
        )
        failure = message.get("failure")
        if failure is None:
            result: JSON = message["result"]
            return SandboxOk(result, logs, cpu, wall, calls)
        stack = message.get("stack")
        return SandboxFailure(
            FailureKind(failure["kind"]),
            str(failure["message"]),
            None if stack is None else str(stack),
            logs,
            cpu,
            wall,
            calls,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"malformed result: {exc}") from None
