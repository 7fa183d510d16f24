"""The hook processor: fires plugins' lifecycle hooks from the log, apart from the projections.

It reads ``codetrackr.heartbeats`` and ``codetrackr.accounts`` through the event log port as its
own consumer group, :data:`HOOKS_GROUP` (never the projections' group: a slow plugin never holds
up a projection, and a replay of the projections never fires a hook). What each event fires is
decided by :mod:`processors.hook_plans`.

**Lanes.** Every (user, plugin) pair has a lane: its jobs run one after another in log order,
while the lanes of different pairs run concurrently (at most ``concurrency`` at once; the sandbox's
worker pool bounds executions further). A slow plugin therefore only delays its own pair: the
processor keeps fetching and dispatching the next batches, up to ``max_batches_in_flight``.

**Delivery.** A batch's offsets are committed once every job it dispatched has finished, and
batches are committed in log order, so a crash re-fires hooks (at least once) and never loses one.
``on_install`` is fired for a new install only (its ``install_id`` is the event's id), and a host
marker (``on_install:<install id>`` in the key-value store) is written after it ran, so a
redelivered install does not fire it again; only a crash between the hook's end and the marker's
write fires it twice.

**Failures.** A hook a script does not define (``unknown_handler``) is nothing to do. Any other
failure is the plugin's: logged with plugin, user and hook, and counted per pair; after
``failures_to_suspend`` failures in a row the processor records
:class:`~schemas.events.PluginSuspended` (installing again resumes), and a success resets the
count. A failure of ours (:class:`~plugin_host.executor.PluginHostUnavailable`, the log, the
key-value store: the ``transient`` errors) is not counted: the job is retried with backoff, in its
lane, until it goes through.

**Ticks.** Every ``tick_interval_s`` each install gets an ``on_tick`` (at most one pending per
pair), fired only by the processor whose assignment holds partition 0 of the accounts topic, so
exactly one processor of a group ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from pydantic import ValidationError

from accounts.directory import AccountDirectory, new_event_id
from accounts.plugins import StorePlugin
from eventlog.port import (
    Delivered,
    EventLog,
    LogError,
    LogReader,
    LogUnavailable,
    PartitionsRevoked,
    TopicPartition,
)
from live.port import LivePublisher
from plugin_host.executor import PluginHostUnavailable
from plugins_runtime.invocation import Invocation
from plugins_runtime.kv import KeyValueUnavailable
from plugins_runtime.outcome import FailureKind, SandboxFailure, SandboxResult
from processors.hook_plans import ForgetJob, HookJob, Job, plan_event, tick_jobs
from processors.runner import next_offsets, records_behind, records_behind_by_partition
from processors.supervision import (
    ProjectorHealth,
    Sleep,
    SupervisionPolicy,
    describe,
    restarting,
)
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC, PluginSuspended, decode_event
from schemas.live import PluginEvent

_log = logging.getLogger(__name__)

HOOKS_GROUP = "codetrackr-plugin-hooks"
TICK_PARTITION = TopicPartition(ACCOUNTS_TOPIC, 0)
_MAX_UNDEFINED = 10_000


class HookExecutor(Protocol):
    """What the processor needs of :class:`plugin_host.executor.PluginExecutor`."""

    async def run(self, plugin: StorePlugin, user_id: str, call: Invocation) -> SandboxResult: ...


class HookKeyValue(Protocol):
    """What the processor needs of the plugin key-value store (``plugins_runtime.kv``)."""

    async def delete_user(self, user_id: str) -> int: ...

    async def delete_plugin_user(self, plugin: str, user_id: str) -> int: ...

    async def mark_once(self, marker: str) -> bool: ...

    async def unmark(self, marker: str) -> None: ...


def install_marker(install_id: str) -> str:
    return f"on_install:{install_id}"


def in_time_order(records: Sequence[Delivered]) -> list[Delivered]:
    """``records`` merged across partitions by append time (an account event first on a tie),
    each partition's own order kept: an install is planned before the heartbeats sent after it,
    whichever topic a fetch returned first."""
    by_partition: dict[tuple[str, int], list[Delivered]] = {}
    for record in records:
        by_partition.setdefault((record.topic, record.partition), []).append(record)
    return list(
        heapq.merge(
            *by_partition.values(), key=lambda r: (r.timestamp_ms, r.topic != ACCOUNTS_TOPIC)
        )
    )


@dataclass
class _Batch:
    offsets: dict[TopicPartition, int]
    records: int
    pending: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    dispatched_at: float = field(default_factory=time.perf_counter)

    def finished_one(self) -> None:
        self.pending -= 1
        if self.pending <= 0:
            self.done.set()


@dataclass
class _Item:
    job: Job
    batch: _Batch | None
    on_done: Callable[[], None] | None = None


class PluginHookProcessor:
    """Consumes both topics as :data:`HOOKS_GROUP` and fires hooks; see the module docs.

    ``run_supervised(stop)`` is what a process runs (restarted with a fresh reader if it dies);
    ``run_ticks(stop)`` the tick timer. ``step``, ``tick`` and ``wait_idle`` are what tests drive.
    """

    def __init__(
        self,
        log: EventLog,
        directory: AccountDirectory,
        executor: HookExecutor,
        kv: HookKeyValue,
        *,
        publisher: LivePublisher | None = None,
        group: str = HOOKS_GROUP,
        failures_to_suspend: int = 5,
        tick_interval_s: float = 60.0,
        batch_size: int = 500,
        wait_s: float = 0.05,
        concurrency: int = 32,
        max_batches_in_flight: int = 8,
        policy: SupervisionPolicy | None = None,
        transient: tuple[type[BaseException], ...] = (),
        sleep: Sleep = asyncio.sleep,
        tick_sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._directory = directory
        self._executor = executor
        self._kv = kv
        self._publisher = publisher or LivePublisher(None)
        self._group = group
        self._failures_to_suspend = failures_to_suspend
        self._tick_interval_s = tick_interval_s
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._limit = asyncio.Semaphore(concurrency)
        self._max_in_flight = max_batches_in_flight
        self._policy = policy or SupervisionPolicy()
        self._transient: tuple[type[BaseException], ...] = (
            PluginHostUnavailable,
            LogError,
            KeyValueUnavailable,
            *transient,
        )
        self._sleep = sleep
        self._tick_sleep = tick_sleep
        self._clock = clock
        self.health = ProjectorHealth("plugin-hooks")
        self._reader: LogReader | None = None
        self._in_flight: deque[_Batch] = deque()
        self._lanes: dict[tuple[str, str], deque[_Item]] = {}
        self._lane_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._ticking: set[tuple[str, str]] = set()
        self._failures: dict[tuple[str, str], int] = {}
        # (plugin, its server script, hook) known not to be defined: not executed again.
        self._undefined: set[tuple[str, str, str]] = set()
        self._uncommitted = 0
        # What happened, for logs and tests: hooks run (ok or failed), suspensions recorded.
        self.fired = 0
        self.failed = 0
        self.suspended = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        self._reader = self._log.reader([HEARTBEATS_TOPIC, ACCOUNTS_TOPIC], group=self._group)
        await self._reader.start()

    async def close(self, *, commit: bool = True, timeout_s: float = 10.0) -> None:
        """Stop: with ``commit``, let the batches in flight finish (for at most ``timeout_s``)
        and commit them; then cancel what is left (it is delivered again on the next start)."""
        if commit and self._reader is not None:
            with contextlib.suppress(TimeoutError, LogError):
                async with asyncio.timeout(timeout_s):
                    while self._in_flight:
                        await self._in_flight[0].done.wait()
                        await self._commit_finished()
        for task in list(self._lane_tasks.values()):
            task.cancel()
        for task in list(self._lane_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_reader()

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        self._in_flight.clear()
        self._uncommitted = 0
        if reader is not None:
            await reader.close()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            await self.step()

    async def run_supervised(self, stop: asyncio.Event) -> None:
        """``run`` until ``stop`` is set, restarted with a fresh reader whenever it raises (what
        was dispatched but not committed is delivered again: hooks fire at least once)."""
        await restarting(
            stop,
            started=lambda: self._reader is not None,
            start=self.start,
            run=self.run,
            close_reader=self._close_reader,
            health=self.health,
            policy=self._policy,
            sleep=self._sleep,
            what="hook processor",
        )

    async def run_ticks(self, stop: asyncio.Event) -> None:
        """Fire ``on_tick`` every ``tick_interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            await self._tick_sleep(self._tick_interval_s)
            if stop.is_set():
                return
            try:
                await self.tick()
            except LogError as exc:
                _log.warning("plugin ticks skipped: the log is unavailable: %s", exc)

    async def lag_records(self) -> int:
        """Records on the log this processor has not committed yet (for ``/readyz``)."""
        reader = self._reader
        if reader is None:
            raise LogUnavailable("the hook processor has no reader (restarting)")
        return await records_behind(self._log, reader) + self._uncommitted

    async def lag_by_partition(self) -> dict[str, int]:
        """Committed positions behind the log's end, per ``topic/partition`` (``/metrics``)."""
        reader = self._reader
        if reader is None:
            raise LogUnavailable("the hook processor has no reader (restarting)")
        return await records_behind_by_partition(self._log, reader)

    # -- the log --------------------------------------------------------------------------------

    async def step(self) -> int:
        """Commit the batches whose hooks all finished, then fetch and dispatch one more (unless
        ``max_batches_in_flight`` are still running). Returns how many records it dispatched."""
        assert self._reader is not None
        await self._commit_finished()
        if len(self._in_flight) >= self._max_in_flight:
            await self._in_flight[0].done.wait()
            return 0
        try:
            records = await self._reader.fetch(self._batch_size, self._wait_s)
        except LogError as exc:
            _log.warning("hook processor: event log unavailable, retrying: %s", exc)
            await self._sleep(self._policy.initial_delay_s)
            return 0
        if not records:
            return 0
        # Every account event the batch holds is folded before it is planned. The records are
        # fetched already: wait for the directory rather than drop them.
        failures = 0
        while True:
            try:
                await self._directory.sync()
                break
            except LogError as exc:
                failures += 1
                self.health.failure = describe(exc)
                _log.warning("hook processor: accounts not readable, retrying: %s", exc)
                await self._sleep(self._policy.delay(failures))
        self._dispatch(records)
        return len(records)

    def _dispatch(self, records: Sequence[Delivered]) -> None:
        batch = _Batch(next_offsets(records), len(records))
        items: list[tuple[tuple[str, str], _Item]] = []
        for record in in_time_order(records):
            try:
                event = decode_event(record.value)
            except ValidationError:
                _log.error(
                    "hook processor: skipping undecodable record %s[%s]@%s",
                    record.topic,
                    record.partition,
                    record.offset,
                )
                continue
            for job in plan_event(event, self._directory.state):
                items.append(((job.user_id, job.plugin or ""), _Item(job, batch)))
        batch.pending = len(items)
        if not items:
            batch.done.set()
        self._in_flight.append(batch)
        self._uncommitted += len(records)
        for key, item in items:
            self._enqueue(key, item)

    async def _commit_finished(self) -> None:
        reader = self._reader
        assert reader is not None
        offsets: dict[TopicPartition, int] = {}
        records = 0
        now = time.perf_counter()
        while self._in_flight and self._in_flight[0].done.is_set():
            batch = self._in_flight.popleft()
            records += batch.records
            self.health.batches += 1
            self.health.batch_records += batch.records
            self.health.batch_seconds += now - batch.dispatched_at
            for tp, offset in batch.offsets.items():
                offsets[tp] = max(offsets.get(tp, 0), offset)
        if not offsets:
            return
        await self._commit(reader, offsets)
        self._uncommitted = max(0, self._uncommitted - records)

    async def _commit(self, reader: LogReader, offsets: Mapping[TopicPartition, int]) -> None:
        failures = 0
        while True:
            try:
                await reader.commit(offsets)
                return
            except PartitionsRevoked as exc:
                # Another member owns them now and fires their hooks again (at least once).
                _log.info("hook processor: commit dropped after a rebalance: %s", exc)
                return
            except LogError as exc:
                failures += 1
                _log.warning("hook processor: commit failed, retrying: %s", exc)
                await self._sleep(self._policy.delay(failures))

    # -- ticks ----------------------------------------------------------------------------------

    async def holds_ticks(self) -> bool:
        """Whether this processor fires ticks: its assignment holds the accounts topic's
        partition 0 (exactly one member of the group does)."""
        reader = self._reader
        return reader is not None and TICK_PARTITION in await reader.positions()

    async def tick(self) -> int:
        """Queue one ``on_tick`` per install without one pending; returns how many."""
        if not await self.holds_ticks():
            return 0
        queued = 0
        for job in tick_jobs(self._directory.plugins):
            key = (job.user_id, job.plugin)
            if key in self._ticking:
                continue
            self._ticking.add(key)
            self._enqueue(key, _Item(job, None, on_done=partial(self._ticking.discard, key)))
            queued += 1
        return queued

    # -- lanes ----------------------------------------------------------------------------------

    def _enqueue(self, key: tuple[str, str], item: _Item) -> None:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            self._lane_tasks[key] = asyncio.create_task(
                self._drain(key, lane), name=f"plugin-hooks:{key[1]}"
            )
        lane.append(item)

    async def _drain(self, key: tuple[str, str], lane: deque[_Item]) -> None:
        try:
            while lane:
                item = lane[0]
                try:
                    async with self._limit:
                        await self._perform(item.job)
                except Exception:
                    # A bug of ours: logged, and the lane goes on (the job is not retried).
                    _log.exception("hook processor: a job of %s for %s failed", key[1], key[0])
                lane.popleft()
                if item.batch is not None:
                    item.batch.finished_one()
                if item.on_done is not None:
                    item.on_done()
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]
                self._lane_tasks.pop(key, None)

    async def wait_idle(self) -> None:
        """Return once no lane has anything left to run (tests)."""
        while self._lane_tasks:
            await asyncio.gather(*self._lane_tasks.values(), return_exceptions=True)

    async def _perform(self, job: Job) -> None:
        """Run ``job``, retrying failures of ours (not the plugin's) with backoff."""
        failures = 0
        while True:
            try:
                if isinstance(job, ForgetJob):
                    await self._forget(job)
                else:
                    await self._fire(job)
                if failures:
                    self.health.failure = None
                return
            except self._transient as exc:
                failures += 1
                delay = self._policy.delay(failures)
                self.health.failure = describe(exc)
                _log.warning(
                    "hook processor: %s for %s not done (%s); retrying in %.1fs",
                    _label(job),
                    job.user_id,
                    describe(exc),
                    delay,
                )
                await self._sleep(delay)

    async def _forget(self, job: ForgetJob) -> None:
        if job.plugin is None:
            await self._kv.delete_user(job.user_id)
        elif self._directory.plugins.install(job.user_id, job.plugin) is None:
            await self._kv.delete_plugin_user(job.plugin, job.user_id)

    async def _fire(self, job: HookJob) -> None:
        found = self._directory.plugins.runnable(job.user_id, job.plugin)
        if found is None:
            return  # uninstalled, banned or suspended by now
        plugin, install = found
        if job.received_at is not None and install.installed_at > job.received_at:
            return  # heartbeats received before the install
        marker = None
        if job.install_id is not None:
            if install.install_id != job.install_id:
                return
            marker = install_marker(job.install_id)
            if not await self._kv.mark_once(marker):
                return  # it ran already (this install was delivered before)
            # Only probed: the marker is written once the hook ran (at least once).
            await self._kv.unmark(marker)
        undefined = (plugin.name, plugin.server_script, job.call.hook.value)
        if undefined in self._undefined:
            result: SandboxResult | None = None  # this script does not define the hook
        else:
            result = await self._executor.run(plugin, job.user_id, job.call)
        if marker is not None:
            await self._kv.mark_once(marker)
        if result is None:
            return
        if isinstance(result, SandboxFailure) and result.kind is FailureKind.UNKNOWN_HANDLER:
            if len(self._undefined) >= _MAX_UNDEFINED:
                self._undefined.clear()
            self._undefined.add(undefined)
        await self._judge(job, result)

    async def _judge(self, job: HookJob, result: SandboxResult) -> None:
        pair = (job.user_id, job.plugin)
        if isinstance(result, SandboxFailure):
            if result.kind is FailureKind.UNKNOWN_HANDLER:
                return  # the script does not define this hook
            self.failed += 1
            count = self._failures.get(pair, 0) + 1
            self._failures[pair] = count
            _log.warning(
                "plugin %s user %s %s failed (%d in a row): %s: %s",
                job.plugin,
                job.user_id,
                job.call.label,
                count,
                result.kind.value,
                result.message,
                extra={"plugin": job.plugin, "user_id": job.user_id, "hook": job.call.label},
            )
            if count >= self._failures_to_suspend:
                await self._suspend(job, result, count)
            return
        self.fired += 1
        self._failures.pop(pair, None)
        if result.result is not None:
            self._publisher.publish_user(
                job.user_id,
                PluginEvent(plugin=job.plugin, hook=job.call.label, data=result.result),
            )

    async def _suspend(self, job: HookJob, failure: SandboxFailure, count: int) -> None:
        reason = (
            f"suspended after {count} failed hooks in a row; the last one, "
            f"{job.call.label}: {failure.kind.value}: {failure.message}"
        )[:2000]
        event = PluginSuspended(
            event_id=new_event_id(),
            user_id=job.user_id,
            occurred_at=self._clock(),
            name=job.plugin,
            reason=reason,
        )
        try:
            await self._directory.record(event)
        except LogError as exc:
            # The count stays: the next failure tries again.
            _log.warning(
                "plugin %s user %s: suspension not recorded: %s", job.plugin, job.user_id, exc
            )
            return
        self._failures.pop((job.user_id, job.plugin), None)
        self.suspended += 1
        _log.warning("plugin %s suspended for user %s: %s", job.plugin, job.user_id, reason)


def _label(job: Job) -> str:
    if isinstance(job, ForgetJob):
        return f"key-value cleanup of {job.plugin or 'every plugin'}"
    return f"plugin {job.plugin} {job.call.label}"
