"""The plugin store and RPC end to end on one real ``codetrackr serve``: publishing (upsert, only
the original publisher, checked server scripts, bounds), browsing without login, installs,
reviews, reports, moderation (ban, unban, delete) and RPC into the real QuickJS sandbox with
``ctx.redis`` and ``ctx.db.query`` bound to the caller alone."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.e2e.test_serve_end_to_end import yesterday_noon

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.quickjs, pytest.mark.slow]

ADMIN = "store-admin"
ENV = {
    "CODETRACKR_JWT_SECRET": "plugin-store-e2e-" + "s" * 40,
    "CODETRACKR_PLUGIN_PUBLISH": "any",
    "CODETRACKR_ADMINS": ADMIN,
    "CODETRACKR_PLUGIN_TIMEOUT_S": "1",
    "CODETRACKR_PLUGIN_WORKERS": "2",
}

# The seed's streak notifier endpoints, plus a few to poke at the sandbox's answers.
STREAK = """
const endpoints = {
  'get-streak': async (ctx, req) => {
    const streak = await ctx.redis.get('streak');
    const lastDay = await ctx.redis.get('last-day');
    return { streak: parseInt(streak || '0', 10), last_day: lastDay || null };
  },
  'reset-streak': async (ctx, req) => {
    await ctx.redis.set('streak', '0');
    await ctx.redis.set('last-day', '');
    log('Streak reset by user', ctx.user_id);
    return { ok: true };
  },
  'bump': async (ctx, req) => {
    const streak = await ctx.redis.incr('streak');
    await ctx.redis.set('last-day', String(req.day));
    return { streak };
  },
  'stats': async (ctx, req) => {
    const rows = await ctx.db.query(
      `SELECT COUNT(*) as sessions, SUM(duration_seconds) as total_secs
       FROM heartbeats WHERE user_id = $1`,
      [ctx.user_id]
    );
    return { sessions: Number(rows[0].sessions), total_secs: Number(rows[0].total_secs || 0),
             user_id: ctx.user_id };
  },
  'everyone': async (ctx, req) => {
    const rows = await ctx.db.query('SELECT DISTINCT user_id FROM heartbeats', []);
    return rows.map(r => r.user_id);
  },
  'set-threshold': async (ctx, req) => {
    const threshold = Number(req.threshold) || 3600;
    await ctx.db.query(
      `INSERT INTO plugin_settings (user_id, plugin, settings) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, plugin) DO UPDATE SET settings = EXCLUDED.settings`,
      [ctx.user_id, req.plugin, JSON.stringify({ threshold })]
    );
    return { ok: true, threshold };
  },
  'settings': async (ctx, req) =>
    await ctx.db.query('SELECT plugin, settings FROM plugin_settings', []),
  'echo': async (ctx, req) => ({ got: req }),
  'boom': async (ctx, req) => { throw new TypeError('kaput: ' + req.why); },
  'spin': (ctx, req) => { for (;;) {} },
};
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("store") / "data", env=ENV)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def admin(server: CodeTrackrProcess) -> Client:
    return Client(server.url).rename(ADMIN)


def status(response: httpx.Response, expected: int) -> Any:
    assert response.status_code == expected, response.text
    return response.json()


