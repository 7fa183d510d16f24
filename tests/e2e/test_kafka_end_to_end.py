"""The same product on a real Kafka-protocol broker process: one process, then separate services.

ClickHouse is the chdb engine here (a server is not installable on this machine); chdb allows one
process per data directory, so in the split topology the api and the worker each get their own.
The worker's tables are read after it stops, and compared with a replay from the log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.events import HEARTBEATS_TOPIC
from tests.brokers import Broker, NoidaBroker, TansuBroker
from tests.e2e.harness import (
    Client,
    CodeTrackrProcess,
    eventually,
    query_scalar,
    run_cli,
    snapshot_tables,
)
from tests.e2e.test_serve_end_to_end import waka, yesterday_noon

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

SECRET = "e2e-secret-" + "x" * 40


@pytest.fixture(params=["noida", "tansu"])
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Broker]:
    """A fresh broker per test: topics and consumer groups never leak between tests."""
    kind = NoidaBroker if request.param == "noida" else TansuBroker
    instance = kind(work_dir=tmp_path / "broker")
    instance.start()
    try:
        yield instance
    finally:
        instance.close()


def kafka_env(broker: Broker) -> dict[str, str]:
    return {
        "CODETRACKR_EVENT_LOG_URL": f"kafka://{broker.bootstrap}",
        "CODETRACKR_JWT_SECRET": SECRET,
        "CODETRACKR_HEARTBEAT_PARTITIONS": "3",
    }


def test_serve_on_kafka_gives_reference_time(broker: Broker, tmp_path: Path) -> None:
    server = CodeTrackrProcess("serve", tmp_path / "serve", env=kafka_env(broker)).start()
    try:
        user = Client(server.url, timezone="Europe/Berlin")
        t0 = yesterday_noon()
        bulk = [waka(t0, "A"), waka(t0 + 60, "A"), waka(t0 + 120, "A"), waka(t0 + 600, "B")]
        sent = user.http.post(
            "/api/v1/users/current/heartbeats.bulk", json=bulk, headers=user.key_header
        )
        assert sent.status_code == 201, sent.text
        eventually(lambda: _equal(user.summary_total(), 600), timeout_s=60)
        # Duplicates and a late heartbeat, as on the embedded log.
        assert (
            user.http.post(
                "/api/v1/users/current/heartbeats.bulk", json=bulk, headers=user.key_header
            ).status_code
            == 201
        )
        late = user.http.post(
            "/api/v1/users/current/heartbeats", json=waka(t0 + 900, "B"), headers=user.key_header
        )
        assert late.status_code == 201
        # A: 0->600 (600 s); B: 600->900 (300 s) = 900.
        eventually(lambda: _equal(user.summary_total(), 900), timeout_s=60)
    finally:
        server.stop()


async def _committed_records(bootstrap: str, group: str) -> int:
    """How many heartbeat records the group has committed (offsets summed over partitions).

    Compared with the number of records the test appended, this tells when the worker is done
    without asking the broker for end offsets (which Tansu gets wrong for multi-record batches).
    """
    # A consumer that never subscribes does not join the group; it only reads its offsets.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(HEARTBEATS_TOPIC) or set()
        total = 0
        for partition in partitions:
            offset = await consumer.committed(TopicPartition(HEARTBEATS_TOPIC, partition))
            total += offset or 0
        return total
    finally:
        await consumer.stop()


def test_split_services_project_through_the_faust_worker_and_replay_matches(
    broker: Broker, tmp_path: Path
) -> None:
    env = kafka_env(broker)
    api = CodeTrackrProcess("api", tmp_path / "api", env=env).start()
    ingest = CodeTrackrProcess("ingest", tmp_path / "ingest", env=env).start()
    worker = CodeTrackrProcess("worker", tmp_path / "worker", env=env).start()
    try:
        user = Client(api.url, timezone="Europe/Berlin")
        t0 = yesterday_noon()
        # The key was created through the api process; the ingest process accepts it at once.
        bulk = [waka(t0 + i * 60, "split") for i in range(10)]
        for _ in range(2):  # the second time is a client's redelivery: it must change nothing
            response = user.http.post(
                f"{ingest.url}/api/v1/users/current/heartbeats.bulk",
                json=bulk,
                headers=user.key_header,
            )
            assert response.status_code == 201, response.text

        def caught_up() -> None:
            assert worker.proc is not None
            assert worker.proc.poll() is None, worker.logs()
            # Two requests were appended, one record each.
            assert asyncio.run(_committed_records(broker.bootstrap, "codetrackr-projections")) == 2

        eventually(caught_up, timeout_s=90, interval_s=0.5)
        time.sleep(0.5)
    finally:
        worker.stop()
        ingest.stop()
        api.stop()
    worker_url = f"chdb://{(tmp_path / 'worker' / 'clickhouse').resolve()}"
    worker_tables = snapshot_tables(worker_url)
    assert len(worker_tables["daily_stats"]) == 1
    assert query_scalar(worker_url, "SELECT count() FROM codetrackr.heartbeats FINAL") == "10"
    # 10 heartbeats a minute apart: 9 minutes.
    total = query_scalar(worker_url, "SELECT sum(total_seconds) FROM codetrackr.daily_stats FINAL")
    assert float(total) == 540.0
    run_cli(["replay", "--data-dir", str(tmp_path / "replayed"), "--quiet"], env=env)
    replayed = snapshot_tables(f"chdb://{(tmp_path / 'replayed' / 'clickhouse').resolve()}")
    assert replayed == worker_tables


def _equal(a: object, b: object) -> None:
    assert a == b
