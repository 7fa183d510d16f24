"""The distributed projection worker: faust agents over ``codetrackr.heartbeats`` and
``codetrackr.accounts`` (the account events feed the leaderboards' members).

Several workers share the topics' partitions through the consumer group ``codetrackr-projections``
(faust's app id); a stopped worker's partitions move to the others.

Why the agent never raises: faust acknowledges the events of a ``take()`` batch when the body asks
for the next batch, *and also* when the generator is closed by an exception. Raising would
therefore mark an unprojected batch as done. So each batch runs under the supervision policy
shared with the in-process runner (:mod:`processors.supervision`): while the store or the log is
unreachable the batch is retried with backoff; a record that fails for any other reason is
isolated by splitting the batch and, after a few attempts, written to the dead letters
(:mod:`processors.deadletters`). Every record of a batch is therefore projected or dead-lettered
before faust may acknowledge it, and one poison record no longer wedges its partition. Should the
body raise anyway (a bug), the failure is logged at once and shown by the worker's ``/readyz``
until faust's agent supervisor has restarted the agent.

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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer, Transport
from faust.types import TP, TransportT

from eventlog.port import Delivered
from live.port import LiveChannel
from processors.decoding import decode_account_events
from processors.handlers import HeartbeatProjector
from processors.runner import PROJECTIONS_GROUP
from processors.supervision import (
    DeadLetterSink,
    ProjectorHealth,
    SupervisionPolicy,
    Supervisor,
    describe,
)
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


class ProjectionApp(faust.App):
    live: LiveChannel | None = None
    # One per agent, for the worker's /readyz (codetrackr.health).
    probes: list[FaustProjectorProbe]
    # Run when the worker stops (the dead-letter log, the health endpoint).
    stop_hooks: list[Callable[[], Any]]

    def _new_transport(self) -> TransportT:
        return _SeekBackTransport(self.conf.broker_consumer, self)

    async def on_stop(self) -> None:
        await super().on_stop()
        if self.live is not None:
            await self.live.close()
        for hook in reversed(self.stop_hooks):
            try:
                await hook()
            except Exception:
                _log.exception("stopping the worker: a shutdown step failed")


class FaustProjectorProbe:
    """What ``/readyz`` reads of one agent: its health, and its lag in records (the high
    watermark of each assigned partition minus the position the consumer reached)."""

    def __init__(self, app: faust.App, topic: str, health: ProjectorHealth) -> None:
        self._app = app
        self._topic = topic
        self.health = health

    async def lag_records(self) -> int:
        return sum((await self.lag_by_partition()).values())

    async def lag_by_partition(self) -> dict[str, int]:
        """Per assigned ``topic/partition`` of the agent's topic (``/metrics``)."""
        consumer = self._app.consumer
        lags: dict[str, int] = {}
        for tp in consumer.assignment():
            if tp.topic != self._topic:
                continue
            position = await consumer.position(tp)
            lags[f"{tp.topic}/{tp.partition}"] = max(0, consumer.highwater(tp) - (position or 0))
        return lags


def _delivered(event: Any) -> Delivered:
    message = event.message
    return Delivered(
        message.topic,
        message.partition,
        message.offset,
        message.key if message.key is not None else b"",
        message.value if message.value is not None else b"",
        int(message.timestamp * 1000),
    )


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
    policy: SupervisionPolicy | None = None,
    dead_letter: DeadLetterSink,
) -> ProjectionApp:
    """A faust app whose agents project heartbeat and account batches (topics must exist).

    ``live``, when given (a Redis channel), is started on faust's loop and closed with the app;
    ``projector_factory`` should publish through it. ``dead_letter`` receives the records given
    up on (``processors.deadletters.DeadLetterWriter``). ``app.probes`` are the agents' health.
    """
    app = ProjectionApp(
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
    app.stop_hooks = []
    policy = policy or SupervisionPolicy()
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

    def projector() -> HeartbeatProjector:
        if "p" not in holder:
            holder["p"] = projector_factory()
        return holder["p"]

    def handle(records: Sequence[Delivered]) -> int:
        # With their log positions: a range erasure recorded earlier removes its range only
        # from the records before it (see projections.erasures). Undecodable records are
        # logged and skipped there.
        return projector().handle_records(records).heartbeats

    def handle_accounts(records: Sequence[Delivered]) -> int:
        events, _ = decode_account_events(records)
        return projector().handle_accounts(events)

    accounts_topic = app.topic(
        ACCOUNTS_TOPIC,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
        partitions=1,
        internal=False,
    )
    heartbeats_health = ProjectorHealth("worker-heartbeats")
    accounts_health = ProjectorHealth("worker-accounts")
    app.probes = [
        FaustProjectorProbe(app, HEARTBEATS_TOPIC, heartbeats_health),
        FaustProjectorProbe(app, ACCOUNTS_TOPIC, accounts_health),
    ]

    def supervised(
        health: ProjectorHealth, fn: Callable[[Sequence[Delivered]], int]
    ) -> Callable[[Any], AsyncIterator[None]]:
        supervisor: Supervisor[int] = Supervisor(policy, dead_letter, health)

        async def run(records: Sequence[Delivered]) -> int:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(executor, fn, records)

        async def body(stream: Any) -> AsyncIterator[None]:
            health.alive, health.failure = True, None
            try:
                async for batch in stream.take_events(batch_size, within=within_s):
                    await supervisor.run([_delivered(event) for event in batch], run)
                    yield None
            except (asyncio.CancelledError, GeneratorExit):
                health.alive = False
                raise
            except BaseException as exc:
                health.alive = False
                health.failure = f"agent stopped: {describe(exc)}"
                health.restarts += 1
                _log.exception("%s: the projection agent died", health.name)
                raise

        return body

    app.agent(accounts_topic, name="project-accounts")(supervised(accounts_health, handle_accounts))
    app.agent(topic, name="project-heartbeats")(supervised(heartbeats_health, handle))
    return app
