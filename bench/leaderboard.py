"""Figure 5: leaderboard query latency with 100,000 ranked users vs a board of 100.

The board: N accounts (100,000 at scale 1.0), each public and opted in to the boards (one in four
with country ``XX``, the rest DE, US or BR), each with 2 to 6 heartbeats in the current UTC ISO
week (languages rotate over six, so every language board holds tens of thousands of users). The
first 100 also have the same heartbeats in the ISO week two weeks earlier: that week's board, with
exactly 100 users, is the baseline.

How they get there. Over HTTP, each account costs three requests (``POST
/auth/anonymous/create``, ``POST /api/v1/user/profile/update`` with its login token, ``POST
/api/v1/import``), and every account write reads the end offsets of the accounts topic, which on
the embedded log costs time proportional to the topic's length (``docs/benchmarks.md``, slow
path 7): creating 100,000 accounts that way is quadratic and takes hours. So all but the last
``http_users_at(scale)`` accounts (200 at scale 1.0) are *seeded*: the events the API would append
for them (``AccountCreated``, ``ProfileUpdated`` and a ``HeartbeatsReceived`` built by the
server's own import normalization) are appended with the server's log adapter to the event log of
a fresh data directory (every account and its heartbeats first, then all the opt-ins: see
``bench.leaderboard_seed.seed``), before a ``codetrackr serve`` of this figure's own starts on
it. The server then reads and projects them as it would any log (its start-up and the projection
are in the notes). The last accounts go through the three requests on the running server, so the
board also holds accounts made the ordinary way, and the notes give what account writes cost on a
log that long.
The bench then waits until ``/leaderboards/global`` counts all N (and 100 in the baseline week).

Latency: sequential round trips from one client, each query against the big week and the
baseline week alternately (``?week=`` on both, so the requests differ only in the week), after
three unmeasured ones each. ``/api/v1/leaders`` (WakaTime's shape) has no week parameter: it is
compared with ``/leaderboards/global?limit=100`` of the baseline week, the same board query and
page size in CodeTrackr's shape.

Last, the heartbeat-to-WebSocket latency of figure 4 again, for a ranked user whose heartbeats
alternate between the big week and the baseline week: the projector works out the ranks of the
batch's users on the heartbeat's week before and after each batch (for ``leaderboard.changed``),
so a board's size is on the path of every live update.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.clients import BenchError, client, create_users, get_json, ok, timed_get
from bench.deploy import Deployment, Meter, System, User, process_peak_rss_mib
from bench.leaderboard_seed import (
    COUNTRIES,
    LANGUAGES,
    SMALL_BOARD,
    Weeks,
    epoch,
    http_users_at,
    populate,
    seed,
    users_at,
)
from bench.live_push import PushSamples, ms, push_latencies
from bench.report import Row, percentile

SERVER_START_CAP_S = 900.0
REQUESTS_AT_SCALE_1 = 200
MIN_REQUESTS = 20
PUSH_SAMPLES_AT_SCALE_1 = 100  # per week
RANK_CAP_S = 1800.0


async def _wait_ranked(system: System, weeks: Weeks, count: int) -> float:
    """Seconds until the big week's global board counts ``count`` users (and the baseline week
    ``SMALL_BOARD``)."""
    began = time.perf_counter()
    deadline = time.monotonic() + RANK_CAP_S
    want = {weeks.big_id: count, weeks.small_id: SMALL_BOARD}
    async with client(system.api_url) as http:
        with tqdm(total=count, desc=f"{system.mode}: ranked", unit="user", mininterval=2) as bar:
            while True:
                totals = {
                    week: int(
                        (
                            await get_json(
                                http, "/api/v1/leaderboards/global", {"limit": "1", "week": week}
                            )
                        )["total"]
                    )
                    for week in want
                }
                bar.update(totals[weeks.big_id] - bar.n)
                if totals == want:
                    return time.perf_counter() - began
                if any(totals[week] > want[week] for week in want):
                    raise BenchError(f"boards count {totals}, expected {want}")
                if time.monotonic() > deadline:
                    raise BenchError(f"boards count {totals} after {RANK_CAP_S:.0f} s: {want}")
                await asyncio.sleep(0.5)


Query = tuple[str, dict[str, str]]


def _queries(weeks: Weeks, count: int) -> list[tuple[str, Query, Query, str]]:
    """(label, big-week request, baseline request, baseline label)."""
    board = "/api/v1/leaderboards"

    def both(path: str, **params: str) -> tuple[Query, Query]:
        return (path, {**params, "week": weeks.big_id}), (path, {**params, "week": weeks.small_id})

    small = f"{SMALL_BOARD}-user week"
    out: list[tuple[str, Query, Query, str]] = []
    for label, path, params, small_label in (
        ("global?limit=100", f"{board}/global", {"limit": "100"}, small),
        (
            f"global?limit=100&offset={count // 2}",
            f"{board}/global",
            {"limit": "100", "offset": str(count // 2)},
            f"{small}, offset={SMALL_BOARD // 2}",
        ),
        ("language/Go?limit=100", f"{board}/language/Go", {"limit": "100"}, small),
        ("country/XX?limit=100", f"{board}/country/XX", {"limit": "100"}, small),
    ):
        big_q, small_q = both(path, **params)
        if "offset" in params:
            small_q[1]["offset"] = str(SMALL_BOARD // 2)
        out.append((label, big_q, small_q, small_label))
    out.append(
        (
            "/api/v1/leaders (WakaTime shape)",
            ("/api/v1/leaders", {}),
            (f"{board}/global", {"limit": "100", "week": weeks.small_id}),
            f"global?limit=100, {small}",
        )
    )
    return out


def _check(label: str, body: dict[str, Any], count: int, weeks: Weeks) -> None:
    """The big week's answers are the boards they should be (a wrong one would time nothing)."""
    if label.startswith("/api/v1/leaders"):
        pages = int(body["total_pages"])
        if body["range"]["name"] != weeks.big_id or pages != -(-count // 100):
            raise BenchError(f"/leaders answered week {body['range']['name']}, {pages} pages")
        return
    rows = body["leaderboard"]
    if len(rows) != 100 or int(body["total"]) < 100:
        raise BenchError(f"{label}: {len(rows)} rows of {body['total']}")
    if label.startswith("global") and int(body["total"]) != count:
        raise BenchError(f"{label}: total {body['total']}, expected {count}")
    if int(rows[0]["rank"]) != int(body["offset"]) + 1:
        raise BenchError(f"{label}: first rank {rows[0]['rank']} at offset {body['offset']}")


async def _latencies(
    system: System, weeks: Weeks, count: int, requests: int
) -> dict[str, tuple[list[float], list[float], str]]:
    out: dict[str, tuple[list[float], list[float], str]] = {}
    queries = _queries(weeks, count)
    async with client(system.api_url) as http:
        with tqdm(
            total=len(queries) * requests * 2,
            desc=f"{system.mode}: board latency",
            unit="req",
            mininterval=1,
        ) as bar:
            for label, (big_path, big_params), (small_path, small_params), small_label in queries:
                for _ in range(3):
                    _, body = await timed_get(http, big_path, big_params)
                    await timed_get(http, small_path, small_params)
                _check(label, body, count, weeks)
                big: list[float] = []
                small: list[float] = []
                for _ in range(requests):
                    rtt, _ = await timed_get(http, big_path, big_params)
                    big.append(rtt)
                    rtt, _ = await timed_get(http, small_path, small_params)
                    small.append(rtt)
                    bar.update(2)
                out[label] = (big, small, small_label)
    return out


async def _push_both_weeks(
    system: System, user: User, weeks: Weeks, samples: int
) -> tuple[list[float], list[float], PushSamples]:
    """Pushed samples for a ranked user, alternately in the big and in the baseline week."""
    async with client(system.api_url, user.bearer) as http:
        profile = {"is_public": True, "show_in_leaderboard": True, "country": "XX"}
        ok(await http.post("/api/v1/user/profile/update", json=profile))
    times: list[float] = []
    for k in range(samples):
        times.append(epoch(weeks.big) + 1800 + k * 60)
        times.append(epoch(weeks.small) + 1800 + k * 60)
    out = PushSamples()
    with tqdm(total=len(times), desc=f"{system.mode}: live push", unit="sample") as bar:
        await push_latencies(system, user, times, out, project="board-live", bar=bar)
    return out.pushed[0::2], out.pushed[1::2], out


async def figure_leaderboard(work_dir: Path, scale: float) -> list[Row]:
    """Seed, start this figure's own ``codetrackr serve``, add the HTTP accounts, measure."""
    count = users_at(scale)
    by_http = min(http_users_at(scale), count - SMALL_BOARD)
    weeks = Weeks.now()
    deployment = Deployment("embedded", work_dir, start_timeout_s=SERVER_START_CAP_S)
    seed_s, seed_cpu_s = await seed(deployment.data_dir, weeks, count - by_http)
    started = time.perf_counter()
    with deployment as system:
        up_s = time.perf_counter() - started
        return await _measure(
            system, weeks, count, by_http, scale, started, up_s, seed_s, seed_cpu_s
        )


async def _measure(
    system: Deployment,
    weeks: Weeks,
    count: int,
    by_http: int,
    scale: float,
    started: float,
    up_s: float,
    seed_s: float,
    seed_cpu_s: float,
) -> list[Row]:
    mode = system.mode
    meter = Meter(system)
    population = await populate(system, weeks, count - by_http, count)
    population.usage = meter.stop()
    ranked_meter = Meter(system)
    await _wait_ranked(system, weeks, count)
    ranked_usage = ranked_meter.stop()
    ranked_s = time.perf_counter() - started
    requests = max(MIN_REQUESTS, round(REQUESTS_AT_SCALE_1 * scale))
    query_meter = Meter(system)
    latencies = await _latencies(system, weeks, count, requests)
    query_usage = query_meter.stop()
    peak = process_peak_rss_mib(system.server_pid)

    seeded = count - by_http
    rows: list[Row] = []
    notes = [
        f"boards: {count:,} users ranked in {weeks.big_id} (the current UTC ISO week), "
        f"{SMALL_BOARD} of them also in {weeks.small_id} (the baseline); 2-6 heartbeats each, "
        f"{len(LANGUAGES)} languages, 1 in {len(COUNTRIES)} in country XX; this figure's own "
        "codetrackr serve",
        f"seeded: {seeded:,} users' events ({3 * seeded:,} records) appended to the fresh log "
        f"in {seed_s:.1f} s (bench CPU {seed_cpu_s:.1f} s); the server was up "
        f"{up_s:.1f} s after its start",
        population.note(),
        f"over HTTP: {population.usage.note()}",
        f"all {count:,} ranked {ranked_s:.1f} s after the server's start (reading and projecting "
        f"the seeded log); the wait after the HTTP accounts: {ranked_usage.note()}",
        f"queries: {requests} sequential requests each, big and baseline week alternately; "
        f"{query_usage.note()}",
        f"server peak RSS {peak:,.0f} MiB" if peak is not None else "server peak RSS n/a",
    ]
    for label, (big, small, small_label) in latencies.items():
        for q in (50, 99):
            rows.append(
                Row(
                    mode=mode,
                    figure=f"5 {label} p{q}, {count:,} ranked",
                    unit="s",
                    value=percentile(big, q),
                    baseline=percentile(small, q),
                    baseline_label=small_label,
                    notes=notes if not rows else [],
                )
            )

    samples = max(10, round(PUSH_SAMPLES_AT_SCALE_1 * scale))
    probe = (await create_users(system.api_url, 1))[0]
    push_meter = Meter(system)
    big_push, small_push, pushed = await _push_both_weeks(system, probe, weeks, samples)
    push_usage = push_meter.stop()
    push_notes = [
        f"a ranked user (public, opted in), {samples} heartbeats in each week, alternately, one "
        f"at a time; POST ack p50 {ms(pushed.acks, 50)}; 'dropped' notices: {pushed.dropped}",
        push_usage.note(),
    ]
    for q in (50, 99):
        rows.append(
            Row(
                mode=mode,
                figure=f"5 heartbeat -> WebSocket p{q}, week with {count:,} ranked",
                unit="s",
                value=percentile(big_push, q),
                baseline=percentile(small_push, q),
                baseline_label=f"same user, heartbeat in the {SMALL_BOARD}-user week",
                notes=push_notes if q == 50 else [],
            )
        )
    return rows
