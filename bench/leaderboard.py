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
``_seed``), before a ``codetrackr serve`` of this figure's own starts on it. The server then reads
and projects them as it would any log (its start-up and the projection are in the notes). The
last accounts go through the three requests on the running server, so the board also holds
accounts made the ordinary way, and the notes give what account writes cost on a log that long.
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
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from tqdm import tqdm

from bench.clients import HTTP_TIMEOUT_S, BenchError, client, create_users, get_json, ok, timed_get
from bench.deploy import (
    HEARTBEAT_PARTITIONS,
    Deployment,
    Meter,
    System,
    Usage,
    User,
    own_cpu_s,
    process_peak_rss_mib,
)
from bench.live_push import PushSamples, ms, push_latencies
from bench.payloads import dumps
from bench.report import Row, percentile
from eventlog.factory import open_event_log
from eventlog.port import Record
from ingest.normalize import RequestMeta, codetrackr_item, dedupe
from schemas.events import (
    ACCOUNTS_TOPIC,
    HEARTBEATS_TOPIC,
    AccountCreated,
    HeartbeatsReceived,
    ProfileUpdated,
    encode_event,
)
from schemas.heartbeat import Heartbeat

USERS_AT_SCALE_1 = 100_000
SMALL_BOARD = 100
MIN_USERS = 2 * SMALL_BOARD
POP_CONNECTIONS = 32
HTTP_USERS_AT_SCALE_1 = 200  # the last accounts, made over HTTP on the running server
MIN_HTTP_USERS = 20
SEED_CHUNK = 3000  # records per append while seeding
SERVER_START_CAP_S = 900.0
REQUESTS_AT_SCALE_1 = 200
MIN_REQUESTS = 20
PUSH_SAMPLES_AT_SCALE_1 = 100  # per week
RANK_CAP_S = 1800.0
POP_CAP_S = 4 * 3600.0
LANGUAGES = ("Go", "Python", "TypeScript", "Rust", "Java", "SQL")
COUNTRIES = ("XX", "DE", "US", "BR")
_MAX_BEATS = 6
_MAX_DURATION_S = 600
_SMALL_WEEKS_AGO = 2


def users_at(scale: float) -> int:
    return max(MIN_USERS, round(USERS_AT_SCALE_1 * scale))


def http_users_at(scale: float) -> int:
    return max(MIN_HTTP_USERS, round(HTTP_USERS_AT_SCALE_1 * scale))


def _monday(weeks_ago: int) -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday(), weeks=weeks_ago)


