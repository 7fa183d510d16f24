"""Figure 7: plugin hooks must not slow projections, and how soon a hook sees a heartbeat.

In-process, on the embedded stack (no server): the embedded log, chdb, an account directory, the
embedded key-value store, the real QuickJS sandbox. ``USERS`` accounts and ``PLUGINS`` published
plugins whose ``on_heartbeat`` awaits one ``ctx.redis.incr``.

* 7a, projection throughput: the heartbeats of ``REQUESTS_AT_SCALE_1`` requests are on the log;
  the projection runner projects all of them (timed, first fetch to last commit) in this process
  while the hook processor runs as ``codetrackr serve`` runs it: in a child process of its own at
  niceness +10 (:func:`codetrackr.hooks.hook_process_running`, the real child and channel),
  started before the timing and reporting ready. Value: with every plugin installed by every user
  (each heartbeat fires ``PLUGINS`` hooks); baseline: the same heartbeats with no plugin
  installed. A ratio near 1 is the goal: the processor has its own consumer group, so projections
  never wait for it; what it can take is CPU.
* 7a', the same with the hook processor in the projection runner's process and event loop
  (``CODETRACKR_HOOKS_PROCESS=inline``, what ``serve`` did before), sandboxes in processes.
* 7b, hook latency: one heartbeat per request appended through the ingest appender (it returns
  once the record is durable, the moment the API answers 2xx), spaced so nothing queues; the
  plugin's ``on_heartbeat`` stamps the wall clock into its key-value namespace; the hook process
  as ``serve`` runs it. Value: p50 from the append's return to the hook running; baseline: p50
  from the same return to the projection runner's commit of that heartbeat (how fresh the stats
  are). p99 of both in the notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from accounts.directory import AccountDirectory, new_event_id
from bench.report import Row, percentile
from codetrackr.hooks import HookProcess, hook_process_running
from codetrackr.plugins import HOOKS_NICE
from codetrackr.settings import Settings
from eventlog.embedded import SqliteEventLog
from ingest.appender import HeartbeatAppender
from plugin_host.executor import PluginExecutor
from plugins_runtime import ProcessSandbox, Sandbox
from plugins_runtime.kv_factory import SQLITE_FILE_NAME
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue
from plugins_runtime.sql_executor import ClickHousePluginQueries
from processors.handlers import HeartbeatProjector
from processors.plugin_hooks import PluginHookProcessor
from processors.projectors.batches import BatchResult
from processors.runner import ProjectionRunner
from processors.supervision import SupervisionPolicy
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountCreated,
    AccountEvent,
    PluginInstalled,
    PluginPublished,
)
from schemas.heartbeat import Heartbeat, heartbeat_event_id

USERS = 10
PLUGINS = 10
HEARTBEATS_PER_REQUEST = 10
# 3,000 heartbeats: 1,000 were projected in ~0.3 s, too short a window on a shared machine.
REQUESTS_AT_SCALE_1 = 300
LATENCY_SAMPLES_AT_SCALE_1 = 200
LATENCY_SPACING_S = 0.05
COUNTING = """
async function on_heartbeat(ctx, heartbeat) { await ctx.redis.incr('n'); }
"""
# Where the hook processor runs: a child process (serve's default) or this process's loop.
Placement = Literal["process", "inline"]
STAMPING = """
async function on_heartbeat(ctx, heartbeat) {
  await ctx.redis.set('at:' + heartbeat.time, String(Date.now()));
}
"""


@dataclass
class _Stack:
    log: SqliteEventLog
    directory: AccountDirectory
    store: ClickHouseProjectionStore
    kv: SqlitePluginKeyValue
    hooks: PluginHookProcessor | None  # inline only
    child: HookProcess | None  # the hook process only
    runner: ProjectionRunner
    projected_at: dict[str, float]


@contextlib.asynccontextmanager
async def _stack(
    root: Path,
    chdb_url: str,
    installs: int,
    script: str,
    on_batch: Callable[[int, BatchResult], None] | None = None,
    placement: Placement = "process",
) -> AsyncIterator[_Stack]:
    """Users, ``PLUGINS`` plugins published, each user installing ``installs`` of them; the hook
    processor (sandboxes in child processes) not started yet: :func:`_hooks_running`."""
    await asyncio.to_thread(root.mkdir, parents=True)
    log = SqliteEventLog(root / "log.sqlite")
    await log.start()
    await log.ensure_topics({HEARTBEATS_TOPIC: 3, ACCOUNTS_TOPIC: 1})
    directory = AccountDirectory(log)
    await directory.start()
    events: list[AccountEvent] = [
        AccountCreated(
            event_id=new_event_id(), user_id=f"user-{n}", occurred_at=1, username=f"u{n}"
        )
        for n in range(USERS + 1)
    ]
    events += [
        PluginPublished(
            event_id=new_event_id(),
            user_id=f"user-{USERS}",
            occurred_at=2,
            name=f"hook-{n}",
            display_name=f"Hook {n}",
            server_script=script,
        )
        for n in range(PLUGINS)
    ]
    events += [
        PluginInstalled(
            event_id=new_event_id(), user_id=f"user-{u}", occurred_at=3, name=f"hook-{n}"
        )
        for u in range(USERS)
        for n in range(installs)
    ]
    for event in events:
        await directory.record(event)
    database = f"bench_hooks_{uuid.uuid4().hex[:8]}"
    store = ClickHouseProjectionStore(chdb_url, database=database)
    await asyncio.to_thread(store.migrate)
    kv = SqlitePluginKeyValue(root / SQLITE_FILE_NAME)  # where the hook process finds it
    await kv.start()
    runner = ProjectionRunner(log, HeartbeatProjector(store), on_batch=on_batch)
    await runner.start()
    stack = _Stack(log, directory, store, kv, None, None, runner, {})
    try:
        if placement == "inline":
            sandbox: Sandbox = ProcessSandbox(workers=4, nice=HOOKS_NICE)
            queries = ClickHousePluginQueries(chdb_url, database)
            executor = PluginExecutor(sandbox, directory, queries, kv, base_url="http://bench")
            stack.hooks = PluginHookProcessor(log, directory, executor, kv, concurrency=16)
            await sandbox.warm()  # as codetrackr.hooks.hooks_running does
            await stack.hooks.start()
            try:
                yield stack
            finally:
                await stack.hooks.close()
                await asyncio.to_thread(sandbox.close)
                await asyncio.to_thread(queries.close)
        else:
            settings = Settings(
                data_dir=root,
                event_log_url=f"embedded://{log.path.resolve()}",
                clickhouse_url=chdb_url,
                clickhouse_database=database,
                plugin_workers=4,  # hook concurrency 16, as inline
                redis_url=None,
            )
            async with hook_process_running(
                settings, log, None, SupervisionPolicy()
            ) as stack.child:
                await _ready(stack.child)
                yield stack
    finally:
        await runner.close()
        await kv.close()
        await directory.close()
        await log.close()
        await asyncio.to_thread(store.close)


async def _ready(child: HookProcess, timeout_s: float = 120.0) -> None:
    """Until the hook process has started its processor and reported so."""
    deadline = time.monotonic() + timeout_s
    while not child.probe.health.alive:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hook process did not start: {child.probe.health.failure}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _hooks_running(stack: _Stack) -> AsyncIterator[None]:
    """The inline processor's loop (a child runs its own from the start)."""
    if stack.hooks is None:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(stack.hooks.run(stop))
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _heartbeat(user: str, at: float, n: int) -> Heartbeat:
    entity = f"/src/file{n % 7}.py"
    event_id = heartbeat_event_id(
        user_id=user,
        entity=entity,
        type="file",
        category="coding",
        project="bench",
        branch=None,
        language="Python",
        is_write=False,
        time=at,
    )
    return Heartbeat(
        event_id=event_id,
        user_id=user,
        time=at,
        entity=entity,
        type="file",
        category="coding",
        project="bench",
        language="Python",
        timezone="UTC",
        received_at=at,
        source="wakatime",
    )


