"""The event log contract: every adapter (embedded SQLite, Kafka on Tansu, Kafka on noida-db) must
pass these same tests. An adapter is trusted only because it passes them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import pytest

from eventlog.port import Delivered, EventLog, LogReader, Record, TopicPartition
from tests.contract.conftest import DEFAULT_PARTITIONS, OpenReader

# A blocked fetch must return this soon after an append is acknowledged. The embedded log wakes
# readers in-process; Kafka readers long-poll the broker.
_WAKE_BUDGET_S = {"sqlite": 0.1, "kafka-tansu": 1.5, "kafka-noida": 1.5}


async def read_n(reader: LogReader, n: int, timeout_s: float = 20.0) -> list[Delivered]:
    """Fetch until ``n`` records arrived (failing the test after ``timeout_s``)."""
    out: list[Delivered] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < n:
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(out)} of {n} records arrived within {timeout_s} s")
        out.extend(await reader.fetch(max_records=500, timeout_s=0.5))
    return out


async def assert_nothing_more(reader: LogReader) -> None:
    extra = await reader.fetch(max_records=100, timeout_s=0.3)
    assert extra == [], f"unexpected extra records: {extra}"


def by_partition(records: list[Delivered]) -> dict[TopicPartition, list[Delivered]]:
    grouped: dict[TopicPartition, list[Delivered]] = defaultdict(list)
    for record in records:
        grouped[TopicPartition(record.topic, record.partition)].append(record)
    return dict(grouped)


def value_of(i: int) -> bytes:
    return f"value-{i:05d}".encode()


async def test_append_reads_back_every_record_exactly(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.exact"
    await event_log.ensure_topics({topic: 3})
    appended = [Record(topic, f"key-{i % 5}".encode(), value_of(i)) for i in range(30)]
    for start in range(0, 30, 10):
        await event_log.append(appended[start : start + 10])

    reader = await open_reader([topic], f"{topic_prefix}.g")
    delivered = await read_n(reader, 30)
    await assert_nothing_more(reader)

    assert Counter((d.key, d.value) for d in delivered) == Counter(
        (r.key, r.value) for r in appended
    )
    assert {d.topic for d in delivered} == {topic}
    assert all(d.timestamp_ms > 0 for d in delivered)
    append_index = {r.value: i for i, r in enumerate(appended)}
    for records in by_partition(delivered).values():
        assert [d.offset for d in records] == list(range(len(records)))
        indices = [append_index[d.value] for d in records]
        assert indices == sorted(indices), "a partition must be read in append order"


async def test_same_key_lands_on_one_partition_in_append_order(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.keys"
    await event_log.ensure_topics({topic: 3})
    keys = [f"user-{k}".encode() for k in range(8)]
    rounds = 25
    for i in range(rounds):
        await event_log.append([Record(topic, key, f"{i:03d}".encode()) for key in keys])

    reader = await open_reader([topic], f"{topic_prefix}.g")
    delivered = await read_n(reader, rounds * len(keys))

    per_key: dict[bytes, list[Delivered]] = defaultdict(list)
    for d in delivered:
        per_key[d.key].append(d)
    assert set(per_key) == set(keys)
    for key, records in per_key.items():
        assert len({d.partition for d in records}) == 1, f"{key!r} spread over partitions"
        assert [d.value for d in records] == [f"{i:03d}".encode() for i in range(rounds)]


async def test_concurrent_appends_are_all_delivered_once(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.concurrent"
    count = 200
    await asyncio.gather(
        *(
            event_log.append([Record(topic, f"k{i % 7}".encode(), value_of(i))])
            for i in range(count)
        )
    )

    reader = await open_reader([topic], f"{topic_prefix}.g")
    delivered = await read_n(reader, count)
    await assert_nothing_more(reader)
    assert sorted(d.value for d in delivered) == [value_of(i) for i in range(count)]


async def test_commit_new_reader_resumes_after_committed_offset(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic, group = f"{topic_prefix}.resume", f"{topic_prefix}.g"
    await event_log.ensure_topics({topic: 2})
    await event_log.append([Record(topic, f"k{i}".encode(), value_of(i)) for i in range(20)])

    first = await open_reader([topic], group)
    delivered = by_partition(await read_n(first, 20))
    assert await first.positions() == {tp: len(rs) for tp, rs in delivered.items()}
    # Commit about half of each partition: the offset of the next record to process.
    committed = {tp: records[len(records) // 2].offset for tp, records in delivered.items()}
    await first.commit(committed)
    await first.close()

    second = await open_reader([topic], group)
    assert await second.positions() == committed
    expected = {
        (tp.partition, d.offset, d.value)
        for tp, records in delivered.items()
        for d in records[len(records) // 2 :]
    }
    resumed = await read_n(second, len(expected))
    await assert_nothing_more(second)
    assert {(d.partition, d.offset, d.value) for d in resumed} == expected


async def test_uncommitted_records_are_redelivered_to_new_reader(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic, group = f"{topic_prefix}.redeliver", f"{topic_prefix}.g"
    await event_log.append([Record(topic, f"k{i}".encode(), value_of(i)) for i in range(10)])

    first = await open_reader([topic], group)
    seen_first = await read_n(first, 10)
    await first.close()

    second = await open_reader([topic], group)
    seen_again = await read_n(second, 10)
    assert sorted(d.value for d in seen_again) == sorted(d.value for d in seen_first)


async def test_seek_to_beginning_rereads_everything(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.replay"
    await event_log.ensure_topics({topic: 2})
    await event_log.append([Record(topic, f"k{i}".encode(), value_of(i)) for i in range(12)])

    reader = await open_reader([topic], f"{topic_prefix}.g")
    first = await read_n(reader, 12)
    await reader.commit({TopicPartition(d.topic, d.partition): d.offset + 1 for d in first})
    await reader.seek_to_beginning()

    assert await reader.positions() == {TopicPartition(topic, 0): 0, TopicPartition(topic, 1): 0}
    replayed = await read_n(reader, 12)
    await assert_nothing_more(reader)
    assert sorted((d.partition, d.offset, d.value) for d in replayed) == sorted(
        (d.partition, d.offset, d.value) for d in first
    )


async def test_end_offsets_count_single_record_appends_per_partition(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.ends"
    await event_log.ensure_topics({topic: 3})
    for i in range(15):
        await event_log.append([Record(topic, f"k{i}".encode(), value_of(i))])

    reader = await open_reader([topic], f"{topic_prefix}.g")
    counts = Counter(d.partition for d in await read_n(reader, 15))
    assert await event_log.end_offsets(topic) == {
        TopicPartition(topic, p): counts[p] for p in range(3)
    }


async def test_end_offsets_count_multi_record_appends(
    event_log: EventLog, log_kind: str, topic_prefix: str
) -> None:
    if log_kind == "kafka-tansu":
        pytest.skip(
            "tansu defect: ListOffsets(latest) is wrong when the last batch holds >1 record"
        )
    topic = f"{topic_prefix}.batched"
    await event_log.ensure_topics({topic: 1})
    for start in range(0, 20, 5):
        await event_log.append(
            [Record(topic, f"k{i}".encode(), value_of(i)) for i in range(start, start + 5)]
        )
    assert await event_log.end_offsets(topic) == {TopicPartition(topic, 0): 20}


async def test_groups_read_independently(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.groups"
    group_a, group_b = f"{topic_prefix}.a", f"{topic_prefix}.b"
    await event_log.append([Record(topic, f"k{i}".encode(), value_of(i)) for i in range(10)])

    reader_a = await open_reader([topic], group_a)
    read_a = await read_n(reader_a, 10)
    await reader_a.commit({TopicPartition(d.topic, d.partition): d.offset + 1 for d in read_a})
    await reader_a.close()

    reader_b = await open_reader([topic], group_b)
    read_b = await read_n(reader_b, 10)
    assert sorted(d.value for d in read_b) == sorted(d.value for d in read_a)
    await reader_b.close()

    reader_a_again = await open_reader([topic], group_a)
    await assert_nothing_more(reader_a_again)


async def test_ensure_topics_partition_counts_are_used(
    event_log: EventLog, open_reader: OpenReader, topic_prefix: str
) -> None:
    wide, narrow = f"{topic_prefix}.wide", f"{topic_prefix}.narrow"
    await event_log.ensure_topics({wide: 4, narrow: 1})
    assert await event_log.end_offsets(wide) == {TopicPartition(wide, p): 0 for p in range(4)}
    assert await event_log.end_offsets(narrow) == {TopicPartition(narrow, 0): 0}

    # Asking again with other counts leaves existing topics alone.
    await event_log.ensure_topics({wide: 2, narrow: 5})
    assert len(await event_log.end_offsets(wide)) == 4
    assert len(await event_log.end_offsets(narrow)) == 1

    await event_log.append([Record(wide, f"user-{i}".encode(), value_of(i)) for i in range(40)])
    reader = await open_reader([wide], f"{topic_prefix}.g")
    partitions = {d.partition for d in await read_n(reader, 40)}
    assert partitions <= set(range(4))
    assert len(partitions) > 1, "40 distinct keys should spread over several partitions"


async def test_append_auto_creates_topic_with_default_partitions(
    event_log: EventLog, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.auto"
    await event_log.append([Record(topic, b"k", b"v")])
    ends = await event_log.end_offsets(topic)
    assert set(ends) == {TopicPartition(topic, p) for p in range(DEFAULT_PARTITIONS)}
    assert sum(ends.values()) == 1


async def test_fetch_wakes_promptly_after_append(
    event_log: EventLog, open_reader: OpenReader, log_kind: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.wake"
    reader = await open_reader([topic], f"{topic_prefix}.g")
    assert await reader.fetch(max_records=10, timeout_s=0.1) == []

    async def append_later() -> float:
        await asyncio.sleep(0.2)
        await event_log.append([Record(topic, b"k", b"wake")])
        return time.monotonic()

    appended = asyncio.create_task(append_later())
    delivered = await reader.fetch(max_records=10, timeout_s=10.0)
    woke = time.monotonic()
    acknowledged = await appended
    assert [d.value for d in delivered] == [b"wake"]
    assert woke - acknowledged < _WAKE_BUDGET_S[log_kind]


async def test_append_rejects_non_bytes_key_or_value(
    event_log: EventLog, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}.types"
    with pytest.raises(TypeError):
        await event_log.append([Record(topic, "text-key", b"v")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await event_log.append([Record(topic, b"k", "text-value")])  # type: ignore[arg-type]
