from __future__ import annotations

from eventlog.port import Delivered
from processors.runner import next_offsets, split_by_size


def record(offset: int, size: int, partition: int = 0) -> Delivered:
    return Delivered("t", partition, offset, b"k", b"x" * size, 0)


def test_split_by_size_keeps_order_and_bounds_each_chunk() -> None:
    records = [record(i, 40) for i in range(10)]
    chunks = split_by_size(records, 100)
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 2]
    assert [r for c in chunks for r in c] == records
    assert all(sum(len(r.value) for r in c) <= 100 for c in chunks)


def test_split_by_size_puts_an_oversized_record_alone_and_handles_empty() -> None:
    records = [record(0, 10), record(1, 500), record(2, 10)]
    assert [len(c) for c in split_by_size(records, 100)] == [1, 1, 1]
    assert split_by_size([], 100) == []


def test_next_offsets_are_one_past_the_last_record_per_partition() -> None:
    records = [record(4, 1, 0), record(7, 1, 1), record(5, 1, 0)]
    offsets = {tp.partition: offset for tp, offset in next_offsets(records).items()}
    assert offsets == {0: 6, 1: 8}