async def _throughput(
    root: Path, chdb_url: str, installs: int, requests: int, placement: Placement = "process"
) -> tuple[int, float]:
    async with _stack(root, chdb_url, installs, COUNTING, placement=placement) as stack:
        appender = HeartbeatAppender(stack.log)
        base = time.time() - 3 * 86400
        n = 0
        for r in range(requests):
            user = f"user-{r % USERS}"
            beats = []
            for _ in range(HEARTBEATS_PER_REQUEST):
                beats.append(_heartbeat(user, base + n * 30, n))
                n += 1
            await appender.append(user, beats)
        ends = await stack.log.end_offsets(HEARTBEATS_TOPIC)
        async with _hooks_running(stack):
            started = time.perf_counter()
            await stack.runner.run_to(ends)
            elapsed = time.perf_counter() - started
        return n, elapsed


async def _latency(root: Path, chdb_url: str, samples: int) -> tuple[list[float], list[float]]:
    appended: dict[float, float] = {}
    projected: dict[float, float] = {}
    pending: list[float] = []  # one record per request, projected in order (one user)
    all_projected = asyncio.Event()

    def committed(records: int, _result: BatchResult) -> None:
        now = time.time()
        for at in pending[:records]:
            projected[at] = now
        del pending[:records]
        if len(projected) >= samples:
            all_projected.set()

    async with _stack(root, chdb_url, 1, STAMPING, on_batch=committed) as stack:
        appender = HeartbeatAppender(stack.log)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(stack.runner.run(stop))]
        try:
            base = float(int(time.time()) - 86400)
            for n in range(samples):
                heartbeat = _heartbeat("user-0", base + n, n)
                pending.append(heartbeat.time)  # before: its commit may beat the append's return
                await appender.append("user-0", [heartbeat])
                appended[heartbeat.time] = time.time()
                await asyncio.sleep(LATENCY_SPACING_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_projected.wait(), timeout=60)
            await asyncio.sleep(1.0)  # the last hooks
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        stamps = (await stack.kv.dump_user("user-0")).get("hook-0", {})
    hook = [
        int(stamps[f"at:{int(at)}"]) / 1000 - done
        for at, done in appended.items()
        if f"at:{int(at)}" in stamps
    ]
    fresh = [projected[at] - done for at, done in appended.items() if at in projected]
    return hook, fresh


