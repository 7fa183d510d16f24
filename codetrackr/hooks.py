"""Wiring of the hook processor (:mod:`processors.plugin_hooks`): what ``codetrackr serve`` runs
in a child process of its own (:func:`hook_process_running`, or in its own event loop with
``CODETRACKR_HOOKS_PROCESS=inline``) and ``codetrackr worker`` runs beside its faust agents.

The processor has its own plugin runtime (:mod:`codetrackr.plugins`: ``CODETRACKR_PLUGIN_WORKERS``
sandbox processes, plugin SQL clients, a key-value store handle), so hooks never take sandboxes
from the API's RPC calls nor the other way round; both reach the same key-value data.

**The hook process** (``serve``): planning hooks, host calls and frames to the sandboxes cost the
processor CPU of its own; in the server's process that CPU is taken under the GIL the projection
runner needs. So ``serve`` starts :mod:`codetrackr.hook_child` as a child process at
:data:`~codetrackr.plugins.HOOKS_NICE` (its sandboxes inherit it), supervises it (restarted with
backoff when it dies; asked to stop, then killed, on shutdown) and answers what only the server
can do over an internal channel (:mod:`codetrackr.hook_channel`): appends to the log and commits
of the hook group's offsets, plugin SQL on the projections, live messages. Delivery is unchanged:
offsets are committed after the hooks ran, so a killed child loses nothing; its successor fires
the uncommitted hooks again (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from accounts.directory import AccountDirectory
from codetrackr.health import Readiness
from codetrackr.hook_channel import HookChannelServer, HookProcessProbe
from codetrackr.metrics import Metrics
from codetrackr.plugins import HOOKS_NICE, PluginRuntime, build_plugin_runtime
from codetrackr.settings import Settings
from eventlog.embedded import SqliteEventLog
from eventlog.port import EventLog, LogError
from live.port import LiveChannel, LivePublisher
from plugins_runtime import SandboxUnavailable
from plugins_runtime.sql_executor import ClickHousePluginQueries, PluginQueries
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
    *,
    nice: int = HOOKS_NICE,
    queries: PluginQueries | None = None,
) -> HookParts:
    """The processor and what it runs plugins with (no I/O until :func:`hooks_running`).
    ``nice``: added to the sandbox processes' niceness (none in the hook process, which runs
    at :data:`HOOKS_NICE` already); ``queries``: see :func:`build_plugin_runtime`."""
    runtime = build_plugin_runtime(settings, directory, nice=nice, queries=queries)
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


# -- the hook process of ``serve`` ---------------------------------------------------------------

# A child that ran this long before it died starts again at once (its backoff starts over).
_STABLE_S = 60.0
# Unix socket paths are limited to ~107 bytes.
_MAX_SOCKET_PATH = 100
SOCKET_NAME = "hooks.sock"


def child_settings(settings: Settings) -> dict[str, object]:
    """The settings the hook process is started with: the server's own, secrets left out (the
    child needs none), the data directory made absolute."""
    data = settings.model_dump(mode="json")
    for name, value in vars(settings).items():
        if isinstance(value, SecretStr):
            data.pop(name, None)
    data["data_dir"] = str(settings.data_dir.resolve())
    return data


class HookProcess:
    """Starts :mod:`codetrackr.hook_child` and starts it again whenever it exits, until
    :meth:`stop`. ``process`` is the running child (``None`` between two)."""

    def __init__(
        self,
        settings: Settings,
        socket: Path,
        secret: bytes,
        probe: HookProcessProbe,
        policy: SupervisionPolicy,
        *,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self._start_line = (
            json.dumps(
                {
                    "secret": secret.hex(),
                    "socket": str(socket),
                    "settings": child_settings(settings),
                    "stop_timeout_s": stop_timeout_s,
                }
            )
            + "\n"
        ).encode()
        self.probe = probe
        self._policy = policy
        self._stop_timeout_s = stop_timeout_s
        self._stopping = asyncio.Event()
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.probe.starting()
        self._task = asyncio.create_task(self._supervise(), name="hook-process")

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "codetrackr.hook_child", stdin=asyncio.subprocess.PIPE
        )
        # At once, before its imports: the whole child (its sandboxes inherit it) runs behind
        # the server. Set from here rather than in a preexec_fn (unsafe in a threaded process).
        with contextlib.suppress(OSError):
            niceness = os.getpriority(os.PRIO_PROCESS, 0) + HOOKS_NICE
            os.setpriority(os.PRIO_PROCESS, process.pid, min(niceness, 19))
        assert process.stdin is not None
        process.stdin.write(self._start_line)
        with contextlib.suppress(ConnectionError):
            await process.stdin.drain()
        process.stdin.close()
        self.started += 1
        self.probe.starting()
        return process

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                self.process = await self._spawn()
            except OSError as exc:
                code: int | None = None
                reason = f"the hook process could not start: {exc}"
            else:
                code = await self.process.wait()
                reason = f"the hook process exited with status {code}"
            if self._stopping.is_set():
                return
            failures = 1 if time.monotonic() - began > _STABLE_S else failures + 1
            delay = self._policy.delay(failures)
            _log.error("%s; starting it again in %.1fs", reason, delay)
            self.probe.lost(f"{reason}; restarting", restarting=True)
            self.process = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def stop(self) -> None:
        """Ask the child to stop (it lets the hooks in flight finish and commits them), kill it
        if it has not exited after its own stop timeout and a margin."""
        self._stopping.set()
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self._stop_timeout_s + 5)
            except TimeoutError:
                _log.warning("the hook process did not stop in time; killed")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.probe.lost("stopped", restarting=False)


def socket_path(data_dir: Path) -> tuple[Path, Path | None]:
    """Where the channel listens: in the data directory (0700), or in a private temporary
    directory (returned second, to remove) when that path is too long for a Unix socket."""
    path = data_dir.resolve() / SOCKET_NAME
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path, None
    scratch = Path(tempfile.mkdtemp(prefix="codetrackr-"))
    return scratch / SOCKET_NAME, scratch


@contextlib.asynccontextmanager
async def hook_process_running(
    settings: Settings,
    log: EventLog,
    live: LiveChannel | None,
    policy: SupervisionPolicy,
    readiness: Readiness | None = None,
    *,
    metrics: Metrics | None = None,
    stop_timeout_s: float = 10.0,
) -> AsyncIterator[HookProcess]:
    """Serve the channel and run the supervised hook process (the log must be started, its
    topics created); on the way out stop the child, then the channel."""
    probe = HookProcessProbe()
    queries = ClickHousePluginQueries(
        settings.resolved_clickhouse_url(), settings.clickhouse_database
    )
    path, scratch = socket_path(settings.data_dir)
    server = HookChannelServer(
        path,
        secrets.token_bytes(32),
        log=log,
        queries=queries,
        live=live,
        probe=probe,
        appends=log.appends if isinstance(log, SqliteEventLog) else None,
    )
    await server.start()
    process = HookProcess(
        settings, path, server.secret, probe, policy, stop_timeout_s=stop_timeout_s
    )
    if readiness is not None:
        readiness.projectors.append(probe)
    if metrics is not None:
        metrics.sources.executors.append(("hooks", probe))
        metrics.sources.hooks.append(probe)
    try:
        process.start()
        yield process
    finally:
        await process.stop()
        await server.close()
        await asyncio.to_thread(queries.close)
        if scratch is not None:
            with contextlib.suppress(OSError):
                scratch.rmdir()
