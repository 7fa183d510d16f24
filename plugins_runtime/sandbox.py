"""The async front door: ``await sandbox.run(script, call, context, host)``.

Port contract of :class:`PluginSandbox`:

- Blocks: never the event loop. Each execution runs on one worker thread of the sandbox's own pool
  from start to end (its QuickJS context never sees another thread); the host calls it makes are
  awaited on the caller's event loop, one after the other in the order the plugin made them. When
  every worker is busy, ``run`` waits for one (the pool size is the backpressure); that wait is
  not counted against the execution's limits.
- Raises: nothing for what a plugin does; it returns a :class:`SandboxResult`. ``run`` raises
  ``RuntimeError`` after :meth:`close`. If the awaiting task is cancelled, the execution is told
  to stop at its next step (within one step's CPU budget) and the cancellation propagates.
- Logs: ``on_log``, when given, is called on the caller's event loop with each line of the
  result's ``logs``, in order, while the execution runs (a step's lines when the step ends).
- Shutdown: :meth:`close` waits for running executions (each bounded by its wall-clock cap) and
  stops the worker threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable
from typing import Protocol

from plugins_runtime.engine import execute, log_outcome
from plugins_runtime.host import HostCalls, HostReply, HostRequest, perform_in_order
from plugins_runtime.invocation import Invocation, PluginContext, PluginScript
from plugins_runtime.limits import SandboxLimits
from plugins_runtime.outcome import LogLine, SandboxResult

# QuickJS guards its own stack at ``stack_bytes`` (512 KiB) but the C stack beneath it must be
# larger than that whatever the platform's default thread stack (128 KiB on musl).
_WORKER_STACK_BYTES = 8 * 1024 * 1024


def _spawn_pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """A pool whose threads all exist now, created while the large stack size is in force."""
    previous = threading.stack_size(_WORKER_STACK_BYTES)
    try:
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="plugin-sandbox")
        # A pool starts threads lazily; tasks that wait for each other force all of them up now.
        barrier = threading.Barrier(workers)
        for future in [pool.submit(barrier.wait) for _ in range(workers)]:
            future.result()
    finally:
        threading.stack_size(previous)
    return pool


class Sandbox(Protocol):
    """The port: :class:`PluginSandbox` (threads of the server) and
    :class:`plugins_runtime.processes.ProcessSandbox` (processes of its own) pass one contract
    suite (``tests/integration/test_plugin_sandbox.py``)."""

    limits: SandboxLimits

    async def run(
        self,
        script: PluginScript,
        call: Invocation,
        context: PluginContext,
        host: HostCalls,
        limits: SandboxLimits | None = None,
        on_log: Callable[[LogLine], None] | None = None,
    ) -> SandboxResult: ...

    async def warm(self) -> None:
        """Have every worker ready before the first execution (raises nothing for a plugin)."""
        ...

    def close(self) -> None: ...


class PluginSandbox:
    """Runs plugin executions on ``workers`` dedicated threads under ``limits``."""

    def __init__(self, limits: SandboxLimits | None = None, workers: int = 4) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.limits = limits or SandboxLimits()
        self._pool = _spawn_pool(workers)
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
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        sink: Callable[[LogLine], None] | None = None
        if on_log is not None:
            deliver = on_log

            def sink(line: LogLine) -> None:
                # Runs on the worker thread: the line is handed to the event loop (unless that
                # loop has closed under the execution: nobody is left to read it).
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(deliver, line)

        def run_host_calls(requests: list[HostRequest], timeout: float) -> list[HostReply]:
            # Runs on the worker thread: hand the I/O to the event loop and wait for it there.
            future = asyncio.run_coroutine_threadsafe(perform_in_order(host, requests), loop)
            try:
                return future.result(timeout)
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise TimeoutError from None

        try:
            result = await loop.run_in_executor(
                self._pool,
                execute,
                script,
                call,
                context,
                limits or self.limits,
                run_host_calls,
                cancelled,
                sink,
            )
        except asyncio.CancelledError:
            cancelled.set()
            raise
        log_outcome(script, call, context, result)
        return result

    async def warm(self) -> None:
        """The threads exist from construction: nothing to do."""

    def close(self) -> None:
        """Stop accepting runs; wait for running executions; end the worker threads."""
        self._closed = True
        self._pool.shutdown(wait=True)
