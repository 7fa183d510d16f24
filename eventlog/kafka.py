"""The Kafka event log: aiokafka against any Kafka-protocol broker (Apache Kafka, noida-db, Tansu).

Partitioning is aiokafka's default (murmur2 of the key, like the Java client), so every producer
of a topic, in any language, puts a key on the same partition.

Errors: every :class:`aiokafka.errors.KafkaError`, timeout and socket error is translated into
:class:`eventlog.port.LogUnavailable` here, at the adapter edge; nothing from aiokafka escapes.
One exception: a commit refused because the group rebalanced (``CommitFailedError``) or because a
partition is no longer assigned (``IllegalStateError``) becomes
:class:`eventlog.port.PartitionsRevoked`, which no retry can fix.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    IllegalStateError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)

from eventlog.port import (
    Delivered,
    LogReader,
    LogUnavailable,
    PartitionsRevoked,
    Record,
    TopicPartition,
    check_records,
)

__all__ = ["KafkaEventLog", "KafkaOptions", "bootstrap_from_url", "from_url"]

_DEFAULT_REQUEST_TIMEOUT_MS = 10_000
# Larger than aiokafka's 16 KiB so a burst of appends (and big HeartbeatsReceived records) fills
# few batches; half of Kafka's default 1 MiB message.max.bytes, so brokers accept it.
_MAX_BATCH_BYTES = 512 * 1024
# Closing a client whose broker is gone can wait for every in-flight request to expire.
_CLOSE_TIMEOUT_S = 5.0
_TRANSLATED: tuple[type[BaseException], ...] = (
    KafkaError,
    ConsumerStoppedError,
    TimeoutError,
    OSError,
)


@contextlib.asynccontextmanager
async def _translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except _TRANSLATED as exc:
        name, detail = type(exc).__name__, str(exc)
        if not detail.startswith(name):  # aiokafka errors already start with their class name
            detail = f"{name}: {detail}" if detail else name
        raise LogUnavailable(f"kafka {what} failed: {detail}") from exc


async def _stop_quietly(client: Any) -> None:
    # Used on clients we are abandoning: their failure has already been reported.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), _CLOSE_TIMEOUT_S)


def _retrieve_outcome(delivery: asyncio.Future[Any]) -> None:
    # The call already failed; reading the outcome keeps asyncio from logging it as unretrieved.
    if not delivery.cancelled():
        delivery.exception()


class KafkaOptions(TypedDict, total=False):
    """Keyword options of :class:`KafkaEventLog` (for :func:`from_url`)."""

    client_id: str
    default_partitions: int
    request_timeout_ms: int
    session_timeout_ms: int
    replication_factor: int
    idempotent: bool


class KafkaEventLog:
    """:class:`eventlog.port.EventLog` over a Kafka-protocol broker, through aiokafka.

    Blocking: coroutines only. ``append`` sends every record (``acks="all"``) and returns when the
    broker acknowledged all of them. It never hangs on a dead broker: sending gives up after about
    ``request_timeout_ms``, the whole call (with creating a missing topic and restarting the
    producer) after at most ``3 * request_timeout_ms + 1 s``; then it raises
    :class:`eventlog.port.LogUnavailable`. A broker that refuses connections fails it at once.
    ``ensure_topics`` and ``end_offsets`` open short-lived admin / consumer clients: they are for
    start-up, tests and lag checks, not for a hot path.

    Errors: any aiokafka error or timeout → ``LogUnavailable`` (nothing acknowledged; retry).
    ``append`` raises :class:`TypeError` for a key or value that is not ``bytes``.

    Recovery: after a failed ``append`` the producer is discarded (closed in the background) and a
    new one is created by the next call, so one instance keeps working across broker restarts
    without being rebuilt from outside. While the broker is down, each call fails fast at
    bootstrap instead of queueing.

    Topics: a topic is created with ``default_partitions`` the first time this instance appends
    to it, reads it or asks for its end offsets, unless it already exists. Create topics up front
    with ``ensure_topics`` to choose their partition counts.

    Backpressure: aiokafka buffers one open batch (512 KiB) per partition; when it is full,
    appends queue (FIFO, on a lock) until it drains, and each caller also waits for its own
    acknowledgement. A caller that waits longer than the bound above gets ``LogUnavailable``.

    Idempotence: off by default because Tansu fails aiokafka's InitProducerId; without it a
    retried batch may be stored twice, which the port allows (events carry deterministic ids).

    Shutdown: ``close`` flushes the producer (bounded) and closes clients; readers are separate
    and must be closed by their owners.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "codetrackr",
        default_partitions: int = 3,
        request_timeout_ms: int = _DEFAULT_REQUEST_TIMEOUT_MS,
        session_timeout_ms: int = 6000,
        replication_factor: int = 1,
        idempotent: bool = False,
    ) -> None:
        if default_partitions < 1:
            raise ValueError("default_partitions must be at least 1")
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._default_partitions = default_partitions
        self._request_timeout_ms = request_timeout_ms
        self._session_timeout_ms = session_timeout_ms
        self._replication_factor = replication_factor
        self._idempotent = idempotent
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._topics_lock = asyncio.Lock()
        self._known_topics: set[str] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        # One group-less consumer answers every end-offsets lookup (a catch-up of the accounts
        # directory makes one per unknown credential): starting a consumer per lookup cost a
        # connection and a metadata round trip each, 0.25 s on some brokers.
        self._offsets_consumer: AIOKafkaConsumer | None = None
        self._offsets_lock = asyncio.Lock()
        self._closed = False

    @property
    def bootstrap(self) -> str:
        return self._bootstrap

    async def start(self) -> None:
        """Connect the producer; raises ``LogUnavailable`` if the broker cannot be reached."""
        async with _translated("start"):
            await self._current_producer()

    async def close(self) -> None:
        """Flush and close the producer (bounded by a few seconds). Idempotent."""
        self._closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            await _stop_quietly(producer)
        offsets, self._offsets_consumer = self._offsets_consumer, None
        if offsets is not None:
            await _stop_quietly(offsets)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def ensure_topics(self, topics: Mapping[str, int]) -> None:
        for topic, partitions in topics.items():
            if partitions < 1:
                raise ValueError(f"topic {topic!r}: partitions must be at least 1")
        if not topics:
            return
        async with _translated("ensure_topics"):
            await self._create_topics(topics)
        self._known_topics.update(topics)

    async def append(self, records: Sequence[Record]) -> None:
        if not records:
            return
        check_records(records)
        request_timeout_s = self._request_timeout_ms / 1000
        loop = asyncio.get_running_loop()
        # The outer bound covers creating a missing topic and (re)starting the producer too.
        async with _translated("append"), asyncio.timeout(3 * request_timeout_s + 1.0) as whole:
            await self._ensure_known(record.topic for record in records)
            producer = await self._current_producer()
            # Expire just before the outer bound, so a send that times out always retires the
            # producer here rather than being cut off by the outer scope.
            outer_deadline = whole.when()
            assert outer_deadline is not None
            send_deadline = min(loop.time() + request_timeout_s + 1.0, outer_deadline - 0.05)
            try:
                async with asyncio.timeout_at(send_deadline):
                    await self._send_all(producer, records)
            except _TRANSLATED:
                self._retire(producer)
                raise

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        async with _translated("end_offsets"):
            await self._ensure_known([topic])
            async with asyncio.timeout(self._request_timeout_ms / 1000 * 2):
                producer = await self._current_producer()
                partitions = sorted(await producer.partitions_for(topic))
                async with self._offsets_lock:
                    consumer = await self._current_offsets_consumer()
                    try:
                        ends = await consumer.end_offsets(
                            [KafkaTopicPartition(topic, partition) for partition in partitions]
                        )
                    except BaseException:
                        # A consumer that failed once (broker restarted, timeout) is replaced.
                        self._offsets_consumer = None
                        await _stop_quietly(consumer)
                        raise
        return {TopicPartition(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def _current_offsets_consumer(self) -> AIOKafkaConsumer:
        if self._closed:
            raise LogUnavailable("the event log is closed")
        if self._offsets_consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                request_timeout_ms=self._request_timeout_ms,
                enable_auto_commit=False,
            )
            try:
                await consumer.start()
            except BaseException:
                await _stop_quietly(consumer)
                raise
            self._offsets_consumer = consumer
        return self._offsets_consumer

    def reader(self, topics: Sequence[str], group: str) -> LogReader:
        return _KafkaLogReader(self, list(topics), group)

    # -- internals ------------------------------------------------------------------------------

    async def _send_all(self, producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
        # Enqueue under one lock, then wait for acks outside it. aiokafka keeps one open batch per
        # partition and, when it is full, wakes EVERY blocked sender each time it drains: with
        # thousands of concurrent appends that herd made throughput collapse (5k/s, then timeouts
        # at 20k in flight; ~25k/s serialized). It also keeps one call's records contiguous.
        deliveries: list[asyncio.Future[Any]] = []
        try:
            async with self._send_lock:
                for record in records:
                    deliveries.append(
                        await producer.send(record.topic, value=record.value, key=record.key)
                    )
        except BaseException:
            for delivery in deliveries:
                delivery.add_done_callback(_retrieve_outcome)
            raise
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _current_producer(self) -> AIOKafkaProducer:
        if self._closed:
            raise LogUnavailable("kafka event log is closed")
        async with self._producer_lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    acks="all",
                    enable_idempotence=self._idempotent,
                    request_timeout_ms=self._request_timeout_ms,
                    max_batch_size=_MAX_BATCH_BYTES,
                )
                try:
                    async with asyncio.timeout(self._request_timeout_ms / 1000):
                        await producer.start()
                except BaseException:
                    await _stop_quietly(producer)
                    raise
                self._producer = producer
            return self._producer

    def _retire(self, producer: AIOKafkaProducer) -> None:
        """Replace ``producer`` on the next call; close it in the background.

        aiokafka reconnects by itself in most cases, but a producer whose sender task died or
        whose batches expired mid-flight is hard to tell from a healthy one. A fresh producer is
        cheap (one bootstrap) and certainly healthy, so any failure retires the current one.
        """
        if self._producer is not producer:
            return  # a concurrent failure already retired it
        self._producer = None
        # A broker that lost its data (Tansu keeps topics in memory) would otherwise auto-create
        # our topics with its own default partition count on the next metadata request.
        self._known_topics.clear()
        task = asyncio.create_task(_stop_quietly(producer))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _ensure_known(self, topics: Iterable[str]) -> None:
        wanted = set(topics) - self._known_topics
        if not wanted:
            return
        # One creation at a time: 200 concurrent first appends must not open 200 admin clients.
        async with self._topics_lock:
            missing = wanted - self._known_topics
            if missing:
                await self._create_topics(dict.fromkeys(missing, self._default_partitions))
                self._known_topics.update(missing)

    async def _create_topics(self, topics: Mapping[str, int]) -> None:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            request_timeout_ms=self._request_timeout_ms,
        )
        try:
            async with asyncio.timeout(self._request_timeout_ms / 1000 * 2):
                await admin.start()
                response = await admin.create_topics(
                    [
                        NewTopic(topic, partitions, self._replication_factor)
                        for topic, partitions in topics.items()
                    ]
                )
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        for topic_error in response.topic_errors:
            topic, code = topic_error[0], topic_error[1]
            if code not in (0, TopicAlreadyExistsError.errno):
                raise for_code(code)(f"creating topic {topic!r}")

    def _consumer(self, group: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self._session_timeout_ms,
            heartbeat_interval_ms=max(100, self._session_timeout_ms // 3),
            request_timeout_ms=self._request_timeout_ms,
        )

    @property
    def _join_timeout_s(self) -> float:
        # A join may wait for departed members' sessions to expire, then for one rebalance.
        return (2 * self._session_timeout_ms + self._request_timeout_ms) / 1000


class _AssignmentListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned = asyncio.Event()

    async def on_partitions_revoked(self, revoked: object) -> None:
        # Nothing to flush: offsets are committed only by the reader's owner, explicitly.
        return None

    async def on_partitions_assigned(self, assigned: object) -> None:
        self.assigned.set()


class _KafkaLogReader:
    """A consumer-group member: an ``AIOKafkaConsumer`` with manual commits.

    ``start`` blocks until the group gave this member its partitions (bounded; then it raises
    ``LogUnavailable``), so ``positions`` and ``seek_to_beginning`` act on a real assignment.
    A group starts at the earliest offset of partitions it never committed. After a rebalance
    the member reads its new partitions from their committed offsets, and ``commit`` of a
    partition it no longer owns raises ``PartitionsRevoked`` (those records will be redelivered).
    ``fetch`` is not safe for concurrent calls on one reader. ``close`` leaves the group
    without committing.
    """

    def __init__(self, log: KafkaEventLog, topics: list[str], group: str) -> None:
        self._log = log
        self._topics = topics
        self._group = group
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        log = self._log
        async with _translated("reader start"):
            await log._ensure_known(self._topics)
            consumer = log._consumer(self._group)
            listener = _AssignmentListener()
            consumer.subscribe(self._topics, listener=listener)
            try:
                async with asyncio.timeout(log._join_timeout_s):
                    await consumer.start()
                    await listener.assigned.wait()
            except BaseException:
                await _stop_quietly(consumer)
                raise
        self._consumer = consumer

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivered]:
        consumer = self._started()
        async with (
            _translated("fetch"),
            asyncio.timeout(timeout_s + self._log._request_timeout_ms / 1000),
        ):
            batches = await consumer.getmany(
                timeout_ms=max(0, int(timeout_s * 1000)), max_records=max_records
            )
        return [
            Delivered(
                message.topic,
                message.partition,
                message.offset,
                message.key if message.key is not None else b"",
                message.value if message.value is not None else b"",
                message.timestamp,
            )
            for messages in batches.values()
            for message in messages
        ]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        consumer = self._started()
        if not offsets:
            return
        try:
            async with (
                _translated("commit"),
                asyncio.timeout(self._log._request_timeout_ms / 1000),
            ):
                await consumer.commit(
                    {
                        KafkaTopicPartition(tp.topic, tp.partition): offset
                        for tp, offset in offsets.items()
                    }
                )
        except LogUnavailable as exc:
            # aiokafka raises these once the group moved on without this member's partitions:
            # a retry would fail the same way, so they get their own error type.
            if isinstance(exc.__cause__, CommitFailedError | IllegalStateError):
                raise PartitionsRevoked(str(exc)) from exc.__cause__
            raise

    async def seek_to_beginning(self) -> None:
        consumer = self._started()
        async with (
            _translated("seek_to_beginning"),
            asyncio.timeout(self._log._request_timeout_ms / 1000),
        ):
            await consumer.seek_to_beginning()

    async def positions(self) -> dict[TopicPartition, int]:
        consumer = self._started()
        out: dict[TopicPartition, int] = {}
        async with _translated("positions"), asyncio.timeout(self._log._request_timeout_ms / 1000):
            for tp in sorted(consumer.assignment()):
                out[TopicPartition(tp.topic, tp.partition)] = await consumer.position(tp)
        return out

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _stop_quietly(consumer)

    def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("reader not started (or already closed)")
        return self._consumer


def bootstrap_from_url(url: str) -> str:
    """``kafka://h1:9092,h2:9092`` → ``h1:9092,h2:9092``; raises ``ValueError`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "kafka":
        raise ValueError(f"not a kafka:// URL: {url!r}")
    if not parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"expected kafka://host:port[,host:port...], got {url!r}")
    for server in parts.netloc.split(","):
        host, sep, port = server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"kafka URL {url!r}: {server!r} is not host:port")
    return parts.netloc


def from_url(url: str, **options: Unpack[KafkaOptions]) -> KafkaEventLog:
    """A :class:`KafkaEventLog` for ``kafka://host:port[,host:port...]`` (not yet started)."""
    return KafkaEventLog(bootstrap_from_url(url), **options)
