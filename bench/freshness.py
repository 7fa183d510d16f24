"""Figure 2: freshness, seconds from a 2xx on one heartbeat to that heartbeat counted by
``GET /api/v1/stats/summary``.

Each sample is a CodeTrackr heartbeat of 30 s at a time 2000 s from every other one (more than
the 15-minute timeout), so it adds exactly 30 s to the 7-day total. The client polls the summary
every 10 ms from the 2xx on; the sample ends at the first answer showing the new total. Samples
are spread over the five UTC days before today, so the 7-day range holds them even if the run
crosses midnight. Baselines from the same run: the round trip of ``/stats/summary`` itself (the
poll; a sample can never be shorter than one) and of ``/healthz``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from tqdm import tqdm

from bench.clients import BenchError, client, get_json, ok, timed_get
from bench.deploy import Deployment, Meter, User
from bench.payloads import utc_day_start
from bench.report import Row, percentile

SAMPLES_AT_SCALE_1 = 300
POLL_INTERVAL_S = 0.010
SAMPLE_CAP_S = 30.0
_DAYS = (5, 4, 3, 2, 1)  # days ago
_PER_DAY = 43  # 1000 s + 42 * 2000 s + 30 s < 86400 s
SAMPLES_PER_USER = len(_DAYS) * _PER_DAY


def users_needed(scale: float) -> int:
    return -(-samples(scale) // SAMPLES_PER_USER)


def samples(scale: float) -> int:
    return max(10, round(SAMPLES_AT_SCALE_1 * scale))


def _times() -> list[float]:
    return [utc_day_start(days) + 1000 + k * 2000 for days in _DAYS for k in range(_PER_DAY)]


async def figure_freshness(
    deployment: Deployment, users: Sequence[User], scale: float
) -> list[Row]:
    mode = deployment.mode
    count = samples(scale)
    fresh: list[float] = []
    acks: list[float] = []
    polls: list[float] = []
    health: list[float] = []
    polls_per_sample: list[int] = []
    meter = Meter(deployment)
    with tqdm(total=count, desc=f"{mode}: freshness", unit="sample", mininterval=1) as bar:
        for index, user in enumerate(users):
            todo = min(SAMPLES_PER_USER, count - index * SAMPLES_PER_USER)
            if todo <= 0:
                break
            async with client(deployment.url, user.bearer) as http:
                expected = int(
                    (await get_json(http, "/api/v1/stats/summary", {"range": "7d"}))[
                        "total_seconds"
                    ]
                )
                for k, when in enumerate(_times()[:todo]):
                    body = {
                        "project": "freshness",
                        "file": f"/src/fresh/{k % 17}.py",
                        "lang": "Python",
                        "duration": 30,
                        "time": when,
                    }
                    sent = time.perf_counter()
                    ok(
                        await http.post(
                            "/api/v1/heartbeat", json=body, headers={"X-API-Key": user.api_key}
                        )
                    )
                    acked = time.perf_counter()
                    acks.append(acked - sent)
                    expected += 30
                    n_polls = 0
                    while True:
                        began = time.perf_counter()
                        rtt, summary = await timed_get(
                            http, "/api/v1/stats/summary", {"range": "7d"}
                        )
                        polls.append(rtt)
                        n_polls += 1
                        total = int(summary["total_seconds"])
                        if total == expected:
                            fresh.append(time.perf_counter() - acked)
                            break
                        if total > expected:
                            raise BenchError(f"7d total {total} s, expected {expected} s")
                        if time.perf_counter() - acked > SAMPLE_CAP_S:
                            raise BenchError(f"heartbeat not visible after {SAMPLE_CAP_S:.0f} s")
                        pause = POLL_INTERVAL_S - (time.perf_counter() - began)
                        if pause > 0:
                            await asyncio.sleep(pause)
                    polls_per_sample.append(n_polls)
                    bar.update(1)
    usage = meter.stop()
    async with client(deployment.url) as http:
        for _ in range(5):
            await timed_get(http, "/healthz")
        for _ in range(max(20, count)):
            rtt, _ = await timed_get(http, "/healthz")
            health.append(rtt)

    notes = [
        f"{len(fresh)} samples, {percentile([float(n) for n in polls_per_sample], 50):.0f} "
        f"summary polls per sample at p50; resolution: one poll "
        f"(~{POLL_INTERVAL_S * 1000:.0f} ms + a summary round trip)",
        f"/healthz round trip p50 {percentile(health, 50) * 1000:.1f} ms, "
        f"p99 {percentile(health, 99) * 1000:.1f} ms",
        usage.note(),
    ]
    summary_label = "/stats/summary round trip"
    return [
        Row(
            mode=mode,
            figure="2 freshness p50 (2xx -> counted in /stats/summary)",
            unit="s",
            value=percentile(fresh, 50),
            baseline=percentile(polls, 50),
            baseline_label=f"{summary_label} p50",
            notes=notes,
        ),
        Row(
            mode=mode,
            figure="2 freshness p99",
            unit="s",
            value=percentile(fresh, 99),
            baseline=percentile(polls, 99),
            baseline_label=f"{summary_label} p99",
        ),
        Row(
            mode=mode,
            figure="2 POST /api/v1/heartbeat ack p50 (single heartbeat)",
            unit="s",
            value=percentile(acks, 50),
            baseline=percentile(health, 50),
            baseline_label="/healthz round trip p50",
        ),
        Row(
            mode=mode,
            figure="2 POST /api/v1/heartbeat ack p99",
            unit="s",
            value=percentile(acks, 99),
            baseline=percentile(health, 99),
            baseline_label="/healthz round trip p99",
        ),
    ]
