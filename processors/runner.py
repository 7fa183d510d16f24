"""The in-process runner: reads the heartbeats and accounts topics as a consumer group and
projects batches.

Used by ``codetrackr serve`` (embedded mode) and by ``codetrackr replay`` in both modes. The
faust worker (``processors.faust_worker``) runs the same :class:`HeartbeatProjector` in the
distributed mode.

Delivery is at-least-once: a batch is written, then its offsets are committed. Failures are
handled by the supervision policy shared with the faust worker (:mod:`processors.supervision`):
when the store or the log is unavailable the runner keeps the batch, waits and retries it (it
never skips ahead); a record that fails for any other reason is isolated by splitting the batch
and, after a few attempts, dead-lettered (:mod:`processors.deadletters`), and the runner goes on
past it. A commit refused because a rebalance took a partition away
(:class:`eventlog.port.PartitionsRevoked`) is dropped with the rest of the fetched records: the
reader goes on from the partitions' committed offsets, and the new owner gets the records.
:meth:`ProjectionRunner.run_supervised` restarts the loop (with a fresh reader, so nothing
fetched but uncommitted is skipped) if it ever dies, after logging why at once.

Given an ``eraser`` (``codetrackr serve`` on the embedded log), every erasure a batch projected is
then carried out on the log itself, before the batch is committed: a crash in between projects
the erasure again and erases again, both idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventlog.port import (
    Delivered,
    EventLog,
    LogError,
    LogReader,
    LogUnavailable,
    PartitionsRevoked,
    TopicPartition,
)
from processors.deadletters import DeadLetterWriter
from processors.handlers import HeartbeatProjector
from processors.projectors.batches import BatchResult
from processors.supervision import (
    DeadLetterSink,
    ProjectorHealth,
    Sleep,
    SupervisionPolicy,
    Supervisor,
    restarting,
)
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC, UserDataErased

_log = logging.getLogger(__name__)

PROJECTIONS_GROUP = "codetrackr-projections"


def next_offsets(records: Sequence[Delivered]) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        out[tp] = max(out.get(tp, 0), record.offset + 1)
    return out


async def records_behind_by_partition(log: EventLog, reader: LogReader) -> dict[str, int]:
    """Records of each partition of both topics that ``reader``'s group has not reached yet,
    keyed ``topic/partition``."""
    ends = {
        **await log.end_offsets(HEARTBEATS_TOPIC),
        **await log.end_offsets(ACCOUNTS_TOPIC),
    }
    positions = await reader.positions()
    return {
        f"{tp.topic}/{tp.partition}": max(0, end - positions.get(tp, end))
        for tp, end in ends.items()
    }


async def records_behind(log: EventLog, reader: LogReader) -> int:
    """Records of both topics on the log that ``reader``'s group has not reached yet."""
    return sum((await records_behind_by_partition(log, reader)).values())


def split_by_size(records: Sequence[Delivered], max_bytes: int) -> list[Sequence[Delivered]]:
    """Consecutive chunks of at most ``max_bytes`` encoded bytes (a lone bigger record stays
    alone): the encoded size stands in for the heartbeat count before decoding."""
    chunks: list[Sequence[Delivered]] = []
    start = size = 0
    for index, record in enumerate(records):
        size += len(record.value)
        if size > max_bytes and index > start:
            chunks.append(records[start:index])
            start, size = index, len(record.value)
    if start < len(records):
        chunks.append(records[start:])
    return chunks


