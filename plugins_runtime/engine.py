"""One plugin execution, driven synchronously in the calling thread from a fresh QuickJS context.

Blocking: :func:`execute` blocks its thread for the whole execution (at most ``wall_s``), including
while the host calls it hands to ``run_host_calls`` are performed elsewhere. Call it from a worker
thread, never from the event loop (:class:`plugins_runtime.sandbox.PluginSandbox` does).

Threading: the context is created, driven and dropped in the calling thread and nowhere else
(a QuickJS runtime touched by two threads, even one after the other, can crash the process).

Raises: nothing for anything the plugin does; every failure is a :class:`SandboxFailure`.

The context is fresh for each execution and discarded after it, whatever happened (out of memory
poisons a context; an interrupted one may hold half-run jobs). A fresh context costs ~150 µs, well
below what an execution costs anyway, so no context is ever reused.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import quickjs

from plugins_runtime.host import JSON, HostReply, HostRequest
from plugins_runtime.invocation import HookCall, Invocation, PluginContext, PluginScript
from plugins_runtime.limits import MIB, SandboxLimits
from plugins_runtime.outcome import (
    FailureKind,
    LogLevel,
    LogLine,
    SandboxFailure,
    SandboxOk,
    SandboxResult,
)
from plugins_runtime.prelude import PRELUDE

logger = logging.getLogger("plugins_runtime.plugin")

# Blocking: performs the requests in order and returns one reply each; raises TimeoutError when
# the float (seconds) runs out first.
RunHostCalls = Callable[[list[HostRequest], float], list[HostReply]]
# Called with each log/warn/error line as soon as the engine has it (see :func:`execute`).
LogSink = Callable[[LogLine], None]

# QuickJS refuses a time limit of 0; below this the next step is interrupted at once anyway.
_MIN_STEP_S = 0.001
# Extra memory and time granted after a failure, just to read the logs (and the host-call
# overflow flag) the plugin left behind.
_SALVAGE_HEADROOM = 4 * MIB
_SALVAGE_S = 0.05

_PY_LEVEL: dict[LogLevel, int] = {
    "log": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


# What reading a malformed answer of the prelude raises in Python.
_PROTOCOL_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError)
_TAMPERED = "the script changed built-ins the sandbox relies on (JSON, Object, Array)"


class _Failed(NamedTuple):
    kind: FailureKind
    message: str
    stack: str | None


class _Abort(Exception):
    def __init__(self, kind: FailureKind, message: str, stack: str | None = None) -> None:
        super().__init__(message)
        self.failed = _Failed(kind, message, stack)

    @property
    def kind(self) -> FailureKind:
        return self.failed.kind


def _split(text: str) -> tuple[str, str | None]:
    """QuickJS reports ``Name: message`` then the stack, one frame per line."""
    head, _, rest = text.partition("\n")
    return head.strip(), (rest.rstrip() or None)


# When an allocation fails with no room left even for the Error object, QuickJS throws ``null``
# instead. A script can throw null itself, so the message admits the doubt.
_NULL_THROWN = "out of memory (or the script threw null)"


def _classify(name: str, message: str, stack: str | None) -> _Abort:
    if name == "InternalError" and message == "out of memory":
        return _Abort(FailureKind.OUT_OF_MEMORY, "out of memory", stack)
    if name == "null" and not message:
        return _Abort(FailureKind.OUT_OF_MEMORY, _NULL_THROWN, stack)
    if name == "RangeError" and "call stack size exceeded" in message:
        return _Abort(FailureKind.STACK_OVERFLOW, "stack overflow (call nesting too deep)", stack)
    return _Abort(FailureKind.PLUGIN_ERROR, f"{name}: {message}" if message else name, stack)


class _Execution:
    def __init__(
        self,
        script: PluginScript,
        call: Invocation,
        context: PluginContext,
        limits: SandboxLimits,
        run_host_calls: RunHostCalls,
        cancelled: threading.Event | None,
        on_log: LogSink | None,
    ) -> None:
        self._script, self._call, self._context = script, call, context
        self._limits, self._run_host_calls, self._cancelled = limits, run_host_calls, cancelled
        self._on_log = on_log
        self._wall0 = time.monotonic()
        self._cpu0 = time.thread_time()
        self._ctx: Any = None
        self._host: Any = None
        self._host_calls = 0
        self._logs: list[LogLine] = []
        self._dropped_logs = 0

    # -- budget ---------------------------------------------------------------------------------

    def _used(self) -> tuple[float, float]:
        return time.thread_time() - self._cpu0, time.monotonic() - self._wall0

    def _timeout(self) -> _Abort:
        cpu, wall = self._used()
        limits = self._limits
        if cpu >= limits.cpu_s:
            return _Abort(FailureKind.TIMEOUT, f"CPU limit of {limits.cpu_s:g} s exceeded")
        if wall >= limits.wall_s:
            return _Abort(FailureKind.TIMEOUT, f"time limit of {limits.wall_s:g} s exceeded")
        # QuickJS's own limit counts the whole process's CPU, so on a busy server a step can be
        # interrupted before this thread alone has spent the budget.
        return _Abort(
            FailureKind.TIMEOUT,
            f"CPU limit of {limits.cpu_s:g} s exceeded (counted for the whole server process)",
        )

    def _left(self) -> float:
        """Seconds the next step may run; raises once either cumulative cap is spent."""
        if self._cancelled is not None and self._cancelled.is_set():
            raise _Abort(FailureKind.TIMEOUT, "execution abandoned by its caller")
        cpu, wall = self._used()
        left = min(self._limits.cpu_s - cpu, self._limits.wall_s - wall)
        if left <= 0:
            raise self._timeout()
        return left

    def _step(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run JS under the time left: QuickJS re-arms its own limit on every entry, so a plugin
        that spreads its work over many jobs is caught by the cumulative check here."""
        self._ctx.set_time_limit(max(self._left(), _MIN_STEP_S))
        try:
            result = fn(*args)
        except quickjs.StackOverflow as exc:
            stack = _split(str(exc))[1]
            raise _classify("RangeError", "Maximum call stack size exceeded", stack) from None
        except quickjs.JSException as exc:
            head, stack = _split(str(exc))
            name, _, message = head.partition(": ")
            if name == "InternalError" and message == "interrupted":
                raise self._timeout() from None
            raise _classify(name, message, stack) from None
        except MemoryError:
            raise _Abort(FailureKind.OUT_OF_MEMORY, "out of memory") from None
        self._left()
        return result

    # -- the run --------------------------------------------------------------------------------

    def _settings(self) -> str:
        limits = self._limits
        return json.dumps(
            {
                "userId": self._context.user_id,
                "baseUrl": self._context.base_url,
                "maxHostCalls": limits.max_host_calls,
                "maxLogLines": limits.max_log_lines,
                "maxLogChars": limits.max_log_chars,
            }
        )

    def _start(self) -> None:
        ctx = quickjs.Context()
        ctx.set_memory_limit(self._limits.memory_bytes)
        ctx.set_max_stack_size(self._limits.stack_bytes)
        self._ctx = ctx
        factory = self._step(ctx.eval, PRELUDE)
        self._host = self._step(factory, self._settings())
        self._step(ctx.eval, self._script.source)
        call = self._call
        arg: JSON
        if isinstance(call, HookCall):
            kind, name, arg = "hook", call.hook.value, call.event
        else:
            kind, name, arg = "rpc", call.handler, call.body
        if self._step(self._host, "start", kind, name, json.dumps(arg)) != "started":
            what = "lifecycle hook" if kind == "hook" else "RPC handler"
            raise _Abort(FailureKind.UNKNOWN_HANDLER, f"plugin defines no {what} {name!r}")
        self._flush_logs()

    def _run_jobs(self) -> None:
        while self._step(self._ctx.execute_pending_job):
            self._flush_logs()

    def _flush_logs(self) -> None:
        """Hand the lines logged so far to the sink, when there is one: after each step, so a
        line leaves while the script runs on (at its next ``await``), not when it ends."""
        if self._on_log is not None:
            self._read_logs(self._step(self._host, "logs"))

    def _take(self) -> list[HostRequest]:
        batch = json.loads(self._step(self._host, "take"))
        if batch["overflow"]:
            raise self._too_many()
        return [HostRequest(int(i), str(kind), list(args)) for i, kind, args in batch["calls"]]

    def _too_many(self) -> _Abort:
        return _Abort(
            FailureKind.TOO_MANY_HOST_CALLS,
            f"more than {self._limits.max_host_calls} host calls in one execution",
        )

    def _perform(self, requests: list[HostRequest]) -> None:
        self._host_calls += len(requests)
        try:
            replies = self._run_host_calls(requests, self._left())
        except TimeoutError:
            raise self._timeout() from None
        except RuntimeError:  # the caller's event loop closed under a running execution
            raise _Abort(FailureKind.TIMEOUT, "execution abandoned by its caller") from None
        for reply in replies:
            ok = reply.error is None
            self._step(self._host, "settle", reply.id, ok, reply.value_json if ok else reply.error)

    def _outcome(self) -> JSON | None:
        """Loop until the handler's promise settles and no host call is left to perform.

        Calls queued but not awaited (fire-and-forget writes) are still performed before the
        execution ends, as they would be in any JS runtime.
        """
        while True:
            self._run_jobs()
            requests = self._take()
            status = self._step(self._host, "status")
            if not requests:
                if not status:
                    raise _Abort(
                        FailureKind.NEVER_SETTLED,
                        "promise never settled: nothing left to run and no host call pending",
                    )
                return self._result(json.loads(status))
            self._perform(requests)

    def _result(self, status: dict[str, Any]) -> JSON:
        if status["ok"]:
            text = str(status["result"])
            if len(text.encode()) > self._limits.max_result_bytes:
                raise _Abort(
                    FailureKind.INVALID_RESULT,
                    f"result larger than {self._limits.max_result_bytes} bytes of JSON",
                )
            result: JSON = json.loads(text)
            return result
        if status.get("invalid"):
            raise _Abort(
                FailureKind.INVALID_RESULT, f"result is not JSON-serializable: {status['message']}"
            )
        raise _classify(str(status["name"]), str(status["message"]), status.get("stack") or None)

    def _read_after_failure(self, op: str) -> Any:
        """An interrupted or out-of-memory context still answers a small read if given fresh time
        and a little memory; raises ``quickjs.JSException`` if it does not."""
        self._ctx.set_memory_limit(self._limits.memory_bytes + _SALVAGE_HEADROOM)
        self._ctx.set_time_limit(_SALVAGE_S)
        return self._host(op)

    def _overflowed(self) -> bool:
        """Whether the plugin went past the host-call cap before it failed otherwise: a script
        that catches the cap's error and spins is reported for the calls, not the spin."""
        if self._host is None:
            return False
        try:
            return bool(json.loads(self._read_after_failure("take"))["overflow"])
        except (quickjs.JSException, MemoryError, *_PROTOCOL_ERRORS):
            return False

    def _drain_logs(self, after_failure: bool) -> None:
        if self._host is None:
            return
        try:
            text = self._read_after_failure("logs") if after_failure else self._host("logs")
            self._read_logs(text)
        except (quickjs.JSException, MemoryError, *_PROTOCOL_ERRORS):
            self._add_log(LogLine("warn", "[logs of this execution could not be read]"))

    def _read_logs(self, text: str) -> None:
        """Keep (and hand to the sink) the lines of one ``logs()`` answer; raises a protocol
        error for a malformed one."""
        drained = json.loads(text)
        lines: list[LogLine] = []
        for level, line in drained["lines"]:
            lvl: LogLevel = level if level in ("warn", "error") else "log"
            lines.append(LogLine(lvl, str(line)))
        self._dropped_logs += int(drained["dropped"])
        for line in lines:
            self._add_log(line)

    def _add_log(self, line: LogLine) -> None:
        self._logs.append(line)
        if self._on_log is not None:
            self._on_log(line)

    def run(self) -> SandboxResult:
        # Only plain values leave the except clauses below: an exception kept in a local would
        # tie its traceback (frames holding the context) into a cycle that the garbage
        # collector may free later on another thread, which QuickJS does not survive.
        failure: _Failed | None = None
        result: JSON = None
        try:
            self._start()
            result = self._outcome()
        except _Abort as abort:
            failure = abort.failed
            if abort.kind is not FailureKind.TOO_MANY_HOST_CALLS and self._overflowed():
                failure = self._too_many().failed
        except _PROTOCOL_ERRORS as exc:
            # The prelude's answers are JSON of a known shape unless the script redefined what
            # JSON.stringify consults (toJSON on Object or Array prototypes, say). No exc_info:
            # a log record that kept the traceback would keep the context alive past this thread.
            logger.warning(
                "plugin %s broke the sandbox protocol: %s: %s",
                self._script.name,
                type(exc).__name__,
                exc,
            )
            failure = _Failed(FailureKind.PLUGIN_ERROR, _TAMPERED, None)
        finally:
            self._drain_logs(after_failure=failure is not None)
            # Drop every handle here, in the thread that created the context.
            self._host = None
            self._ctx = None
        if self._dropped_logs:
            self._add_log(LogLine("warn", f"[{self._dropped_logs} more log lines dropped]"))
        cpu, wall = self._used()
        logs = tuple(self._logs)
        if failure is None:
            return SandboxOk(result, logs, cpu, wall, self._host_calls)
        return SandboxFailure(
            failure.kind, failure.message, failure.stack, logs, cpu, wall, self._host_calls
        )


