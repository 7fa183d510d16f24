"""Wiring of the hook processor (:mod:`processors.plugin_hooks`): what ``codetrackr serve`` runs in
process and ``codetrackr worker`` runs beside its faust agents.

The processor has its own plugin runtime (:mod:`codetrackr.plugins`: ``CODETRACKR_PLUGIN_WORKERS``
sandbox threads, plugin SQL clients, a key-value store handle), so hooks never take threads from
the API's RPC calls nor the other way round; both reach the same key-value data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from accounts.directory import AccountDirectory
from codetrackr.health import Readiness
from codetrackr.metrics import Metrics
from codetrackr.plugins import PluginRuntime, build_plugin_runtime
from codetrackr.settings import Settings
from eventlog.port import EventLog, LogError
from live.port import LiveChannel, LivePublisher
from plugins_runtime import SandboxUnavailable
from processors.plugin_hooks import PluginHookProcessor
from processors.supervision import SupervisionPolicy

_log = logging.getLogger(__name__)


@dataclass
class HookParts:
    processor: PluginHookProcessor
    runtime: PluginRuntime
    directory: AccountDirectory


def build_hooks(
    settings: Settings,
    log: EventLog,
    directory: AccountDirectory,
    live: LiveChannel | None,
    policy: SupervisionPolicy,
) -> HookParts:
    """The processor and what it runs plugins with (no I/O until :func:`hooks_running`)."""
    runtime = build_plugin_runtime(settings, directory, background=True)
    processor = PluginHookProcessor(
        log,
        directory,
        runtime.executor,
        runtime.kv,
        publisher=LivePublisher(live),
        failures_to_suspend=settings.plugin_failures_to_suspend,
        tick_interval_s=settings.plugin_tick_interval_s,
        # Executions at once are bounded by the sandbox; a few more pairs wait on their I/O.
        concurrency=settings.plugin_workers * 4,
        policy=policy,
    )
    return HookParts(processor, runtime, directory)


def _ended(parts: HookParts, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        parts.processor.health.alive = False
        parts.processor.health.failure = f"hook processor supervision stopped: {exc!r}"
        _log.error("the hook processor stopped for good", exc_info=exc)


@contextlib.asynccontextmanager
async def hooks_running(
    parts: HookParts,
    readiness: Readiness | None = None,
    *,
    stop_timeout_s: float = 10.0,
    metrics: Metrics | None = None,
) -> AsyncIterator[None]:
    """Run the processor and its tick timer (the directory must be started); on the way out let
    the hooks in flight finish for up to ``stop_timeout_s`` and commit them, then close."""
    await parts.runtime.kv.start()
    # With plugins installed, the first hooks should not wait for sandbox processes to start;
    # without any, none is started until one is (a process costs ~25 MB).
    if any(parts.directory.state.plugins.installs.values()):
        try:
            await parts.runtime.sandbox.warm()
        except SandboxUnavailable as exc:
            _log.warning("plugin sandbox processes could not start yet: %s", exc)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    try:
        # Joined here so that /readyz is right from the start; if the log is down or slow to
        # assign partitions, the supervision below joins again later (never raised from here).
        try:
            await parts.processor.start()
            parts.processor.health.alive = True
        except LogError as exc:
            _log.warning("the hook processor could not join its group yet: %s", exc)
            await parts.processor.close(commit=False)
        run = asyncio.create_task(parts.processor.run_supervised(stop), name="plugin-hooks")
        run.add_done_callback(lambda task: _ended(parts, task))
        tasks = [run, asyncio.create_task(parts.processor.run_ticks(stop), name="plugin-ticks")]
        if readiness is not None:
            readiness.projectors.append(parts.processor)
        if metrics is not None:
            metrics.sources.executors.append(("hooks", parts.runtime.executor))
            metrics.sources.hooks.append(parts.processor)
        yield
    finally:
        stop.set()
        for task in tasks:
            task.cancel()  # the tick timer sleeps; the loop is stopped between batches below
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await parts.processor.close(timeout_s=stop_timeout_s)
        await parts.runtime.close()