def error(response: httpx.Response, expected: int) -> tuple[str, str]:
    body = status(response, expected)
    return body["error"]["code"], body["error"]["message"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def publish(user: Client, name: str, expected: int = 201, **fields: Any) -> Any:
    body = {"name": name, **fields}
    if expected == 201:
        body.setdefault("display_name", name.title())
    return status(user.http.post("/api/v1/store/publish", headers=user.bearer, json=body), expected)


def install(user: Client, name: str, expected: int = 201) -> Any:
    return status(user.http.post(f"/api/v1/store/install/{name}", headers=user.bearer), expected)


def rpc(user: Client, name: str, handler: str, body: Any = None, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", user.bearer)
    if body is None:
        return user.http.post(f"/api/v1/plugins/{name}/rpc/{handler}", headers=headers, **kw)
    return user.http.post(f"/api/v1/plugins/{name}/rpc/{handler}", headers=headers, json=body)


def store(server: CodeTrackrProcess, **params: Any) -> Any:
    return status(httpx.get(f"{server.url}/api/v1/store", params=params), 200)


# ---- publishing ------------------------------------------------------------------------------


def test_publish_then_update_keeps_omitted_fields_and_lists_versions(
    server: CodeTrackrProcess,
) -> None:
    alice = Client(server.url)
    name = unique("velocity")
    first = publish(
        alice,
        name,
        display_name="Project Velocity",
        description="Visualize your commit velocity over time.",
        version="1.0.0",
        icon="\N{CHART WITH UPWARDS TREND}",
        widget_type="counter",
        repository="https://github.com/you/my-cool-widget",
        script='container.textContent = "Loading...";',
    )["plugin"]
    assert first["author"] == alice.username
    assert (first["version"], first["widget_type"], first["install_count"]) == (
        "1.0.0",
        "counter",
        0,
    )
    assert (first["rating"], first["review_count"]) == (None, 0)
    assert first["created_at"].endswith("Z")
    updated = publish(alice, name, 200, version="1.1.0", script="/* updated script */")["plugin"]
    assert updated["display_name"] == "Project Velocity"  # omitted: kept
    assert updated["description"] == "Visualize your commit velocity over time."
    assert updated["script"] == "/* updated script */"
    assert [v["version"] for v in updated["versions"]] == ["1.1.0", "1.0.0"]
    detail = status(httpx.get(f"{server.url}/api/v1/store/{name}"), 200)["plugin"]
    assert detail["version"] == "1.1.0"
    assert detail["script"] == "/* updated script */"
    assert detail["installed"] is None  # no credentials: not asked
    # Defaults of a first publish (the seed's).
    other = unique("defaults")
    plain = publish(alice, other, display_name="Plain")["plugin"]
    assert (plain["version"], plain["icon"], plain["repository"]) == (
        "0.1.0",
        "\N{ELECTRIC PLUG}",
        None,
    )


def test_only_the_original_publisher_may_update_a_name(server: CodeTrackrProcess) -> None:
    alice, mallory = Client(server.url), Client(server.url)
    name = unique("mine")
    publish(alice, name, script="/* alice */")
    code, message = error(
        mallory.http.post(
            "/api/v1/store/publish",
            headers=mallory.bearer,
            json={"name": name, "display_name": "Stolen", "script": "/* mallory */"},
        ),
        409,
    )
    assert code == "name_taken"
    assert name in message
    detail = status(httpx.get(f"{server.url}/api/v1/store/{name}"), 200)["plugin"]
    assert detail["script"] == "/* alice */"
    assert detail["author"] == alice.username


def test_publish_validates_fields_scripts_and_sizes(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)

    def refused(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        answer = alice.http.post("/api/v1/store/publish", headers=alice.bearer, json=body)
        payload = status(answer, 400)
        return payload["error"]["code"], payload["error"]["details"]

    assert refused({"name": "Not Kebab", "display_name": "x"})[0] == "validation_error"
    assert refused({"name": "installed", "display_name": "x"})[0] == "validation_error"
    code, details = refused({"name": unique("nodisplay")})
    assert (code, details["fields"]) == (
        "validation_error",
        {"display_name": "required on the first publish"},
    )
    assert (
        "widget_type"
        in refused({"name": unique("w"), "display_name": "x", "widget_type": "x"})[1]["fields"]
    )
    assert (
        "repository"
        in refused({"name": unique("r"), "display_name": "x", "repository": "javascript:alert(1)"})[
            1
        ]["fields"]
    )
    big = "x" * (256 * 1024 + 1)
    assert (
        "script"
        in refused({"name": unique("big"), "display_name": "x", "script": big})[1]["fields"]
    )
    # A server script must compile and finish its top level.
    code, details = refused(
        {"name": unique("syntax"), "display_name": "x", "server_script": "const endpoints = {"}
    )
    assert (code, details["kind"]) == ("invalid_server_script", "plugin_error")
    code, details = refused(
        {"name": unique("loop"), "display_name": "x", "server_script": "for (;;) {}"}
    )
    assert (code, details["kind"]) == ("invalid_server_script", "timeout")
    code, details = refused(
        {"name": unique("module"), "display_name": "x", "server_script": "export const a = 1;"}
    )
    assert code == "invalid_server_script"
    # Nothing of the refused publishes was stored.
    assert store(server, q="syntax")["total"] == 0


# ---- browsing --------------------------------------------------------------------------------


def test_browse_search_sort_and_pages_without_login(server: CodeTrackrProcess) -> None:
    alice, bob, carol = Client(server.url), Client(server.url), Client(server.url)
    tag = uuid.uuid4().hex[:10]
    names = [unique(f"b{i}") for i in range(3)]
    for i, name in enumerate(names):
        publish(alice, name, description=f"tag {tag} number {i}")
    install(bob, names[1])
    install(carol, names[1])
    install(bob, names[2])
    status(
        bob.http.post(f"/api/v1/store/{names[0]}/reviews", headers=bob.bearer, json={"rating": 5}),
        201,
    )
    by_installs = store(server, q=tag.upper())
    assert [p["name"] for p in by_installs["plugins"]] == [names[1], names[2], names[0]]
    assert [p["install_count"] for p in by_installs["plugins"]] == [2, 1, 0]
    assert by_installs["total"] == 3
    assert [p["name"] for p in store(server, q=tag, sort="new")["plugins"]] == names[::-1]
    assert next(p["name"] for p in store(server, q=tag, sort="rating")["plugins"]) == names[0]
    second = store(server, q=tag, sort="new", per_page=2, page=2)
    assert [p["name"] for p in second["plugins"]] == [names[0]]
    assert (second["total"], second["total_pages"], second["page"]) == (3, 2, 2)
    assert store(server, q=tag, page=9)["plugins"] == []
    card = by_installs["plugins"][0]
    assert set(card) == {
        "name",
        "display_name",
        "description",
        "version",
        "icon",
        "widget_type",
        "repository",
        "author",
        "install_count",
        "rating",
        "review_count",
        "created_at",
        "updated_at",
    }
    assert error(httpx.get(f"{server.url}/api/v1/store", params={"per_page": 1000}), 400)
    assert error(httpx.get(f"{server.url}/api/v1/store", params={"sort": "x"}), 400)
    assert error(httpx.get(f"{server.url}/api/v1/store/{unique('nobody')}"), 404)[0] == "not_found"


# ---- installs --------------------------------------------------------------------------------


def test_install_uninstall_and_the_installed_list_with_scripts(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    name = unique("widget")
    publish(alice, name, script="container.textContent = 'hi';", widget_type="text")
    assert error(bob.http.post(f"/api/v1/store/install/{unique('x')}", headers=bob.bearer), 404)
    first = install(bob, name, 201)
    assert (first["status"], first["suspended"]) == ("installed", False)
    again = install(bob, name, 200)
    assert again["installed_at"] == first["installed_at"]
    listed = bob.get("/api/v1/store/installed")
    assert [p["name"] for p in listed["plugins"]] == [name]
    row = listed["plugins"][0]
    assert row["script"] == "container.textContent = 'hi';"
    assert (row["suspended"], row["suspended_reason"], row["version"]) == (False, None, "0.1.0")
    assert row["installed_at"] == first["installed_at"]
    detail = status(bob.http.get(f"/api/v1/store/{name}", headers=bob.bearer), 200)["plugin"]
    assert detail["installed"] is True
    assert detail["install_count"] == 1
    # An API key may install too (it writes); the list is the same through it.
    assert bob.http.get("/api/v1/store/installed", headers=bob.key_header).json() == listed
    bye = bob.http.delete(f"/api/v1/store/uninstall/{name}", headers=bob.bearer)
    assert status(bye, 200)["status"] == "uninstalled"
    assert bob.get("/api/v1/store/installed")["plugins"] == []
    code, _ = error(bob.http.delete(f"/api/v1/store/uninstall/{name}", headers=bob.bearer), 404)
    assert code == "not_installed"
    assert (
        status(httpx.get(f"{server.url}/api/v1/store/{name}"), 200)["plugin"]["install_count"] == 0
    )
    assert error(httpx.post(f"{server.url}/api/v1/store/install/{name}"), 401)


# ---- reviews and reports ---------------------------------------------------------------------


def test_reviews_one_per_user_editable_and_averaged(server: CodeTrackrProcess) -> None:
    alice, bob, carol = Client(server.url), Client(server.url), Client(server.url)
    name = unique("rated")
    publish(alice, name)

    def review(user: Client, rating: int, comment: str = "", expected: int = 201) -> Any:
        answer = user.http.post(
            f"/api/v1/store/{name}/reviews",
            headers=user.bearer,
            json={"rating": rating, "comment": comment},
        )
        return status(answer, expected)

    assert review(bob, 4, "solid")["review_count"] == 1
    both = review(carol, 2, "meh")
    assert (both["rating"], both["review_count"]) == (3.0, 2)
    edited = review(bob, 5, "even better", expected=200)
    assert (edited["rating"], edited["review_count"]) == (3.5, 2)
    assert edited["review"]["comment"] == "even better"
    listed = status(httpx.get(f"{server.url}/api/v1/store/{name}/reviews"), 200)
    assert [(r["username"], r["rating"]) for r in listed["reviews"]] == [
        (bob.username, 5),
        (carol.username, 2),
    ]
    assert (listed["total"], listed["rating"]) == (2, 3.5)
    paged = status(
        httpx.get(f"{server.url}/api/v1/store/{name}/reviews", params={"per_page": 1, "page": 2}),
        200,
    )
    assert [r["username"] for r in paged["reviews"]] == [carol.username]
    card = status(httpx.get(f"{server.url}/api/v1/store/{name}"), 200)["plugin"]
    assert (card["rating"], card["review_count"]) == (3.5, 2)
    for bad in (0, 6):
        error(
            bob.http.post(
                f"/api/v1/store/{name}/reviews", headers=bob.bearer, json={"rating": bad}
            ),
            400,
        )
    # The author does not rate their own plugin.
    error(
        alice.http.post(f"/api/v1/store/{name}/reviews", headers=alice.bearer, json={"rating": 5}),
        400,
    )


def test_reports_reach_the_admins_only(server: CodeTrackrProcess, admin: Client) -> None:
    alice, bob = Client(server.url), Client(server.url)
    name = unique("shady")
    publish(alice, name)
    reported = bob.http.post(
        f"/api/v1/store/{name}/report", headers=bob.bearer, json={"reason": "mines crypto"}
    )
    assert status(reported, 201)["status"] == "reported"
    error(bob.http.post(f"/api/v1/store/{name}/report", headers=bob.bearer, json={}), 400)
    error(bob.http.get("/api/v1/admin/store/reports", headers=bob.bearer), 403)
    reports = admin.get("/api/v1/admin/store/reports", per_page=100)["reports"]
    mine = [r for r in reports if r["name"] == name]
    assert [(r["reason"], r["reporter"], r["banned"]) for r in mine] == [
        ("mines crypto", bob.username, False)
    ]


# ---- RPC -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def streak(server: CodeTrackrProcess) -> tuple[str, Client, Client]:
    """A published streak plugin installed by ``alice`` and ``bob`` (the author installs too)."""
    author, alice, bob = Client(server.url), Client(server.url), Client(server.url)
    name = unique("streak-notifier")
    publish(author, name, server_script=STREAK)
    install(alice, name)
    install(bob, name)
    return name, alice, bob


def test_rpc_runs_endpoints_with_each_users_own_keys(
    streak: tuple[str, Client, Client],
) -> None:
    name, alice, bob = streak
    assert status(rpc(alice, name, "get-streak"), 200) == {"streak": 0, "last_day": None}
    assert status(rpc(alice, name, "bump", {"day": "2026-03-01"}), 200) == {"streak": 1}
    assert status(rpc(alice, name, "bump", {"day": "2026-03-02"}), 200) == {"streak": 2}
    assert status(rpc(alice, name, "get-streak"), 200) == {"streak": 2, "last_day": "2026-03-02"}
    # Bob's install has its own keys: never Alice's.
    assert status(rpc(bob, name, "get-streak"), 200) == {"streak": 0, "last_day": None}
    assert status(rpc(bob, name, "bump", {"day": "x"}), 200) == {"streak": 1}
    assert status(rpc(alice, name, "get-streak"), 200)["streak"] == 2
    # Through an API key that may write, and with the handler name sanitized.
    assert status(rpc(alice, name, "get-streak!", headers=alice.key_header), 200)["streak"] == 2
    assert status(rpc(alice, name, "reset-streak"), 200) == {"ok": True}
    assert status(rpc(alice, name, "get-streak"), 200) == {"streak": 0, "last_day": None}
    # Uninstalling deletes the plugin's data of that user only.
    assert status(rpc(alice, name, "bump", {"day": "d"}), 200) == {"streak": 1}
    status(alice.http.delete(f"/api/v1/store/uninstall/{name}", headers=alice.bearer), 200)
    assert error(rpc(alice, name, "get-streak"), 403)[0] == "not_installed"
    install(alice, name)
    assert status(rpc(alice, name, "get-streak"), 200) == {"streak": 0, "last_day": None}
    assert status(rpc(bob, name, "get-streak"), 200) == {"streak": 1, "last_day": "x"}


def test_rpc_reads_only_the_callers_rows(streak: tuple[str, Client, Client]) -> None:
    name, alice, bob = streak
    t0 = yesterday_noon()
    beats = [{"project": "p", "time": t0 + i * 60, "duration": 30} for i in range(3)]
    status(alice.http.post("/api/v1/heartbeats", headers=alice.key_header, json=beats), 200)

    def counted() -> dict[str, Any]:
        answer = status(rpc(alice, name, "stats"), 200)
        assert answer["sessions"] == 3
        return dict(answer)

    stats = eventually(counted)
    assert stats["total_secs"] == 90
    assert status(rpc(bob, name, "stats"), 200)["sessions"] == 0
    assert status(rpc(bob, name, "everyone"), 200) == []
    alice_id = stats["user_id"]
    assert status(rpc(alice, name, "everyone"), 200) == [alice_id]


def test_rpc_writes_the_callers_own_settings(streak: tuple[str, Client, Client]) -> None:
    """The seed's ``set-threshold``: a plugin's SQL writes its settings row of the caller."""
    name, alice, bob = streak
    answer = rpc(alice, name, "set-threshold", {"threshold": 7200, "plugin": name})
    assert status(answer, 200) == {"ok": True, "threshold": 7200}
    rows = status(rpc(alice, name, "settings"), 200)
    assert [(r["plugin"], json.loads(r["settings"])) for r in rows] == [(name, {"threshold": 7200})]
    assert status(rpc(bob, name, "settings"), 200) == []


def test_rpc_bodies_and_the_plugins_failures(streak: tuple[str, Client, Client]) -> None:
    name, alice, _ = streak
    assert status(rpc(alice, name, "echo"), 200) == {"got": {}}
    assert status(rpc(alice, name, "echo", [1, "two"]), 200) == {"got": [1, "two"]}
    code, _ = error(rpc(alice, name, "echo", content=b"{nope"), 400)
    assert code == "invalid_json"
    huge = json.dumps({"x": "y" * (1024 * 1024)}).encode()
    assert error(rpc(alice, name, "echo", content=huge), 413)[0] == "payload_too_large"
    code, message = error(rpc(alice, name, "nope"), 404)
    assert code == "unknown_handler"
    assert error(rpc(alice, name, "constructor"), 404)[0] == "unknown_handler"
    answer = rpc(alice, name, "boom", {"why": "on purpose"})
    code, message = error(answer, 400)
    assert code == "plugin_error"
    assert "TypeError: kaput: on purpose" in message
    assert answer.json()["error"]["details"]["kind"] == "plugin_error"
    assert "Traceback" not in answer.text
    code, message = error(rpc(alice, name, "spin"), 504)
    assert code == "timeout"
    # The sandbox is still there for the next call.
    assert status(rpc(alice, name, "echo", {"a": 1}), 200) == {"got": {"a": 1}}


def test_rpc_refuses_who_may_not_call(
    server: CodeTrackrProcess, streak: tuple[str, Client, Client]
) -> None:
    name, alice, _ = streak
    stranger = Client(server.url)
    code, _message = error(rpc(stranger, name, "get-streak"), 403)
    assert code == "not_installed"
    assert error(rpc(stranger, unique("ghost"), "get-streak"), 404)[0] == "not_found"
    read_only = status(
        alice.http.post("/api/v1/keys", headers=alice.bearer, json={"read_only": True}), 200
    )["key"]["key"]
    assert error(rpc(alice, name, "get-streak", headers={"X-API-Key": read_only}), 403)
    assert error(httpx.post(f"{server.url}/api/v1/plugins/{name}/rpc/get-streak"), 401)


# ---- moderation ------------------------------------------------------------------------------


def test_ban_unban_and_delete(server: CodeTrackrProcess, admin: Client) -> None:
    author, alice, bob = Client(server.url), Client(server.url), Client(server.url)
    name = unique("moderated")
    publish(author, name, server_script=STREAK, description="moderated one")
    install(alice, name)
    install(bob, name)
    assert status(rpc(alice, name, "bump", {"day": "d"}), 200) == {"streak": 1}
    assert error(
        alice.http.post(f"/api/v1/admin/store/{name}/ban", headers=alice.bearer, json={}), 403
    )
    banned = admin.http.post(
        f"/api/v1/admin/store/{name}/ban", headers=admin.bearer, json={"reason": "malware"}
    )
    assert status(banned, 200) == {"status": "banned", "name": name, "ban_reason": "malware"}
    # Stops listing, loading and running for everyone at once.
    assert store(server, q=name)["total"] == 0
    assert error(httpx.get(f"{server.url}/api/v1/store/{name}"), 404)
    for user in (alice, bob):
        assert user.get("/api/v1/store/installed")["plugins"] == []
        code, message = error(rpc(user, name, "get-streak"), 403)
        assert code == "plugin_banned"
        assert "malware" in message
    newcomer = Client(server.url)
    refused = newcomer.http.post(f"/api/v1/store/install/{name}", headers=newcomer.bearer)
    assert error(refused, 403)[0] == "plugin_banned"
    update = author.http.post(
        "/api/v1/store/publish", headers=author.bearer, json={"name": name, "version": "9.9.9"}
    )
    assert error(update, 403)[0] == "plugin_banned"
    seen = status(admin.http.get(f"/api/v1/store/{name}", headers=admin.bearer), 200)["plugin"]
    assert (seen["banned"], seen["ban_reason"]) == (True, "malware")
    # Unbanned: back, with the installs and their data.
    status(admin.http.post(f"/api/v1/admin/store/{name}/unban", headers=admin.bearer), 200)
    assert store(server, q=name)["total"] == 1
    assert status(rpc(alice, name, "get-streak"), 200)["streak"] == 1
    # Deleted: gone with its installs and every installer's data; the name is free again.
    deleted = admin.http.delete(f"/api/v1/admin/store/{name}", headers=admin.bearer)
    assert status(deleted, 200) == {"status": "deleted", "name": name, "installs_removed": 2}
    assert error(httpx.get(f"{server.url}/api/v1/store/{name}"), 404)
    assert alice.get("/api/v1/store/installed")["plugins"] == []
    assert error(rpc(alice, name, "get-streak"), 404)
    assert error(admin.http.delete(f"/api/v1/admin/store/{name}", headers=admin.bearer), 404)
    publish(newcomer, name, server_script=STREAK)
    install(alice, name)
    assert status(rpc(alice, name, "get-streak"), 200) == {"streak": 0, "last_day": None}


def test_the_gdpr_export_holds_what_plugins_keep_for_the_user(
    streak: tuple[str, Client, Client],
) -> None:
    name, alice, bob = streak
    status(rpc(bob, name, "bump", {"day": "2026-04-01"}), 200)
    status(rpc(bob, name, "set-threshold", {"threshold": 60, "plugin": name}), 200)

    export = status(bob.http.get("/api/v1/users/current/export", headers=bob.bearer), 200)

    plugins = export["plugins"]
    assert name in [entry["plugin"] for entry in plugins["installed"]]
    assert plugins["key_value"][name]["last-day"] == "2026-04-01"
    assert {"plugin": name, "settings": {"threshold": 60}} in [
        {"plugin": s["plugin"], "settings": s["settings"]} for s in plugins["settings"]
    ]
    # Alice's data of the same plugin is hers alone.
    alice_export = status(alice.http.get("/api/v1/users/current/export", headers=alice.bearer), 200)
    assert alice_export["plugins"]["key_value"].get(name, {}).get("last-day") != "2026-04-01"
