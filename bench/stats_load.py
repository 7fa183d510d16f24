"""Figure 3: stats latency for a user with 1M heartbeats vs a user with 100, and the load rate.

The big user's heartbeats arrive the fastest way a user can send them: ``POST /api/v1/import``
in chunks of 10,000, two uploads in flight, oldest first, over the ~300 UTC days before today
(each lasts 10 s and the next starts where it ends, so the expected total is exact). The load
rate runs from the first upload to the moment ``/stats/summary?range=all`` shows every second of
it, cross-checked against ``/stats/daily?range=all``. The small user has 100 heartbeats over the
last 10 days. Latencies are sequential round trips from one client, big and small interleaved.
"""

from __future__ import annotations

import asyncio
import time

from tqdm import tqdm

from bench.clients import BenchError, client, get_json, ok, timed_get, wait_for_total
from bench.dashboard_paint import figure_dashboard_paint
from bench.deploy import Deployment, Meter, System, Usage, User, process_peak_rss_mib
from bench.payloads import days_used, dumps, import_items
from bench.report import Row, percentile

HEARTBEATS_AT_SCALE_1 = 1_000_000
SMALL_USER_HEARTBEATS = 100
CHUNK = 10_000
UPLOADERS = 2
STEP_S = 10
MAX_PER_DAY = 5_000
LOAD_CAP_S = 900.0
REQUESTS_AT_SCALE_1 = 200
QUERIES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("/stats/summary?range=7d", "/api/v1/stats/summary", {"range": "7d"}),
    ("/stats/summary?range=all", "/api/v1/stats/summary", {"range": "all"}),
    ("/stats/languages?range=30d", "/api/v1/stats/languages", {"range": "30d"}),
)


def _bodies(count: int, days: int) -> list[tuple[int, bytes]]:
    items = list(import_items(count, days, step_s=STEP_S))
    return [
        (len(items[i : i + CHUNK]), dumps(items[i : i + CHUNK])) for i in range(0, count, CHUNK)
    ]


async def load_imports(
    deployment: System, user: User, count: int, days: int, cap_s: float
) -> tuple[float, float, Usage]:
    """Import ``count`` heartbeats; returns seconds until all 2xx, seconds until all projected,
    and the CPU used meanwhile (request bodies are built before the clock starts)."""
    expected = count * STEP_S
    bodies = _bodies(count, days)
    queue = list(reversed(bodies))
    desc = f"{deployment.mode}: import {count:,} hb"
    accepted_bar = tqdm(total=count, desc=f"{desc}, accepted", unit="hb", mininterval=1)
    projected_bar = tqdm(total=count, desc=f"{desc}, projected", unit="hb", mininterval=1)
    accepted_s = projected_s = float("nan")
    meter = Meter(deployment)
    began = time.perf_counter()
    deadline = time.monotonic() + cap_s

    async def upload() -> None:
        async with client(deployment.ingest_url, {"X-API-Key": user.api_key}) as http:
            while queue:
                if time.monotonic() > deadline:
                    raise BenchError(f"import not accepted within {cap_s:.0f} s")
                size, body = queue.pop()
                response = ok(
                    await http.post(
                        "/api/v1/import",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                )
                if response.json().get("inserted") != size:
                    raise BenchError(f"import answered {response.text[:200]}, sent {size}")
                accepted_bar.update(size)

    async def watch() -> float:
        async with client(deployment.api_url, user.bearer) as http:
            await wait_for_total(
                http,
                {"range": "all"},
                expected,
                deadline=deadline,
                what="range=all",
                interval_s=0.25,
                on_total=lambda total: projected_bar.update(total // STEP_S - projected_bar.n),
            )
            return time.perf_counter() - began

    try:
        watcher = asyncio.create_task(watch())
        try:
            await asyncio.gather(*(upload() for _ in range(UPLOADERS)))
            accepted_s = time.perf_counter() - began
            projected_s = await watcher
            usage = meter.stop()
        finally:
            watcher.cancel()
    finally:
        accepted_bar.close()
        projected_bar.close()
    async with client(deployment.api_url, user.bearer) as http:
        daily = await get_json(http, "/api/v1/stats/daily", {"range": "all"})
    seconds = [int(day["seconds"]) for day in daily["daily"]]
    active = sum(1 for s in seconds if s)
    if sum(seconds) != expected or active != days_used(count, days):
        raise BenchError(
            f"/stats/daily?range=all: {sum(seconds)} s on {active} days,"
            f" expected {expected} s on {days_used(count, days)} days"
        )
    return accepted_s, projected_s, usage


async def _latencies(
    deployment: Deployment, big: User, small: User, requests: int
) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    async with (
        client(deployment.url, big.bearer) as big_http,
        client(deployment.url, small.bearer) as small_http,
    ):
        with tqdm(
            total=len(QUERIES) * requests * 2,
            desc=f"{deployment.mode}: stats latency",
            unit="req",
            mininterval=1,
        ) as bar:
            for label, path, params in QUERIES:
                for http in (big_http, small_http):
                    for _ in range(3):
                        await timed_get(http, path, params)
                big_rtts: list[float] = []
                small_rtts: list[float] = []
                for _ in range(requests):
                    rtt, _ = await timed_get(big_http, path, params)
                    big_rtts.append(rtt)
                    rtt, _ = await timed_get(small_http, path, params)
                    small_rtts.append(rtt)
                    bar.update(2)
                out[label] = (big_rtts, small_rtts)
    return out


async def figure_stats(deployment: Deployment, big: User, small: User, scale: float) -> list[Row]:
    mode = deployment.mode
    count = max(CHUNK, round(HEARTBEATS_AT_SCALE_1 * scale))
    days = max(300, -(-count // MAX_PER_DAY))
    cap = LOAD_CAP_S * max(1.0, scale)
    await load_imports(deployment, small, SMALL_USER_HEARTBEATS, 10, cap)
    accepted_s, projected_s, usage = await load_imports(deployment, big, count, days, cap)
    peak = process_peak_rss_mib(deployment.server_pid)
    requests = max(20, round(REQUESTS_AT_SCALE_1 * scale))
    latencies = await _latencies(deployment, big, small, requests)

    rows = [
        Row(
            mode=mode,
            figure=f"3 load {count:,} hb via /import, until projected",
            unit="hb/s",
            value=count / projected_s,
            baseline=count / accepted_s,
            baseline_label="same import, until all 2xx",
            notes=[
                f"{count:,} heartbeats over {days} days in {count // CHUNK} imports of "
                f"{CHUNK:,}, {UPLOADERS} in flight: all 2xx after {accepted_s:.1f} s, all "
                f"projected after {projected_s:.1f} s",
                usage.note(),
                f"server peak RSS {peak:,.0f} MiB" if peak is not None else "server peak RSS n/a",
            ],
        )
    ]
    for label, (big_rtts, small_rtts) in latencies.items():
        for q in (50, 99):
            rows.append(
                Row(
                    mode=mode,
                    figure=f"3 {label} p{q}, {count:,}-hb user",
                    unit="s",
                    value=percentile(big_rtts, q),
                    baseline=percentile(small_rtts, q),
                    baseline_label=f"{SMALL_USER_HEARTBEATS}-hb user",
                    notes=[f"{requests} sequential requests each"] if q == 50 else [],
                )
            )
    if deployment.mode == "embedded":
        rows += await figure_dashboard_paint(deployment, big, small, f"{count:,}-hb")
    return rows
