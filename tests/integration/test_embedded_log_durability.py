"""The embedded log keeps every acknowledged append across ``kill -9`` of the writing process."""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from eventlog.embedded import SqliteEventLog
from eventlog.port import Delivered, LogUnavailable, Record, TopicPartition

_REPO = Path(__file__).resolve().parents[2]
_TOPIC = "durability"
_WRITERS = 8

# The child appends from 8 concurrent tasks (so group commits hold several callers) in calls of
# 1 to 3 records, and prints one line per acknowledged call: "<writer> <call> <records>".
_CHILD = """
import asyncio, hashlib, sys
from pathlib import Path
from eventlog.embedded import SqliteEventLog
from eventlog.port import Record

def value(writer, call, index):
    name = f"{writer}:{call}:{index}"
    return (name + ":" + hashlib.sha256(name.encode()).hexdigest() * 8).encode()

async def writer(log, w):
    call = 0
    while True:
        size = 1 + call % 3
        records = [Record("durability", f"w{w}".encode(), value(w, call, i)) for i in range(size)]
        await log.append(records)
        sys.stdout.write(f"{w} {call} {size}\\n")
        sys.stdout.flush()
        call += 1

async def main():
    log = SqliteEventLog(Path(sys.argv[1]), default_partitions=4)
    await log.start()
    await asyncio.gather(*(writer(log, w) for w in range(int(sys.argv[2]))))

asyncio.run(main())
"""


def expected_value(writer: int, call: int, index: int) -> bytes:
    name = f"{writer}:{call}:{index}"
    return (name + ":" + hashlib.sha256(name.encode()).hexdigest() * 8).encode()


def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
    assert hasattr(stream, "readline")
    for line in iter(stream.readline, b""):
        lines.put(line.decode())
    lines.put(None)


def run_child_and_kill(path: Path, kill_after_acks: int) -> list[tuple[int, int, int]]:
    """Run the appending child, SIGKILL it after ``kill_after_acks`` acks; every ack it printed."""
    env = {**os.environ, "PYTHONPATH": str(_REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(_WRITERS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=_REPO,
        env=env,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(child.stdout, lines), daemon=True)
    pump.start()
    acks: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 60
    try:
        while len(acks) < kill_after_acks:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                stderr = child.stderr.read().decode() if child.stderr else ""
                raise AssertionError(f"child exited early:\n{stderr}")
            acks.append(_parse(line))
        # Mid-stream: the writers are still appending when the process dies.
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    pump.join(timeout=10)
    # Lines already in the pipe were printed after their append returned: they count too. A
    # line cut by the kill has no newline and is not an acknowledgement.
    while (line := lines.get()) is not None:
        if line.endswith("\n"):
            acks.append(_parse(line))
    if child.stderr:
        child.stderr.close()
    if child.stdout:
        child.stdout.close()
    return acks


def _parse(line: str) -> tuple[int, int, int]:
    writer, call, size = (int(part) for part in line.split())
    return writer, call, size


async def read_everything(path: Path) -> list[Delivered]:
    log = SqliteEventLog(path, default_partitions=4)
    await log.start()
    try:
        total = sum((await log.end_offsets(_TOPIC)).values())
        reader = log.reader([_TOPIC], "verify")
        await reader.start()
        delivered: list[Delivered] = []
        while len(delivered) < total:
            batch = await reader.fetch(max_records=5000, timeout_s=1.0)
            assert batch, f"end offsets say {total} records but only {len(delivered)} were read"
            delivered.extend(batch)
        await reader.close()
        return delivered
    finally:
        await log.close()


async def test_embedded_log_keeps_acknowledged_appends_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "eventlog.sqlite"
    acks = run_child_and_kill(path, kill_after_acks=400)
    assert len(acks) >= 400

    delivered = await read_everything(path)
    stored = {d.value: d for d in delivered}
    assert len(stored) == len(delivered), "a record was stored twice"

    for writer, call, size in acks:
        for index in range(size):
            record = stored.get(expected_value(writer, call, index))
            assert record is not None, f"acknowledged record {writer}:{call}:{index} is missing"
            assert record.key == f"w{writer}".encode()

    # Every stored record is intact, each call is all-or-nothing, and a writer's calls form a
    # gap-free prefix in append order (unacknowledged tail calls may or may not be there).
    per_writer: dict[int, list[tuple[int, int]]] = {}
    for d in sorted(delivered, key=lambda d: (d.partition, d.offset)):
        writer_s, call_s, index_s, _digest = d.value.decode().split(":")
        writer, call, index = int(writer_s), int(call_s), int(index_s)
        assert d.value == expected_value(writer, call, index), "corrupted record"
        per_writer.setdefault(writer, []).append((call, index))
    for writer, seen in per_writer.items():
        expected: list[tuple[int, int]] = []
        for call in range(seen[-1][0] + 1):
            expected.extend((call, index) for index in range(1 + call % 3))
        assert seen == expected, f"writer {writer}: a call is partial or out of order"


async def test_embedded_log_appends_after_reopen_continue_offsets(tmp_path: Path) -> None:
    path = tmp_path / "eventlog.sqlite"
    run_child_and_kill(path, kill_after_acks=50)

    log = SqliteEventLog(path, default_partitions=4)
    await log.start()
    try:
        before = await log.end_offsets(_TOPIC)
        await log.append([Record(_TOPIC, f"w{w}".encode(), b"after-restart") for w in range(8)])
        after = await log.end_offsets(_TOPIC)
    finally:
        await log.close()
    assert sum(after.values()) == sum(before.values()) + 8
    assert all(after[tp] >= before[tp] for tp in before)
    assert set(after) == {TopicPartition(_TOPIC, p) for p in range(4)}


async def test_embedded_log_refuses_a_second_writer_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "eventlog.sqlite"
    first = SqliteEventLog(path)
    await first.start()
    try:
        with pytest.raises(LogUnavailable, match="another writer"):
            await SqliteEventLog(path).start()
    finally:
        await first.close()
    # Closing (or dying) releases the file for the next writer.
    second = SqliteEventLog(path)
    await second.start()
    await second.close()
