"""Distributed figure 3: ``codetrackr replay`` vs inserting the same heartbeats straight away.

First the log gets ``IMPORT_AT_SCALE_1`` more heartbeats (``POST /api/v1/import`` to ingest,
waited for until the workers have projected them, so the workers are idle during the timing),
on top of whatever the other figures appended. Then:

* replay: ``codetrackr replay`` as an operator runs it (a child process, the services' settings,
  ``CODETRACKR_CLICKHOUSE_DATABASE`` set to a database that does not exist yet, so the
  projections start empty), timed from the command's start to its exit, over every heartbeat in
  the log. Its result is checked against the live projection (same heartbeat rows, same total
  seconds in ``daily_stats``).
* baseline: the same heartbeats read from the log (same fetch size and 16 MiB chunks as the
  replay's runner) and inserted with ``ClickHouseProjectionStore.insert_heartbeats`` into another
  fresh database on the same ClickHouse HTTP endpoint; only the insert calls are timed.

The ratio is what the projection costs on top of storing the archive: re-reading and refolding
every touched day, writing the day rows, the log reads, and the command's start-up.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import resource
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import clickhouse_connect
from tqdm import tqdm

from bench.clients import BenchError
from bench.deploy import Meter, Usage, User
from bench.report import Row, percentile
from bench.stats_load import CHUNK, MAX_PER_DAY, load_imports
from bench.topology import DistributedDeployment
from eventlog.kafka import KafkaEventLog
from processors.decoding import decode_heartbeat_events
from processors.replay import replay
from processors.runner import ProjectionRunner, split_by_size
from projections.clickhouse import ClickHouseProjectionStore
from schemas.events import HEARTBEATS_TOPIC, HeartbeatsReceived
from tests.e2e.harness import CODETRACKR, ROOT

IMPORT_AT_SCALE_1 = 200_000
REPLAY_CAP_S = 900.0
READ_CAP_S = 600.0
# What the replay's runner uses (processors.replay, processors.runner): same fetches, same chunks.
FETCH_RECORDS: int = inspect.signature(replay).parameters["batch_size"].default
CHUNK_BYTES: int = inspect.signature(ProjectionRunner).parameters["max_batch_bytes"].default
FETCH_WAIT_S = 0.2
_PROGRESS = re.compile(rb"(\d+)/(\d+) \[")


@dataclass
class ReplayRun:
    wall_s: float
    first_batch_s: float | None
    records: int  # as the command counts them (all the topics it reads)
    joins: int  # consumer group joins its log shows (1 unless a rebalance interrupted it)
    cpu_s: float
    usage: Usage


@dataclass
class InsertRun:
    heartbeats: int = 0
    records: int = 0
    insert_s: float = 0.0
    inserts: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    usage: Usage | None = None


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def _run_replay(system: DistributedDeployment, database: str, cap_s: float) -> ReplayRun:
    """``codetrackr replay`` into ``database``; killed if it runs past ``cap_s`` or on errors."""
    args = ["replay", "--data-dir", str(system.work_dir / "replay")]
    first_batch_s: float | None = None
    log_path = system.work_dir / f"replay-{database}.log"
    cpu_before = _children_cpu_s()
    meter = Meter(system)
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        CODETRACKR,
        *args,
        cwd=ROOT,
        env={**os.environ, **system.env(database)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def watch_progress() -> None:
        # The progress bar, as it is drawn: when was the first batch projected?
        nonlocal first_batch_s
        assert process.stderr is not None
        with log_path.open("wb") as log:
            while chunk := await process.stderr.read(65536):
                log.write(chunk)
                if first_batch_s is None and any(
                    int(done) > 0 for done, _ in _PROGRESS.findall(chunk)
                ):
                    first_batch_s = time.perf_counter() - began

    try:
        assert process.stdout is not None
        async with asyncio.timeout(cap_s):
            out, _, code = await asyncio.gather(
                process.stdout.read(), watch_progress(), process.wait()
            )
    except TimeoutError:
        raise BenchError(f"codetrackr replay did not finish in {cap_s:.0f} s") from None
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
    wall = time.perf_counter() - began
    cpu = _children_cpu_s() - cpu_before
    usage = meter.stop(extra={"codetrackr replay": cpu})
    text = out.decode(errors="replace")
    log = log_path.read_text(errors="replace")
    tail = log[-4000:]
    if code != 0:
        raise BenchError(f"codetrackr replay exited {code}:\n{text}\n{tail}")
    match = re.search(r"replayed (\d+) records", text)
    if match is None:
        raise BenchError(f"codetrackr replay printed {text!r}")
    joins = log.count("Joined group")
    return ReplayRun(wall, first_batch_s, int(match.group(1)), joins, cpu, usage)


async def _insert_from_log(system: DistributedDeployment, database: str) -> InsertRun:
    """Read every heartbeat record back and insert the heartbeats in replay-sized chunks."""
    run = InsertRun()
    store = ClickHouseProjectionStore(system.clickhouse_url, database=database)
    executor = ThreadPoolExecutor(1, thread_name_prefix="raw-insert")  # one client, like replay
    log = KafkaEventLog(system.bootstrap, client_id="bench-raw-insert")
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(executor, store.migrate)
        await log.start()
        ends = await log.end_offsets(HEARTBEATS_TOPIC)
        reader = log.reader([HEARTBEATS_TOPIC], group=f"bench-raw-insert-{uuid.uuid4().hex}")
        await reader.start()
        try:
            await reader.seek_to_beginning()
            deadline = time.monotonic() + READ_CAP_S
            meter = Meter(system)
            while True:
                records = await reader.fetch(FETCH_RECORDS, FETCH_WAIT_S)
                if not records:
                    positions = await reader.positions()
                    if all(positions.get(tp, 0) >= end for tp, end in ends.items()):
                        break
                    if time.monotonic() > deadline:
                        raise BenchError(f"log not read back within {READ_CAP_S:.0f} s")
                    continue
                for chunk in split_by_size(records, CHUNK_BYTES):
                    events, _ = decode_heartbeat_events(chunk)
                    heartbeats = [
                        hb
                        for event in events
                        if isinstance(event, HeartbeatsReceived)
                        for hb in event.heartbeats
                    ]
                    run.records += len(chunk)
                    if not heartbeats:
                        continue
                    began = time.perf_counter()
                    await loop.run_in_executor(executor, store.insert_heartbeats, heartbeats)
                    run.inserts.append(time.perf_counter() - began)
                    run.sizes.append(len(heartbeats))
                    run.heartbeats += len(heartbeats)
            run.usage = meter.stop()
        finally:
            await reader.close()
    finally:
        await log.close()
        await loop.run_in_executor(executor, store.close)
        executor.shutdown(wait=True)
    run.insert_s = sum(run.inserts)
    return run


def _tables(url: str, database: str) -> tuple[int, int, float]:
    """Heartbeat rows, day rows and their total seconds in ``database`` (deduplicated)."""
    client = clickhouse_connect.get_client(dsn=url, autogenerate_session_id=False)
    try:
        heartbeats = client.query(f"SELECT count() FROM `{database}`.heartbeats FINAL")
        days = client.query(
            f"SELECT count(), sum(total_seconds) FROM `{database}`.daily_stats FINAL"
        )
    finally:
        client.close()
    day_rows, seconds = days.result_rows[0]
    return int(heartbeats.result_rows[0][0]), int(day_rows), float(seconds or 0.0)


async def figure_replay(system: DistributedDeployment, user: User, scale: float) -> list[Row]:
    mode = system.mode
    count = max(CHUNK, round(IMPORT_AT_SCALE_1 * scale))
    days = max(30, -(-count // MAX_PER_DAY))
    cap = REPLAY_CAP_S * max(1.0, scale)
    accepted_s, projected_s, import_usage = await load_imports(system, user, count, days, cap)
    live = await asyncio.to_thread(_tables, system.clickhouse_url, "codetrackr")

    suffix = uuid.uuid4().hex[:8]
    replay_db, raw_db = f"bench_replay_{suffix}", f"bench_raw_{suffix}"
    tqdm.write(f"{mode}: codetrackr replay into {replay_db} ...", file=sys.stderr)
    replayed = await _run_replay(system, replay_db, cap)
    rebuilt = await asyncio.to_thread(_tables, system.clickhouse_url, replay_db)
    tqdm.write(f"{mode}: raw insert_heartbeats into {raw_db} ...", file=sys.stderr)
    raw = await _insert_from_log(system, raw_db)
    inserted = await asyncio.to_thread(_tables, system.clickhouse_url, raw_db)

    if rebuilt != live:
        raise BenchError(
            f"replay differs from the live projection: (heartbeats, day rows, seconds) "
            f"{rebuilt} vs {live}"
        )
    if inserted[0] != live[0]:
        raise BenchError(f"raw insert: {inserted[0]} heartbeat rows, replay: {live[0]}")
    n = raw.heartbeats
    sizes = [float(size) for size in raw.sizes]
    assert raw.usage is not None
    first = (
        f"first batch projected after {replayed.first_batch_s:.1f} s (start-up, migrations, "
        "group join, first fetch)"
        if replayed.first_batch_s is not None
        else "first batch time not seen"
    )
    notes = [
        f"log: {n:,} heartbeats in {raw.records:,} records ({count:,} from this figure's "
        f"import, the rest from figures 1-2); broker {system.broker_label}",
        f"replay: {replayed.wall_s:.1f} s from start to exit, {first}; "
        f"{replayed.joins} consumer group join(s); rebuilt tables equal the live ones "
        f"({live[0]:,} heartbeat rows, {live[1]:,} day rows, {live[2]:,.0f} s)",
        f"replay {replayed.usage.note()}",
        f"raw: {len(raw.inserts)} inserts of p50 {percentile(sizes, 50):,.0f} heartbeats, "
        f"insert p50 {percentile(raw.inserts, 50) * 1000:.0f} ms, p99 "
        f"{percentile(raw.inserts, 99) * 1000:.0f} ms; the log read and decoding between them "
        "are not timed",
        f"raw phase {raw.usage.note()}",
        f"before: the import of {count:,} heartbeats (ingest, {CHUNK:,} per request, 2 in "
        f"flight) was accepted at {count / accepted_s:,.0f} hb/s and projected by the "
        f"workers at {count / projected_s:,.0f} hb/s; {import_usage.note()}",
    ]
    return [
        Row(
            mode=mode,
            figure=f"3 codetrackr replay of {n:,} hb into empty projections",
            unit="hb/s",
            value=n / replayed.wall_s,
            baseline=n / raw.insert_s if raw.insert_s > 0 else None,
            baseline_label="raw store.insert_heartbeats, same heartbeats and endpoint",
            notes=notes,
        )
    ]
