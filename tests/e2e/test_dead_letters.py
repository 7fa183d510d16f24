"""The faust worker against a poison record, as separate processes on a real broker: a deletion
of a date ClickHouse cannot store fails every time; the worker dead-letters it and projects the
records around it, its ``/readyz`` reports it, and ``codetrackr dlq list|replay`` show and
re-drive it (the copy fails again and becomes a new dead letter: nothing is lost or wedged)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eventlog.kafka import KafkaEventLog
from eventlog.port import Record
from schemas.events import HEARTBEATS_TOPIC, HeartbeatsDeleted, HeartbeatsReceived, encode_event
from schemas.heartbeat import Heartbeat
from tests.brokers import Broker, NoidaBroker
from tests.e2e.harness import CodeTrackrProcess, eventually, query_scalar, run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse, pytest.mark.slow]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    instance = NoidaBroker(work_dir=tmp_path / "broker")
    instance.start()
    try:
        yield instance
    finally:
        instance.close()


def received(user: str, at: float) -> Record:
    hb = Heartbeat(
        event_id=f"{user}-{at}",
        user_id=user,
        time=at,
        entity="/src/main.py",
        project="core",
        timezone="UTC",
        received_at=at,
        source="wakatime",
    )
    event = HeartbeatsReceived(event_id=f"e-{user}", user_id=user, occurred_at=at, heartbeats=(hb,))
    return Record(HEARTBEATS_TOPIC, user.encode(), encode_event(event))


def poison(user: str) -> Record:
    # Past ClickHouse's Date range (2149): the engine refuses the row, every time.
    event = HeartbeatsDeleted(
        event_id="e-poison", user_id=user, occurred_at=0, date=date(2200, 1, 1), ids=("x",)
    )
    return Record(HEARTBEATS_TOPIC, user.encode(), encode_event(event))


async def append(bootstrap: str, records: list[Record]) -> None:
    log = KafkaEventLog(bootstrap)
    await log.start()
    try:
        await log.append(records)
    finally:
        await log.close()


def readyz(worker: CodeTrackrProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{worker.url}/readyz", timeout=10)
    return response.status_code, response.json()


def test_worker_dead_letters_a_poison_record_and_projects_its_neighbours(
    broker: Broker, tmp_path: Path
) -> None:
    env = {
        "CODETRACKR_EVENT_LOG_URL": f"kafka://{broker.bootstrap}",
        "CODETRACKR_JWT_SECRET": "e2e-secret-" + "x" * 40,
        "CODETRACKR_HEARTBEAT_PARTITIONS": "1",
        "CODETRACKR_PROJECTOR_RETRY_INITIAL_S": "0.05",
    }
    worker = CodeTrackrProcess("worker", tmp_path / "worker", env=env).start()
    now = time.time() - 3600
    try:

        def alive() -> None:
            try:
                response = httpx.get(f"{worker.url}/healthz", timeout=5)
            except httpx.HTTPError as exc:
                raise AssertionError(f"worker not serving yet: {exc}") from exc
            assert response.json() == {"status": "ok", "role": "worker"}

        eventually(alive, timeout_s=60, interval_s=0.2)
        asyncio.run(
            append(
                broker.bootstrap,
                [received("alice", now), poison("mallory"), received("bob", now)],
            )
        )

        def dead_lettered() -> dict[str, Any]:
            status, body = readyz(worker)
            assert status == 200, body
            assert body["checks"]["dead_letters"]["pending"] == 1, body
            projectors = body["checks"]["projector"]["projectors"]
            assert sum(p["dead_letters_written"] for p in projectors) == 1
            assert all(p["alive"] for p in projectors)
            return body

        body = eventually(dead_lettered, timeout_s=120, interval_s=0.5)
        assert body["checks"]["store"]["ok"]
        # The worker's /metrics says the same, in Prometheus' text format.
        metrics = httpx.get(f"{worker.url}/metrics", timeout=10)
        assert metrics.status_code == 200
        written = {
            sample.labels["projector"]: sample.value
            for family in text_string_to_metric_families(metrics.text)
            for sample in family.samples
            if sample.name == "codetrackr_projector_dead_letters_total"
        }
        assert sum(written.values()) == 1, written

        (line,) = run_cli(["dlq", "list", "--data-dir", str(tmp_path / "cli")], env=env).split(
            "\n"
        )[:-1]
        listed = json.loads(line)
        assert listed["id"] == 0
        assert (listed["topic"], listed["partition"], listed["offset"]) == (HEARTBEATS_TOPIC, 0, 1)
        assert listed["key"] == "mallory"
        assert listed["attempts"] == 3
        assert "local_date" in listed["error"]

        replayed = run_cli(["dlq", "replay", "0", "--data-dir", str(tmp_path / "cli")], env=env)
        assert "re-driven dead letter 0" in replayed

        # The re-driven copy (offset 3) fails again: a new dead letter, the old one done.
        def dead_again() -> None:
            lines = run_cli(["dlq", "list", "--data-dir", str(tmp_path / "cli")], env=env)
            (again,) = [json.loads(line) for line in lines.splitlines()]
            assert (again["id"], again["offset"]) == (1, 3)

        eventually(dead_again, timeout_s=120, interval_s=1.0)
    finally:
        worker.stop()
    url = f"chdb://{(tmp_path / 'worker' / 'clickhouse').resolve()}"
    assert query_scalar(url, "SELECT count() FROM codetrackr.heartbeats FINAL") == "2"
