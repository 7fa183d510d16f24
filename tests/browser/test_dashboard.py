"""The dashboard in a real browser: sign-up, live numbers, ranges, reconnecting, a phone."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Account, screenshot, sign_up
from tests.e2e.harness import CodeTrackrProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def api_key(server: CodeTrackrProcess, account: Account) -> str:
    answer = httpx.post(
        f"{server.url}/api/v1/keys",
        headers={"Authorization": f"Bearer {account.token}"},
        json={"name": "editor"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    key: str = answer.json()["key"]["key"]
    return key


def send(server: CodeTrackrProcess, key: str, beats: list[dict[str, Any]]) -> None:
    answer = httpx.post(
        f"{server.url}/api/v1/heartbeats", headers={"X-API-Key": key}, json=beats, timeout=30
    )
    assert answer.status_code == 200, answer.text


def coding(project: str, lang: str, minutes: int, *, ago_s: float = 0) -> list[dict[str, Any]]:
    """Heartbeats a minute apart covering ``minutes`` of coding that ended ``ago_s`` ago."""
    end = time.time() - ago_s
    return [
        {
            "project": project,
            "lang": lang,
            "file": f"src/{project}.py",
            "branch": "main",
            "editor": "neovim",
            "os": "Linux",
            "machine": "desk",
            "time": end - 60 * (minutes - i),
            "duration": 60,
        }
        for i in range(minutes)
    ]


def test_the_dashboard_updates_live_and_switches_ranges(
    page: Any, server: CodeTrackrProcess
) -> None:
    account = sign_up(page)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator("#total")).to_have_text("0m")
    expect(page.locator("#rank")).to_have_text("Not on this week's leaderboard")
    expect(page.locator("#timezone")).to_have_text("UTC")  # the browser's zone at sign-up
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # On the boards, so a rank can change live (`leaderboard.changed`).
    joined = httpx.post(
        f"{server.url}/api/v1/user/profile/update",
        headers={"Authorization": f"Bearer {account.token}"},
        json={"is_public": True, "show_in_leaderboard": True},
        timeout=30,
    )
    assert joined.status_code == 200, joined.text
    key = api_key(server, account)
    send(server, key, coding("rocket", "python", 30, ago_s=40 * 60))

    # Live: the totals, lists and charts change without a reload.
    expect(page.locator("#total")).to_have_text("30m", timeout=20_000)
    expect(page.locator('[data-dim="language"]')).to_contain_text("Python")
    expect(page.locator('[data-dim="project"]')).to_contain_text("rocket")
    expect(page.locator('[data-dim="editor"]')).to_contain_text("neovim")
    expect(page.locator('[data-dim="machine"]')).to_contain_text("desk")
    expect(page.locator('[data-dim="branch"]')).to_contain_text("main")
    expect(page.locator('[data-dim="os"]')).to_contain_text("Linux")
    expect(page.locator("#streak")).to_have_text("1 day")
    expect(page.locator("#last-activity-sub")).to_contain_text("rocket")
    # The rank is only re-read from `leaderboard.changed` (a range reload does not touch it).
    expect(page.locator("#rank")).to_contain_text("This week: rank #", timeout=20_000)
    expect(page.locator("#daily-chart rect.col")).to_have_count(7)
    # The charts are redrawn too (their text summaries say what they draw).
    daily_chart = page.locator("#daily-chart svg")
    year_map = page.locator("#heatmap svg")
    expect(daily_chart).to_have_attribute("aria-label", re.compile(r": 7 days, 30m in all$"))
    expect(year_map).to_have_attribute("aria-label", re.compile(r": 30m on 1 days$"))
    send(server, key, coding("engine", "rust", 15, ago_s=5))
    expect(page.locator("#total")).to_have_text("45m", timeout=20_000)
    expect(daily_chart).to_have_attribute("aria-label", re.compile(r": 7 days, 45m in all$"))
    expect(year_map).to_have_attribute("aria-label", re.compile(r": 45m on 1 days$"))
    expect(page.locator('[data-dim="language"]')).to_contain_text("Rust")
    assert page.evaluate("window.__sameDocument") is True

    # Ranges: each button re-reads its span; the choice is kept in the address.
    page.get_by_role("button", name="30 days").click()
    expect(page.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#daily-chart rect.col")).to_have_count(30)
    assert "range=30d" in page.url
    page.get_by_role("button", name="Today").click()
    expect(page.locator("#daily-chart rect.col")).to_have_count(1)
    page.get_by_role("button", name="6 months").click()
    expect(page.locator("#daily-chart rect.col")).to_have_count(six_months_of_days(page))
    expect(page.locator("#total")).to_have_text("45m")
    page.get_by_role("button", name="All time").click()
    expect(page.get_by_role("button", name="All time")).to_have_attribute("aria-pressed", "true")
    assert "range=all" in page.url
    expect(page.locator("#total")).to_have_text("45m")
    expect(page.locator("#range-text")).to_contain_text("Showing")
    page.get_by_role("button", name="Year").click()
    expect(page.locator("#daily-chart rect.col")).to_have_count(365)
    page.get_by_role("button", name="Custom").click()
    expect(page.locator("#custom-start")).to_be_focused()
    page.fill("#custom-start", "2024-01-01")
    page.fill("#custom-end", "2024-01-10")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#daily-chart rect.col")).to_have_count(10)
    expect(page.locator("#total")).to_have_text("0m")
    # The address restores the range.
    page.reload()
    expect(page.get_by_role("button", name="Custom")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#custom-start")).to_have_value("2024-01-01")
    expect(page.locator("#daily-chart rect.col")).to_have_count(10)
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="7 days").click()
    expect(page.locator("#total")).to_have_text("45m")
    expect(page.locator("#heatmap rect.l0, #heatmap rect.l1, #heatmap rect.l4")).to_have_count(365)
    assert page.evaluate("window.__sameDocument") is True

    screenshot(page, "dashboard", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "dashboard", dark=True)


def six_months_of_days(page: Any) -> int:
    """Days of the 6-month range in the page's timezone (UTC here): from the day after the same
    date six months ago to today."""
    days: int = page.evaluate(
        """() => {
          const today = new Date(new Date().toISOString().slice(0, 10) + 'T00:00:00Z');
          const start = new Date(today);
          start.setUTCMonth(start.getUTCMonth() - 6);
          return Math.round((today - start) / 86400000);
        }"""
    )
    return days


def test_the_dashboard_reconnects_with_a_fresh_ticket_after_a_drop(
    page: Any, server: CodeTrackrProcess
) -> None:
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        sockets.append(ws)
        if len(sockets) in (2, 3):  # the server is "gone" for two attempts
            ws.close(code=1011, reason="gone")
        else:
            ws.connect_to_server()

    page.route_web_socket("**/ws?ticket=*", route)
    account = sign_up(page)
    status = page.locator("#live-status")
    expect(status).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    sockets[0].close(code=1011, reason="dropped")
    expect(status).to_have_attribute("data-state", "offline")
    expect(status).to_contain_text("Offline")
    expect(status).to_have_attribute("data-state", "live", timeout=20_000)
    assert len(sockets) == 4
    tickets = [ws.url.split("ticket=")[1] for ws in sockets]
    assert len(set(tickets)) == 4, "every attempt redeems a fresh ticket"

    # And it is really live again.
    send(server, api_key(server, account), coding("after-drop", "go", 10, ago_s=5))
    expect(page.locator("#total")).to_have_text("10m", timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True


def test_the_dashboard_fits_a_phone(browser: Any, server: CodeTrackrProcess, watch: Any) -> None:
    ctx = browser.new_context(
        base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    try:
        phone = ctx.new_page()
        phone.on("console", watch.on_console)
        phone.on("response", watch.on_response)
        phone.on("requestfailed", watch.on_request_failed)
        phone.on("pageerror", lambda exc: watch.problems.append(f"uncaught: {exc}"))
        sign_up(phone)
        expect(phone.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(phone.get_by_role("button", name="6 months")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone ({width}px wide)"
        phone.get_by_role("button", name="6 months").click()
        expect(phone.get_by_role("button", name="6 months")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(phone.locator("#daily-chart rect.col")).not_to_have_count(7)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(phone, "dashboard-phone")
        # Every other page fits too, and its navigation stays reachable.
        username = phone.evaluate("JSON.parse(sessionStorage.getItem('ct.access')).username")
        for path in [
            "/",
            "/leaderboards",
            "/settings",
            "/store",
            "/store?tab=themes",
            "/cteditor",
            f"/u/{username}",
            "/signin",
        ]:
            if path.startswith("/u/"):
                watch.expect(404, "/api/v1/user/profile/")  # a new account's profile is private
            phone.goto(path)
            if path == "/signin":
                expect(phone.locator("#login-message")).to_have_text("You are signed in.")
            else:
                expect(phone.locator("body")).to_have_attribute("data-loaded", re.compile(r"."))
            wide = phone.evaluate("document.documentElement.scrollWidth")
            assert wide <= 390, f"{path} scrolls sideways on a phone ({wide}px wide)"
            expect(phone.get_by_role("link", name="Settings")).to_be_in_viewport()
    finally:
        ctx.close()
    assert watch.problems == [], "\n".join(watch.problems)
