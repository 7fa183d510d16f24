"""The in-process runner: reads the heartbeats and accounts topics as a consumer group and
projects batches.

Used by ``codetrackr serve`` (embedded mode) and by ``codetrackr replay`` in both modes. The
faust worker (``processors.faust_worker``) runs the same :class:`HeartbeatProjector` in the
distributed mode.

Delivery is at-least-once: a batch is written, then its offsets are committed. When the store is
unavailable the runner keeps the batch, waits and retries it (it never skips ahead); when the log
is unavailable it waits and reads again.

Given an ``eraser`` (``codetrackr serve`` on the embedded log), every erasure a batch projected is
then carried out on the log itself, before the batch is committed: a crash in between projects
the erasure again and erases again, both idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventlog.port import Delivered, EventLog, LogError, LogReader, TopicPartition
from processors.handlers import (
    BatchResult,
    HeartbeatProjector,
)
from projections.clickhouse import ProjectionStoreUnavailable
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC, UserDataErased

_log = logging.getLogger(__name__)

PROJECTIONS_GROUP = "codetrackr-projections"


def next_offsets(records: Sequence[Delivered]) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        out[tp] = max(out.get(tp, 0), record.offset + 1)
    return out


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
    end offsets are reached (replays). ``on_batch`` is called after each committed batch.
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
    ) -> None:
        self._log = log
        self._projector = projector
        self._group = group
        self._batch_size = batch_size
        self._wait_s = wait_s
        self._retry_s = retry_s
        self._on_batch = on_batch
        # About 20k heartbeats (~800 B each encoded) per projected batch.
        self._max_batch_bytes = max_batch_bytes
        self._eraser = eraser
        # One thread for all store calls: chdb wants one client per thread, and batches are
        # handled strictly one after another anyway.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="projector")
        self._reader: LogReader | None = None

    async def start(self) -> None:
        self._reader = self._log.reader([HEARTBEATS_TOPIC, ACCOUNTS_TOPIC], group=self._group)
        await self._reader.start()

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        self._executor.shutdown(wait=True)

    async def seek_to_beginning(self) -> None:
        assert self._reader is not None
        await self._reader.seek_to_beginning()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        while stop is None or not stop.is_set():
            await self.step()

    async def run_to(self, ends: Mapping[TopicPartition, int]) -> None:
        assert self._reader is not None
        while True:
            positions = await self._reader.positions()
            if all(positions.get(tp, 0) >= end for tp, end in ends.items() if end > 0):
                return
            await self.step()

    async def step(self) -> int:
        """Fetch, project and commit one batch; returns how many records it covered."""
        assert self._reader is not None
        try:
            records = await self._reader.fetch(self._batch_size, self._wait_s)
        except LogError as exc:
            _log.warning("event log unavailable, retrying: %s", exc)
            await asyncio.sleep(self._retry_s)
            return 0
        if not records:
            return 0
        # Project and commit in chunks of bounded size: one record holds up to 500 heartbeats,
        # so a fetch of big import records would otherwise become one huge batch in memory.
        for chunk in split_by_size(records, self._max_batch_bytes):
            result = await self._project(chunk)
            for erasure in result.erasures:
                await self._erase(erasure)
            await self._commit(next_offsets(chunk))
            if self._on_batch is not None:
                self._on_batch(len(chunk), result)
        return len(records)

    async def _project(self, records: Sequence[Delivered]) -> BatchResult:
        loop = asyncio.get_running_loop()
        delay = self._retry_s
        while True:
            try:
                return await loop.run_in_executor(
                    self._executor,
                    self._projector.handle_records,
                    records,
                )
            except ProjectionStoreUnavailable as exc:
                # Keep the batch and retry: skipping it would lose heartbeats from projections.
                _log.warning("projection store unavailable, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _erase(self, erasure: UserDataErased) -> None:
        if self._eraser is None:
            return
        while True:
            try:
                await self._eraser(erasure)
                return
            except LogError as exc:
                _log.warning("erasing from the event log failed, retrying: %s", exc)
                await asyncio.sleep(self._retry_s)

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        assert self._reader is not None
        while True:
            try:
                await self._reader.commit(offsets)
                return
            except LogError as exc:
                # Not committing only means redelivery later, which projections tolerate; but
                # retry so a restart does not redo much work.
                _log.warning("commit failed, retrying: %s", exc)
                await asyncio.sleep(self._retry_s)
