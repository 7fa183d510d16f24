"""A route that reaches an event log gone away answers 503 in the envelope, without catching it.

The routes leave :class:`eventlog.port.LogError` to the app's one handler
(:func:`http_edge.errors.install_error_handlers`); these drive real account routes over ASGI
against a real embedded log closed under the running app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from accounts.credentials import TokenIssuer
from accounts.directory import AccountDirectory
from accounts.oauth import StateSigner
from accounts.sessions import SessionService
from api.deps import ApiParts, OAuthSetup, install
from api.routes import accounts
from eventlog.embedded import SqliteEventLog
from http_edge.auth import Authenticator, AuthGuards, Principal
from http_edge.errors import install_error_handlers

SECRET = "k" * 40


@pytest.fixture
async def client_and_log(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, SqliteEventLog]]:
    log = SqliteEventLog(tmp_path / "log.sqlite")
    await log.start()
    directory = AccountDirectory(log)
    await directory.start()
    tokens = TokenIssuer(SECRET)
    authenticator = Authenticator(directory, tokens)

    async def authenticate(request: Request) -> Principal:
        return await authenticator.authenticate(request)

    app = FastAPI()
    install_error_handlers(app)
    install(
        app.state,
        ApiParts(
            guards=AuthGuards(authenticate, authenticate, authenticate),
            is_authenticated=Authenticator.carries_credentials,
            directory=directory,
            sessions=SessionService(directory, tokens, refresh_ttl_s=3600),
            log=log,
            store=object(),
            oauth=OAuthSetup({}, StateSigner(SECRET)),
        ),
    )
    app.include_router(accounts.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            yield client, log
        finally:
            await directory.close()


async def test_account_route_with_log_down_answers_503_envelope(
    client_and_log: tuple[httpx.AsyncClient, SqliteEventLog],
) -> None:
    client, log = client_and_log
    created = await client.post("/auth/anonymous/create", json={})
    assert created.status_code == 201
    number = created.json()["account_number"]
    await log.close()  # the log goes away under the running app

    for path, body in (
        ("/auth/anonymous/create", {}),
        ("/auth/anonymous/login", {"account_number": number}),
    ):
        answer = await client.post(path, json=body)
        assert answer.status_code == 503, (path, answer.text)
        assert answer.headers["retry-after"] == "5"
        assert answer.json() == {
            "error": {
                "code": "unavailable",
                "message": "the event log is unavailable; nothing was changed",
                "details": {},
            }
        }
