"""The sandbox in processes of its own: the same port as :class:`PluginSandbox`, but every
execution runs in one of ``workers`` child processes (:mod:`plugins_runtime.sandbox_worker`).

Why: QuickJS runs holding the interpreter lock, so plugins run on threads of the server take CPU
from everything else the server does (projecting, answering requests) even on a machine with idle
cores. In a process of its own a plugin's JavaScript runs beside the server, not in its turn; and
whatever a script does to the engine, at worst that process dies, not the server.

Port contract (as :class:`plugins_runtime.sandbox.PluginSandbox`):

- Blocks: never the event loop. The host calls a script makes come back to the server as frames
  and are awaited on the caller's event loop, in order; the pipe is read with the loop's reader
  callbacks, so no thread is involved on the server side. When every process is busy, ``run``
  waits for one (not counted against the execution's limits), and so does a process starting up.
- Raises: nothing for what a plugin does; it returns a :class:`SandboxResult`. ``run`` raises
  ``RuntimeError`` after :meth:`close` and :class:`SandboxUnavailable` when no process can start.
  If the awaiting task is cancelled, the process is killed (a fresh one is started on demand) and
  the cancellation propagates.
- Beyond the thread sandbox: a process that does not answer within ``wall_s`` plus a grace period
  is killed and the execution is a ``timeout``; a process that dies mid-execution makes it a
  ``plugin_error``. Either way the next execution gets a fresh process.
- Logs: with ``on_log``, the process sends each line as a frame while it runs, and ``on_log`` is
  called with it on the caller's event loop (lines of an execution killed at its deadline have
  been delivered, though its result has none).
- Shutdown: :meth:`close` ends the idle processes at once and every busy one as its execution
  ends; it does not wait for running executions (it may be called on the event loop's thread).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from plugins_runtime.engine import log_outcome
from plugins_runtime.host import HostCalls, perform_in_order
from plugins_runtime.invocation import Invocation, PluginContext, PluginScript
from plugins_runtime.limits import SandboxLimits
from plugins_runtime.outcome import FailureKind, LogLine, SandboxFailure, SandboxResult
from plugins_runtime.wire import (
    HEADER,
    TIMEOUT_MESSAGE,
    WireError,
    frame,
    frame_length,
    parse,
    read_done,
    read_host,
    read_log,
    replies_message,
    run_message,
)

logger = logging.getLogger(__name__)

# Beyond an execution's wall-clock cap, how long its process may take to report it before it is
# killed (the process checks its own caps between steps, so this is only for a stuck engine).
GRACE_S = 2.0
# A process's interpreter start and imports; generous for a loaded machine.
STARTUP_S = 60.0
_READ_CHUNK = 1 << 16


class SandboxUnavailable(Exception):
    """A sandbox process could not be started: not the plugin's fault (the host is out of
    processes or memory, the interpreter cannot import the engine)."""


class _Deadline(Exception):
    """The process did not answer in time."""


class _SandboxProcess:
    """One child process and the server's end of its two pipes."""

    def __init__(self, nice: int) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "plugins_runtime.sandbox_worker", "--nice", str(nice)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
        )
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._stdin = self._proc.stdin
        self._fd = self._proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        self._buffer = bytearray()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def send(self, message: dict[str, Any]) -> None:
        # Blocking is brief: the process reads whenever the server is allowed to write.
        self._stdin.write(frame(message))
        self._stdin.flush()

    def _frame(self) -> dict[str, Any] | None:
        if len(self._buffer) < HEADER.size:
            return None
        length = frame_length(bytes(self._buffer[: HEADER.size]))
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        body = bytes(self._buffer[HEADER.size : end])
        del self._buffer[:end]
        return parse(body)

    async def receive(self, deadline: float) -> dict[str, Any]:
        """The next frame; raises ``EOFError`` if the process ended, :class:`_Deadline` at
        ``deadline`` (the loop's clock)."""
        loop = asyncio.get_running_loop()
        while (message := self._frame()) is None:
            try:
                chunk = os.read(self._fd, _READ_CHUNK)
            except BlockingIOError:
                await self._readable(loop, deadline)
                continue
            if not chunk:
                raise EOFError(f"sandbox process ended (exit code {self._proc.poll()})")
            self._buffer += chunk
        return message

    async def _readable(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        readable = loop.create_future()
        loop.add_reader(self._fd, _wake, readable)
        try:
            async with asyncio.timeout_at(deadline):
                await readable
        except TimeoutError:
            raise _Deadline from None
        finally:
            loop.remove_reader(self._fd)

    async def start(self) -> None:
        """Wait for the process's ``ready`` frame."""
        loop = asyncio.get_running_loop()
        message = await self.receive(loop.time() + STARTUP_S)
        if message.get("op") != "ready":
            raise WireError(f"expected ready, got {message.get('op')!r}")

    def stop(self) -> None:
        """Close its stdin (it exits by itself), kill it if it does not."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._close_pipes()

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _wake(readable: asyncio.Future[None]) -> None:
    if not readable.done():
        readable.set_result(None)


class ProcessSandbox:
    """Runs plugin executions in ``workers`` child processes under ``limits``.

    ``nice`` raises the processes' scheduling niceness (0 to 19): hooks are background work, so
    the hook processor's sandbox yields the cores to projections and requests when both want them.
    """

    def __init__(
        self, limits: SandboxLimits | None = None, workers: int = 4, *, nice: int = 0
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if not 0 <= nice <= 19:
            raise ValueError("nice must be within 0 to 19")
        self._nice = nice
        self.limits = limits or SandboxLimits()
        self._size = workers
        self._processes: set[_SandboxProcess] = set()  # started and not discarded
        self._idle: list[_SandboxProcess] = []
        self._waiters: collections.deque[asyncio.Future[_SandboxProcess | None]] = (
            collections.deque()
        )
        self._closed = False

    async def run(
        self,
        script: PluginScript,
        call: Invocation,
        context: PluginContext,
        host: HostCalls,
        limits: SandboxLimits | None = None,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> SandboxResult:
        """Run one hook or RPC handler of ``script`` for ``context.user_id`` (see module doc)."""
        if self._closed:
            raise RuntimeError("plugin sandbox is closed")
        limits = limits or self.limits
        process = await self._acquire()
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + limits.wall_s + GRACE_S
        host_calls = 0

        def failed(kind: FailureKind, message: str) -> SandboxFailure:
            return SandboxFailure(kind, message, None, (), 0.0, loop.time() - started, host_calls)

        try:
            process.send(run_message(script, call, context, limits, stream_logs=on_log is not None))
            while True:
                message = await process.receive(deadline)
                if message["op"] == "done":
                    result = read_done(message)
                    break
                if message["op"] == "log":
                    if on_log is not None:
                        on_log(read_log(message))
                    continue
                if message["op"] != "host":
                    raise WireError(f"unexpected {message['op']!r} frame")
                requests, timeout_s = read_host(message)
                host_calls += len(requests)
                try:
                    async with asyncio.timeout(timeout_s):
                        replies = await perform_in_order(host, requests)
                except TimeoutError:
                    process.send(TIMEOUT_MESSAGE)
                else:
                    process.send(replies_message(replies))
        except _Deadline:
            self._discard(process)
            result = failed(
                FailureKind.TIMEOUT,
                f"time limit of {limits.wall_s:g} s exceeded (the sandbox process was stopped)",
            )
        except (EOFError, OSError, WireError) as exc:
            self._discard(process)
            logger.warning("plugin %s: sandbox process failed: %s", script.name, exc)
            result = failed(FailureKind.PLUGIN_ERROR, "the plugin's sandbox process ended abruptly")
        except BaseException:
            self._discard(process)
            raise
        else:
            self._release(process)
        log_outcome(script, call, context, result)
        return result

    async def warm(self) -> None:
        """Start every process now rather than on the first executions (a start costs a few
        hundred ms that a hook would otherwise wait for); raises :class:`SandboxUnavailable`."""
        if self._closed:
            return
        taken = await asyncio.gather(
            *(self._acquire() for _ in range(self._size - len(self._processes)))
        )
        for process in taken:
            self._release(process)

    async def _acquire(self) -> _SandboxProcess:
        while True:
            if self._idle:
                return self._idle.pop()
            if len(self._processes) < self._size:
                try:
                    process = _SandboxProcess(self._nice)
                except OSError as exc:
                    raise SandboxUnavailable(f"cannot start a sandbox process: {exc}") from exc
                self._processes.add(process)
                try:
                    await process.start()
                except (EOFError, OSError, WireError, _Deadline) as exc:
                    self._discard(process)
                    raise SandboxUnavailable(f"a sandbox process did not start: {exc}") from exc
                except BaseException:
                    self._discard(process)
                    raise
                return process
            waiter: asyncio.Future[_SandboxProcess | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result())  # type: ignore[arg-type]
                raise
            if handed is not None:
                return handed
            # None: a process was discarded, so one may be started: loop.

    def _wake_one(self, process: _SandboxProcess | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(process)
                return True
        return False

    def _release(self, process: _SandboxProcess) -> None:
        if self._closed:
            self._processes.discard(process)
            process.stop()
            return
        if not self._wake_one(process):
            self._idle.append(process)

    def _discard(self, process: _SandboxProcess) -> None:
        self._processes.discard(process)
        process.kill()
        self._wake_one(None)

    def close(self) -> None:
        """Stop accepting runs; end the idle processes now and the busy ones as they finish."""
        self._closed = True
        idle, self._idle = self._idle, []
        for process in idle:
            self._processes.discard(process)
            process.stop()

    def pids(self) -> list[int]:
        """The processes' ids (started on demand, so none before the first execution)."""
        return sorted(process.pid for process in self._processes)
