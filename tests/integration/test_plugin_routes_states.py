"""The store, RPC and editor routes in the states an end-to-end run cannot easily reach: a suspended
install, the key-value store or the event log gone away under the running app.

Real parts over ASGI: an embedded event log, the account directory, the QuickJS sandbox, the
SQLite key-value store (closed under the app to take it away).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from accounts.credentials import TokenIssuer
from accounts.directory import AccountDirectory, new_event_id
from accounts.oauth import StateSigner
from accounts.sessions import SessionService
from api.deps import ApiParts, OAuthSetup, install
from api.routes import accounts, plugin_editor, plugin_rpc, plugin_store
from eventlog.embedded import SqliteEventLog
from http_edge.auth import Authenticator, AuthGuards, Principal
from http_edge.errors import install_error_handlers
from plugin_host.executor import PluginExecutor, PluginPolicy, PluginServices
from plugins_runtime import PluginSandbox, SandboxLimits
from plugins_runtime.kv_sqlite import SqlitePluginKeyValue
from plugins_runtime.sql_executor import ClickHousePluginQueries
from schemas.events import PluginSuspended

pytestmark = [pytest.mark.quickjs]

SECRET = "p" * 40
SCRIPT = """
const endpoints = {
  'hits': async (ctx, req) => ({ hits: await ctx.redis.incr('hits') }),
  'hello': async (ctx, req) => ({ hello: ctx.user_id.length > 0 }),
};
"""


@dataclass
class World:
    client: httpx.AsyncClient
    log: SqliteEventLog
    directory: AccountDirectory
    kv: SqlitePluginKeyValue


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    log = SqliteEventLog(tmp_path / "log.sqlite")
    await log.start()
    directory = AccountDirectory(log)
    await directory.start()
    tokens = TokenIssuer(SECRET)
    authenticator = Authenticator(directory, tokens)

    async def read(request: Request) -> Principal:
        return await authenticator.authenticate(request)

    async def write(request: Request) -> Principal:
        return await authenticator.authenticate(request, write=True)

    sandbox = PluginSandbox(SandboxLimits(wall_s=2.0, cpu_s=2.0), workers=1)
    kv = SqlitePluginKeyValue(tmp_path / "kv.sqlite3")
    await kv.start()
    # Never reached by these scripts (no ctx.db.query); construction does no I/O.
    queries = ClickHousePluginQueries(f"chdb://{tmp_path / 'clickhouse'}")
    executor = PluginExecutor(sandbox, directory, queries, kv, base_url="http://test")
    app = FastAPI()
    install_error_handlers(app)
    install(
        app.state,
        ApiParts(
            guards=AuthGuards(read, write, read),
            is_authenticated=Authenticator.carries_credentials,
            directory=directory,
            sessions=SessionService(directory, tokens, refresh_ttl_s=3600),
            log=log,
            store=object(),
            oauth=OAuthSetup({}, StateSigner(SECRET)),
            plugins=PluginServices(executor, PluginPolicy("any", frozenset())),
        ),
    )
    for router in (accounts.router, plugin_store.router, plugin_rpc.router, plugin_editor.router):
        app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            yield World(client, log, directory, kv)
        finally:
            await kv.close()
            sandbox.close()
            await directory.close()
            await log.close()


async def account(world: World) -> tuple[dict[str, str], str]:
    created = await world.client.post("/auth/anonymous/create", json={})
    assert created.status_code == 201, created.text
    body = created.json()
    return {"Authorization": f"Bearer {body['token']}"}, body["user_id"]


async def published_and_installed(world: World) -> tuple[dict[str, str], str]:
    author, _ = await account(world)
    answer = await world.client.post(
        "/api/v1/store/publish",
        headers=author,
        json={"name": "counter", "display_name": "Counter", "server_script": SCRIPT},
    )
    assert answer.status_code == 201, answer.text
    user, user_id = await account(world)
    installed = await world.client.post("/api/v1/store/install/counter", headers=user)
    assert installed.status_code == 201, installed.text
    return user, user_id


def envelope(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


async def test_a_suspended_install_is_refused_until_installed_again(world: World) -> None:
    user, user_id = await published_and_installed(world)
    assert (await world.client.post("/api/v1/plugins/counter/rpc/hits", headers=user)).json() == {
        "hits": 1
    }
    reason = "on_tick failed 5 times in a row: TypeError: x is undefined"
    assert await world.directory.record(
        PluginSuspended(
            event_id=new_event_id(),
            user_id=user_id,
            occurred_at=time.time(),
            name="counter",
            reason=reason,
        )
    )
    error = envelope(await world.client.post("/api/v1/plugins/counter/rpc/hits", headers=user), 403)
    assert error["code"] == "plugin_suspended"
    assert error["details"]["reason"] == reason
    listed = (await world.client.get("/api/v1/store/installed", headers=user)).json()["plugins"]
    assert [(p["suspended"], p["suspended_reason"]) for p in listed] == [(True, reason)]
    resumed = await world.client.post("/api/v1/store/install/counter", headers=user)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["suspended"] is False
    again = await world.client.post("/api/v1/plugins/counter/rpc/hits", headers=user)
    assert again.json() == {"hits": 2}  # the install resumed with its data


async def test_key_value_store_gone_is_a_503_not_the_plugins_fault(world: World) -> None:
    user, _ = await published_and_installed(world)
    await world.kv.close()
    error = envelope(await world.client.post("/api/v1/plugins/counter/rpc/hits", headers=user), 503)
    assert error["code"] == "unavailable"
    # A handler that does not touch the store still runs.
    fine = await world.client.post("/api/v1/plugins/counter/rpc/hello", headers=user)
    assert fine.json() == {"hello": True}
    # Uninstalling cannot delete the data now: 503, and the same request again once it can.
    error = envelope(
        await world.client.delete("/api/v1/store/uninstall/counter", headers=user), 503
    )
    assert "again" in error["message"]


EDITOR_SCRIPT = """
async function on_tick(ctx) {
  log('counting');
  const n = await ctx.redis.incr('n');
  warn('counted', n);
  return { n };
}
"""


def ndjson(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in answer.text.splitlines()]


async def test_the_editor_streams_log_lines_then_the_outcome_or_the_error(world: World) -> None:
    user, _ = await account(world)
    run = {"server_script": EDITOR_SCRIPT, "trigger": "on_tick"}
    streamed = {**user, "Accept": "application/x-ndjson"}
    lines = ndjson(
        await world.client.post("/api/v1/plugins/editor/run", headers=streamed, json=run)
    )
    assert lines[:2] == [
        {"type": "log", "level": "log", "text": "counting"},
        {"type": "log", "level": "warn", "text": "counted 1"},
    ]
    done = lines[2]
    assert len(lines) == 3
    assert (done["type"], done["ok"], done["exit_status"], done["result"]) == (
        "done",
        True,
        0,
        {"n": 1},
    )
    assert done["logs"] == [
        {"level": "log", "text": "counting"},
        {"level": "warn", "text": "counted 1"},
    ]
    # Without the Accept header: one JSON answer, as before.
    plain = await world.client.post("/api/v1/plugins/editor/run", headers=user, json=run)
    assert plain.status_code == 200
    assert plain.json()["result"] == {"n": 2}
    # Refused before the run: the usual envelope, not a stream.
    bad = await world.client.post(
        "/api/v1/plugins/editor/run", headers=streamed, json={**run, "trigger": "rpc"}
    )
    assert envelope(bad, 400)["code"] == "validation_error"
    # The store gone mid-run: the lines logged so far, then the error envelope's body.
    await world.kv.close()
    lines = ndjson(
        await world.client.post("/api/v1/plugins/editor/run", headers=streamed, json=run)
    )
    assert lines[0] == {"type": "log", "level": "log", "text": "counting"}
    assert lines[-1]["type"] == "error"
    assert lines[-1]["error"]["code"] == "unavailable"
    assert not any(line["type"] == "done" for line in lines)


async def test_event_log_gone_is_a_503_for_store_writes(world: World) -> None:
    user, _ = await published_and_installed(world)
    await world.log.close()
    for answer in (
        await world.client.post("/api/v1/store/counter/reviews", headers=user, json={"rating": 4}),
        await world.client.post("/api/v1/store/counter/report", headers=user, json={"reason": "x"}),
    ):
        assert envelope(answer, 503)["code"] == "unavailable"
