"""Figure 1: bulk ingest over HTTP vs the raw append rate of the same event log adapter.

HTTP: N clients (one keep-alive connection and one account each, like N developers' editors)
send WakaTime ``heartbeats.bulk`` requests back to back; the figure is heartbeats accepted (2xx)
per second of wall time. Raw: N asyncio tasks append, one at a time each, records of the same
encoded shape and size (``HeartbeatsReceived`` built by the server's own normalization, keyed by
the same user ids) straight to a fresh instance of the adapter class the server uses: at least as
many records as the HTTP phase sent, and for at least ``RAW_MIN_S`` (it is ~20x faster).

Each phase starts with the projector idle and ends when it has caught up (``Sentinels``), so the
phases do not measure each other's backlog; the drain also gives the end-to-end rate.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from bench.clients import BenchError, Sentinels, client, ok
from bench.deploy import Meter, System, Usage, User
from bench.payloads import (
    WAKATIME_USER_AGENT,
    canonical_record,
    dumps,
    utc_day_start,
    wakatime_items,
)
from bench.report import Row, percentile
from eventlog.port import Record

BULK_PATH = "/api/v1/users/current/heartbeats.bulk"
# Requests per batch size at scale 1.0 (all clients together).
REQUESTS_AT_SCALE_1 = {25: 2000, 500: 200}
PHASE_CAP_S = 180.0
# The raw phase is ~20x faster than HTTP: it runs at least this long (x scale, if < 1), so
# its rate is not a fraction of a second's worth of appends.
RAW_MIN_S = 5.0
STEP_S = 120.0
DRAIN_CAP_S = 600.0


@dataclass
class Run:
    heartbeats: int = 0
    requests: int = 0
    failures: int = 0
    elapsed_s: float = 0.0
    capped: bool = False
    latencies: list[float] = field(default_factory=list)
    usage: Usage | None = None

    @property
    def rate(self) -> float:
        return self.heartbeats / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Cursor:
    """Hands out each user's heartbeat times (see :func:`wakatime_items`), never twice.

    ``per_user`` heartbeats end before the sentinels' day (``Sentinels``, 20 days ago).
    """

    def __init__(self, per_user: int) -> None:
        self._next: dict[str, float] = {}
        self._first = utc_day_start(21 + math.ceil(per_user * STEP_S / 86400))

    def take(self, user: User, count: int) -> float:
        start = self._next.get(user.user_id, self._first)
        self._next[user.user_id] = start + count * STEP_S
        return start


def _bodies(
    users: Sequence[User], cursor: _Cursor, batch: int, per_client: int
) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    for seed, user in enumerate(users):
        bodies = []
        for _ in range(per_client):
            bodies.append(
                dumps(wakatime_items(cursor.take(user, batch), batch, seed, step_s=STEP_S))
            )
        out.append(bodies)
    return out


def _headers(user: User) -> dict[str, str]:
    return {**user.basic, "Content-Type": "application/json", "User-Agent": WAKATIME_USER_AGENT}


async def _http_phase(
    deployment: System,
    users: Sequence[User],
    bodies: list[list[bytes]],
    batch: int,
    progress: tqdm,  # type: ignore[type-arg]
) -> Run:
    run = Run()
    clients = [client(deployment.ingest_url, _headers(user)) for user in users]
    start = asyncio.Event()
    deadline = 0.0

    async def one(index: int) -> None:
        http = clients[index]
        await start.wait()
        checked = False
        for body in bodies[index]:
            if time.monotonic() > deadline:
                run.capped = True
                return
            sent = time.perf_counter()
            response = await http.post(BULK_PATH, content=body)
            run.latencies.append(time.perf_counter() - sent)
            run.requests += 1
            if not 200 <= response.status_code < 300:
                run.failures += 1
                continue
            if not checked:  # once per client: every item must have been accepted
                statuses = [status for _, status in response.json()["responses"]]
                if statuses != [201] * batch:
                    raise BenchError(f"bulk items not all accepted: {statuses[:10]}...")
                checked = True
            run.heartbeats += batch
            progress.update(batch)

    try:
        tasks = [asyncio.create_task(one(i)) for i in range(len(users))]
        meter = Meter(deployment)
        began = time.perf_counter()
        deadline = time.monotonic() + PHASE_CAP_S
        start.set()
        await asyncio.gather(*tasks)
        run.elapsed_s = time.perf_counter() - began
        run.usage = meter.stop()
    finally:
        await asyncio.gather(*(http.aclose() for http in clients))
    return run


async def _raw_phase(
    deployment: System,
    users: Sequence[User],
    values: Sequence[bytes],
    appends_per_client: int,
    batch: int,
    min_s: float,
) -> Run:
    run = Run()
    log, topic = deployment.raw_log()
    await log.start()
    try:
        await log.ensure_topics({topic: deployment.heartbeat_partitions})
        records = [
            Record(topic, user.user_id.encode(), value)
            for user, value in zip(users, values, strict=True)
        ]
        # Warm-up: connections, topic metadata, the first file pages.
        await asyncio.gather(*(log.append([record]) for record in records))
        deadline = time.monotonic() + PHASE_CAP_S
        long_enough = time.monotonic() + min_s

        async def one(record: Record) -> None:
            done = 0
            while done < appends_per_client or time.monotonic() < long_enough:
                if time.monotonic() > deadline:
                    run.capped = True
                    return
                done += 1
                sent = time.perf_counter()
                await log.append([record])
                run.latencies.append(time.perf_counter() - sent)
                run.requests += 1
                run.heartbeats += batch

        meter = Meter(deployment)
        began = time.perf_counter()
        await asyncio.gather(*(one(record) for record in records))
        run.elapsed_s = time.perf_counter() - began
        run.usage = meter.stop()
    finally:
        await log.close()
    return run


async def figure_ingest(
    deployment: System, users: Sequence[User], sentinels: Sentinels, scale: float
) -> list[Row]:
    mode = deployment.mode
    per_client = {
        batch: max(2, round(at_scale_1 * scale / len(users)))
        for batch, at_scale_1 in REQUESTS_AT_SCALE_1.items()
    }
    cursor = _Cursor(sum((n + 1) * batch for batch, n in per_client.items()))
    rows: list[Row] = []
    adapter = deployment.append_label
    for batch in REQUESTS_AT_SCALE_1:
        # Warm-up (server code paths, per-user state, first topic/file pages), then an idle
        # projector before timing.
        warm = _bodies(users, cursor, batch, 1)
        async with asyncio.TaskGroup() as group:
            for user, body in zip(users, warm, strict=True):
                group.create_task(_post_once(deployment.ingest_url, user, body[0]))
        await sentinels.drain(users, DRAIN_CAP_S)

        bodies = _bodies(users, cursor, batch, per_client[batch])
        total = len(users) * per_client[batch] * batch
        with tqdm(
            total=total, desc=f"{mode}: HTTP bulk b={batch}", unit="hb", mininterval=1
        ) as bar:
            http = await _http_phase(deployment, users, bodies, batch, bar)
        if http.failures:
            raise BenchError(f"{http.failures} of {http.requests} bulk requests failed")
        # Everything sent is projected when the sentinels are: the projector's own rate.
        drain_began = time.perf_counter()
        drained_at = await sentinels.drain(users, DRAIN_CAP_S)
        end_to_end = http.heartbeats / (drained_at - drain_began + http.elapsed_s)

        values = [
            canonical_record(user.user_id, wakatime_items(utc_day_start(10), batch, seed))
            for seed, user in enumerate(users)
        ]
        print(f"{mode}: raw append b={batch} ({adapter})...", flush=True, file=sys.stderr)
        raw = await _raw_phase(
            deployment, users, values, per_client[batch], batch, RAW_MIN_S * min(1.0, scale)
        )

        notes = [
            f"{http.requests} requests of {batch} heartbeats from {len(users)} clients in "
            f"{http.elapsed_s:.1f} s; request p50 {percentile(http.latencies, 50) * 1000:.0f} ms,"
            f" p99 {percentile(http.latencies, 99) * 1000:.0f} ms"
            + (" (time cap hit)" if http.capped else ""),
            f"HTTP phase {http.usage.note() if http.usage else ''}",
            f"raw: {raw.requests} appends of one {len(values[0]) / 1024:.0f} KiB record "
            f"({len(values[0]) / batch:.0f} B per heartbeat), append p50 "
            f"{percentile(raw.latencies, 50) * 1000:.1f} ms, p99 "
            f"{percentile(raw.latencies, 99) * 1000:.1f} ms",
            f"raw phase {raw.usage.note() if raw.usage else ''}",
            f"accepted AND projected (sentinels visible): {end_to_end:,.0f} hb/s end to end",
        ]
        rows.append(
            Row(
                mode=mode,
                figure=f"1 HTTP bulk ingest, batch {batch}, {len(users)} clients",
                unit="hb/s",
                value=http.rate,
                baseline=raw.rate,
                baseline_label=f"raw {adapter}, same records",
                notes=notes,
            )
        )
    return rows


async def _post_once(base_url: str, user: User, body: bytes) -> None:
    async with client(base_url, _headers(user)) as http:
        ok(await http.post(BULK_PATH, content=body))
