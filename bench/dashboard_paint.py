"""Figure 3, dashboard: the first paint of ``/dashboard`` for the big user vs the small one.

Headless Chromium (Debian's ``chromium``, driven by Playwright as in ``tests/browser``) signs a
page in with the user's refresh token (through the page's own ``adoptLogin``), then loads
``/dashboard?range=year`` again and again. "First paint" is the ``dashboard-painted``
performance mark: from navigation start until every number, list and chart of the page, the
year's heatmap included, is drawn from the API's answers. The small user's figure is the
baseline: what the page costs when the data costs nothing.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from typing import Any

from bench.deploy import Deployment, User
from bench.report import Row, percentile

LOADS = 15
WARMUP = 2
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
]


# Each API read of a load: its path (no query) and how long it took, start to last byte.
_READS = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/api/'))
  .map((e) => [new URL(e.name).pathname, e.responseEnd - e.startTime])"""


@dataclass
class Paints:
    """One user's loads: first-paint times (s) and each API path's durations (s)."""

    times: list[float] = field(default_factory=list)
    reads: dict[str, list[float]] = field(default_factory=dict)


def _paints(base_url: str, users: list[User], loads: int) -> list[Paints]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable is not None
    out: list[Paints] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            for user in users:
                context = browser.new_context(base_url=base_url)
                page = context.new_page()
                page.goto("/signin")
                page.evaluate(
                    "async (rt) => (await import('/static/js/core.js')).adoptLogin(rt)",
                    user.refresh_token,
                )
                paints = Paints()
                for i in range(WARMUP + loads):
                    page.goto("/dashboard?range=year")
                    page.wait_for_selector("#live-status[data-state=live]", timeout=60_000)
                    mark: Any = page.evaluate(
                        "performance.getEntriesByName('dashboard-painted')[0]?.startTime"
                    )
                    if mark is None:
                        raise RuntimeError("the dashboard never marked its first paint")
                    if i >= WARMUP:
                        paints.times.append(float(mark) / 1000)
                        for path, ms in page.evaluate(_READS):
                            paints.reads.setdefault(str(path), []).append(float(ms) / 1000)
                out.append(paints)
                context.close()
        finally:
            browser.close()
    return out


def _reads_note(paints: Paints) -> str:
    """The API reads of a load, slowest first, as p50 ms (and how many per load)."""
    loads = max(len(paints.times), 1)
    parts = sorted(
        (
            (percentile(times, 50), path, len(times) // loads)
            for path, times in paints.reads.items()
        ),
        reverse=True,
    )
    return ", ".join(
        f"{path}{f' x{count}' if count > 1 else ''} {p50 * 1000:.0f}" for p50, path, count in parts
    )


async def figure_dashboard_paint(
    deployment: Deployment, big: User, small: User, big_label: str
) -> list[Row]:
    figure = f"3 dashboard first paint (year), {big_label} user"
    if shutil.which("chromium") is None:
        return [
            Row(
                mode=deployment.mode,
                figure=figure,
                unit="s",
                value=None,
                baseline=None,
                baseline_label="100-hb user",
                notes=["chromium is not installed (make install): not measured"],
            )
        ]
    big_paints, small_paints = await asyncio.to_thread(_paints, deployment.url, [big, small], LOADS)
    big_times, small_times = big_paints.times, small_paints.times
    return [
        Row(
            mode=deployment.mode,
            figure=f"{figure} p{q}",
            unit="s",
            value=percentile(big_times, q),
            baseline=percentile(small_times, q),
            baseline_label="100-hb user",
            notes=[
                f"{LOADS} loads each after {WARMUP} warm-up loads, headless Chromium on the same "
                "machine; from navigation start to every number and chart drawn",
                f"API reads of a load, p50 ms (start to last byte; they overlap): big user "
                f"{_reads_note(big_paints)}; small user {_reads_note(small_paints)}",
            ]
            if q == 50
            else [],
        )
        for q in (50, 90)
    ]
