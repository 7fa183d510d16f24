"""Settings, public profiles, leaderboards, the landing page and keyboard use, in a browser."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_up
from tests.browser.test_dashboard import coding, send
from tests.browser.test_widgets import WEEK_WIDGET, _publish
from tests.e2e.harness import Client, CodeTrackrProcess, eventually

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_settings_create_and_revoke_an_api_key(page: Any, server: CodeTrackrProcess) -> None:
    account = sign_up(page, then="/settings")
    expect(page.locator("#keys")).to_contain_text("No API keys yet.")
    expect(page.locator("#wakatime-cfg")).to_contain_text(f"api_url = {server.url}/api/v1")

    page.get_by_label("Name", exact=True).fill("laptop")
    page.get_by_role("button", name="Create key").click()
    new_key = page.locator("#new-key-value")
    expect(new_key).to_be_visible()
    key = new_key.text_content() or ""
    assert len(key) == 36
    expect(page.locator("#keys")).to_contain_text("laptop")
    expect(page.locator("#wakatime-cfg")).to_contain_text(f"api_key = {key}")
    # The key works for an editor...
    send(server, key, coding("from-settings", "python", 2))

    page.get_by_label("Name", exact=True).fill("ci reader")
    page.get_by_label("Read-only").check()
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#keys li")).to_have_count(2)
    expect(page.locator("#keys li", has_text="ci reader")).to_contain_text("read-only")

    screenshot(page, "settings", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "settings", dark=True)
    page.emulate_media(color_scheme="light")

    # ...until it is revoked.
    page.get_by_role("button", name="Revoke key laptop").click()
    expect(page.locator("#keys li")).to_have_count(1)
    expect(page.locator("#keys")).not_to_contain_text("laptop")
    refused = httpx.post(
        f"{server.url}/api/v1/heartbeat",
        headers={"X-API-Key": key},
        json={"project": "x"},
        timeout=30,
    )
    assert refused.status_code == 401

    # Sessions list this browser and every other device; one can be signed out from here.
    expect(page.locator("#sessions")).to_contain_text("this device")
    other = httpx.post(
        f"{server.url}/auth/anonymous/login",
        headers={"User-Agent": "second-laptop/1.0"},
        json={"account_number": account.account_number},
        timeout=30,
    )
    assert other.status_code == 200, other.text
    page.reload()
    sessions = page.locator("#sessions li")
    expect(sessions).to_have_count(2)
    expect(sessions.filter(has_text="second-laptop/1.0")).to_have_count(1)
    sessions.filter(has_text="second-laptop/1.0").get_by_role(
        "button", name="Sign out this device"
    ).click()
    expect(sessions).to_have_count(1)
    expect(page.locator("#sessions")).not_to_contain_text("second-laptop")
    refused_refresh = httpx.post(
        f"{server.url}/auth/refresh",
        json={"refresh_token": other.json()["refresh_token"]},
        timeout=30,
    )
    assert refused_refresh.status_code == 401

    # The profile form saves (the timezone decides the dashboard's days; this tab has shown the
    # dashboard in UTC before, which its next first paint starts from).
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#timezone")).to_have_text("UTC")
    page.get_by_role("link", name="Settings").click()
    expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(r"."))
    page.get_by_label("Display name").fill("Ada <script>alert(1)</script>")
    page.get_by_label("Public profile").check()
    page.get_by_label("Timezone (decides your days)").select_option("Pacific/Auckland")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#profile-message")).to_have_text("Saved.")
    me = httpx.get(
        f"{server.url}/api/v1/user/me",
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    ).json()
    assert me["display_name"] == "Ada <script>alert(1)</script>"
    assert me["is_public"] is True
    assert me["timezone"] == "Pacific/Auckland"
    expect(page.locator("#badges pre").first).to_contain_text(
        f"{server.url}/badge/{account.username}/coding-time"
    )
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#timezone")).to_have_text("Pacific/Auckland")
    auckland_today = page.evaluate(
        "new Intl.DateTimeFormat('en-CA', {timeZone: 'Pacific/Auckland'}).format(new Date())"
    )
    expect(page.locator("#daily-chart rect.col")).to_have_count(7)
    expect(page.locator("#range-text")).to_contain_text(f"to {auckland_today}.")


def _public_user(server: CodeTrackrProcess, **flags: bool) -> Client:
    user = Client(server.url, timezone="UTC")
    answer = user.http.post(
        "/api/v1/user/profile/update",
        headers=user.bearer,
        json={
            "is_public": True,
            "show_in_leaderboard": True,
            "display_name": "<img src=x onerror=alert(1)>Grace",
            "bio": "writes compilers",
            **flags,
        },
    )
    assert answer.status_code == 200, answer.text
    send(server, user.api_key, coding("secret-project", "rust", 20, ago_s=60))
    return user


def test_a_public_profile_shows_only_what_its_flags_allow(
    page: Any, server: CodeTrackrProcess
) -> None:
    user = _public_user(
        server,
        profile_show_languages=True,
        profile_show_streak=True,
        profile_show_projects=False,
        profile_show_activity=False,
    )

    def projected() -> None:
        assert user.get(f"/api/v1/user/profile/{user.username}")["languages"] != []

    eventually(projected)

    page.goto(f"/u/{user.username}")
    expect(page.locator("#display-name")).to_have_text("<img src=x onerror=alert(1)>Grace")
    assert page.locator("#display-name img").count() == 0  # text, never markup
    expect(page.locator("#languages")).to_contain_text("Rust")
    expect(page.locator("#streak")).to_have_text("1 day")
    expect(page.locator("#projects-card")).to_be_hidden()
    expect(page.locator("#activity-card")).to_be_hidden()
    expect(page.locator("#heatmap-card")).to_be_hidden()
    expect(page.locator("#plugins-card")).to_be_hidden()
    assert "secret-project" not in page.content()
    screenshot(page, "profile", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "profile", dark=True)

    # The owner shows projects, activity and the plugins they published: they appear.
    plugin = f"tool-{user.username[-8:]}"
    _publish(server, user.token, plugin, WEEK_WIDGET, install=False)
    assert httpx.get(f"{server.url}/api/v1/user/profile/{user.username}").json()["plugins"] == []
    user.http.post(
        "/api/v1/user/profile/update",
        headers=user.bearer,
        json={
            "profile_show_projects": True,
            "profile_show_activity": True,
            "profile_show_plugins": True,
        },
    )
    page.reload()
    expect(page.locator("#projects")).to_contain_text("secret-project")
    shown = page.locator("#plugins li")
    expect(shown).to_have_count(1)
    expect(shown).to_contain_text(plugin.replace("-", " ").title())
    expect(shown.get_by_role("link")).to_have_attribute("href", f"/store?q={plugin}")
    expect(page.locator("#weekly")).to_have_text("20m")
    expect(page.locator("#heatmap")).to_have_attribute("src", f"/badge/{user.username}/heatmap")

    # A private profile is the same "not found" as a name nobody has.
    user.http.post("/api/v1/user/profile/update", headers=user.bearer, json={"is_public": False})


def test_a_private_profile_is_not_found(page: Any, watch: Any) -> None:
    watch.expect(404, "/api/v1/user/profile/")
    page.goto("/u/nobody-has-this-name")
    expect(page.locator("#profile-missing")).to_be_visible()
    expect(page.locator("#profile")).to_be_hidden()


def test_leaderboards_filter_by_language_country_hire_and_week(
    page: Any, server: CodeTrackrProcess
) -> None:
    ranked = _public_user(
        server, profile_show_languages=True, available_for_hire=True, country="NZ"
    )

    def on_the_board() -> None:
        board = httpx.get(f"{server.url}/api/v1/leaderboards/global?limit=500", timeout=30)
        assert ranked.username in {e["username"] for e in board.json()["leaderboard"]}

    eventually(on_the_board)
    page.goto("/leaderboards")
    expect(page.locator("#board")).to_contain_text(ranked.username)
    page.get_by_label("Available for hire only").check()
    page.get_by_label("Country (two letters)").fill("nz")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#board")).to_contain_text(ranked.username)
    expect(page).to_have_url(re.compile(r"hireable=1"))
    screenshot(page, "leaderboard", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "leaderboard", dark=True)

    page.get_by_label("Ranking").select_option("language")
    page.get_by_label("Language", exact=True).fill("rust")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#board-heading")).to_contain_text("rust")
    expect(page.locator("#board")).to_contain_text(ranked.username)
    page.get_by_label("Language", exact=True).fill("cobol")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#board")).to_contain_text("Nobody is ranked here.")

    # The address keeps the board: a reload (or a shared link) shows the same one.
    page.reload()
    expect(page.get_by_label("Ranking")).to_have_value("language")
    expect(page.get_by_label("Language", exact=True)).to_have_value("cobol")
    expect(page.locator("#board")).to_contain_text("Nobody is ranked here.")
    page.get_by_label("Ranking").select_option("global")
    page.get_by_label("Country (two letters)").fill("")
    page.get_by_label("Week", exact=True).fill("2024-W01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#board-heading")).to_contain_text("2024-W01")
    expect(page.locator("#board")).to_contain_text("Nobody is ranked here.")


def test_the_landing_page_shows_the_platform(page: Any, server: CodeTrackrProcess) -> None:
    # Someone on this week's board and a plugin in the store, whatever ran before.
    ranked = _public_user(server, profile_show_languages=True)
    _publish(server, ranked.token, f"landing-{ranked.username[-8:]}", WEEK_WIDGET)

    def on_the_board() -> None:
        board = httpx.get(f"{server.url}/api/v1/leaderboards/global?limit=500", timeout=30)
        assert ranked.username in {e["username"] for e in board.json()["leaderboard"]}

    eventually(on_the_board)
    page.goto("/")
    expect(page.locator("body")).to_have_attribute("data-loaded", "1")
    public = httpx.get(f"{server.url}/api/v1/stats/public", timeout=30).json()
    expect(page.locator("#users")).to_have_text(f"{public['users']:,}")
    # The leaderboard preview is the board's top 5, the store preview its most installed six.
    top = httpx.get(f"{server.url}/api/v1/leaderboards/global?limit=5", timeout=30).json()
    shown = [e["display_name"] or e["username"] for e in top["leaderboard"]]
    expect(page.locator("#leaders tbody tr td:nth-child(2) a")).to_have_text(shown)
    store = httpx.get(f"{server.url}/api/v1/store?sort=installs&per_page=6", timeout=30).json()
    assert store["plugins"], "a plugin was published"
    expect(page.locator("#plugins h3")).to_have_text(
        [f"{p.get('icon') or '🧩'} {p['display_name']}" for p in store["plugins"]]
    )
    expect(page.get_by_role("link", name="Get started")).to_have_attribute("href", "/signin")
    screenshot(page, "landing", dark=False)
    page.emulate_media(color_scheme="dark")
    screenshot(page, "landing", dark=True)


def test_signing_in_with_the_keyboard_alone(page: Any) -> None:
    page.goto("/signin")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    # Tab reaches the number field, then its button, the configured provider's sign-in, then
    # account creation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("textbox", name="Account number")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Sign in with GitHub")).to_be_focused()
    page.keyboard.press("Tab")
    create = page.get_by_role("button", name="Create an anonymous account")
    expect(create).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Copy")).to_be_focused()
    number = page.locator("#new-number").text_content() or ""
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Continue to your dashboard")).to_be_focused()
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard*")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    # Range buttons are buttons: Space presses them.
    page.get_by_role("button", name="30 days").focus()
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="30 days")).to_have_attribute("aria-pressed", "true")
    # A custom range from the keyboard: the button moves focus to its first date, Tab to the
    # second, Enter shows it.
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Custom")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#custom-start")).to_be_focused()
    page.keyboard.type("01022024")
    # Tab first walks the date field's own parts (Chromium), then leaves it.
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") != "custom-start":
            break
    expect(page.locator("#custom-end")).to_be_focused()
    page.keyboard.type("01082024")
    page.keyboard.press("Enter")
    expect(page.locator("#daily-chart rect.col")).to_have_count(7)
    expect(page.locator("#range-text")).to_have_text("Showing 2024-01-02 to 2024-01-08.")

    # Signing out and in again with the account number, from the keyboard.
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.endswith("/"))
    page.goto("/signin")
    page.get_by_role("textbox", name="Account number").focus()
    page.keyboard.type(number)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard*")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def test_settings_export_erase_and_delete_the_account(page: Any, server: CodeTrackrProcess) -> None:
    account = sign_up(page, then="/settings")
    key_answer = httpx.post(
        f"{server.url}/api/v1/keys",
        headers={"Authorization": f"Bearer {account.token}"},
        json={"name": "editor"},
        timeout=30,
    )
    key = key_answer.json()["key"]["key"]
    send(server, key, coding("exported", "python", 5, ago_s=60))

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export heartbeats (JSON)").click()
    download = download_info.value
    assert download.suggested_filename.startswith(f"codetrackr-{account.username}")
    assert download.suggested_filename.endswith(".json")
    assert "exported" in Path(download.path()).read_text()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export heartbeats (CSV)").click()
    assert download_info.value.suggested_filename.endswith(".csv")

    def total() -> int:
        answer = httpx.get(
            f"{server.url}/api/v1/stats/summary?range=all",
            headers={"Authorization": f"Bearer {account.token}"},
            timeout=30,
        )
        return int(answer.json()["total_seconds"])

    def recorded() -> None:
        assert total() > 0

    eventually(recorded)
    today = page.evaluate("new Intl.DateTimeFormat('en-CA', {timeZone: 'UTC'}).format(new Date())")
    yesterday = page.evaluate("new Date(Date.now() - 86400000).toISOString().slice(0, 10)")
    page.get_by_label("From (your local day)").fill(yesterday)
    page.get_by_label("To (included)").fill(today)
    page.get_by_role("button", name="Delete this range").click()
    expect(page.locator("#erase-message")).to_contain_text("is being deleted")

    def erased() -> None:
        assert total() == 0

    eventually(erased)

    page.get_by_label("Type your username to confirm").fill(account.username)
    page.get_by_role("button", name="Delete my account").click()
    page.wait_for_url(lambda url: url.endswith("/"))
    gone = httpx.get(
        f"{server.url}/api/v1/user/me",
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    )
    assert gone.status_code == 401
