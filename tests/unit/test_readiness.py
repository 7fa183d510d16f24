"""``/readyz``'s verdict from its checks: which failures make a process unready, and what the
body names (the endpoints themselves are driven over HTTP in the integration and e2e tests)."""

from __future__ import annotations

import asyncio
from typing import Any

from codetrackr.health import Readiness
from eventlog.port import LogUnavailable, TopicPartition
from processors.deadletters import DEAD_LETTERS_TOPIC, REDRIVEN_TOPIC
from processors.supervision import ProjectorHealth


class FakeLog:
    def __init__(self, ends: dict[str, int] | None = None, *, fail: bool = False) -> None:
        self.ends = ends or {}
        self.fail = fail
        self.hang = False

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise LogUnavailable("kafka end_offsets failed: NodeNotReadyError")
        return {TopicPartition(topic, 0): self.ends.get(topic, 0)}


class Probe:
    def __init__(self, health: ProjectorHealth, lag: int) -> None:
        self.health = health
        self.lag = lag

    async def lag_records(self) -> int:
        return self.lag


def readiness(log: FakeLog, **kwargs: Any) -> Readiness:
    return Readiness("serve", log, now_ms=lambda: 10_000, **kwargs)  # type: ignore[arg-type]


async def test_ready_reports_lag_and_pending_dead_letters() -> None:
    health = ProjectorHealth("projection-runner", alive=True, dead_letters=2)
    health.in_flight_since_ms = 7_500
    log = FakeLog({DEAD_LETTERS_TOPIC: 5, REDRIVEN_TOPIC: 2})
    ready, body = await readiness(
        log, store_ping=lambda: None, projectors=[Probe(health, 42)], expects_projector=True
    ).report()
    assert ready
    assert body["status"] == "ready"
    assert "error" not in body
    assert body["checks"]["dead_letters"] == {"ok": True, "pending": 3}
    (projector,) = body["checks"]["projector"]["projectors"]
    assert (projector["lag_records"], projector["lag_seconds"]) == (42, 2.5)
    assert projector["dead_letters_written"] == 2


async def test_a_dead_projector_and_an_unreachable_store_are_both_named() -> None:
    dead = ProjectorHealth("projection-runner", alive=False, failure="projector stopped: boom")

    def store_down() -> None:
        raise OSError("connection refused")

    ready, body = await readiness(
        FakeLog(), store_ping=store_down, projectors=[Probe(dead, 0)], expects_projector=True
    ).report()
    assert not ready
    assert set(body) == {"error"}  # the API's one error envelope
    assert body["error"]["code"] == "not_ready"
    assert body["error"]["message"] == "not ready: projector, store"
    details = body["error"]["details"]
    assert details["failing"] == ["projector", "store"]
    assert details["checks"]["projector"]["error"] == "projector stopped: boom"
    assert "connection refused" in details["checks"]["store"]["error"]


async def test_an_unreachable_log_fails_and_dead_letters_are_unknown_not_failing() -> None:
    ready, body = await readiness(FakeLog(fail=True)).report()
    assert not ready
    details = body["error"]["details"]
    assert details["failing"] == ["log"]
    assert "NodeNotReadyError" in details["checks"]["log"]["error"]
    assert details["checks"]["dead_letters"]["ok"]
    assert details["checks"]["dead_letters"]["pending"] is None


async def test_a_check_that_does_not_answer_in_time_fails() -> None:
    log = FakeLog()
    log.hang = True
    ready, body = await readiness(log, timeout_s=0.05).report()
    assert not ready
    assert body["error"]["details"]["checks"]["log"]["error"] == "no answer in time"


async def test_a_projector_role_without_a_running_projector_is_not_ready() -> None:
    ready, body = await readiness(FakeLog(), expects_projector=True).report()
    assert not ready
    assert body["error"]["details"]["failing"] == ["projector"]
