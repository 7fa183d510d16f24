"""The browser-facing security rules: CSP on every page, the session cookie, CSRF, no token in
any URL the browser requested."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_up
from tests.e2e.harness import CodeTrackrProcess
from tests.support.oauth_provider import ProviderProcess
from web.routes import PAGES

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def _page_paths() -> list[str]:
    return [p.path.replace("{username}", "someone") for p in PAGES]


@pytest.mark.parametrize("path", _page_paths())
def test_every_page_has_a_strict_content_security_policy(
    server: CodeTrackrProcess, path: str
) -> None:
    answer = httpx.get(f"{server.url}{path}", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    csp = answer.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    assert answer.headers["x-frame-options"] == "DENY"
    # No inline script or style anywhere in the markup, no inline event handlers.
    html = answer.text
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)
    assert not re.search(r"\sstyle=", html)
    # Every page sets the CSRF cookie the session calls echo.
    assert "ct_csrf=" in answer.headers.get("set-cookie", "")


def test_session_calls_need_the_csrf_token_and_a_same_site_origin(
    server: CodeTrackrProcess,
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as browser_like:
        browser_like.get("/signin")
        csrf = browser_like.cookies["ct_csrf"]
        assert browser_like.post("/web/session/refresh").status_code == 403
        wrong = browser_like.post("/web/session/refresh", headers={"X-CSRF-Token": "guess"})
        assert wrong.status_code == 403
        foreign = browser_like.post(
            "/web/session/refresh",
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        assert foreign.json()["error"]["code"] == "forbidden"
        signed_out = browser_like.post("/web/session/refresh", headers={"X-CSRF-Token": csrf})
        assert signed_out.status_code == 200
        assert signed_out.json() == {"signed_in": False}
        # Adopting a login needs a live refresh token, in a small JSON body.
        ok_headers = {"X-CSRF-Token": csrf}
        bogus = browser_like.post(
            "/web/session", headers=ok_headers, json={"refresh_token": "ctr_nope"}
        )
        assert bogus.status_code == 401
        assert "ct_refresh" not in browser_like.cookies
        assert browser_like.post("/web/session", headers=ok_headers, json={}).status_code == 400
        huge = browser_like.post(
            "/web/session", headers=ok_headers, json={"refresh_token": "x" * 10_000}
        )
        assert huge.status_code == 413


def test_the_refresh_token_lives_in_an_http_only_cookie_and_no_token_in_a_url(
    page: Any, context: Any, server: CodeTrackrProcess
) -> None:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    account = sign_up(page)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    cookies = {c["name"]: c for c in context.cookies()}
    refresh = cookies["ct_refresh"]
    assert refresh["httpOnly"] is True
    assert refresh["sameSite"] == "Strict"
    assert refresh["path"] == "/web/session"
    assert page.evaluate("document.cookie").find("ct_refresh") == -1
    assert "refresh" not in page.evaluate("JSON.stringify(sessionStorage)")
    # Neither the access token, the refresh token nor the account number is in any URL.
    secrets = [account.token, refresh["value"], account.account_number]
    assert urls
    for url in urls:
        for secret in secrets:
            assert secret not in url, url
    # A new tab of the same browser signs in from the cookie alone.
    other = context.new_page()
    other.goto("/dashboard")
    expect(other.locator("#live-status")).to_have_attribute("data-state", "live")
    other.close()
    # Signing out ends the session on the server: the old access token is refused.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(lambda url: url.endswith("/"))
    refused = httpx.get(
        f"{server.url}/api/v1/user/me",
        headers={"Authorization": f"Bearer {account.token}"},
        timeout=30,
    )
    assert refused.status_code == 401
    assert "ct_refresh" not in {c["name"] for c in context.cookies()}


def test_the_api_answers_cross_origin_reads_without_credentials_and_nothing_else(
    server: CodeTrackrProcess,
) -> None:
    # Widgets run in opaque-origin frames: their API calls are cross-origin ("null").
    preflight = httpx.options(
        f"{server.url}/api/v1/stats/summary",
        headers={
            "Origin": "null",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=30,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in preflight.headers
    read = httpx.get(f"{server.url}/api/v1/stats/public", headers={"Origin": "null"}, timeout=30)
    assert read.headers["access-control-allow-origin"] == "*"
    # The cookie session and the pages are never readable cross-origin.
    for path in ("/web/session/refresh", "/dashboard"):
        answer = httpx.request(
            "OPTIONS" if path.startswith("/web") else "GET",
            f"{server.url}{path}",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            timeout=30,
        )
        assert "access-control-allow-origin" not in answer.headers, path


def test_the_widget_frame_may_run_plugin_code_but_only_sandboxed(
    server: CodeTrackrProcess,
) -> None:
    answer = httpx.get(f"{server.url}/widget-frame", timeout=30)
    csp = answer.headers["content-security-policy"]
    host = server.url.removeprefix("http://")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == f"http://{host} https://{host} 'unsafe-eval'"
    assert directives["connect-src"] == f"http://{host} https://{host}"
    assert directives["frame-ancestors"] == f"http://{host} https://{host}"
    # The frames are always sandboxed: test_widgets checks each frame's sandbox attribute.


def test_signing_in_with_github_hands_the_tokens_over_in_the_fragment_only(
    page: Any, server: CodeTrackrProcess, oauth_provider: ProviderProcess
) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto("/signin")
    page.get_by_role("link", name="Sign in with GitHub").click()
    # The stand-in approves at once; its callback sends the browser to /signin#...tokens, whose
    # script adopts them and moves on to the dashboard.
    page.wait_for_url("**/dashboard")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    who = page.evaluate("JSON.parse(sessionStorage.getItem('ct.access'))")
    assert who["username"].startswith("octocat")
    assert any(url.startswith(f"{oauth_provider.url}/login/oauth/authorize?") for url in requested)
    assert any("/auth/github/callback?code=" in url for url in requested)
    # No request carried a token (a fragment never leaves the browser), nor did the server log
    # one; the address the browser keeps for the sign-in step has no fragment left.
    for url in requested:
        assert "access_token" not in url, url
        assert "refresh_token" not in url, url
    assert who["token"] not in server.log_path.read_text(errors="replace")
    page.go_back()
    page.wait_for_url("**/signin")
    assert "#" not in page.url
    assert "token" not in page.url
    expect(page.locator("#login-message")).to_have_text("You are signed in.")
