"""A deleted account stays erased on Kafka, where the log keeps every record: across a restart of
the faust worker and a replay.

The straggler is a heartbeat request authenticated just before the deletion and appended just
after it (appended here straight to the broker, as the ingest process would). The worker is
stopped once it has projected the deletion, the straggler is appended, the worker restarts and
reads on from its committed offsets, and finally the worker's own projections are replayed from
the log: no table holds anything of the account at any point.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from eventlog.kafka import KafkaEventLog
from eventlog.port import Record
from processors.runner import PROJECTIONS_GROUP
from schemas.events import ACCOUNTS_TOPIC, HEARTBEATS_TOPIC, HeartbeatsReceived, encode_event
from tests.brokers import Broker
from tests.e2e.harness import Client, CodeTrackrProcess, eventually, run_cli, snapshot_tables
from tests.e2e.test_kafka_end_to_end import broker, kafka_env
from tests.e2e.test_serve_end_to_end import waka, yesterday_noon
from tests.support.store_rows import make_heartbeat

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]

__all__ = ["broker"]  # the broker fixture, one fresh broker per test


async def _committed(bootstrap: str, topic: str) -> int:
    """Records of ``topic`` the projections group has committed (offsets summed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=PROJECTIONS_GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for partition in consumer.partitions_for_topic(topic) or set():
            total += await consumer.committed(TopicPartition(topic, partition)) or 0
        return total
    finally:
        await consumer.stop()


async def _log_end(bootstrap: str, topic: str) -> int:
    """Records ``topic`` holds (offsets summed), read through to the end: ListOffsets is not
    trusted here (Tansu answers it wrongly after a batch of several records)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = dict.fromkeys(partitions, 0)
        while batch := await consumer.getmany(timeout_ms=1000):
            for tp, messages in batch.items():
                ends[tp] = max(ends[tp], messages[-1].offset + 1)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def _append_straggler(bootstrap: str, user_id: str, at: float) -> None:
    log = KafkaEventLog(bootstrap)
    await log.start()
    try:
        heartbeat = make_heartbeat("straggler", at, user_id=user_id, project="straggler")
        event = HeartbeatsReceived(
            event_id="straggler", user_id=user_id, occurred_at=at, heartbeats=(heartbeat,)
        )
        await log.append([Record(HEARTBEATS_TOPIC, user_id.encode(), encode_event(event))])
    finally:
        await log.close()


def _projected(worker: CodeTrackrProcess, bootstrap: str, heartbeats: int, accounts: int) -> None:
    def caught_up() -> None:
        assert worker.proc is not None
        assert worker.proc.poll() is None, worker.logs()
        assert asyncio.run(_committed(bootstrap, HEARTBEATS_TOPIC)) == heartbeats
        assert asyncio.run(_committed(bootstrap, ACCOUNTS_TOPIC)) >= accounts

    eventually(caught_up, timeout_s=90, interval_s=0.5)


def test_deleted_account_stays_erased_across_a_worker_restart_and_a_replay(
    broker: Broker, tmp_path: Path
) -> None:
    env = kafka_env(broker)
    api = CodeTrackrProcess("api", tmp_path / "api", env=env).start()
    ingest = CodeTrackrProcess("ingest", tmp_path / "ingest", env=env).start()
    worker = CodeTrackrProcess("worker", tmp_path / "worker", env=env).start()
    worker_url = f"chdb://{(tmp_path / 'worker' / 'clickhouse').resolve()}"
    try:
        alice, bob = Client(api.url), Client(api.url)
        alice_id = alice.get("/api/v1/user/me")["id"]
        t0 = yesterday_noon()
        for user in (alice, bob):
            sent = httpx.post(
                f"{ingest.url}/api/v1/users/current/heartbeats.bulk",
                json=[waka(t0 + i * 60, "secret-project") for i in range(3)],
                headers=user.key_header,
            )
            assert sent.status_code == 201, sent.text
        _projected(worker, broker.bootstrap, heartbeats=2, accounts=1)

        deleted = alice.http.request(
            "DELETE", "/api/v1/user/me", headers=alice.bearer, json={"confirm": alice.username}
        )
        assert deleted.status_code == 202, deleted.text
        accounts_end = asyncio.run(_log_end(broker.bootstrap, ACCOUNTS_TOPIC))
        # The erasure (on the heartbeats topic) and the deletion (on the accounts topic).
        _projected(worker, broker.bootstrap, heartbeats=3, accounts=accounts_end)
        worker.stop()

        asyncio.run(_append_straggler(broker.bootstrap, alice_id, t0 + 600))
        worker.start()
        _projected(worker, broker.bootstrap, heartbeats=4, accounts=accounts_end)
    finally:
        worker.stop()
        ingest.stop()
        api.stop()

    tables = snapshot_tables(worker_url)
    assert alice_id not in json.dumps(tables)
    assert "secret-project" in json.dumps(tables["heartbeats"])  # bob's: the check can fail

    run_cli(["replay", "--data-dir", str(tmp_path / "worker"), "--quiet"], env=env)
    assert snapshot_tables(worker_url) == tables
