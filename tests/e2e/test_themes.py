"""The Themes API end to end on a real ``codetrackr serve`` over its socket: publishing (upsert,
only the original publisher), browsing without login, installs, apply and the active theme's
merge, uninstalling the active theme, values refused with nothing changed, no user touching
another's themes, the export/import helpers, the GDPR export, an account deletion taking its
themes from the store and from the log, and a restart on the same data rebuilding all of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, eventually
from tests.e2e.test_erasure import log_records, mentions

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

ENV = {"CODETRACKR_JWT_SECRET": "themes-e2e-" + "t" * 40}
DRACULA = {
    "--bg": "#282a36",
    "--bg-card": "#1e1f29",
    "--bg-input": "#21222c",
    "--bg-hover": "#44475a",
    "--text-main": "#f8f8f2",
    "--text-muted": "#6272a4",
    "--text-dark": "#44475a",
    "--border": "#44475a",
    "--border-focus": "#6272a4",
    "--accent": "#bd93f9",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("themes") / "data", env=ENV)
    proc.start()
    yield proc
    proc.stop()


def status(response: httpx.Response, expected: int) -> Any:
    assert response.status_code == expected, response.text
    return response.json()


def error(response: httpx.Response, expected: int) -> tuple[str, str, dict[str, Any]]:
    body = status(response, expected)["error"]
    return body["code"], body["message"], body["details"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def publish(user: Client, body: dict[str, Any], expected: int = 201) -> Any:
    response = user.http.post("/api/v1/themes/publish", headers=user.bearer, json=body)
    return status(response, expected)["theme"]


def new_theme(user: Client, **fields: Any) -> Any:
    name = unique("dracula")
    body = {"name": name, "display_name": "Dracula Dark", "variables": dict(DRACULA), **fields}
    return publish(user, body)


def install(user: Client, theme_id: str, expected: int = 201) -> Any:
    return status(
        user.http.post(f"/api/v1/themes/install/{theme_id}", headers=user.bearer), expected
    )


def apply(user: Client, body: dict[str, Any]) -> httpx.Response:
    return user.http.post("/api/v1/themes/apply", headers=user.bearer, json=body)


def active(user: Client) -> Any:
    return user.get("/api/v1/themes/active")


def store(server: CodeTrackrProcess, **params: Any) -> Any:
    return status(httpx.get(f"{server.url}/api/v1/themes", params=params), 200)


def one(server: CodeTrackrProcess, theme_id: str, expected: int = 200) -> Any:
    return status(httpx.get(f"{server.url}/api/v1/themes/{theme_id}"), expected)


# ---- publishing --------------------------------------------------------------------------------


def test_publish_then_update_in_place_keeps_the_id_and_omitted_fields(
    server: CodeTrackrProcess,
) -> None:
    alice, bob = Client(server.url), Client(server.url)
    name = unique("dracula-dark")
    first = publish(
        alice,
        {
            "name": name,
            "display_name": "Dracula Dark",
            "description": "A dark theme inspired by the Dracula palette.",
            "icon": "\N{VAMPIRE}",
            "variables": DRACULA,
            "custom_css": ".card{border-radius:12px}",
        },
    )
    assert first["author"] == alice.username
    assert (first["version"], first["icon"], first["install_count"]) == ("1.0.0", "\N{VAMPIRE}", 0)
    assert first["variables"] == DRACULA
    assert first["custom_css"] == ".card { border-radius: 12px; }"
    assert uuid.UUID(first["id"])
    install(bob, first["id"])
    status(apply(bob, {"theme_id": first["id"]}), 200)
    # An update: same id, omitted fields kept, the installer sees the new values at once.
    updated = publish(
        alice, {"name": name, "version": "1.1.0", "variables": {"--bg": "#000000"}}, 200
    )
    assert updated["id"] == first["id"]
    assert updated["version"] == "1.1.0"
    assert updated["description"] == "A dark theme inspired by the Dracula palette."
    assert updated["variables"] == {"--bg": "#000000"}
    assert updated["custom_css"] == ".card { border-radius: 12px; }"
    assert active(bob)["variables"] == {"--bg": "#000000"}
    listed = [t for t in store(server, q=name)["themes"] if t["id"] == first["id"]]
    assert [(t["version"], t["install_count"]) for t in listed] == [("1.1.0", 1)]


def test_only_the_original_publisher_may_update_a_name(server: CodeTrackrProcess) -> None:
    alice, mallory = Client(server.url), Client(server.url)
    theme = new_theme(alice)
    code, message, details = error(
        mallory.http.post(
            "/api/v1/themes/publish",
            headers=mallory.bearer,
            json={"name": theme["name"], "display_name": "Stolen", "variables": {"--bg": "red"}},
        ),
        409,
    )
    assert (code, details) == ("name_taken", {"fields": {"name": "taken"}})
    assert theme["name"] in message
    after = one(server, theme["id"])["theme"]
    assert (after["author"], after["variables"], after["display_name"]) == (
        alice.username,
        DRACULA,
        "Dracula Dark",
    )


def test_publish_needs_credentials_and_a_writing_one(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)
    body = {"name": unique("anon"), "display_name": "X", "variables": {}}
    assert httpx.post(f"{server.url}/api/v1/themes/publish", json=body).status_code == 401
    key = status(
        alice.http.post("/api/v1/keys", headers=alice.bearer, json={"read_only": True}), 200
    )["key"]["key"]
    refused = alice.http.post("/api/v1/themes/publish", headers={"X-API-Key": key}, json=body)
    assert refused.status_code == 403, refused.text
    assert store(server, q=body["name"])["total"] == 0
    assert alice.http.get("/api/v1/themes/active").status_code == 401
    assert alice.http.get("/api/v1/themes/installed").status_code == 401


def test_store_browses_searches_and_pages_without_login(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)
    tag = uuid.uuid4().hex[:8]
    made = [
        publish(alice, {"name": f"paged-{tag}-{i}", "display_name": f"Paged {i}", "variables": {}})
        for i in range(3)
    ]
    first = store(server, q=f"paged-{tag}", sort="name", per_page=2, page=1)
    second = store(server, q=f"paged-{tag}", sort="name", per_page=2, page=2)
    assert (first["total"], first["total_pages"], second["page"]) == (3, 2, 2)
    names = [t["name"] for t in first["themes"] + second["themes"]]
    assert names == [t["name"] for t in made]
    newest = store(server, q=f"paged-{tag}", sort="new")["themes"]
    assert [t["name"] for t in newest] == [t["name"] for t in reversed(made)]
    assert "custom_css" not in newest[0]  # the list carries the swatch, not the override
    code, _, _ = error(httpx.get(f"{server.url}/api/v1/themes", params={"per_page": 101}), 400)
    assert code == "validation_error"
    defaults = status(httpx.get(f"{server.url}/api/v1/themes/defaults"), 200)
    assert set(defaults["light"]) == set(defaults["dark"]) == set(defaults["variables"])
    assert len(defaults["variables"]) == 10


# ---- install, apply, active --------------------------------------------------------------------


def test_apply_merges_custom_vars_over_the_active_theme(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    theme = new_theme(alice)
    # The seed's shape for a user on the default theme.
    assert active(bob) == {
        "active_theme_id": None,
        "theme_name": None,
        "variables": {},
        "custom_vars": {},
        "custom_css": "",
        "is_dark": None,
    }
    assert install(bob, theme["id"])["status"] == "installed"
    again = install(bob, theme["id"].upper(), 200)  # any spelling of the UUID; nothing changes
    assert again["theme_id"] == theme["id"]
    applied = status(
        apply(
            bob,
            {"theme_id": theme["id"], "custom_vars": {"--bg": "#0d0d0d", "--accent": "#a78bfa"}},
        ),
        200,
    )
    expected = DRACULA | {"--bg": "#0d0d0d", "--accent": "#a78bfa"}
    assert applied["active_theme_id"] == theme["id"]
    assert applied["theme_name"] == theme["name"]
    assert applied["variables"] == expected
    assert applied["is_dark"] is True
    assert active(bob) == applied
    # Overrides alone keep the theme; {} clears them (Reset).
    status(apply(bob, {"custom_vars": {"--accent": "hsl(265 89% 78%)"}}), 200)
    assert active(bob)["variables"] == DRACULA | {"--accent": "hsl(265 89% 78%)"}
    assert active(bob)["active_theme_id"] == theme["id"]
    status(apply(bob, {"custom_vars": {}}), 200)
    assert active(bob)["variables"] == DRACULA
    installed = bob.get("/api/v1/themes/installed")
    assert [(t["id"], t["active"], t["variables"]) for t in installed["themes"]] == [
        (theme["id"], True, DRACULA)
    ]
    assert one(server, theme["id"])["theme"]["install_count"] == 1
    seen = bob.http.get(f"/api/v1/themes/{theme['id']}", headers=bob.bearer)
    assert status(seen, 200)["theme"]["installed"] is True
    # Back to the default theme, keeping the overrides.
    status(apply(bob, {"theme_id": None, "custom_vars": {"--accent": "#ff79c6"}}), 200)
    assert active(bob)["active_theme_id"] is None
    assert active(bob)["variables"] == {"--accent": "#ff79c6"}


def test_uninstalling_the_active_theme_reverts_to_the_default(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)
    theme = new_theme(alice)
    install(alice, theme["id"])
    status(apply(alice, {"theme_id": theme["id"], "custom_vars": {"--border": "#333333"}}), 200)
    gone = alice.http.delete(f"/api/v1/themes/uninstall/{theme['id']}", headers=alice.bearer)
    assert status(gone, 200) == {
        "status": "uninstalled",
        "theme_id": theme["id"],
        "active_theme_id": None,
    }
    now = active(alice)
    assert (now["active_theme_id"], now["theme_name"]) == (None, None)
    assert now["variables"] == {"--border": "#333333"}
    assert alice.get("/api/v1/themes/installed")["themes"] == []
    again = alice.http.delete(f"/api/v1/themes/uninstall/{theme['id']}", headers=alice.bearer)
    assert error(again, 404)[0] == "not_installed"
    # Applying a theme not installed is refused; nothing changes.
    code, _, _ = error(apply(alice, {"theme_id": theme["id"]}), 404)
    assert code == "not_installed"
    assert active(alice) == now


# ---- refused with nothing changed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("variables", {"--bg": "url(https://evil.example/x.png)"}, "variables.--bg"),
        ("variables", {"--accent": "red;} body { background: red"}, "variables.--accent"),
        ("variables", {"--text-main": "expression(alert(1))"}, "variables.--text-main"),
        ("variables", {"--border": "#fff</style><script>alert(1)</script>"}, "variables.--border"),
        ("variables", {"--font": "serif"}, "variables.--font"),
        ("variables", {"--bg": 12}, "variables.--bg"),
        ("custom_css", "@import url(https://evil.example/x.css);", "custom_css"),
        ("custom_css", "a { background: url(https://evil.example/?k=1) }", "custom_css"),
        ("custom_css", "input[value^=a] { color: red }", "custom_css.rule 1"),
        ("custom_css", "a { color: red } </style><script>alert(1)</script>", "custom_css"),
    ],
)
def test_invalid_theme_values_are_refused_and_change_nothing(
    server: CodeTrackrProcess, field: str, value: Any, where: str
) -> None:
    alice = Client(server.url)
    theme = new_theme(alice, custom_css="")
    install(alice, theme["id"])
    status(apply(alice, {"theme_id": theme["id"], "custom_vars": {"--accent": "#a78bfa"}}), 200)
    before_store, before_active = one(server, theme["id"]), active(alice)
    # An update of the theme...
    body = {"name": theme["name"], field: value}
    code, message, details = error(
        alice.http.post("/api/v1/themes/publish", headers=alice.bearer, json=body), 400
    )
    assert code == "invalid_css"
    assert where in message
    assert list(details["fields"]) == [where]
    # ...a first publish with it...
    fresh = {"name": unique("bad"), "display_name": "Bad", "variables": {}, field: value}
    assert error(alice.http.post("/api/v1/themes/publish", headers=alice.bearer, json=fresh), 400)
    assert store(server, q=fresh["name"])["total"] == 0
    # ...and, for variables, as the user's overrides.
    if field == "variables":
        code, _, details = error(apply(alice, {"theme_id": None, "custom_vars": value}), 400)
        assert code == "invalid_css"
        assert list(details["fields"]) == [where.replace("variables", "custom_vars")]
    assert one(server, theme["id"]) == before_store
    assert active(alice) == before_active


def test_bad_bodies_and_ids_are_refused_in_the_envelope(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)
    assert error(apply(alice, {}), 400)[0] == "validation_error"
    assert error(apply(alice, {"theme_id": "dracula-dark"}), 400)[0] == "validation_error"
    assert error(apply(alice, {"theme_id": str(uuid.uuid4())}), 404)[0] == "not_found"
    bad_id = alice.http.post("/api/v1/themes/install/not-a-uuid", headers=alice.bearer)
    assert error(bad_id, 400)[0] == "validation_error"
    unknown = alice.http.post(f"/api/v1/themes/install/{uuid.uuid4()}", headers=alice.bearer)
    assert error(unknown, 404)[0] == "not_found"
    assert error(httpx.get(f"{server.url}/api/v1/themes/{uuid.uuid4()}"), 404)[0] == "not_found"
    first = {"name": unique("untitled"), "variables": {}}
    assert error(alice.http.post("/api/v1/themes/publish", headers=alice.bearer, json=first), 400)[
        2
    ] == {"fields": {"display_name": "required on the first publish"}}
    no_vars = {"name": unique("novars"), "display_name": "No vars"}
    assert error(
        alice.http.post("/api/v1/themes/publish", headers=alice.bearer, json=no_vars), 400
    )[2] == {"fields": {"variables": "required on the first publish"}}
    huge = {
        "name": unique("huge"),
        "display_name": "Huge",
        "variables": {},
        "custom_css": "a{}" * 40_000,
    }
    assert (
        alice.http.post("/api/v1/themes/publish", headers=alice.bearer, json=huge).status_code
        == 413
    )


def test_no_user_can_change_another_users_themes(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    theme = new_theme(alice)
    install(alice, theme["id"])
    status(apply(alice, {"theme_id": theme["id"], "custom_vars": {"--accent": "#50fa7b"}}), 200)
    alices = active(alice)
    # Bob's writes are his own: his apply, his install, his uninstall (of an install he lacks).
    install(bob, theme["id"])
    status(apply(bob, {"theme_id": theme["id"], "custom_vars": {"--accent": "#ff5555"}}), 200)
    status(bob.http.delete(f"/api/v1/themes/uninstall/{theme['id']}", headers=bob.bearer), 200)
    gone = bob.http.delete(f"/api/v1/themes/uninstall/{theme['id']}", headers=bob.bearer)
    assert error(gone, 404)[0] == "not_installed"
    assert active(alice) == alices
    assert [t["id"] for t in alice.get("/api/v1/themes/installed")["themes"]] == [theme["id"]]
    assert active(bob)["variables"] == {"--accent": "#ff5555"}


# ---- export and import -------------------------------------------------------------------------


def test_export_and_import_of_a_theme_file(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)
    theme = new_theme(alice, variables={"--bg": "#282a36", "--accent": "#bd93f9"})
    install(alice, theme["id"])
    status(apply(alice, {"theme_id": theme["id"], "custom_vars": {"--border": "#44475a"}}), 200)
    exported = alice.http.get("/api/v1/themes/export", headers=alice.bearer)
    file = status(exported, 200)
    assert exported.headers["content-disposition"] == 'attachment; filename="codetrackr-theme.json"'
    defaults = status(httpx.get(f"{server.url}/api/v1/themes/defaults"), 200)
    assert file == defaults["dark"] | {
        "--bg": "#282a36",
        "--accent": "#bd93f9",
        "--border": "#44475a",
    }
    light = alice.get("/api/v1/themes/export", mode="light")
    assert light["--text-main"] == defaults["light"]["--text-main"]
    # Imported back (unknown keys ignored), then applied as the user's overrides.
    imported = status(
        httpx.post(f"{server.url}/api/v1/themes/import", json=file | {"name": "x"}), 200
    )
    assert imported == {"variables": file, "ignored": ["name"]}
    status(apply(alice, {"theme_id": None, "custom_vars": imported["variables"]}), 200)
    assert active(alice)["variables"] == file
    for bad in ([1, 2], {"--bg": 1}, {"--bg": "url(https://evil.example)"}):
        code, _, _ = error(httpx.post(f"{server.url}/api/v1/themes/import", json=bad), 400)
        assert code == "invalid_css"


def test_the_gdpr_export_holds_the_users_themes(server: CodeTrackrProcess) -> None:
    alice = Client(server.url)
    mine = new_theme(alice)
    install(alice, mine["id"])
    status(apply(alice, {"theme_id": mine["id"], "custom_vars": {"--accent": "#8be9fd"}}), 200)
    export = alice.get("/api/v1/users/current/export")["themes"]
    assert [i["theme_id"] for i in export["installed"]] == [mine["id"]]
    assert export["active_theme_id"] == mine["id"]
    assert export["custom_vars"] == {"--accent": "#8be9fd"}
    assert [(p["id"], p["name"], p["variables"]) for p in export["published"]] == [
        (mine["id"], mine["name"], DRACULA)
    ]


# ---- deletion and replay -----------------------------------------------------------------------


def _snapshot(server: CodeTrackrProcess, users: list[Client]) -> dict[str, Any]:
    return {
        "store": store(server, sort="name", per_page=100),
        **{u.username: (active(u), u.get("/api/v1/themes/installed")) for u in users},
    }


def test_deletion_takes_the_publishers_themes_and_a_restart_rebuilds_the_rest(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data, env=ENV).start()
    try:
        alice, bob, carol = Client(server.url), Client(server.url), Client(server.url)
        alice_id = alice.get("/api/v1/user/me")["id"]
        alices = new_theme(alice)
        bobs = new_theme(bob, variables={"--bg": "#fafafa"}, custom_css="a{color:#333}")
        for user in (bob, carol):
            install(user, alices["id"])
        install(carol, bobs["id"])
        install(alice, bobs["id"])
        status(apply(bob, {"theme_id": alices["id"], "custom_vars": {"--accent": "#ffb86c"}}), 200)
        status(apply(carol, {"theme_id": bobs["id"]}), 200)
        status(apply(alice, {"theme_id": bobs["id"]}), 200)
        assert mentions(log_records(data), alices["id"])  # the check below can fail

        deleted = alice.http.request(
            "DELETE", "/api/v1/user/me", headers=alice.bearer, json={"confirm": alice.username}
        )
        assert deleted.status_code == 202, deleted.text

        # At once: Alice's theme is out of the store and every library; Bob is back on the
        # default theme with his overrides; Bob's theme lost Alice's install.
        gone = httpx.get(f"{server.url}/api/v1/themes/{alices['id']}")
        assert error(gone, 404)[0] == "not_found"
        assert [t["id"] for t in store(server)["themes"]] == [bobs["id"]]
        assert bob.get("/api/v1/themes/installed")["themes"] == []
        assert active(bob)["active_theme_id"] is None
        assert active(bob)["variables"] == {"--accent": "#ffb86c"}
        assert [t["id"] for t in carol.get("/api/v1/themes/installed")["themes"]] == [bobs["id"]]
        assert one(server, bobs["id"])["theme"]["install_count"] == 1
        late = carol.http.post(f"/api/v1/themes/install/{alices['id']}", headers=carol.bearer)
        assert error(late, 404)[0] == "not_found"
        # The name is free again.
        taken = {"name": alices["name"], "display_name": "Carol's", "variables": {"--bg": "#000"}}
        reborn = publish(carol, taken)
        assert reborn["id"] != alices["id"]

        # The embedded log no longer holds Alice's records nor her theme's id.
        def purged() -> None:
            records = log_records(data)
            assert mentions(records, alice_id) == []
            assert mentions(records, alices["id"]) == []

        eventually(purged, timeout_s=60)
        before = _snapshot(server, [bob, carol])
    finally:
        server.stop()
    again = CodeTrackrProcess("serve", data, env=ENV, port=server.port).start()
    try:
        assert _snapshot(again, [bob, carol]) == before
        assert active(bob)["variables"] == {"--accent": "#ffb86c"}
        assert active(carol)["theme_name"] == bobs["name"]
        assert active(carol)["custom_css"] == "a { color: #333; }"
    finally:
        again.stop()
