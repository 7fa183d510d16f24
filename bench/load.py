"""Distributed figure 2: freshness while ingest takes a sustained 1,000 heartbeats/s.

The background load is open-loop: request k of ``LOAD_BATCH`` WakaTime heartbeats is due at
``start + k * LOAD_BATCH / LOAD_RATE_HB_S`` whatever happened to the requests before it (a slow
server gets more requests in flight, not fewer requests), round-robin over ``LOAD_USERS``
accounts, on a pool of ``LOAD_CONNECTIONS`` keep-alive connections. Each user's heartbeats are two
minutes apart in event time (at most 720 a day, see :func:`bench.payloads.wakatime_items`), on
days no other figure uses. After ``WARMUP_S`` the freshness probe of figure 2
(:func:`bench.freshness.probe`, its own accounts) runs until the load ends, one sample every
``PROBE_EVERY_S`` at most. The load's achieved rate (heartbeats acknowledged 2xx per second
during that probe window) is reported next to its target: the freshness figures only mean
"at 1k/s" if that ratio is ~1.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
from tqdm import tqdm

from bench.clients import HTTP_TIMEOUT_S, BenchError, Sentinels
from bench.deploy import Meter, System, User
from bench.freshness import SAMPLES_PER_USER, Probes, health_round_trips, probe
from bench.ingest import BULK_PATH, STEP_S
from bench.payloads import WAKATIME_USER_AGENT, dumps, utc_day_start, wakatime_items
from bench.report import Row, percentile

LOAD_RATE_HB_S = 1000.0
LOAD_BATCH = 10  # heartbeats per request: 100 requests/s
LOAD_USERS = 100  # each sends one request a second
LOAD_CONNECTIONS = 64
LOAD_S_AT_SCALE_1 = 60.0
MIN_LOAD_S = 8.0
WARMUP_S = 5.0
PROBE_EVERY_S = 0.2
# Answers still missing this long after the last request was due count as failures.
LOAD_TAIL_CAP_S = 60.0
DRAIN_CAP_S = 600.0
KEPT_UP = 0.95  # achieved / target below this: the load generator or ingest fell behind
# Load heartbeats start this many days ago: after the figure-1 users' days (the ingest
# figure's cursor), clear of the probe days (1-5) and the sentinel day (20).
_FIRST_DAY_AGO = 60


def load_seconds(scale: float) -> float:
    return max(MIN_LOAD_S, LOAD_S_AT_SCALE_1 * scale)


def probe_users_needed(scale: float) -> int:
    samples = math.ceil(load_seconds(scale) / PROBE_EVERY_S)
    return max(1, math.ceil(samples / SAMPLES_PER_USER))


@dataclass
class LoadRun:
    """What the paced sender did; times are ``time.perf_counter()`` seconds."""

    due: int = 0
    heartbeats_ok: int = 0
    failures: list[str] = field(default_factory=list)
    send_lags: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)  # when each accepted request's 2xx came
    began: float = 0.0
    last_sent: float = 0.0
    last_answer: float = 0.0
    max_in_flight: int = 0

    def achieved(self, start: float, end: float) -> float:
        """Heartbeats acknowledged per second between ``start`` and ``end``."""
        acked = sum(1 for at in self.acked_at if start <= at < end)
        return acked * LOAD_BATCH / (end - start) if end > start else 0.0


def _bodies(users: Sequence[User], requests: int) -> list[tuple[User, bytes]]:
    """Request bodies in send order (built before the clock starts)."""
    starts = {user.user_id: utc_day_start(_FIRST_DAY_AGO) for user in users}
    out: list[tuple[User, bytes]] = []
    for k in range(requests):
        seed = k % len(users)
        user = users[seed]
        start = starts[user.user_id]
        starts[user.user_id] = start + LOAD_BATCH * STEP_S
        out.append((user, dumps(wakatime_items(start, LOAD_BATCH, seed, step_s=STEP_S))))
    return out


async def paced_load(
    base_url: str,
    bodies: Sequence[tuple[User, bytes]],
    interval_s: float,
    bar: tqdm,  # type: ignore[type-arg]
) -> LoadRun:
    """Sends ``bodies[k]`` at ``began + k * interval_s`` without waiting for earlier answers.

    aiohttp, not httpx as elsewhere in the bench: ~0.6 ms of client CPU per request instead of
    ~3.7 ms (measured here), and the load generator shares the machine's cores with the system
    under test.
    """
    run = LoadRun(due=len(bodies))
    in_flight = 0
    checked: set[str] = set()
    headers = {
        user.user_id: {
            **user.basic,
            "Content-Type": "application/json",
            "User-Agent": WAKATIME_USER_AGENT,
        }
        for user, _ in bodies
    }

    async def send(session: aiohttp.ClientSession, user: User, body: bytes, due: float) -> None:
        nonlocal in_flight
        in_flight += 1
        run.max_in_flight = max(run.max_in_flight, in_flight)
        started = time.perf_counter()
        run.send_lags.append(started - due)
        try:
            async with session.post(BULK_PATH, data=body, headers=headers[user.user_id]) as answer:
                status, payload = answer.status, await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            run.failures.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            in_flight -= 1
        answered = time.perf_counter()
        run.latencies.append(answered - started)
        run.last_answer = max(run.last_answer, answered)
        if not 200 <= status < 300:
            run.failures.append(f"HTTP {status}: {payload[:200]!r}")
            return
        if user.user_id not in checked:  # once per user: every item must have been accepted
            checked.add(user.user_id)
            statuses = [item_status for _, item_status in json.loads(payload)["responses"]]
            if statuses != [201] * LOAD_BATCH:
                run.failures.append(f"bulk items not all accepted: {statuses}")
                return
        run.heartbeats_ok += LOAD_BATCH
        run.acked_at.append(answered)
        bar.update(LOAD_BATCH)

    tasks: list[asyncio.Task[None]] = []
    async with aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(limit=LOAD_CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
    ) as session:
        try:
            run.began = time.perf_counter()
            for k, (user, body) in enumerate(bodies):
                due = run.began + k * interval_s
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(send(session, user, body, due)))
            run.last_sent = time.perf_counter()
            _, pending = await asyncio.wait(tasks, timeout=LOAD_TAIL_CAP_S)
            if pending:
                missing = f"no answer {LOAD_TAIL_CAP_S:.0f} s after the last request"
                run.failures += [missing] * len(pending)
        finally:
            # Also on errors and cancellation: no request outlives the session.
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise BenchError(f"load request failed: {task.exception()!r}")
    return run


async def figure_freshness_under_load(
    system: System,
    probe_users: Sequence[User],
    load_users: Sequence[User],
    sentinels: Sentinels,
    scale: float,
) -> list[Row]:
    mode = system.mode
    duration = load_seconds(scale)
    warmup = min(WARMUP_S, duration / 4)
    interval = LOAD_BATCH / LOAD_RATE_HB_S
    bodies = _bodies(load_users, round(duration / interval))
    # Start from an idle projection (and make ingest know every key); time it as the baseline
    # of the drain after the load.
    idle_began = time.perf_counter()
    idle_drain_s = await sentinels.drain([*load_users, *probe_users], DRAIN_CAP_S) - idle_began

    probes = Probes()
    load_bar = tqdm(
        total=len(bodies) * LOAD_BATCH, desc=f"{mode}: load 1k hb/s", unit="hb", mininterval=1
    )
    probe_bar = tqdm(desc=f"{mode}: freshness under load", unit="sample", mininterval=1)
    try:
        load = asyncio.create_task(paced_load(system.ingest_url, bodies, interval, load_bar))
        try:
            await asyncio.sleep(warmup)
            meter = Meter(system)
            window_start = time.perf_counter()
            window_end = window_start + duration - warmup
            await probe(
                system,
                probe_users,
                probes,
                more=lambda: time.perf_counter() < window_end and not load.done(),
                every_s=PROBE_EVERY_S,
                bar=probe_bar,
            )
            window_end = min(window_end, time.perf_counter())
            usage = meter.stop()
            run = await load
        finally:
            load.cancel()
    finally:
        load_bar.close()
        probe_bar.close()
    drain_began = time.perf_counter()
    drain_s = await sentinels.drain(load_users, DRAIN_CAP_S) - drain_began
    health = await health_round_trips(system.ingest_url, 50)

    if not probes.fresh:
        raise BenchError("no freshness sample completed during the load")
    achieved = run.achieved(window_start, window_end)
    late = sum(1 for lag in run.send_lags if lag > 0.1)
    kept_up = achieved >= KEPT_UP * LOAD_RATE_HB_S and not run.failures
    offered = run.due * LOAD_BATCH / max(run.last_sent - run.began + interval, 1e-9)
    notes = [
        f"load: {run.due} requests of {LOAD_BATCH} heartbeats due over {duration:.0f} s, "
        f"round-robin over {len(load_users)} users, {LOAD_CONNECTIONS} connections; offered "
        f"{offered:,.0f} hb/s; acknowledged {achieved:,.0f} hb/s in the probe window "
        f"({window_end - window_start:.0f} s from {warmup:.0f} s in), "
        f"{run.heartbeats_ok / max(run.last_answer - run.began, 1e-9):,.0f} hb/s first "
        "request to last answer" + ("" if kept_up else " - DID NOT KEEP UP WITH 1k hb/s"),
        f"load requests: p50 {percentile(run.latencies, 50) * 1000:.0f} ms, "
        f"p99 {percentile(run.latencies, 99) * 1000:.0f} ms; sent > 100 ms late: {late}; "
        f"at most {run.max_in_flight} in flight; failures: {len(run.failures)}"
        + (f" (first: {run.failures[0]})" if run.failures else ""),
        f"probes one every {PROBE_EVERY_S * 1000:.0f} ms at most; {probes.resolution_note()}",
        f"probe POST /api/v1/heartbeat ack p50 {percentile(probes.acks, 50) * 1000:.1f} ms, "
        f"p99 {percentile(probes.acks, 99) * 1000:.1f} ms (ingest /healthz afterwards: p50 "
        f"{percentile(health, 50) * 1000:.1f} ms)",
        f"after the load, a sentinel of each of the {len(load_users)} load users was visible "
        f"{drain_s:.1f} s later ({idle_drain_s:.1f} s for the same check on the idle system "
        "before the load)",
        f"probe window {usage.note()}",
    ]
    summary_label = "/stats/summary round trip under the same load"
    return [
        Row(
            mode=mode,
            figure="2 background load on ingest (WakaTime bulk of 10), achieved",
            unit="hb/s",
            value=achieved,
            baseline=LOAD_RATE_HB_S,
            baseline_label="target rate" + ("" if kept_up else ": NOT KEPT UP"),
            notes=notes,
        ),
        Row(
            mode=mode,
            figure="2 freshness p50 at 1k hb/s (2xx -> in /stats/summary)",
            unit="s",
            value=percentile(probes.fresh, 50),
            baseline=percentile(probes.polls, 50),
            baseline_label=f"{summary_label} p50",
        ),
        Row(
            mode=mode,
            figure="2 freshness p99 at 1k hb/s",
            unit="s",
            value=percentile(probes.fresh, 99),
            baseline=percentile(probes.polls, 99),
            baseline_label=f"{summary_label} p99",
        ),
    ]