async def figure_plugin_hooks(scale: float, chdb_url: str | None = None) -> list[Row]:
    requests = max(20, round(REQUESTS_AT_SCALE_1 * scale))
    samples = max(50, round(LATENCY_SAMPLES_AT_SCALE_1 * scale))
    with tempfile.TemporaryDirectory(prefix="bench-hooks-") as tmp:
        root = Path(tmp)
        url = chdb_url or f"chdb://{root / 'clickhouse'}"
        n, without = await _throughput(root / "none", url, 0, requests)
        _, with_plugins = await _throughput(root / "ten", url, PLUGINS, requests)
        _, inline_without = await _throughput(root / "inline-none", url, 0, requests, "inline")
        _, inline = await _throughput(root / "inline", url, PLUGINS, requests, "inline")
        hook, fresh = await _latency(root / "latency", url, samples)
    if len(hook) < samples * 0.9 or len(fresh) < samples * 0.9:
        raise RuntimeError(f"only {len(hook)} hooks and {len(fresh)} projections seen of {samples}")
    return [
        Row(
            mode="embedded",
            figure=f"7a projection throughput, {PLUGINS} plugins installed per user",
            unit="hb/s",
            value=n / with_plugins,
            baseline=n / without,
            baseline_label="same heartbeats, no plugin installed",
            notes=[
                f"{n:,} heartbeats of {USERS} users in requests of {HEARTBEATS_PER_REQUEST}; "
                f"the hook processor in its own process at niceness +10, as serve runs it "
                f"({n * PLUGINS:,} on_heartbeat executions to do), its sandbox in 4 child "
                f"processes (CODETRACKR_PLUGIN_ISOLATION=process, the default)"
            ],
        ),
        Row(
            mode="embedded",
            figure=f"7a' the same, {PLUGINS} plugins, hook processor in the server's process",
            unit="hb/s",
            value=n / inline,
            baseline=n / inline_without,
            baseline_label="same heartbeats, no plugin installed, inline",
            notes=[
                "CODETRACKR_HOOKS_PROCESS=inline (serve before the hook process): the "
                "processor's planning, host calls and frames on the projection runner's loop"
            ],
        ),
        Row(
            mode="embedded",
            figure="7b durable append (2xx) to on_heartbeat running, p50",
            unit="s",
            value=percentile(hook, 50),
            baseline=percentile(fresh, 50),
            baseline_label="durable append to the heartbeat projected (committed), p50",
            notes=[
                f"hook p99 {percentile(hook, 99) * 1000:.0f} ms, projection p99 "
                f"{percentile(fresh, 99) * 1000:.0f} ms; {samples} single-heartbeat requests "
                f"{LATENCY_SPACING_S * 1000:.0f} ms apart; one plugin installed; the hook "
                f"process as serve runs it"
            ],
        ),
    ]
