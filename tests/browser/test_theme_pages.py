"""Themes in the browser: install and apply from the store, repaint without reload (this tab
and others, widgets included), customize, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_up
from tests.e2e.harness import Client, CodeTrackrProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MIDNIGHT = {
    "--bg": "#101830",
    "--bg-card": "#18223f",
    "--bg-input": "#1d2a4d",
    "--bg-hover": "#24335c",
    "--text-main": "#f5f5f5",
    "--text-muted": "#b8c0d8",
    "--text-dark": "#8d97b5",
    "--border": "#2c3b66",
    "--border-focus": "#ff9a3c",
    "--accent": "#ff7a00",
}
# A widget that shows what it was given: the accent it sees and isDark.
THEME_PROBE = """
var accent = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim();
container.textContent = 'accent ' + accent + ' dark ' + isDark;
"""


def _root_var(page: Any, name: str) -> str:
    value: str = page.evaluate(
        f"getComputedStyle(document.documentElement).getPropertyValue('{name}').trim()"
    )
    return value


def test_apply_a_theme_and_every_open_page_repaints_without_reload(
    page: Any, context: Any, server: CodeTrackrProcess
) -> None:
    author = Client(server.url)
    suffix = author.username.removeprefix("anon-")
    published = author.http.post(
        "/api/v1/themes/publish",
        headers=author.bearer,
        json={"name": f"midnight-{suffix}", "display_name": "Midnight", "variables": MIDNIGHT},
    )
    assert published.status_code in (200, 201), published.text

    account = sign_up(page)
    headers = {"Authorization": f"Bearer {account.token}"}
    probe = f"probe-{suffix}"
    for call in (
        httpx.post(
            f"{server.url}/api/v1/store/publish",
            headers=headers,
            json={"name": probe, "display_name": "Probe", "script": THEME_PROBE},
            timeout=30,
        ),
        httpx.post(f"{server.url}/api/v1/store/install/{probe}", headers=headers, timeout=30),
    ):
        assert call.status_code in (200, 201), call.text

    # The dashboard stays open in a second tab.
    dashboard = context.new_page()
    dashboard.goto("/dashboard")
    widget = dashboard.frame_locator(f'iframe[data-plugin="{probe}"]').locator("#container")
    expect(widget).to_have_text("accent #2563eb dark false")
    dashboard.evaluate("window.__sameDocument = true")

    page.goto("/store?tab=themes")
    expect(page.locator("body")).to_have_attribute("data-themes", "ready")
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Install Midnight").click()
    page.get_by_role("button", name="Apply Midnight").click()
    expect(page.get_by_role("button", name="Apply Midnight")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert _root_var(page, "--bg") == "#101830"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(16, 24, 48)"
    screenshot(page, "themes")

    # The other tab repainted, and its widget runs again with the theme's variables.
    expect(widget).to_have_text("accent #ff7a00 dark true")
    assert _root_var(dashboard, "--bg") == "#101830"
    assert dashboard.evaluate("window.__sameDocument") is True
    dashboard.locator("#widgets").scroll_into_view_if_needed()
    screenshot(dashboard, "dashboard-themed")

    # Customize: a live preview, saved as an override on top of the theme.
    accent = page.get_by_label("--accent", exact=True)
    accent.fill("#00aa55")
    assert _root_var(page, "--accent") == "#00aa55"
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#vars-message")).to_have_text("Saved.")
    active = httpx.get(f"{server.url}/api/v1/themes/active", headers=headers, timeout=30).json()
    assert active["custom_vars"] == {"--accent": "#00aa55"}
    assert active["variables"]["--bg"] == "#101830"
    expect(widget).to_have_text("accent #00aa55 dark true")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export").click()
    exported = json.loads(Path(download_info.value.path()).read_text())
    assert exported["--bg"] == "#101830"
    assert exported["--accent"] == "#00aa55"

    page.get_by_role("button", name="Reset").click()
    expect(page.locator("#vars-message")).to_have_text("Overrides cleared.")
    assert _root_var(page, "--accent") == "#ff7a00"

    # Back to the default theme: the stylesheet's own values again, everywhere.
    page.get_by_role("button", name="Default").click()
    expect(page.get_by_role("button", name="Default")).to_have_attribute("aria-pressed", "true")
    assert _root_var(page, "--bg") == "#f7f7f8"
    expect(widget).to_have_text("accent #2563eb dark false")
    assert page.evaluate("window.__sameDocument") is True
    dashboard.close()
