"""Browser tests: real headless Chromium (Debian's ``chromium``, driven by Playwright through its
executable path) against one ``codetrackr serve`` on a socket.

One server and one browser serve the whole session (starting each takes a second or more); each
test gets its own browser context (cookies and storage of its own) and page. The ``watch``
fixture fails a test on any console error, uncaught exception, failed request or 4xx/5xx
answer, except those the test declared with ``watch.expect(...)``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import CodeTrackrProcess, free_port
from tests.support.oauth_provider import ProviderProcess, start_provider

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
INSTALL_HINT = "chromium not found: run `make install` (or `apt-get install chromium`)"
# Chromium's own traffic (updates, safe browsing, metrics...) would only slow the tests and
# show up as failed requests on a machine without internet access.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,InterestFeedContentSuggestions",
]


def chromium_binary() -> str:
    """The browser's path; skips (fails under CI) when it is not installed."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET = "codetrackr-browser", "provider-secret-" + "b" * 20


@pytest.fixture(scope="session")
def oauth_provider() -> Iterator[ProviderProcess]:
    """A stand-in GitHub (``tests/support/oauth_provider.py``) on its own socket."""
    provider = start_provider(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET)
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, oauth_provider: ProviderProcess
) -> Iterator[CodeTrackrProcess]:
    port = free_port()
    p = oauth_provider.url
    env = {
        # Anonymous accounts may publish plugins here (the store pages publish from the browser).
        "CODETRACKR_PLUGIN_PUBLISH": "any",
        # GitHub sign-in against the stand-in; logins come back to the sign-in page.
        "CODETRACKR_OAUTH_GITHUB_CLIENT_ID": OAUTH_CLIENT_ID,
        "CODETRACKR_OAUTH_GITHUB_CLIENT_SECRET": OAUTH_CLIENT_SECRET,
        "CODETRACKR_OAUTH_GITHUB_AUTHORIZE_URL": f"{p}/login/oauth/authorize",
        "CODETRACKR_OAUTH_GITHUB_TOKEN_URL": f"{p}/login/oauth/access_token",
        "CODETRACKR_OAUTH_GITHUB_USERINFO_URL": f"{p}/user",
        "CODETRACKR_OAUTH_RETURN_URL": f"http://127.0.0.1:{port}/signin",
    }
    proc = CodeTrackrProcess(
        "serve", tmp_path_factory.mktemp("browser") / "data", env=env, port=port
    ).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium_binary()
    from playwright.sync_api import expect, sync_playwright

    # Assertions poll the page; on a busy shared machine a write (an account, a key) can take
    # seconds, so they wait up to 15 s, like every other action.
    expect.set_options(timeout=15_000)

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What went wrong in a page: console errors, page errors, failed requests, 4xx/5xx."""

    problems: list[str] = field(default_factory=list)
    expected: list[tuple[int, str]] = field(default_factory=list)

    def expect(self, status: int, url_part: str) -> None:
        """Allow answers of ``status`` for URLs containing ``url_part`` (and the console line
        the browser logs for each)."""
        self.expected.append((status, url_part))

    def _allowed(self, status: int, url: str) -> bool:
        return any(status == s and part in url for s, part in self.expected)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text = message.text
        location = message.location.get("url", "") if message.location else ""
        if "Failed to load resource" in text and any(
            f"status of {s}" in text and part in location for s, part in self.expected
        ):
            return
        self.problems.append(f"console error: {text} ({location})")

    def on_response(self, response: Any) -> None:
        if response.status >= 400 and not self._allowed(response.status, response.url):
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def on_request_failed(self, request: Any) -> None:
        failure = request.failure or ""
        # A navigation away cancels the old page's pending fetches and sockets.
        if "ERR_ABORTED" in failure:
            return
        self.problems.append(f"request failed: {request.method} {request.url} {failure}")


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context(browser: Any, server: CodeTrackrProcess) -> Iterator[Any]:
    ctx = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 900}, timezone_id="UTC"
    )
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, watch: Watch) -> Iterator[Any]:
    tab = context.new_page()
    tab.on("console", watch.on_console)
    tab.on("pageerror", lambda exc: watch.problems.append(f"uncaught: {exc}"))
    tab.on("response", watch.on_response)
    tab.on("requestfailed", watch.on_request_failed)
    yield tab
    assert watch.problems == [], "\n".join(watch.problems)


def screenshot(page: Any, name: str, *, dark: bool | None = None) -> Path:
    """Write docs/screenshots/<name>[-light|-dark].png of the whole page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if dark is None else ("-dark" if dark else "-light")
    path = SCREENSHOTS / f"{name}{suffix}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@dataclass
class Account:
    username: str
    account_number: str
    token: str  # the page's access token, for API calls a test makes as this user


def access_token(page: Any) -> str:
    token: str = page.evaluate("JSON.parse(sessionStorage.getItem('ct.access')).token")
    return token


def sign_up(page: Any, *, then: str = "/dashboard") -> Account:
    """Create an anonymous account through the sign-in page and land on ``then``."""
    page.goto(f"/signin?next={then}")
    page.get_by_role("button", name="Create an anonymous account").click()
    number = page.locator("#new-number")
    # Three writes in a row (the account, its session, the cookie's rotation): on a shared
    # machine under heavy load they have taken more than the usual 15 s.
    number.wait_for(state="visible", timeout=45_000)
    account_number = number.text_content() or ""
    username = page.evaluate("JSON.parse(sessionStorage.getItem('ct.access')).username")
    token = access_token(page)
    page.get_by_role("link", name="Continue to your dashboard").click()
    page.wait_for_url(f"**{then}*")
    return Account(username, account_number, token)