class ProjectionRunner:
    """Consumes ``codetrackr.heartbeats`` and ``codetrackr.accounts`` and drives a projector.

    ``run`` loops until ``stop`` is set or the task is cancelled; ``run_to`` stops once the given
    end offsets are reached (replays); ``run_supervised`` is ``run`` restarted whenever it dies.
    ``on_batch`` is called after each committed batch. ``dead_letter`` receives the records given
    up on (default: appended to the dead-letter topic of ``log``).
    """

    def __init__(
        self,
        log: EventLog,
        projector: HeartbeatProjector,
        *,
        group: str = PROJECTIONS_GROUP,
        batch_size: int = 2000,
        wait_s: float = 0.05,
        retry_s: float = 0.5,
        on_batch: Callable[[int, BatchResult], None] | None = None,
        max_batch_bytes: int = 16 * 1024 * 1024,
        eraser: Callable[[UserDataErased], Awaitable[object]] | None = None,
        policy: SupervisionPolicy | None = None,
        dead_letter: DeadLetterSink | None = None,
        health: ProjectorHealth | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._log = log
        self._projector = projector
        self._group = group
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._on_batch = on_batch
        # About 20k heartbeats (~800 B each encoded) per projected batch.
        self._max_batch_bytes = max_batch_bytes
        self._eraser = eraser
        self._policy = policy or SupervisionPolicy(initial_delay_s=retry_s)
        self._sleep = sleep
        self.health = health or ProjectorHealth("projection-runner")
        self._supervisor: Supervisor[BatchResult] = Supervisor(
            self._policy, dead_letter or DeadLetterWriter(log), self.health, sleep=sleep
        )
        # One thread for all store calls: chdb wants one client per thread, and batches are
        # handled strictly one after another anyway.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="projector")
        self._reader: LogReader | None = None
        self._uncommitted = 0  # records fetched and not committed yet (part of the lag)

    async def start(self) -> None:
        self._reader = self._log.reader([HEARTBEATS_TOPIC, ACCOUNTS_TOPIC], group=self._group)
        await self._reader.start()

    async def close(self) -> None:
        await self._close_reader()
        self._executor.shutdown(wait=True)

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        self._uncommitted = 0
        if reader is not None:
            await reader.close()

    async def seek_to_beginning(self) -> None:
        assert self._reader is not None
        await self._reader.seek_to_beginning()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            await self.step()

    async def run_supervised(self, stop: asyncio.Event) -> None:
        """``run`` until ``stop`` is set, restarted with a fresh reader whenever it raises.

        Restarting is safe: a new reader resumes at the last commit, so whatever the dead loop
        had fetched is read again, and handling it again is idempotent. The failure is logged
        with its traceback the moment it happens and shown by ``/readyz`` until the loop runs
        again.
        """
        await restarting(
            stop,
            started=lambda: self._reader is not None,
            start=self.start,
            run=self.run,
            close_reader=self._close_reader,
            health=self.health,
            policy=self._policy,
            sleep=self._sleep,
            what="projector",
        )

    async def run_to(self, ends: Mapping[TopicPartition, int]) -> None:
        assert self._reader is not None
        while True:
            positions = await self._reader.positions()
            if all(positions.get(tp, 0) >= end for tp, end in ends.items() if end > 0):
                return
            await self.step()

    async def lag_records(self) -> int:
        """Records on the log this runner has not committed yet (end offsets minus positions,
        plus what it fetched and is still handling). Raises ``LogUnavailable``."""
        reader = self._reader
        if reader is None:
            raise LogUnavailable("the projection runner has no reader (restarting)")
        return await records_behind(self._log, reader) + self._uncommitted

    async def lag_by_partition(self) -> dict[str, int]:
        """Committed positions behind the log's end, per ``topic/partition`` (``/metrics``)."""
        reader = self._reader
        if reader is None:
            raise LogUnavailable("the projection runner has no reader (restarting)")
        return await records_behind_by_partition(self._log, reader)

    async def step(self) -> int:
        """Fetch, project and commit one batch; returns how many records it covered."""
        assert self._reader is not None
        try:
            records = await self._reader.fetch(self._batch_size, self._wait_s)
        except LogError as exc:
            _log.warning("event log unavailable, retrying: %s", exc)
            await self._sleep(self._policy.initial_delay_s)
            return 0
        if not records:
            return 0
        self._uncommitted = len(records)
        # Project and commit in chunks of bounded size: one record holds up to 500 heartbeats,
        # so a fetch of big import records would otherwise become one huge batch in memory.
        done = 0
        for chunk in split_by_size(records, self._max_batch_bytes):
            results = await self._supervisor.run(chunk, self._handle)
            try:
                await self._commit(next_offsets(chunk))
            except PartitionsRevoked as exc:
                # Retrying cannot succeed, and the rest of the fetch may belong to partitions
                # that are gone too: drop it all. After the rebalance the reader resumes every
                # partition it still owns at its committed offset, so nothing is skipped.
                _log.info(
                    "dropped a batch of %d records: a rebalance revoked its partitions (%s); "
                    "their records are delivered again from the last commit",
                    len(records) - done,
                    exc,
                )
                self._uncommitted = 0
                return done
            done += len(chunk)
            self._uncommitted = len(records) - done
            if self._on_batch is not None:
                self._on_batch(len(chunk), sum(results, BatchResult(0, 0)))
        return len(records)

    async def _handle(self, records: Sequence[Delivered]) -> BatchResult:
        """Project ``records``, then carry out their erasures on the log (when it is
        rewritable). Both are idempotent, so the supervisor may call this again."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, self._projector.handle_records, records)
        if self._eraser is not None:
            for erasure in result.erasures:
                await self._eraser(erasure)
        return result

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, retrying while the log is unavailable; ``PartitionsRevoked`` is raised at
        once (no retry can succeed)."""
        assert self._reader is not None
        failures = 0
        while True:
            try:
                await self._reader.commit(offsets)
                return
            except PartitionsRevoked:
                raise
            except LogError as exc:
                # Not committing only means redelivery later, which projections tolerate; but
                # retry so a restart does not redo much work.
                failures += 1
                _log.warning("commit failed, retrying: %s", exc)
                await self._sleep(self._policy.delay(failures))
