"""Erasure in the embedded log: ``SqliteEventLog.rewrite`` changes or deletes records in place.

Deleting leaves gaps that readers skip; offsets are never reused and end offsets never move back,
not even after a reopen; a refused key cannot be appended again; all of it is one transaction
ordered with appends.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest

from eventlog.embedded import SqliteEventLog, partition_for
from eventlog.port import Delivered, Record, RecordRefused, RewritableLog, Rewrite, TopicPartition

_TOPIC = "activity"
_PARTITIONS = 2


@asynccontextmanager
async def opened(path: Path) -> AsyncIterator[SqliteEventLog]:
    log = SqliteEventLog(path, default_partitions=_PARTITIONS)
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def read_all(log: SqliteEventLog, topic: str, group: str | None = None) -> list[Delivered]:
    """Everything a reader of ``group`` (a fresh one by default) reads, in (partition, offset)."""
    reader = log.reader([topic], group or f"fresh-{uuid.uuid4().hex}")
    await reader.start()
    try:
        out: list[Delivered] = []
        while batch := await reader.fetch(max_records=1000, timeout_s=0.1):
            out.extend(batch)
        return sorted(out, key=lambda d: (d.partition, d.offset))
    finally:
        await reader.close()


def keys_on(partition: int, count: int, prefix: str) -> list[bytes]:
    """``count`` distinct keys that all land on ``partition`` of a ``_PARTITIONS`` topic."""
    keys = (f"{prefix}-{i}".encode() for i in range(10_000))
    found = [key for key in keys if partition_for(key, _PARTITIONS) == partition]
    return found[:count]


def delete_all(records: Sequence[Delivered]) -> Rewrite:
    return {(record.partition, record.offset): None for record in records}


def keep_all(records: Sequence[Delivered]) -> Rewrite:
    return {}


async def test_rewrite_deletes_and_changes_one_keys_records_in_place(tmp_path: Path) -> None:
    alice, bob = keys_on(0, 2, "user")  # one partition: alice's deletions leave gaps among bob's
    (carol,) = keys_on(1, 1, "user")
    async with opened(tmp_path / "log.sqlite") as log:
        for i in range(5):
            await log.append(
                [Record(_TOPIC, key, f"{key.decode()}-{i}".encode()) for key in (alice, bob, carol)]
            )
        before = await read_all(log, _TOPIC)
        alices = [d for d in before if d.key == alice]
        assert len(alices) == 5

        seen: list[Delivered] = []

        def plan(records: Sequence[Delivered]) -> Rewrite:
            seen.extend(records)
            first, second, third, _fourth, fifth = records
            return {
                (first.partition, first.offset): None,
                (second.partition, second.offset): b"redacted",
                (third.partition, third.offset): None,
                (fifth.partition, fifth.offset): None,
            }

        rewritable: RewritableLog = log  # the capability, as the application would hold it
        changed = await rewritable.rewrite(_TOPIC, plan, key=alice)

        assert changed == 4
        assert seen == alices, "plan must see exactly the key's records, in offset order"
        deleted = {(d.partition, d.offset) for d in (alices[0], alices[2], alices[4])}
        redacted = (alices[1].partition, alices[1].offset)
        expected = [
            Delivered(d.topic, d.partition, d.offset, d.key, b"redacted", d.timestamp_ms)
            if (d.partition, d.offset) == redacted
            else d
            for d in before
            if (d.partition, d.offset) not in deleted
        ]
        after = await read_all(log, _TOPIC)
        assert after == expected  # same offsets and timestamps; bob and carol untouched
        assert [d for d in after if d.key != alice] == [d for d in before if d.key != alice]

        # Without a key, plan sees the whole topic in (partition, offset) order.
        everything: list[Delivered] = []

        def look(records: Sequence[Delivered]) -> Rewrite:
            everything.extend(records)
            return {}

        assert await log.rewrite(_TOPIC, look) == 0
        assert everything == expected

        # A "new" value equal to the current one is no change.
        unchanged = await log.rewrite(
            _TOPIC, lambda records: {(r.partition, r.offset): r.value for r in records}, key=bob
        )
        assert unchanged == 0
        assert await read_all(log, _TOPIC) == expected


async def test_rewrite_is_durable_and_leaves_no_erased_bytes_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    secret = b"alice-home-address-"
    async with opened(path) as log:
        for i in range(200):
            await log.append(
                [Record(_TOPIC, b"alice", secret + b"%03d" % i), Record(_TOPIC, b"bob", b"b%d" % i)]
            )
        assert await log.rewrite(_TOPIC, delete_all, key=b"alice") == 200
        survivors = await read_all(log, _TOPIC)

    async with opened(path) as log:
        assert await read_all(log, _TOPIC) == survivors
        assert [d.key for d in survivors] == [b"bob"] * 200
        assert await log.rewrite(_TOPIC, keep_all, key=b"alice") == 0
    # Closed: the WAL is checkpointed away and secure_delete zeroed the freed cells.
    assert secret not in path.read_bytes()


async def test_deleting_a_partitions_tail_never_reuses_its_offsets(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    (key,) = keys_on(0, 1, "tail")
    tp = TopicPartition(_TOPIC, 0)
    async with opened(path) as log:
        await log.append([Record(_TOPIC, key, b"%d" % i) for i in range(3)])
        # Every record of the partition goes, so no row is left to say where it ended.
        assert await log.rewrite(_TOPIC, delete_all, key=key) == 3
        assert (await log.end_offsets(_TOPIC))[tp] == 3
        await log.append([Record(_TOPIC, key, b"after")])
        assert [(d.offset, d.value) for d in await read_all(log, _TOPIC)] == [(3, b"after")]

        assert await log.rewrite(_TOPIC, delete_all, key=key) == 1
        assert (await log.end_offsets(_TOPIC))[tp] == 4

    async with opened(path) as log:
        assert (await log.end_offsets(_TOPIC))[tp] == 4
        assert await read_all(log, _TOPIC) == []
        await log.append([Record(_TOPIC, key, b"after-reopen")])
        assert [(d.offset, d.value) for d in await read_all(log, _TOPIC)] == [(4, b"after-reopen")]
        assert (await log.end_offsets(_TOPIC))[tp] == 5

    # Deleting the tail behind surviving records does not move the end back either.
    async with opened(path) as log:
        await log.append([Record(_TOPIC, key, b"x"), Record(_TOPIC, key, b"y")])  # offsets 5, 6

        def drop_tail(records: Sequence[Delivered]) -> Rewrite:
            return {(records[-1].partition, records[-1].offset): None}

        assert await log.rewrite(_TOPIC, drop_tail, key=key) == 1
    async with opened(path) as log:
        assert (await log.end_offsets(_TOPIC))[tp] == 7
        await log.append([Record(_TOPIC, key, b"z")])
        assert [d.offset for d in await read_all(log, _TOPIC)] == [4, 5, 7]


async def test_group_resumes_at_the_next_record_after_deleted_offsets(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    erased, kept = keys_on(0, 2, "resume")
    tp = TopicPartition(_TOPIC, 0)
    async with opened(path) as log:
        # Offsets 0..9 of partition 0 alternate erased (even) and kept (odd).
        for i in range(5):
            await log.append([Record(_TOPIC, erased, b"e%d" % i), Record(_TOPIC, kept, b"k%d" % i)])
        reader = log.reader([_TOPIC], "projector")
        await reader.start()
        first = await reader.fetch(max_records=4, timeout_s=1.0)
        assert [d.offset for d in first] == [0, 1, 2, 3]
        await reader.commit({tp: 4})  # the next record to read is about to be deleted
        await reader.close()
        done = log.reader([_TOPIC], "caught-up")
        await done.start()
        assert len(await done.fetch(max_records=100, timeout_s=1.0)) == 10
        await done.commit({tp: 10})
        await done.close()

        assert await log.rewrite(_TOPIC, delete_all, key=erased) == 5

    async with opened(path) as log:
        rest = await read_all(log, _TOPIC, group="projector")
        assert [(d.offset, d.value) for d in rest] == [(5, b"k2"), (7, b"k3"), (9, b"k4")]
        await log.append([Record(_TOPIC, kept, b"k5")])
        assert [(d.offset, d.value) for d in await read_all(log, _TOPIC, group="caught-up")] == [
            (10, b"k5")
        ]


async def test_refused_key_cannot_be_appended_again(tmp_path: Path) -> None:
    other_topic = "accounts"
    async with opened(tmp_path / "log.sqlite") as log:
        await log.append([Record(_TOPIC, b"alice", b"a0"), Record(_TOPIC, b"bob", b"b0")])

        assert await log.rewrite(_TOPIC, delete_all, key=b"alice", refuse=b"alice") == 1
        ends = await log.end_offsets(_TOPIC)

        with pytest.raises(RecordRefused):
            await log.append([Record(_TOPIC, b"alice", b"a1")])
        # A batch holding one refused record is refused whole: bob's record is not stored either.
        with pytest.raises(RecordRefused):
            await log.append([Record(_TOPIC, b"bob", b"b-lost"), Record(_TOPIC, b"alice", b"a2")])
        assert await log.end_offsets(_TOPIC) == ends

        # The refusal is of this topic and key only.
        await log.append([Record(other_topic, b"alice", b"account-row")])
        await log.append([Record(_TOPIC, b"bob", b"b1")])
        assert [(d.key, d.value) for d in await read_all(log, _TOPIC)] == [
            (b"bob", b"b0"),
            (b"bob", b"b1"),
        ]
        assert [d.value for d in await read_all(log, other_topic)] == [b"account-row"]


async def test_refusal_is_ordered_with_appends_in_the_writer(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.sqlite") as log:
        await log.append([Record(_TOPIC, b"alice", b"a0")])
        handed: list[bytes] = []

        def erase(records: Sequence[Delivered]) -> Rewrite:
            handed.extend(record.value for record in records)
            return delete_all(records)

        # gather starts the calls in order, and each queues its op before its first await: the
        # append before the rewrite reaches its plan, the one after it is refused.
        before, changed, after, bob = await asyncio.gather(
            log.append([Record(_TOPIC, b"alice", b"a-before")]),
            log.rewrite(_TOPIC, erase, key=b"alice", refuse=b"alice"),
            log.append([Record(_TOPIC, b"alice", b"a-after")]),
            log.append([Record(_TOPIC, b"bob", b"b-after")]),
            return_exceptions=True,
        )
        assert before is None
        assert changed == 2
        assert handed == [b"a0", b"a-before"]
        assert isinstance(after, RecordRefused)
        assert bob is None, "the refused append fails alone, not its whole group"
        assert [(d.key, d.value) for d in await read_all(log, _TOPIC)] == [(b"bob", b"b-after")]


async def test_a_failing_plan_changes_and_refuses_nothing(tmp_path: Path) -> None:
    async with opened(tmp_path / "log.sqlite") as log:
        await log.append([Record(_TOPIC, b"alice", b"a0"), Record(_TOPIC, b"bob", b"b0")])
        before = await read_all(log, _TOPIC)
        bobs = [d for d in before if d.key == b"bob"]

        def boom(records: Sequence[Delivered]) -> Rewrite:
            raise RuntimeError("plan failed")

        def names_bobs_record(records: Sequence[Delivered]) -> Rewrite:
            return {**delete_all(records), (bobs[0].partition, bobs[0].offset): None}

        rewrite_failed, neighbour = await asyncio.gather(
            log.rewrite(_TOPIC, boom, key=b"alice", refuse=b"alice"),
            log.append([Record(_TOPIC, b"bob", b"b1")]),
            return_exceptions=True,
        )
        assert isinstance(rewrite_failed, RuntimeError)
        assert neighbour is None, "the failed rewrite fails alone, not its whole group"
        with pytest.raises(ValueError, match="not a record handed to it"):
            await log.rewrite(_TOPIC, names_bobs_record, key=b"alice", refuse=b"alice")

        after = await read_all(log, _TOPIC)
        assert [d for d in after if d.value != b"b1"] == before
        await log.append([Record(_TOPIC, b"alice", b"a1")])  # not refused: no rewrite succeeded


async def test_appends_of_other_keys_during_a_rewrite_all_land(tmp_path: Path) -> None:
    writers, calls = 8, 25
    async with opened(tmp_path / "log.sqlite") as log:
        await log.append([Record(_TOPIC, b"alice", b"a%d" % i) for i in range(50)])
        started, release = threading.Event(), threading.Event()

        def slow_erase(records: Sequence[Delivered]) -> Rewrite:
            started.set()
            # Hold the writer mid-transaction while the appends below queue up behind it.
            assert release.wait(timeout=10)
            return delete_all(records)

        async def writer(w: int) -> None:
            for call in range(calls):
                await log.append([Record(_TOPIC, f"w{w}".encode(), f"{w}:{call}".encode())])

        rewrite = asyncio.create_task(log.rewrite(_TOPIC, slow_erase, key=b"alice"))
        assert await asyncio.to_thread(started.wait, 10)
        appends = [asyncio.create_task(writer(w)) for w in range(writers)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in appends), "appends waited for the rewrite"
        release.set()
        assert await rewrite == 50
        await asyncio.gather(*appends)

        delivered = await read_all(log, _TOPIC)
        assert sorted(d.value for d in delivered) == sorted(
            f"{w}:{call}".encode() for w in range(writers) for call in range(calls)
        )
        assert all(d.key != b"alice" for d in delivered)
        ends = await log.end_offsets(_TOPIC)
        assert sum(ends.values()) == 50 + writers * calls  # the deleted offsets stay used


async def test_a_file_from_before_erasure_gets_the_index_and_table_at_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "log.sqlite"
    async with opened(path) as log:
        await log.append([Record(_TOPIC, b"alice", b"a0"), Record(_TOPIC, b"bob", b"b0")])
    with closing(sqlite3.connect(path)) as conn:  # back to the layout before erasure existed
        conn.execute("DROP INDEX records_by_key")
        conn.execute("DROP TABLE partition_ends")
        conn.commit()

    async with opened(path) as log:
        assert await log.rewrite(_TOPIC, delete_all, key=b"alice") == 1
        assert [d.key for d in await read_all(log, _TOPIC)] == [b"bob"]
    with closing(sqlite3.connect(path)) as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert {"records_by_key", "partition_ends"} <= names


async def test_a_reader_reaches_the_end_past_an_erased_tail(tmp_path: Path) -> None:
    """ "Read up to the end offsets" (replay, the accounts barrier) must terminate even when the
    last records of a partition were erased: the reader's position moves to the end."""
    (key,) = keys_on(0, 1, "tail")
    (other,) = keys_on(0, 1, "kept")
    tp = TopicPartition(_TOPIC, 0)
    async with opened(tmp_path / "log.sqlite") as log:
        await log.append([Record(_TOPIC, other, b"kept")])
        reader = log.reader([_TOPIC], "behind")
        await reader.start()
        try:
            assert [d.value for d in await reader.fetch(10, 0.1)] == [b"kept"]
            await log.append([Record(_TOPIC, key, b"%d" % i) for i in range(3)])
            assert await log.rewrite(_TOPIC, delete_all, key=key) == 3
            end = (await log.end_offsets(_TOPIC))[tp]
            assert end == 4
            assert (await reader.positions())[tp] == 1

            assert await reader.fetch(10, 0.1) == []

            assert (await reader.positions())[tp] == end
            # A record appended afterwards is read, not skipped.
            await log.append([Record(_TOPIC, other, b"later")])
            assert [(d.offset, d.value) for d in await reader.fetch(10, 0.1)] == [(4, b"later")]
        finally:
            await reader.close()


