"""Dead letters: records a projector could not handle, kept on the log for an operator.

Two topics of one partition each (created at start-up with the others):

* ``codetrackr.deadletters``: one JSON record per record given up on, with its original topic,
  partition, offset, key and payload (base64, byte for byte), the error, the number of attempts
  and when. Keyed by the original key. A dead letter's id is its offset on this topic.
* ``codetrackr.deadletters.redriven``: one record per dead letter re-driven (``codetrackr dlq
  replay``), naming the dead letter's id. A dead letter with such a record is no longer pending.

Re-driving appends the payload, with its key, to the original topic, THEN records that it was
re-driven. A crash between the two re-drives it once more next time: the projections are
idempotent and events carry deterministic ids, so a duplicate changes nothing, whereas the
other order could lose the record. If it fails again it becomes a new dead letter.

Pending = written minus re-driven, so ``/readyz`` counts dead letters from the two topics' end
offsets without reading them.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from eventlog.port import Delivered, EventLog, Record, TopicPartition
from processors.supervision import describe

DEAD_LETTERS_TOPIC = "codetrackr.deadletters"
REDRIVEN_TOPIC = "codetrackr.deadletters.redriven"
DEAD_LETTER_TOPICS = {DEAD_LETTERS_TOPIC: 1, REDRIVEN_TOPIC: 1}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes
    payload: bytes
    error: str
    attempts: int
    failed_at: str  # ISO 8601, UTC

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "key": base64.b64encode(self.key).decode(),
                "payload": base64.b64encode(self.payload).decode(),
                "error": self.error,
                "attempts": self.attempts,
                "failed_at": self.failed_at,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> DeadLetter:
        data = json.loads(raw)
        return cls(
            topic=str(data["topic"]),
            partition=int(data["partition"]),
            offset=int(data["offset"]),
            key=base64.b64decode(data["key"]),
            payload=base64.b64decode(data["payload"]),
            error=str(data["error"]),
            attempts=int(data["attempts"]),
            failed_at=str(data["failed_at"]),
        )


def dead_letter_of(
    record: Delivered, exc: BaseException, attempts: int, *, now: datetime
) -> DeadLetter:
    """Pure: the dead letter of ``record``, which failed ``attempts`` times, last with ``exc``."""
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        payload=record.value,
        error=describe(exc),
        attempts=attempts,
        failed_at=now.astimezone(UTC).isoformat(timespec="milliseconds"),
    )


def redriven_marker(dead_letter_id: int, *, now: datetime) -> bytes:
    return json.dumps(
        {"dead_letter": dead_letter_id, "redriven_at": now.astimezone(UTC).isoformat()}
    ).encode()


def pending(
    dead: Sequence[Delivered], redriven: Sequence[Delivered]
) -> list[tuple[int, DeadLetter]]:
    """Pure: ``(id, dead letter)`` of every dead letter not re-driven yet, in order."""
    done = {int(json.loads(record.value)["dead_letter"]) for record in redriven}
    return [
        (record.offset, DeadLetter.from_json(record.value))
        for record in dead
        if record.offset not in done
    ]


class DeadLetterWriter:
    """The :data:`processors.supervision.DeadLetterSink` of a runner: appends to the log
    (raises ``LogUnavailable`` when it cannot, which the supervisor waits out)."""

    def __init__(self, log: EventLog, *, now: Callable[[], datetime] | None = None) -> None:
        self._log = log
        self._now = now or (lambda: datetime.now(UTC))

    async def __call__(self, record: Delivered, exc: BaseException, attempts: int) -> None:
        letter = dead_letter_of(record, exc, attempts, now=self._now())
        await self._log.append([Record(DEAD_LETTERS_TOPIC, record.key, letter.to_json())])


async def pending_count(log: EventLog) -> int:
    """Dead letters written minus re-driven, from end offsets only (cheap; for ``/readyz``)."""
    written = sum((await log.end_offsets(DEAD_LETTERS_TOPIC)).values())
    redriven = sum((await log.end_offsets(REDRIVEN_TOPIC)).values())
    return max(0, written - redriven)


async def read_topic(log: EventLog, topic: str, *, wait_s: float = 0.5) -> list[Delivered]:
    """Every record of ``topic`` up to its current end, through a throwaway consumer group."""
    ends: Mapping[TopicPartition, int] = await log.end_offsets(topic)
    if not any(ends.values()):
        return []
    reader = log.reader([topic], group=f"codetrackr-dlq-{uuid.uuid4().hex}")
    await reader.start()
    records: list[Delivered] = []
    try:
        await reader.seek_to_beginning()
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            positions = await reader.positions()
            if all(positions.get(tp, 0) >= end for tp, end in ends.items()):
                break
            records.extend(await reader.fetch(1000, wait_s))
    finally:
        await reader.close()
    return [r for r in records if r.offset < ends.get(TopicPartition(r.topic, r.partition), 0)]


async def list_pending(log: EventLog) -> list[tuple[int, DeadLetter]]:
    return pending(await read_topic(log, DEAD_LETTERS_TOPIC), await read_topic(log, REDRIVEN_TOPIC))


async def redrive(
    log: EventLog,
    ids: Sequence[int] | None = None,
    *,
    now: Callable[[], datetime] | None = None,
) -> list[int]:
    """Append each pending dead letter (all, or those of ``ids``) back to its original topic,
    then mark it re-driven; returns the ids re-driven. Unknown or already re-driven ids are
    skipped (the caller reports them)."""
    clock = now or (lambda: datetime.now(UTC))
    wanted = None if ids is None else set(ids)
    done: list[int] = []
    for letter_id, letter in await list_pending(log):
        if wanted is not None and letter_id not in wanted:
            continue
        await log.append([Record(letter.topic, letter.key, letter.payload)])
        await log.append(
            [Record(REDRIVEN_TOPIC, letter.key, redriven_marker(letter_id, now=clock()))]
        )
        done.append(letter_id)
    return done
