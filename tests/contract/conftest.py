"""Fixtures of the contract suites: the event log's (session brokers and one started adapter per
test) and the projection store's (one fresh store per test, on every adapter).

Brokers are started lazily (``request.getfixturevalue``) so an embedded-only run, or
``-m "not kafka"``, never spawns a broker process.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from eventlog.embedded import SqliteEventLog
from eventlog.kafka import KafkaEventLog
from eventlog.port import EventLog, LogReader
from projections.clickhouse import ClickHouseProjectionStore
from projections.memory import InMemoryProjectionStore
from projections.ports import ProjectionStore
from tests.brokers import Broker, NoidaBroker, TansuBroker
from tests.support import clickhouse_fixtures

BROKER_KINDS = ("tansu", "noida")
LOG_KINDS = ("sqlite", "kafka-tansu", "kafka-noida")
DEFAULT_PARTITIONS = 3

# Tansu's group joins take about half the session timeout; noida, like Kafka, refuses < 6 s.
_SESSION_TIMEOUT_MS = {"tansu": 2000, "noida": 6000}

OpenReader = Callable[[Sequence[str], str], Awaitable[LogReader]]


def _started(broker: Broker) -> Iterator[Broker]:
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[Broker]:
    yield from _started(TansuBroker())


@pytest.fixture(scope="session")
def noida_broker() -> Iterator[Broker]:
    yield from _started(NoidaBroker())


@pytest.fixture(
    scope="session",
    params=[pytest.param(kind, marks=pytest.mark.kafka) for kind in BROKER_KINDS],
)
def kafka_broker(request: pytest.FixtureRequest) -> Broker:
    """Each Kafka-protocol broker in turn (shared for the session)."""
    broker: Broker = request.getfixturevalue(f"{request.param}_broker")
    return broker


@pytest.fixture
def topic_prefix() -> str:
    """Unique per test, so tests sharing a session broker never see each other's records."""
    return f"ct-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def log_kind(request: pytest.FixtureRequest) -> str:
    """Which adapter ``event_log`` is in this test: one of :data:`LOG_KINDS`."""
    kind: str = request.node.callspec.params["event_log"]
    return kind


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("kafka-tansu", marks=pytest.mark.kafka),
        pytest.param("kafka-noida", marks=pytest.mark.kafka),
    ]
)
async def event_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    """A started adapter (default topic partitions: 3); closed after the test."""
    kind: str = request.param
    log: EventLog
    if kind == "sqlite":
        log = SqliteEventLog(tmp_path / "eventlog.sqlite", default_partitions=DEFAULT_PARTITIONS)
    else:
        broker_kind = kind.removeprefix("kafka-")
        broker: Broker = request.getfixturevalue(f"{broker_kind}_broker")
        log = KafkaEventLog(
            broker.bootstrap,
            client_id=f"contract-{broker_kind}",
            default_partitions=DEFAULT_PARTITIONS,
            request_timeout_ms=5000,
            session_timeout_ms=_SESSION_TIMEOUT_MS[broker_kind],
        )
    await log.start()
    try:
        yield log
    finally:
        await log.close()


@pytest.fixture
async def open_reader(event_log: EventLog) -> AsyncIterator[OpenReader]:
    """``await open_reader(topics, group)``: a started reader, closed after the test."""
    readers: list[LogReader] = []

    async def open_(topics: Sequence[str], group: str) -> LogReader:
        reader = event_log.reader(topics, group)
        await reader.start()
        readers.append(reader)
        return reader

    yield open_
    for reader in reversed(readers):
        await reader.close()


# --- the projection store ----------------------------------------------------------------------

chdb_url = clickhouse_fixtures.chdb_url
standin_url = clickhouse_fixtures.standin_url

OpenStore = Callable[[], ProjectionStore]


@pytest.fixture(
    params=[
        pytest.param("chdb", marks=pytest.mark.clickhouse),
        pytest.param("http-standin", marks=pytest.mark.clickhouse),
        pytest.param("server", marks=pytest.mark.clickhouse),
        pytest.param("memory"),
    ]
)
def open_store(request: pytest.FixtureRequest) -> Iterator[OpenStore]:
    """``open_store()``: a new, migrated, empty store of this test's adapter; every store opened
    is closed after the test (and its database dropped on a shared server)."""
    kind: str = request.param
    url = ""
    if kind == "chdb":
        url = request.getfixturevalue("chdb_url")
    elif kind == "http-standin":
        url = request.getfixturevalue("standin_url")
    elif kind == "server":
        url = os.environ.get(clickhouse_fixtures.SERVER_URL_ENV, "")
        if not url:
            pytest.skip(f"{clickhouse_fixtures.SERVER_URL_ENV} is not set: no ClickHouse server")
    opened: list[ProjectionStore] = []

    def open_() -> ProjectionStore:
        store: ProjectionStore
        if kind == "memory":
            store = InMemoryProjectionStore()
        else:
            store = ClickHouseProjectionStore(url, database=f"t_{uuid.uuid4().hex[:12]}")
        store.migrate()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
        if kind != "chdb" and isinstance(store, ClickHouseProjectionStore):
            clickhouse_fixtures.drop_database(url, store._database)


@pytest.fixture
def store(open_store: OpenStore) -> ProjectionStore:
    """A new, migrated, empty store of each adapter in turn."""
    return open_store()
