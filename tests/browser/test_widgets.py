"""The plugin store pages and widget plugins in sandboxed frames, in a real browser."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_up
from tests.e2e.harness import Client, CodeTrackrProcess

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WEEK_WIDGET = """
container.textContent = 'Loading…';
fetch('/api/v1/stats/summary?range=7d', { headers: { 'Authorization': 'Bearer ' + token } })
  .then(function (r) { if (!r.ok) throw new Error('API error ' + r.status); return r.json(); })
  .then(function (data) {
    var box = document.createElement('div');
    box.className = 'week-total';
    box.textContent = Math.round(data.total_seconds / 60) + ' minutes this week';
    box.style.color = 'var(--text-main)';
    container.replaceChildren(box);
  });
"""

THROWING_WIDGET = "container.textContent = 'about to fail'; throw new TypeError('no data for you');"

SNOOPING_WIDGET = """
var out = [];
function probe(name, read) {
  try {
    var v = read();
    out.push(name + ':' + (v === undefined || v === null || v === '' ? 'nothing' : v));
  } catch (e) { out.push(name + ':blocked'); }
}
probe('parent', function () { return parent.document.body.innerHTML.length; });
probe('top', function () { return top.sessionStorage.getItem('ct.access'); });
probe('localStorage', function () { return localStorage.length; });
probe('sessionStorage', function () { return sessionStorage.getItem('ct.access'); });
probe('cookie', function () { return document.cookie; });
container.textContent = out.join(' ');
"""


def _publish(
    server: CodeTrackrProcess, token: str, name: str, script: str, *, install: bool = True
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    published = httpx.post(
        f"{server.url}/api/v1/store/publish",
        headers=headers,
        json={"name": name, "display_name": name.replace("-", " ").title(), "script": script},
        timeout=30,
    )
    assert published.status_code in (200, 201), published.text
    if not install:
        return
    installed = httpx.post(f"{server.url}/api/v1/store/install/{name}", headers=headers, timeout=30)
    assert installed.status_code in (200, 201), installed.text


def test_publish_install_and_run_widgets_in_sandboxed_frames(
    page: Any, server: CodeTrackrProcess
) -> None:
    account = sign_up(page, then="/store")
    suffix = account.username.removeprefix("anon-")

    # Publish from the store page.
    page.get_by_role("button", name="+ Publish plugin").click()
    form = page.locator("#publish")
    form.get_by_label("Name (kebab-case, e.g. streak-counter)").fill(f"hello-{suffix}")
    form.get_by_label("Display name").fill("Hello")
    form.get_by_label("Description").fill("Says hello")
    form.get_by_label("Widget script").fill("container.textContent = 'hello';")
    form.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-message")).to_have_text("Published Hello v0.1.0.")
    expect(page.locator(f'article[data-plugin="hello-{suffix}"]')).to_be_visible()

    # Someone else's plugin: find it, install it from its card.
    author = Client(server.url)
    _publish(server, author.token, f"week-{suffix}", WEEK_WIDGET, install=False)
    page.get_by_label("Search").fill(f"week-{suffix}")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#store-list article")).to_have_count(1)
    card = page.locator(f'article[data-plugin="week-{suffix}"]')
    card.get_by_role("button", name="Install Week").click()
    expect(card.get_by_role("button", name="Uninstall Week")).to_be_visible()

    # Review and report it from its details.
    card.get_by_role("button", name="Details of Week").click()
    expect(page.locator("#detail-heading")).to_contain_text("Week")
    page.get_by_label("Your rating").select_option("4")
    page.get_by_label("Comment").fill("handy <b>widget</b>")
    page.get_by_role("button", name="Send review").click()
    expect(page.locator("#detail-reviews")).to_contain_text("handy <b>widget</b>")
    page.get_by_label("What is wrong with this plugin?").fill("testing reports")
    page.get_by_role("button", name="Report").click()
    expect(page.locator("#detail-message")).to_have_text("Reported. Thank you.")
    screenshot(page, "store", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "store", dark=True)
    page.emulate_media(color_scheme="light")

    _publish(server, account.token, f"boom-{suffix}", THROWING_WIDGET)
    _publish(server, account.token, f"snoop-{suffix}", SNOOPING_WIDGET)

    page.goto("/dashboard")
    week = page.frame_locator(f'iframe[data-plugin="week-{suffix}"]')
    expect(week.locator(".week-total")).to_have_text("0 minutes this week")
    boom = page.frame_locator(f'iframe[data-plugin="boom-{suffix}"]')
    expect(boom.get_by_role("alert")).to_contain_text("⚠ Plugin error")
    expect(boom.get_by_role("alert")).to_contain_text("TypeError: no data for you")
    expect(page.locator(f'section[data-plugin="boom-{suffix}"]')).to_have_attribute(
        "data-error", "1"
    )
    snoop = page.frame_locator(f'iframe[data-plugin="snoop-{suffix}"]')
    expect(snoop.locator("#container")).to_have_text(
        "parent:blocked top:blocked localStorage:blocked sessionStorage:blocked cookie:blocked"
    )
    for frame in page.locator("iframe.widget-frame").all():
        assert frame.get_attribute("sandbox") == "allow-scripts"
    page.locator("#widgets").scroll_into_view_if_needed()
    screenshot(page, "dashboard-widgets", dark=False)

    # ✕ removes a panel and uninstalls its plugin.
    page.get_by_role("button", name="Remove Boom").click()
    expect(page.locator(f'section[data-plugin="boom-{suffix}"]')).to_have_count(0)
    installed = httpx.get(
        f"{server.url}/api/v1/store/installed",
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    ).json()["plugins"]
    assert {p["name"] for p in installed} == {f"week-{suffix}", f"snoop-{suffix}"}


def test_the_plugin_editor_runs_lifecycle_hooks_rpc_and_widgets(page: Any) -> None:
    sign_up(page, then="/cteditor")
    expect(page.get_by_role("button", name="on_heartbeat")).to_have_attribute(
        "aria-pressed", "true"
    )
    output = page.locator("#output")
    exit_status = page.locator("#exit-status")

    # The template's on_heartbeat, against the mock heartbeat, in the real sandbox.
    page.get_by_role("button", name="▶ Run").click()
    expect(output).to_contain_text("Heartbeat from VS Code on codetrackr")
    expect(output).to_contain_text('← {"heartbeats":1}')
    expect(exit_status).to_contain_text("exit 0")
    page.get_by_role("button", name="▶ Run").click()
    expect(output).to_contain_text('← {"heartbeats":2}')  # the editor's own key-value data

    page.get_by_role("button", name="on_tick").click()
    page.get_by_role("button", name="▶ Run").click()
    expect(output).to_contain_text("days with activity: 0")
    expect(exit_status).to_contain_text("exit 0")

    page.get_by_role("button", name="RPC").click()
    page.get_by_label("Body (JSON)").fill('{"since": "monday"}')
    page.get_by_role("button", name="▶ Run").click()
    expect(output).to_contain_text('← {"heartbeats":2,"body":{"since":"monday"}}')
    screenshot(page, "editor", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "editor", dark=True)
    page.emulate_media(color_scheme="light")

    # A failing script: its logs, then the error and exit status 1.
    page.get_by_role("button", name="on_install").click()
    page.get_by_label("Plugin script").fill(
        "function on_install(ctx) { warn('about to fail'); throw new RangeError('nope'); }"
    )
    page.keyboard.press("Control+Enter")
    expect(output.locator(".line.warn")).to_have_text("[warn] about to fail")
    expect(output).to_contain_text("plugin_error: RangeError: nope")
    expect(exit_status).to_contain_text("exit 1")

    # Lines stream while the script runs: the first is shown while the script still spins.
    page.get_by_role("button", name="on_tick").click()
    page.get_by_label("Plugin script").fill(
        "async function on_tick(ctx) { log('first line'); await ctx.redis.get('spin');"
        " const t = Date.now(); while (Date.now() - t < 2500) {} log('second line');"
        " return 'spun'; }"
    )
    page.get_by_role("button", name="▶ Run").click()
    expect(output.locator(".line", has_text="first line")).to_have_count(1)
    assert "second line" not in (output.text_content() or "")
    expect(exit_status).to_have_text("running…")
    expect(output.locator(".line", has_text="second line")).to_have_count(1)
    expect(output).to_contain_text('← "spun"')
    expect(exit_status).to_contain_text("exit 0")

    # Widget mode renders live in a sandboxed frame, with the user's real token.
    page.get_by_role("button", name="widget").click()
    page.get_by_role("button", name="Template").click()
    page.get_by_role("button", name="▶ Run").click()
    frame = page.frame_locator('iframe[data-plugin="editor-preview"]')
    expect(frame.locator("#container")).to_contain_text("0h 0m")
    expect(frame.locator("#container")).to_contain_text("this week")
