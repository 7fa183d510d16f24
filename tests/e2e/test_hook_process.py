"""The hook process of a real ``codetrackr serve``: plugin hooks run in a child process of the
server at niceness +10, with ``ctx.db.query`` answered by the server's engine through the
internal channel (and still confined to the caller), ``plugin.event`` messages reaching the
owner's live socket, and a ``kill -9`` of the child costing no hook: the server starts it again
and the uncommitted heartbeats are delivered again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.e2e.test_plugin_hooks import ENV, kv_of, publish_and_install, user_id_of

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.quickjs, pytest.mark.slow]

# A streak-notifier style counter: every heartbeat counted once by its id, the caller's own rows
# counted through ctx.db.query, and anybody else's rows asked for (there must be none).
COUNTER = """
async function on_heartbeat(ctx, hb) {
  await ctx.redis.incr('calls');
  await ctx.redis.set('seen:' + hb.id, String(hb.time));
  const mine = await ctx.db.query(
    'SELECT count(*) AS n FROM heartbeats WHERE user_id = $1', [ctx.user_id]);
  const others = await ctx.db.query(
    'SELECT project FROM heartbeats WHERE user_id <> $1', [ctx.user_id]);
  // One query, one snapshot: everything it sees must be the caller's.
  const all = await ctx.db.query(
    'SELECT count(*) AS n, sum(CASE WHEN user_id = $1 THEN 1 ELSE 0 END) AS m FROM heartbeats',
    [ctx.user_id]);
  await ctx.redis.set('mine', String(mine[0].n));
  if (others.length > 0 || Number(all[0].n) !== Number(all[0].m)) {
    await ctx.redis.incr('leaks');
  }
  return { time: hb.time, mine: Number(mine[0].n), others: others.length };
}
"""


def hook_children(server: CodeTrackrProcess) -> list[int]:
    """The pids of the server's hook processes (its children running codetrackr.hook_child)."""
    assert server.proc is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == server.proc.pid and b"codetrackr.hook_child" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def niceness(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[16])  # field 19 of stat: nice


def one_child(server: CodeTrackrProcess) -> int:
    children = hook_children(server)
    assert len(children) == 1, children
    return children[0]


@contextlib.contextmanager
def live_socket(server: CodeTrackrProcess, user: Client) -> Iterator[ClientConnection]:
    ticket = user.http.post("/api/v1/ws-ticket", headers=user.bearer)
    assert ticket.status_code == 200, ticket.text
    url = server.url.replace("http://", "ws://") + f"/ws?ticket={ticket.json()['ticket']}"
    with connect(url, open_timeout=10, close_timeout=2) as ws:
        yield ws