async def test_erased_bytes_leave_the_wal_while_the_log_stays_open(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    secret = b"alice-private-entity-"
    async with opened(path) as log:
        await log.append([Record(_TOPIC, b"alice", secret + b"%03d" % i) for i in range(50)])
        assert await log.rewrite(_TOPIC, delete_all, key=b"alice") == 50
        wal = path.with_name(path.name + "-wal")
        on_disk = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert secret not in on_disk


async def test_a_rewrite_of_the_whole_topic_can_refuse_one_key(tmp_path: Path) -> None:
    """The refusal is a key of its own: a plan over every record (the accounts erasure, which
    also removes other users' records naming the user) closes the key in the same transaction."""
    async with opened(tmp_path / "log.sqlite") as log:
        await log.append([Record(_TOPIC, b"alice", b"a0"), Record(_TOPIC, b"bob", b"names alice")])

        def plan(records: Sequence[Delivered]) -> Rewrite:
            assert {d.key for d in records} == {b"alice", b"bob"}
            return {(d.partition, d.offset): None for d in records if b"alice" in d.key + d.value}

        assert await log.rewrite(_TOPIC, plan, refuse=b"alice") == 2

        with pytest.raises(RecordRefused):
            await log.append([Record(_TOPIC, b"alice", b"a1")])
        await log.append([Record(_TOPIC, b"bob", b"b1")])
        assert [d.value for d in await read_all(log, _TOPIC)] == [b"b1"]
