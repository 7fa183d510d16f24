"""Cross-origin reads of the JSON API, for dashboard widgets.

Widget plugins run in sandboxed iframes (docs/web.md): their documents have an opaque origin,
so their ``fetch('/api/v1/...')`` calls are cross-origin and need CORS. The API authenticates by
header only (a Bearer token or API key the caller holds), never by an ambient cookie, so any
origin may call it: ``Access-Control-Allow-Origin: *`` without credentials. Browsers never
attach cookies or HTTP authentication to such a request, and the one cookie-authenticated path,
``/web/session``, is outside ``/api/`` and gets no CORS headers.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

API_PREFIX = "/api/"
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-API-Key"]


class ApiCorsMiddleware:
    """CORS for paths under ``/api/`` only; every other path is passed through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=ALLOWED_HEADERS,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(API_PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