def plugin_events(
    ws: ClientConnection, times: set[float], timeout_s: float
) -> list[dict[str, Any]]:
    """The plugin.event messages of the heartbeats at ``times`` (others may still arrive from
    hooks of earlier heartbeats), until all have come or the time is up."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(events) < len(times) and (left := deadline - time.monotonic()) > 0:
        with contextlib.suppress(TimeoutError):
            message = json.loads(ws.recv(timeout=left))
            if message.get("type") == "plugin.event" and message["data"]["time"] in times:
                events.append(message)
    return events


def send(user: Client, project: str, count: int, start: float) -> set[float]:
    beats = [
        {"project": project, "file": f"src/{i}.py", "lang": "python", "time": start + i * 10}
        for i in range(count)
    ]
    response = user.http.post("/api/v1/heartbeats", headers=user.key_header, json=beats)
    assert response.status_code == 200, response.text
    return {float(beat["time"]) for beat in beats}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[CodeTrackrProcess, Path]]:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data, env=ENV).start()
    try:
        yield server, data
    finally:
        server.stop()


def test_hooks_run_in_a_nice_child_with_sql_through_the_server_and_events_to_the_socket(
    served: tuple[CodeTrackrProcess, Path],
) -> None:
    server, data = served
    eventually(lambda: one_child(server), timeout_s=60)
    assert niceness(one_child(server)) == 10
    bob = Client(server.url)
    send(bob, "bob-secret-project", 5, time.time() - 3600)
    alice = Client(server.url)
    alice_id = user_id_of(alice)
    publish_and_install(alice, "counter", COUNTER)
    first = float(int(time.time()) - 1800)
    send(alice, "core", 6, first)
    eventually(lambda: _equal(len(_seen(data, alice_id)), 6), timeout_s=120)
    eventually(lambda: _equal(_projects(alice), ["core"]), timeout_s=60)
    with live_socket(server, alice) as ws:
        times = send(alice, "core", 4, first + 600)
        events = plugin_events(ws, times, timeout_s=120)
    assert len(events) == 4, events
    assert all(e["plugin"] == "counter" and e["hook"] == "on_heartbeat" for e in events)
    # The caller's rows through the server's engine; nobody else's, however asked.
    assert max(e["data"]["mine"] for e in events) >= 6
    assert all(e["data"]["others"] == 0 for e in events), events
    kv = kv_of(data, "counter", alice_id)
    assert "leaks" not in kv, kv
    eventually(lambda: _equal(len(_seen(data, alice_id)), 10), timeout_s=30)
    # The hooks are reported by the server's /readyz, as its own processor was.
    ready = alice.http.get("/readyz").json()
    checks = ready.get("checks") or ready["error"]["details"]["checks"]
    names = [p["name"] for p in checks["projector"]["projectors"]]
    assert names == ["projection-runner", "plugin-hooks"], ready


def test_kill_9_of_the_hook_child_restarts_it_and_loses_no_hook(
    served: tuple[CodeTrackrProcess, Path],
) -> None:
    server, data = served
    user = Client(server.url)
    user_id = user_id_of(user)
    publish_and_install(user, "counter", COUNTER)
    eventually(lambda: one_child(server), timeout_s=60)
    start = time.time() - 3000
    send(user, "before", 20, start)
    eventually(lambda: _equal(len(_seen(data, user_id)), 20), timeout_s=120)
    sent = 20
    for round_ in range(2):
        victim = one_child(server)
        send(user, f"round{round_}", 40, start + 300 * (round_ + 1))
        sent += 40
        os.kill(victim, signal.SIGKILL)  # in the middle of this round's hooks, or before them
        send(user, f"after{round_}", 10, start + 300 * (round_ + 1) + 200)
        sent += 10

        def restarted(victim: int = victim) -> None:
            assert one_child(server) != victim

        eventually(restarted, timeout_s=60)
    eventually(lambda: _equal(len(_seen(data, user_id)), sent), timeout_s=180)
    calls = int(kv_of(data, "counter", user_id)["calls"])
    assert calls >= sent  # at least once: a redelivered heartbeat counts a call again
    metrics = user.http.get("/metrics").text
    restarts = [
        line
        for line in metrics.splitlines()
        if line.startswith('codetrackr_projector_restarts_total{projector="plugin-hooks"}')
    ]
    assert restarts, metrics
    assert float(restarts[0].split()[-1]) >= 2, restarts


def _projects(user: Client) -> list[str]:
    return [p["project"] for p in user.get("/api/v1/stats/projects", range="all")["projects"]]


def _seen(data: Path, user_id: str) -> list[str]:
    return [key for key in kv_of(data, "counter", user_id) if key.startswith("seen:")]


def _equal(actual: object, expected: object) -> None:
    assert actual == expected


FAILING = """
async function on_heartbeat(ctx, hb) { throw new Error('always broken'); }
const endpoints = { 'ping': async (ctx, req) => ({ ok: true }) };
"""


def test_failures_in_the_hook_child_suspend_the_plugin_where_the_api_sees_it(
    tmp_path: Path,
) -> None:
    """The child counts a plugin's failures and records the suspension through the server's
    log: the server's own directory refuses the plugin's RPC calls, its /metrics counts both."""
    env = {**ENV, "CODETRACKR_PLUGIN_FAILURES_TO_SUSPEND": "3"}
    server = CodeTrackrProcess("serve", tmp_path / "data", env=env).start()
    try:
        user = Client(server.url)
        publish_and_install(user, "broken", FAILING)
        assert user.http.post("/api/v1/plugins/broken/rpc/ping", headers=user.bearer).json() == {
            "ok": True
        }
        send(user, "p", 3, float(int(time.time()) - 600))

        def suspended() -> None:
            answer = user.http.post("/api/v1/plugins/broken/rpc/ping", headers=user.bearer)
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"]["code"] == "plugin_suspended", answer.text

        eventually(suspended, timeout_s=120)

        def counted() -> None:
            metrics = user.http.get("/metrics").text
            assert 'codetrackr_plugin_hooks_total{what="suspended"} 1.0' in metrics, metrics
            assert 'codetrackr_plugin_hooks_total{what="failed"} 3.0' in metrics, metrics

        eventually(counted, timeout_s=30)
    finally:
        server.stop()
