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


def _paints(base_url: str, users: list[User], loads: int) -> list[list[float]]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable is not None
    out: list[list[float]] = []
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
                times: list[float] = []
                for i in range(WARMUP + loads):
                    page.goto("/dashboard?range=year")
                    page.wait_for_selector("#live-status[data-state=live]", timeout=60_000)
                    mark: Any = page.evaluate(
                        "performance.getEntriesByName('dashboard-painted')[0]?.startTime"
                    )
                    if mark is None:
                        raise RuntimeError("the dashboard never marked its first paint")
                    if i >= WARMUP:
                        times.append(float(mark) / 1000)
                out.append(times)
                context.close()
        finally:
            browser.close()
    return out


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
    big_times, small_times = await asyncio.to_thread(_paints, deployment.url, [big, small], LOADS)
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
                "machine; from navigation start to every number and chart drawn"
            ]
            if q == 50
            else [],
        )
        for q in (50, 90)
    ]
