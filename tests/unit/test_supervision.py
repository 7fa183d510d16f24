"""The shared supervision policy: transient failures waited out, poison records isolated by
splitting and dead-lettered, innocent neighbours projected, a broken store not emptied into the
dead letters. No clock or sleep: delays are recorded, not waited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from eventlog.port import Delivered, LogUnavailable
from processors.deadletters import DeadLetter, dead_letter_of, pending, redriven_marker
from processors.supervision import ProjectorHealth, SupervisionPolicy, Supervisor
from projections.ports import ProjectionStoreError, ProjectionStoreUnavailable


def records(n: int) -> list[Delivered]:
    return [
        Delivered("t", i % 2, i, f"k{i}".encode(), f"v{i}".encode(), 1000 + i) for i in range(n)
    ]


class Harness:
    def __init__(self, policy: SupervisionPolicy | None = None) -> None:
        self.sleeps: list[float] = []
        self.dead: list[tuple[int, str, int]] = []
        self.health = ProjectorHealth("test")
        self.supervisor: Supervisor[list[int]] = Supervisor(
            policy or SupervisionPolicy(), self.dead_letter, self.health, sleep=self.sleep
        )

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)

    async def dead_letter(self, record: Delivered, exc: BaseException, attempts: int) -> None:
        self.dead.append((record.offset, str(exc), attempts))


async def test_a_poison_record_is_dead_lettered_and_its_batch_neighbours_are_handled() -> None:
    h = Harness(SupervisionPolicy(max_attempts=3, initial_delay_s=0.5))
    calls: list[list[int]] = []

    async def handle(batch: Sequence[Delivered]) -> list[int]:
        offsets = [r.offset for r in batch]
        calls.append(offsets)
        if 5 in offsets:
            raise ProjectionStoreError("cannot parse record 5")
        return offsets

    results = await h.supervisor.run(records(8), handle)

    assert [o for part in results for o in part] == [0, 1, 2, 3, 4, 6, 7]  # in log order
    assert h.dead == [(5, "cannot parse record 5", 3)]
    assert calls.count([5]) == 3  # the lone record gets its attempts, with backoff
    assert h.sleeps == [0.5, 1.0]
    assert h.health.dead_letters == 1
    assert h.health.in_flight_since_ms is None


async def test_transient_failures_are_retried_and_never_dead_lettered() -> None:
    h = Harness(SupervisionPolicy(max_attempts=2, initial_delay_s=1.0, max_delay_s=4.0))
    failures = iter([ProjectionStoreUnavailable("down"), LogUnavailable("gone")] * 3)

    async def handle(batch: Sequence[Delivered]) -> list[int]:
        exc = next(failures, None)
        if exc is not None:
            assert h.health.in_flight_since_ms == 1000  # the oldest record in flight
            raise exc
        return [r.offset for r in batch]

    assert await h.supervisor.run(records(4), handle) == [[0, 1, 2, 3]]
    assert h.dead == []
    assert h.sleeps == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert h.health.failure is None  # cleared by the success


async def test_a_store_failing_every_record_is_waited_out_after_a_burst_of_dead_letters() -> None:
    h = Harness(SupervisionPolicy(max_attempts=1, max_consecutive_dead_letters=2))
    broken = {"on": True}
    attempts_after_burst = 0

    async def handle(batch: Sequence[Delivered]) -> list[int]:
        nonlocal attempts_after_burst
        if len(h.dead) >= 2:
            attempts_after_burst += 1
            if attempts_after_burst == 5:
                broken["on"] = False
        if broken["on"]:
            raise ProjectionStoreError("table schema mismatch")
        return [r.offset for r in batch]

    results = await h.supervisor.run(records(4), handle)

    assert [offset for offset, _, _ in h.dead] == [0, 1]  # then no more dead letters
    assert [o for part in results for o in part] == [2, 3]
    assert attempts_after_burst == 5  # four waits, then the same batch succeeded


async def test_a_dead_letter_sink_that_cannot_reach_the_log_is_retried() -> None:
    h = Harness(SupervisionPolicy(max_attempts=1))
    down = iter([True, True, False])

    async def sink(record: Delivered, exc: BaseException, attempts: int) -> None:
        if next(down):
            raise LogUnavailable("log down")
        h.dead.append((record.offset, str(exc), attempts))

    supervisor: Supervisor[None] = Supervisor(
        SupervisionPolicy(max_attempts=1), sink, h.health, sleep=h.sleep
    )

    async def handle(batch: Sequence[Delivered]) -> None:
        raise ValueError("bad")

    assert await supervisor.run(records(1), handle) == []
    assert h.dead == [(0, "bad", 1)]
    assert len(h.sleeps) == 2


def test_backoff_doubles_up_to_the_cap_and_the_policy_refuses_nonsense() -> None:
    policy = SupervisionPolicy(initial_delay_s=0.25, max_delay_s=1.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 10)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="at least 1"):
        SupervisionPolicy(max_attempts=0)


def test_dead_letters_keep_the_record_byte_for_byte_and_fold_to_pending() -> None:
    record = Delivered("codetrackr.heartbeats", 2, 41, b"\x00user", b"\xff{not json", 5)
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    letter = dead_letter_of(record, ValueError("boom"), 3, now=now)
    assert DeadLetter.from_json(letter.to_json()) == letter
    assert (letter.topic, letter.partition, letter.offset) == ("codetrackr.heartbeats", 2, 41)
    assert (letter.key, letter.payload, letter.error) == (
        b"\x00user",
        b"\xff{not json",
        "ValueError: boom",
    )

    dead = [Delivered("dlq", 0, i, b"k", letter.to_json(), 0) for i in range(3)]
    redriven = [Delivered("redriven", 0, 0, b"k", redriven_marker(1, now=now), 0)]
    assert [letter_id for letter_id, _ in pending(dead, redriven)] == [0, 2]
