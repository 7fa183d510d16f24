"""Figure 12: a WakaTime export of 1,000,000 heartbeats imported through
``POST /api/v1/import/wakatime``, in constant memory.

A generated three-year export (:mod:`bench.wakatime_dump`: a weekday's two sessions of
heartbeats two minutes apart, every day's total known) is uploaded to the embedded server; the
server's resident memory is sampled every 50 ms from the first byte sent to the answer. The same
for an export of a tenth of the size, first. Value: how much the server's memory grew during the
big import; baseline: during the small one. A ratio near 1 is constant memory. The notes add the
import rates (heartbeats per second to the answer, everything durably appended), the server's
peak, and whether ``/stats/summary?range=all`` reached the export's exact total.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.clients import client, wait_for_total
from bench.deploy import System, User, process_peak_rss_mib, process_rss_mib
from bench.report import Row
from bench.wakatime_dump import dump_file, spread_days

HEARTBEATS_AT_SCALE_1 = 1_000_000
PER_DAY = 1_000
PROJECTED_CAP_S = 900.0


def _rss_mib(pid: int) -> float:
    return process_rss_mib(pid) or 0.0


def _export(path: Path, heartbeats: int) -> int:
    """Writes an export of about ``heartbeats`` (whole days of PER_DAY); its total seconds."""
    days = max(1, heartbeats // PER_DAY)
    every = max(1, (3 * 365) // days)
    last = datetime.now(UTC).date() - timedelta(days=2)
    chosen = spread_days(last, years=3, every=every)[-days:]
    return sum(dump_file(path, chosen, per_day=PER_DAY, spacing_s=6).values())


def _upload(url: str, user: User, path: Path, pid: int) -> tuple[float, float, float]:
    """(seconds to the answer, RSS growth MiB, heartbeats imported) of one upload."""
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(_rss_mib(pid))
            done.wait(0.05)

    before = _rss_mib(pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                yield chunk

    started = time.perf_counter()
    try:
        answer = httpx.post(
            f"{url}/api/v1/import/wakatime",
            content=chunks(),
            headers={"X-API-Key": user.api_key, "Content-Type": "application/json"},
            timeout=httpx.Timeout(60.0, read=None),
        )
    finally:
        done.set()
        sampler.join()
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"import refused: {answer.status_code} {answer.text[:500]}")
    return elapsed, max(samples, default=before) - before, float(answer.json()["imported"])


async def figure_wakatime_import(
    system: System, users: list[User], scale: float, work_dir: Path, pid: int
) -> list[Row]:
    big_n = max(10_000, round(HEARTBEATS_AT_SCALE_1 * scale))
    small_user, big_user = users
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    small_path, big_path = work_dir / "small.json", work_dir / "big.json"
    await asyncio.to_thread(_export, small_path, big_n // 10)
    big_total = await asyncio.to_thread(_export, big_path, big_n)
    small_s, small_grew, small_count = await asyncio.to_thread(
        _upload, system.ingest_url, small_user, small_path, pid
    )
    big_s, big_grew, big_count = await asyncio.to_thread(
        _upload, system.ingest_url, big_user, big_path, pid
    )
    size_mib = (await asyncio.to_thread(big_path.stat)).st_size / 2**20
    started = time.perf_counter()
    try:
        async with client(system.api_url, big_user.bearer) as http:
            await wait_for_total(
                http,
                {"range": "all"},
                big_total,
                deadline=time.monotonic() + PROJECTED_CAP_S,
                what="range=all",
                interval_s=1.0,
            )
        projected = f"range=all showed the exact total {time.perf_counter() - started:.0f} s later"
    except Exception as exc:  # the figure stands; the note says what was not reached
        projected = f"range=all did not reach the exact total in {PROJECTED_CAP_S:.0f} s: {exc}"
    for path in (small_path, big_path):
        await asyncio.to_thread(path.unlink, missing_ok=True)
    return [
        Row(
            mode=system.mode,
            figure=f"12 WakaTime export, {int(big_count):,} heartbeats: server memory growth",
            unit="MiB",
            value=big_grew,
            baseline=small_grew,
            baseline_label=f"the same for an export of {int(small_count):,} heartbeats",
            notes=[
                f"{big_count / big_s:,.0f} hb/s to the answer ({size_mib:,.0f} MiB file,"
                f" {big_s:.0f} s) vs {small_count / small_s:,.0f} hb/s for the small one;"
                f" server peak RSS {process_peak_rss_mib(pid) or 0:,.0f} MiB; {projected}",
            ],
        )
    ]