def log_outcome(
    script: PluginScript, call: Invocation, context: PluginContext, result: SandboxResult
) -> None:
    """Write an execution's captured lines, and its failure if any, to the server log with the
    plugin, the user and the hook. Called where the execution was asked for (the server process),
    whichever thread or process ran it."""
    plugin, user, hook = script.name, context.user_id, call.label
    extra = {"plugin": plugin, "user_id": user, "hook": hook}
    for line in result.logs:
        logger.log(
            _PY_LEVEL[line.level],
            "plugin %s user %s %s: %s",
            plugin,
            user,
            hook,
            line.text,
            extra=extra,
        )
    if isinstance(result, SandboxFailure):
        # A hook the script does not define is "nothing to do" for the hook processor.
        quiet = result.kind is FailureKind.UNKNOWN_HANDLER
        logger.log(
            logging.DEBUG if quiet else logging.WARNING,
            "plugin %s user %s %s failed (%s): %s",
            plugin,
            user,
            hook,
            result.kind.value,
            result.message,
            extra={**extra, "failure": result.kind.value},
        )


def execute(
    script: PluginScript,
    call: Invocation,
    context: PluginContext,
    limits: SandboxLimits,
    run_host_calls: RunHostCalls,
    cancelled: threading.Event | None = None,
    on_log: LogSink | None = None,
) -> SandboxResult:
    """Run ``call`` of ``script`` to its end in a fresh context; blocks (see the module doc).

    ``on_log``, when given, gets every line of the result's ``logs`` in order, in this thread, as
    the execution goes: the lines a step logged leave when the step ends (the script's next
    ``await``, or its end), since QuickJS cannot call out of a step under a time limit. A sink
    must not raise. Logs nothing of the plugin's own: the caller hands the result to
    :func:`log_outcome`."""
    return _Execution(script, call, context, limits, run_host_calls, cancelled, on_log).run()
