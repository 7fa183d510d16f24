"""Page routes and static assets, each page with a strict Content-Security-Policy.

A page is one shell (:data:`_SHELL`: head, navigation, the page's body from ``web/pages`` and
its ES module) with no user data in it: scripts read everything from the JSON API with the
access token (docs/web.md). The shell names the OAuth providers that are configured, so the
sign-in page shows their buttons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache
from html import escape
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from web.session import CSRF_COOKIE, new_csrf_token, set_csrf_cookie

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
PAGES_DIR = HERE / "pages"


def content_security_policy(host: str) -> str:
    """No inline script or style, no eval, nothing from other origins; WebSockets to this host
    only (``connect-src 'self'`` does not cover ws: in every browser)."""
    sockets = f" ws://{host} wss://{host}" if host else ""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            f"connect-src 'self'{sockets}",
            "frame-src 'self'",  # widget plugins' sandboxed frames (/widget-frame)
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
            "manifest-src 'self'",
        ]
    )


def security_headers(host: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(host),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cache-Control": "no-cache",
    }


# The query parameters a page's script reads. Declared so the app-wide rule "a known filter is
# applied or refused" (http_edge/filters.py) knows the page applies them (in the browser).
async def _dashboard_query(
    range: str | None = None, start: str | None = None, end: str | None = None
) -> None:
    return None


async def _leaderboard_query(
    week: str | None = None, country: str | None = None, language: str | None = None
) -> None:
    return None


@dataclass(frozen=True)
class Page:
    path: str
    name: str  # web/pages/<name>.html and web/static/js/<name>.js
    title: str
    query: Callable[..., Awaitable[None]] | None = None


PAGES: tuple[Page, ...] = (
    Page("/", "landing", "CodeTrackr"),
    Page("/signin", "signin", "Sign in · CodeTrackr"),
    Page("/dashboard", "dashboard", "Dashboard · CodeTrackr", _dashboard_query),
    Page("/leaderboards", "leaderboards", "Leaderboards · CodeTrackr", _leaderboard_query),
    Page("/u/{username}", "profile", "Profile · CodeTrackr"),
    Page("/settings", "settings", "Settings · CodeTrackr"),
    Page("/store", "store", "Plugin store · CodeTrackr"),
    Page("/cteditor", "cteditor", "Plugin editor · CodeTrackr"),
)

WIDGET_FRAME = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/css/main.css">
<link rel="stylesheet" href="/static/css/widget.css">
<script src="/static/js/widget-frame.js"></script>
</head>
<body><div id="container"></div></body>
</html>
"""


def widget_frame_policy(host: str) -> str:
    """The widget frame's policy. The frame is sandboxed without ``allow-same-origin`` (an
    opaque origin: no access to the app's cookies, storage or DOM), so it may run the plugin's
    code (``'unsafe-eval'``) and the inline styles widgets write, and talk to this host only."""
    origin = f"http://{host} https://{host}"
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {origin} 'unsafe-eval'",
            f"style-src {origin} 'unsafe-inline'",
            f"img-src {origin} data:",
            f"connect-src {origin}",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {origin}",
        ]
    )


_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="ct-oauth" content="{providers}">
<title>{title}</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/css/main.css">
<script type="module" src="/static/js/{name}.js"></script>
</head>
<body data-page="{name}">
<a class="skip" href="#main">Skip to content</a>
<header class="topbar">
  <a class="brand" href="/">CodeTrackr</a>
  <nav aria-label="Main">
    <ul>
      <li><a href="/dashboard" data-nav="dashboard">Dashboard</a></li>
      <li><a href="/leaderboards" data-nav="leaderboards">Leaderboards</a></li>
      <li><a href="/store" data-nav="store">Plugins</a></li>
      <li><a href="/cteditor" data-nav="cteditor">Editor</a></li>
      <li><a href="/settings" data-nav="settings">Settings</a></li>
      <li class="who"><a href="/signin" id="nav-signin">Sign in</a>
        <button type="button" id="nav-signout" class="linkish" hidden>Sign out</button></li>
    </ul>
  </nav>
</header>
<main id="main" tabindex="-1">
{body}
</main>
<footer class="foot"><p>CodeTrackr · self-hosted coding time</p></footer>
</body>
</html>
"""


@cache
def _body(name: str) -> str:
    return (PAGES_DIR / f"{name}.html").read_text(encoding="utf-8")


def render(page: Page, providers: Iterable[str]) -> str:
    return _SHELL.format(
        title=escape(page.title),
        name=page.name,
        providers=escape(" ".join(sorted(providers))),
        body=_body(page.name),
    )


def build_web_router(providers: Iterable[str]) -> APIRouter:
    """The pages; ``providers`` are the configured OAuth providers' names."""
    names = tuple(providers)
    router = APIRouter(include_in_schema=False)

    def serve(page: Page) -> None:
        async def handler(request: Request) -> HTMLResponse:
            response = HTMLResponse(
                render(page, names), headers=security_headers(request.headers.get("host", ""))
            )
            if not request.cookies.get(CSRF_COOKIE):
                set_csrf_cookie(response, request, new_csrf_token())
            return response

        router.add_api_route(
            page.path,
            handler,
            methods=["GET"],
            name=f"page_{page.name}",
            dependencies=[Depends(page.query)] if page.query is not None else None,
        )

    for page in PAGES:
        serve(page)

    @router.get("/widget-frame", name="widget_frame")
    async def widget_frame(request: Request) -> HTMLResponse:
        host = request.headers.get("host", "")
        return HTMLResponse(
            WIDGET_FRAME,
            headers={
                "Content-Security-Policy": widget_frame_policy(host),
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )

    return router


def install_web(app: FastAPI, providers: Iterable[str]) -> None:
    """Serve the pages and ``/static`` on ``app``."""
    app.include_router(build_web_router(providers))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