def _week_id(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _epoch(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class Weeks:
    """The big week (the current UTC ISO week) and the baseline week, and where heartbeats go."""

    big: date
    small: date
    slots: int  # start minutes available in the big week, from Monday 01:00 UTC

    @classmethod
    def now(cls) -> Weeks:
        big = _monday(0)
        room = time.time() - 900 - (_epoch(big) + 3600) - _MAX_BEATS * _MAX_DURATION_S
        if room < 3600:
            raise BenchError(
                "the UTC ISO week began less than 2.5 hours ago: not enough of it to put the "
                "board's heartbeats in; run again later"
            )
        return cls(big=big, small=_monday(_SMALL_WEEKS_AGO), slots=int(room // 60))

    @property
    def big_id(self) -> str:
        return _week_id(self.big)

    @property
    def small_id(self) -> str:
        return _week_id(self.small)

    def items(self, i: int) -> list[dict[str, Any]]:
        """User ``i``'s import: 2 to 6 contiguous heartbeats in the big week (and the same in
        the baseline week for the first ``SMALL_BOARD`` users)."""
        count = 2 + i % 5
        duration = 60 + (i * 7919) % (_MAX_DURATION_S - 59)
        starts = [_epoch(self.big) + 3600 + ((i * 104_729) % self.slots) * 60]
        if i < SMALL_BOARD:
            starts.append(_epoch(self.small) + 3600 + ((i * 104_729) % (5 * 24 * 60)) * 60)
        return [
            {
                "project": f"board-{i % 7}",
                "file": f"/src/board/{j}.txt",
                "lang": LANGUAGES[(i + j) % len(LANGUAGES)],
                "time": start + j * duration,
                "duration": duration,
                "editor": "vscode",
                "os": "Linux",
            }
            for start in starts
            for j in range(count)
        ]


@dataclass
class Population:
    """What populating the boards took."""

    users: int
    wall_s: float = 0.0
    latencies: dict[str, list[float]] = field(
        default_factory=lambda: {"create": [], "profile": [], "import": []}
    )
    usage: Usage | None = None

    def note(self) -> str:
        per_kind = ", ".join(
            f"{kind} p50 {ms(values, 50)} p99 {ms(values, 99)}"
            for kind, values in self.latencies.items()
        )
        return (
            f"over HTTP: the last {self.users:,} accounts created, made public and opted in, "
            f"and given heartbeats in {self.wall_s:.1f} s "
            f"({self.users / max(self.wall_s, 1e-9):,.1f} accounts/s, 3 requests each, "
            f"{POP_CONNECTIONS} connections); requests: {per_kind}"
        )


def _seed_records(weeks: Weeks, i: int, now: float) -> list[Record]:
    """What the API appends for user ``i`` created, made public and opted in, and importing."""
    user_id = uuid.uuid4().hex
    key = user_id.encode()
    created = AccountCreated(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=now,
        username=f"board-{i:06d}",
        account_number_hash=hashlib.sha256(f"bench-{user_id}".encode()).hexdigest(),
        timezone="UTC",
    )
    profile = ProfileUpdated(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=now,
        is_public=True,
        show_in_leaderboard=True,
        profile_show_languages=True,  # language boards rank only those who show them
        country=COUNTRIES[i % len(COUNTRIES)],
    )
    meta = RequestMeta(user_id=user_id, received_at=now, timezone="UTC")
    beats: list[Heartbeat] = []
    for index, item in enumerate(weeks.items(i)):
        beat = codetrackr_item(item, index, meta, source="import")
        if not isinstance(beat, Heartbeat):
            raise BenchError(f"seeded heartbeat rejected by normalization: {beat}")
        beats.append(beat)
    received = HeartbeatsReceived(
        event_id=uuid.uuid4().hex,
        user_id=user_id,
        occurred_at=now,
        heartbeats=tuple(dedupe(beats)),
    )
    return [
        Record(ACCOUNTS_TOPIC, key, encode_event(created)),
        Record(HEARTBEATS_TOPIC, key, encode_event(received)),
        Record(ACCOUNTS_TOPIC, key, encode_event(profile)),
    ]


async def _seed(data_dir: Path, weeks: Weeks, count: int) -> tuple[float, float]:
    """Append users 0 .. count-1 to the event log of ``data_dir`` (the server's default file and
    adapter, the server's topics); returns wall seconds and the bench's CPU seconds."""
    began, cpu = time.perf_counter(), own_cpu_s()
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    log = open_event_log("embedded://", data_dir)
    await log.start()
    try:
        await log.ensure_topics({HEARTBEATS_TOPIC: HEARTBEAT_PARTITIONS, ACCOUNTS_TOPIC: 1})
        now = time.time()
        opt_ins: list[Record] = []
        with tqdm(
            total=count, desc="embedded: seeding the board", unit="user", mininterval=2
        ) as bar:
            for first in range(0, count, SEED_CHUNK // 2):
                last = min(count, first + SEED_CHUNK // 2)
                records: list[Record] = []
                for i in range(first, last):
                    created, received, profile = _seed_records(weeks, i, now)
                    records += [created, received]
                    opt_ins.append(profile)
                await log.append(records)
                bar.update(last - first)
        # The opt-ins last. The projector works out the ranks of a batch's users on the whole
        # board before and after each batch, so once users are ranked every batch costs time in
        # proportion to the board; users who code first and join the boards afterwards keep the
        # board empty while their heartbeats are projected.
        for first in range(0, len(opt_ins), SEED_CHUNK):
            await log.append(opt_ins[first : first + SEED_CHUNK])
    finally:
        await log.close()
    return time.perf_counter() - began, own_cpu_s() - cpu


async def _populate(system: System, weeks: Weeks, first: int, count: int) -> Population:
    """Users ``first`` .. ``count``-1 over HTTP, as they would make themselves."""
    result = Population(users=count - first)
    next_user = first
    deadline = time.monotonic() + POP_CAP_S
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)

    async def call(
        session: aiohttp.ClientSession, kind: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        began = time.perf_counter()
        async with session.post(url, data=body, headers=headers) as response:
            text = await response.text()
            if not 200 <= response.status < 300:
                raise BenchError(f"POST {url} -> {response.status}: {text[:300]}")
        result.latencies[kind].append(time.perf_counter() - began)
        answer: dict[str, Any] = json.loads(text)
        return answer

    async def worker(
        api: aiohttp.ClientSession,
        ingest: aiohttp.ClientSession,
        bar: tqdm,  # type: ignore[type-arg]
    ) -> None:
        nonlocal next_user
        json_type = {"Content-Type": "application/json"}
        while next_user < count:
            if time.monotonic() > deadline:
                raise BenchError(f"population not done within {POP_CAP_S:.0f} s")
            i = next_user
            next_user += 1
            created = await call(
                api, "create", "/auth/anonymous/create", b'{"timezone":"UTC"}', json_type
            )
            bearer = {**json_type, "Authorization": f"Bearer {created['token']}"}
            profile = {
                "is_public": True,
                "show_in_leaderboard": True,
                "profile_show_languages": True,  # language boards rank only those who show them
                "country": COUNTRIES[i % len(COUNTRIES)],
            }
            await call(api, "profile", "/api/v1/user/profile/update", dumps(profile), bearer)
            await call(ingest, "import", "/api/v1/import", dumps(weeks.items(i)), bearer)
            bar.update(1)

    def session(base_url: str) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=POP_CONNECTIONS)
        return aiohttp.ClientSession(base_url, connector=connector, timeout=timeout)

    began = time.perf_counter()
    with tqdm(
        total=count, desc=f"{system.mode}: board accounts", unit="user", mininterval=2
    ) as bar:
        async with session(system.api_url) as api, session(system.ingest_url) as ingest:
            await asyncio.gather(*(worker(api, ingest, bar) for _ in range(POP_CONNECTIONS)))
    result.wall_s = time.perf_counter() - began
    return result


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
        times.append(_epoch(weeks.big) + 1800 + k * 60)
        times.append(_epoch(weeks.small) + 1800 + k * 60)
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
    seed_s, seed_cpu_s = await _seed(deployment.data_dir, weeks, count - by_http)
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
    population = await _populate(system, weeks, count - by_http, count)
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
