"""The distributed projection worker: faust agents over ``codetrackr.heartbeats`` and
``codetrackr.accounts`` (the account events feed the leaderboards' members).

Several workers share the topics' partitions through the consumer group ``codetrackr-projections``
(faust's app id); a stopped worker's partitions move to the others.

Why the agent never raises: faust acknowledges the events of a ``take()`` batch when the body asks
for the next batch, *and also* when the generator is closed by an exception. Raising would
therefore mark an unprojected batch as done. So the body retries a failed batch until it succeeds
(the store is down: wait and retry), and offsets are committed only for batches written.

Why a custom consumer thread: during a rebalance faust discards events fetched under the old
group generation and relies on seeking every assigned partition back to its committed offset.
aiokafka's ``seek_to_committed`` only seeks when the committed offset is above 0, so a partition
that never committed (a new deployment, a quiet user's partition) kept its fetch position past the
discarded events, which were then never projected (seen in ``tests/e2e/test_distributed.py`` when
a second worker joined). :class:`_SeekBackConsumerThread` seeks such partitions to their
beginning, which is what ``auto_offset_reset="earliest"`` promises; handlers are idempotent, so
re-reading is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.types import TP, TransportT

from eventlog.port import Delivered
from live.port import LiveChannel
from processors.handlers import HeartbeatProjector, decode_account_events
from processors.runner import PROJECTIONS_GROUP
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC

_log = logging.getLogger(__name__)


class _SeekBackConsumerThread(AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        return await self.call_thread(self._seek_committed_or_beginning)  # type: ignore[no-any-return]

    async def _seek_committed_or_beginning(self) -> Mapping[TP, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[TP, int | None] = await consumer.seek_to_committed()
        never_committed = [tp for tp, offset in committed.items() if not offset]
        if never_committed:
            await consumer.seek_to_beginning(*never_committed)
        return {tp: offset or 0 for tp, offset in committed.items()}


class _SeekBackConsumer(Consumer):
    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _SeekBackConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _SeekBackTransport(Transport):
    Consumer = _SeekBackConsumer


class _ProjectionApp(faust.App):
    live: LiveChannel | None = None

    def _new_transport(self) -> TransportT:
        return _SeekBackTransport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        await super().on_stop()
        if self.live is not None:
            await self.live.close()


def build_faust_app(
    *,
    bootstrap: str,
    projector_factory: Callable[[], HeartbeatProjector],
    partitions: int,
    batch_size: int = 2000,
    within_s: float = 0.2,
    session_timeout_s: float = 6.0,
    data_dir: str = "/tmp/codetrackr-faust",
    live: LiveChannel | None = None,
) -> faust.App:
    """A faust app whose agents project heartbeat and account batches (topics must exist).

    ``live``, when given (a Redis channel), is started on faust's loop and closed with the app;
    ``projector_factory`` should publish through it.
    """
    app = _ProjectionApp(
        PROJECTIONS_GROUP,
        broker=[f"kafka://{hp}" for hp in bootstrap.split(",")],
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=partitions,
        topic_allow_declare=False,
        topic_disable_leader=True,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=max(session_timeout_s / 3, 1.0),
        broker_commit_every=batch_size,
        broker_commit_interval=1.0,
        datadir=data_dir,
        store="memory://",
    )
    if live is not None:
        # Live push (Redis) runs on faust's loop; the projector thread publishes through it.
        app.live = live

        async def start_live() -> None:
            await live.start()

        app.task(start_live)

    topic = app.topic(
        HEARTBEATS_TOPIC,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=partitions,
        internal=False,
    )
    executor = ThreadPoolExecutor(1, thread_name_prefix="projector")
    holder: dict[str, HeartbeatProjector] = {}

    def handle(records: list[Delivered]) -> int:
        projector = holder.get("p")
        if projector is None:
            projector = holder["p"] = projector_factory()
        # With their log positions: a range erasure recorded earlier removes its range only
        # from the records before it (see projections.erasures).
        return projector.handle_records(records).heartbeats

    accounts_topic = app.topic(
        ACCOUNTS_TOPIC,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=1,
        internal=False,
    )

    def handle_accounts(records: list[tuple[int, bytes]]) -> int:
        projector = holder.get("p")
        if projector is None:
            projector = holder["p"] = projector_factory()
        events, _ = decode_account_events(
            [Delivered(ACCOUNTS_TOPIC, 0, offset, b"", value, 0) for offset, value in records]
        )
        return projector.handle_accounts(events)

    @app.agent(accounts_topic, name="project-accounts")
    async def project_accounts(stream: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        async for batch in stream.take_events(batch_size, within=within_s):
            records = [(event.message.offset, event.value) for event in batch]
            await _retrying(loop, executor, handle_accounts, records)
            yield None

    @app.agent(topic, name="project-heartbeats")
    async def project(stream: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        async for batch in stream.take_events(batch_size, within=within_s):
            records = [_delivered(HEARTBEATS_TOPIC, event) for event in batch]
            await _retrying(loop, executor, handle, records)
            yield None

    return app


def _delivered(topic: str, event: Any) -> Delivered:
    """A faust event (raw bytes) as the log port's record, its position included."""
    message = event.message
    return Delivered(
        topic,
        int(message.partition),
        int(message.offset),
        bytes(event.key or b""),
        bytes(event.value),
        round(message.timestamp * 1000) if message.timestamp else 0,
    )


async def _retrying(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    fn: Callable[[Any], int],
    batch: Any,
) -> None:
    """Run ``fn(batch)`` in the projector thread until it succeeds. Never raises: faust acks a
    batch when the agent's generator is closed, even on an exception, so giving up would skip
    it; a batch that fails is retried with backoff instead."""
    delay = 0.5
    while True:
        try:
            await loop.run_in_executor(executor, fn, batch)
            return
        except Exception as exc:
            _log.warning("projection failed, retrying batch in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
