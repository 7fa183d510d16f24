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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm import tqdm

from bench.clients import BenchError, client, get_json, ok, timed_get
from bench.deploy import Meter, System, User
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


def sample_times() -> list[float]:
    """One user's sample times: 43 a day, 2000 s apart, on the five UTC days before today."""
    return [utc_day_start(days) + 1000 + k * 2000 for days in _DAYS for k in range(_PER_DAY)]


@dataclass
class Probes:
    """What freshness samples measured: seconds from 2xx to visible, POST acks, summary polls."""

    fresh: list[float] = field(default_factory=list)
    acks: list[float] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    polls_per_sample: list[int] = field(default_factory=list)

    def resolution_note(self) -> str:
        per_sample = percentile([float(n) for n in self.polls_per_sample], 50)
        return (
            f"{len(self.fresh)} samples, {per_sample:.0f} summary polls per sample at p50; "
            f"resolution: one poll (~{POLL_INTERVAL_S * 1000:.0f} ms + a summary round trip)"
        )


async def probe(
    system: System,
    users: Sequence[User],
    probes: Probes,
    *,
    more: Callable[[], bool],
    every_s: float = 0.0,
    bar: tqdm | None = None,  # type: ignore[type-arg]
) -> None:
    """Freshness samples, one at a time, while ``more()`` and ``users`` have sample times left.

    The heartbeat goes to ingest with the user's API key; the summary is polled on the read API
    with the user's login token. A sample starts at least ``every_s`` after the previous one.
    """
    for user in users:
        async with (
            client(system.ingest_url, {"X-API-Key": user.api_key}) as ingest,
            client(system.api_url, user.bearer) as api,
        ):
            expected = int(
                (await get_json(api, "/api/v1/stats/summary", {"range": "7d"}))["total_seconds"]
            )
            for k, when in enumerate(sample_times()):
                if not more():
                    return
                began_sample = time.perf_counter()
                body = {
                    "project": "freshness",
                    "file": f"/src/fresh/{k % 17}.py",
                    "lang": "Python",
                    "duration": 30,
                    "time": when,
                }
                sent = time.perf_counter()
                ok(await ingest.post("/api/v1/heartbeat", json=body))
                acked = time.perf_counter()
                probes.acks.append(acked - sent)
                expected += 30
                n_polls = 0
                while True:
                    began = time.perf_counter()
                    rtt, summary = await timed_get(api, "/api/v1/stats/summary", {"range": "7d"})
                    probes.polls.append(rtt)
                    n_polls += 1
                    total = int(summary["total_seconds"])
                    if total == expected:
                        probes.fresh.append(time.perf_counter() - acked)
                        break
                    if total > expected:
                        raise BenchError(f"7d total {total} s, expected {expected} s")
                    if time.perf_counter() - acked > SAMPLE_CAP_S:
                        raise BenchError(f"heartbeat not visible after {SAMPLE_CAP_S:.0f} s")
                    pause = POLL_INTERVAL_S - (time.perf_counter() - began)
                    if pause > 0:
                        await asyncio.sleep(pause)
                probes.polls_per_sample.append(n_polls)
                if bar is not None:
                    bar.update(1)
                pause = every_s - (time.perf_counter() - began_sample)
                if pause > 0:
                    await asyncio.sleep(pause)


async def health_round_trips(base_url: str, count: int) -> list[float]:
    """``count`` sequential ``/healthz`` round trips (after 5 unmeasured ones)."""
    health: list[float] = []
    async with client(base_url) as http:
        for _ in range(5):
            await timed_get(http, "/healthz")
        for _ in range(count):
            rtt, _ = await timed_get(http, "/healthz")
            health.append(rtt)
    return health


async def figure_freshness(system: System, users: Sequence[User], scale: float) -> list[Row]:
    mode = system.mode
    count = samples(scale)
    probes = Probes()
    meter = Meter(system)
    with tqdm(total=count, desc=f"{mode}: freshness", unit="sample", mininterval=1) as bar:
        await probe(system, users, probes, more=lambda: len(probes.fresh) < count, bar=bar)
    usage = meter.stop()
    if len(probes.fresh) < count:
        raise BenchError(f"only {len(probes.fresh)} of {count} samples: too few users")
    health = await health_round_trips(system.ingest_url, max(20, count))

    notes = [
        probes.resolution_note(),
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
            value=percentile(probes.fresh, 50),
            baseline=percentile(probes.polls, 50),
            baseline_label=f"{summary_label} p50",
            notes=notes,
        ),
        Row(
            mode=mode,
            figure="2 freshness p99",
            unit="s",
            value=percentile(probes.fresh, 99),
            baseline=percentile(probes.polls, 99),
            baseline_label=f"{summary_label} p99",
        ),
        Row(
            mode=mode,
            figure="2 POST /api/v1/heartbeat ack p50 (single heartbeat)",
            unit="s",
            value=percentile(probes.acks, 50),
            baseline=percentile(health, 50),
            baseline_label="/healthz round trip p50",
        ),
        Row(
            mode=mode,
            figure="2 POST /api/v1/heartbeat ack p99",
            unit="s",
            value=percentile(probes.acks, 99),
            baseline=percentile(health, 99),
            baseline_label="/healthz round trip p99",
        ),
    ]
