"""Accounts end to end on a real ``codetrackr serve``: anonymous login, tokens and sessions,
API keys (read-only, last used, other people's), the profile, public profiles, following, hire
inquiries, Chronova's ``/users/current``, username races, and the accounts surviving a restart
(they are rebuilt from the log) and a ``codetrackr replay``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from accounts.credentials import TokenIssuer, derive_key
from tests.e2e.harness import (
    Client,
    CodeTrackrProcess,
    eventually,
    run_cli,
    snapshot_tables,
)
from tests.e2e.test_serve_end_to_end import waka, yesterday_noon

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

SECRET = "accounts-e2e-" + "z" * 40
ENV = {"CODETRACKR_JWT_SECRET": SECRET}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CodeTrackrProcess]:
    proc = CodeTrackrProcess("serve", tmp_path_factory.mktemp("accounts") / "data", env=ENV)
    proc.start()
    yield proc
    proc.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def status(response: httpx.Response, expected: int) -> dict[str, Any]:
    assert response.status_code == expected, response.text
    body: dict[str, Any] = response.json()
    return body


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def login(server: CodeTrackrProcess, account_number: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.url}/auth/anonymous/login",
        json={"account_number": account_number},
        headers={"User-Agent": "second-laptop/1.0"},
    )
    return status(answer, 200)


def make_public(user: Client, **flags: Any) -> None:
    body = {"is_public": True, **flags}
    status(user.http.post("/api/v1/user/profile/update", headers=user.bearer, json=body), 200)


# ---- anonymous accounts -----------------------------------------------------------------------


def test_anonymous_create_login_and_verify(server: CodeTrackrProcess) -> None:
    created = status(httpx.post(f"{server.url}/auth/anonymous/create", json={}), 201)
    assert {"account_number", "token", "user_id", "username", "refresh_token", "expires_in"} <= (
        set(created)
    )
    number = created["account_number"]
    assert number.startswith("A")
    assert len(number) == 41  # 40 digits: 132 bits
    assert created["expires_in"] == 900
    spaced = " ".join(number[i : i + 4] for i in range(0, len(number), 4)).lower()
    again = login(server, spaced)
    assert again["user_id"] == created["user_id"]
    assert again["refresh_token"] != created["refresh_token"]
    verify = f"{server.url}/auth/anonymous/verify"
    assert status(httpx.post(verify, json={"account_number": number}), 200)["valid"] is True
    unknown = status(httpx.post(verify, json={"account_number": "A" + "1" * 40}), 200)
    assert unknown["valid"] is False
    assert httpx.post(verify, json={}).status_code == 400
    wrong = httpx.post(f"{server.url}/auth/anonymous/login", json={"account_number": "A1"})
    assert wrong.status_code == 401


# ---- tokens and sessions ----------------------------------------------------------------------


def test_expired_tampered_foreign_and_session_less_tokens_are_refused(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)
    me = f"{server.url}/api/v1/user/me"
    assert httpx.get(me, headers=user.bearer).status_code == 200
    claims = jwt.decode(user.token, options={"verify_signature": False})
    issuer = TokenIssuer(SECRET)
    expired = issuer.issue(claims["sub"], claims["sid"], now=time.time() - 3600)
    head, body, signature = user.token.split(".")
    tampered = f"{head}.{body[:-3]}abc.{signature}"
    foreign = TokenIssuer("another-deployment-" + "q" * 30).issue(claims["sub"], claims["sid"])
    key = derive_key(SECRET, "access-token")
    no_session = jwt.encode({k: v for k, v in claims.items() if k != "sid"}, key, "HS256")
    other_session = issuer.issue(claims["sub"], "no-such-session")
    someone_else = issuer.issue("not-the-owner", claims["sid"])
    for token in (expired, tampered, foreign, no_session, other_session, someone_else):
        answer = httpx.get(me, headers=bearer(token))
        assert answer.status_code == 401, token
        assert error_code(answer) == "unauthorized"


def test_logout_revokes_the_token_at_once(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    second = login(server, user.account_number)
    logout = httpx.post(f"{server.url}/auth/logout", headers=user.bearer)
    assert status(logout, 200) == {"message": "logged out"}
    assert user.http.get("/api/v1/user/me", headers=user.bearer).status_code == 401
    assert httpx.post(f"{server.url}/auth/logout", headers=user.bearer).status_code == 401
    # The other device is still logged in; it logs out with its refresh token alone.
    me = f"{server.url}/api/v1/user/me"
    assert httpx.get(me, headers=bearer(second["token"])).status_code == 200
    by_refresh = httpx.post(
        f"{server.url}/auth/logout", json={"refresh_token": second["refresh_token"]}
    )
    assert by_refresh.status_code == 200
    assert httpx.get(me, headers=bearer(second["token"])).status_code == 401
    refresh = httpx.post(
        f"{server.url}/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert refresh.status_code == 401
    # The API key is not a session: it keeps working.
    assert httpx.get(me, headers=user.key_header).status_code == 200
    # An API key cannot log anybody out.
    assert httpx.post(f"{server.url}/auth/logout", headers=user.key_header).status_code == 401


def test_refresh_rotates_and_reuse_revokes_the_session(server: CodeTrackrProcess) -> None:
    first = status(httpx.post(f"{server.url}/auth/anonymous/create", json={}), 201)
    refresh = f"{server.url}/auth/refresh"
    me = f"{server.url}/api/v1/user/me"
    second = status(httpx.post(refresh, json={"refresh_token": first["refresh_token"]}), 200)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["user_id"] == first["user_id"]
    assert httpx.get(me, headers=bearer(second["token"])).status_code == 200
    # The retired refresh token again: somebody copied it. The whole session ends.
    reused = httpx.post(refresh, json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    assert "reused" in reused.json()["error"]["message"]
    assert httpx.get(me, headers=bearer(second["token"])).status_code == 401
    assert httpx.post(refresh, json={"refresh_token": second["refresh_token"]}).status_code == 401
    for junk in ({"refresh_token": "ctr_nope"}, {"refresh_token": "x"}):
        assert httpx.post(refresh, json=junk).status_code == 401
    assert httpx.post(refresh, json={}).status_code == 400


def test_sessions_are_listed_and_revocable_by_their_owner_only(
    server: CodeTrackrProcess,
) -> None:
    user = Client(server.url)
    laptop = login(server, user.account_number)
    listed = status(user.http.get("/api/v1/user/sessions", headers=user.bearer), 200)["sessions"]
    assert len(listed) == 2
    current = [s for s in listed if s["current"]]
    other = next(s for s in listed if not s["current"])
    assert len(current) == 1
    assert other["device"] == "second-laptop/1.0"
    assert {"created_at", "last_used_at", "expires_at", "method"} <= set(other)
    # Only the owner, with a login token, manages sessions.
    stranger = Client(server.url)
    path = f"/api/v1/user/sessions/{other['id']}"
    assert stranger.http.delete(path, headers=stranger.bearer).status_code == 404
    assert user.http.delete(path, headers=user.key_header).status_code == 401
    assert user.http.get("/api/v1/user/sessions", headers=user.key_header).status_code == 401
    assert status(user.http.delete(path, headers=user.bearer), 200)
    revoked = httpx.get(f"{server.url}/api/v1/user/me", headers=bearer(laptop["token"]))
    assert revoked.status_code == 401
    assert user.http.get("/api/v1/user/me", headers=user.bearer).status_code == 200
    assert user.http.delete(path, headers=user.bearer).status_code == 404


# ---- API keys ---------------------------------------------------------------------------------


def test_read_only_keys_read_but_never_write(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    made = user.http.post(
        "/api/v1/keys", headers=user.bearer, json={"name": "dashboard", "read_only": True}
    )
    key = status(made, 200)["key"]
    assert key["read_only"] is True
    ro = {"X-API-Key": key["key"]}
    assert user.http.get("/api/v1/stats/summary", headers=ro).status_code == 200
    assert user.http.get("/api/v1/users/current/stats/last_7_days", headers=ro).status_code == 200
    writes = [
        user.http.post("/api/v1/heartbeat", headers=ro, json={"project": "p"}),
        user.http.post("/api/v1/heartbeats", headers=ro, json=[{"project": "p"}]),
        user.http.post(
            "/api/v1/users/current/heartbeats.bulk", headers=ro, json=[waka(yesterday_noon(), "p")]
        ),
        user.http.request(
            "DELETE",
            "/api/v1/users/current/heartbeats.bulk",
            headers=ro,
            json={"date": "2026-01-01", "ids": ["x"]},
        ),
        user.http.post("/api/v1/user/profile/update", headers=ro, json={"bio": "x"}),
        user.http.patch("/api/v1/users/current", headers=ro, json={"display_name": "x"}),
    ]
    for answer in writes:
        assert answer.status_code == 403, answer.text
        assert error_code(answer) == "forbidden"
    # The full-access key writes.
    full = user.http.post("/api/v1/heartbeat", headers=user.key_header, json={"project": "p"})
    assert full.status_code == 200


def test_key_list_shows_last_use_and_other_peoples_keys_are_out_of_reach(
    server: CodeTrackrProcess,
) -> None:
    alice, bob = Client(server.url), Client(server.url)

    def listed() -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = alice.get("/api/v1/keys")["keys"]
        return keys

    # Client() used its key to create nothing yet: unused.
    assert listed()[0]["last_used_at"] is None
    assert alice.http.get("/api/v1/user/me", headers=alice.key_header).status_code == 200

    def used() -> None:
        (key,) = listed()
        assert key["last_used_at"] is not None
        assert {"id", "name", "key_prefix", "read_only", "created_at"} <= set(key)

    eventually(used, timeout_s=10)
    alice_key_id = listed()[0]["id"]
    assert bob.http.delete(f"/api/v1/keys/{alice_key_id}", headers=bob.bearer).status_code == 404
    assert alice.http.get("/api/v1/user/me", headers=alice.key_header).status_code == 200
    # Bob's key is Bob's: it cannot write into Alice's account.
    into_alice = bob.http.post(
        f"/api/v1/users/{alice.username}/heartbeats",
        headers=bob.key_header,
        json=waka(yesterday_noon(), "p"),
    )
    assert into_alice.status_code == 403
    assert (
        bob.http.get("/api/v1/user/me", headers=bob.key_header).json()["id"]
        != (alice.http.get("/api/v1/user/me", headers=alice.key_header).json()["id"])
    )


# ---- profile ----------------------------------------------------------------------------------


def test_profile_update_is_partial_and_validated(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    update = "/api/v1/user/profile/update"
    for bad in (
        {"website": "ftp://example.com"},
        {"website": "javascript:alert(1)"},
        {"website": "example.com"},
        {"website": "https://"},
        {"timezone": "Mars/Olympus"},
        {"username": "current"},
        {"username": "a b"},
        {"username": "x"},
        {"display_name": "y" * 101},
        {"bio": "z" * 501},
        {"country": "DEU"},
    ):
        answer = user.http.post(update, headers=user.bearer, json=bad)
        assert answer.status_code == 400, bad
        assert error_code(answer) == "validation_error"
        assert set(answer.json()["error"]["details"]["fields"]) == set(bad)
    body = {
        "website": "https://me.example/about",
        "bio": "Rust and Python",
        "display_name": "Ann",
        "timezone": "Asia/Tokyo",
    }
    assert status(user.http.post(update, headers=user.bearer, json=body), 200)
    status(user.http.post(update, headers=user.key_header, json={"country": "jp"}), 200)
    me = user.get("/api/v1/user/me")
    assert {k: me[k] for k in body} == body
    assert me["country"] == "JP"
    status(user.http.post(update, headers=user.bearer, json={"website": ""}), 200)
    me = user.get("/api/v1/user/me")
    assert me["website"] is None
    assert me["bio"] == "Rust and Python"


def test_rename_and_a_taken_name_is_a_conflict(server: CodeTrackrProcess) -> None:
    alice, bob = Client(server.url), Client(server.url)
    update = "/api/v1/user/profile/update"
    name = f"alice-{time.time_ns() % 10**9}"
    status(alice.http.post(update, headers=alice.bearer, json={"username": name}), 200)
    assert alice.get("/api/v1/user/me")["username"] == name
    taken = bob.http.post(update, headers=bob.bearer, json={"username": name.upper(), "bio": "b"})
    assert taken.status_code == 409
    assert error_code(taken) == "username_taken"
    assert bob.get("/api/v1/user/me")["bio"] is None  # nothing of the request applied
    # Changing the case of your own name is fine.
    status(alice.http.post(update, headers=alice.bearer, json={"username": name.upper()}), 200)
    assert alice.get("/api/v1/user/me")["username"] == name.upper()


def test_concurrent_claims_of_one_username_have_exactly_one_winner(
    server: CodeTrackrProcess,
) -> None:
    users = [Client(server.url) for _ in range(8)]
    name = f"wanted-{time.time_ns() % 10**9}"
    # Everyone ranked on this week's board: its names come from the processors' own fold of
    # each account's events, which must end with the name the account really has.
    for user in users:
        make_public(user, show_in_leaderboard=True)
        beat = {"project": "race", "time": time.time() - 120, "duration": 60}
        status(user.http.post("/api/v1/heartbeat", headers=user.key_header, json=beat), 200)

    def claim(user: Client) -> int:
        return user.http.post(
            "/api/v1/user/profile/update", headers=user.bearer, json={"username": name}
        ).status_code

    with ThreadPoolExecutor(len(users)) as pool:
        statuses = list(pool.map(claim, users))
    assert sorted(statuses) == [200] + [409] * (len(users) - 1)
    winner = users[statuses.index(200)]
    owners = [u for u in users if u.get("/api/v1/user/me")["username"] == name]
    assert owners == [winner]
    profile = httpx.get(f"{server.url}/api/v1/user/profile/{name}")
    assert status(profile, 200)["username"] == name
    names = {u.get("/api/v1/user/me")["id"]: u.get("/api/v1/user/me")["username"] for u in users}

    def board_names_are_the_real_ones() -> None:
        board = httpx.get(f"{server.url}/api/v1/leaderboards/global", params={"limit": 500})
        ranked = {e["user_id"]: e["username"] for e in status(board, 200)["leaderboard"]}
        assert {uid: ranked.get(uid) for uid in names} == names

    eventually(board_names_are_the_real_ones, timeout_s=60)


def test_chronova_users_current_get_and_patch(server: CodeTrackrProcess) -> None:
    user = Client(server.url)
    got = user.get("/api/v1/users/current")["data"]
    assert got["subscriptionPlan"] == "free"
    assert got["subscriptionStatus"] == "active"
    assert got["languages_used_public"] is False
    assert got["is_profile_private"] is True
    assert got["display_name"] == user.username
    patch = {
        "display_name": "John Smith",
        "is_profile_private": False,
        "languages_used_public": True,
        "projects_public": False,
        "displayMinimumDuration": 1,
    }
    patched = status(
        user.http.patch("/api/v1/users/current", headers=user.key_header, json=patch), 200
    )
    assert patched["data"]["display_name"] == "John Smith"
    me = user.get("/api/v1/user/me")
    assert me["is_public"] is True
    assert me["profile_show_languages"] is True
    assert me["profile_show_projects"] is False
    assert user.get("/api/v1/users/current")["data"]["is_profile_private"] is False
    bad = user.http.patch("/api/v1/users/current", headers=user.bearer, json={"website": "nope"})
    assert bad.status_code == 400
    anonymous = httpx.patch(f"{server.url}/api/v1/users/current", json={"display_name": "x"})
    assert anonymous.status_code == 401


# ---- public profiles, following, contact ------------------------------------------------------


def test_public_profile_honours_every_show_flag(server: CodeTrackrProcess) -> None:
    user = Client(server.url, timezone="Europe/Berlin")
    url = f"{server.url}/api/v1/user/profile/{user.username}"
    private = httpx.get(url)
    unknown = httpx.get(f"{server.url}/api/v1/user/profile/nobody-has-this-name")
    assert private.status_code == unknown.status_code == 404
    assert private.json() == unknown.json()
    t0 = yesterday_noon()
    beats = [
        {"project": "core", "lang": "rust", "time": t0, "duration": 600},
        {"project": "web", "lang": "python", "time": t0 + 2000, "duration": 300},
    ]
    status(user.http.post("/api/v1/heartbeats", headers=user.key_header, json=beats), 200)
    eventually(lambda: _equal(user.summary_total(), 900))
    make_public(user)
    hidden = status(httpx.get(url), 200)
    assert (hidden["weekly_seconds"], hidden["streak_days"]) == (0, 0)
    assert hidden["languages"] == hidden["projects"] == hidden["plugins"] == []
    flags = {
        "profile_show_languages": "languages",
        "profile_show_projects": "projects",
        "profile_show_activity": "weekly_seconds",
        "profile_show_streak": "streak_days",
    }
    for flag in flags:
        make_public(user, **{name: name == flag for name in flags})
        shown = status(httpx.get(url), 200)
        for other_flag, other in flags.items():
            value = shown[other]
            if other_flag == flag:
                assert value, (flag, shown)
            else:
                assert value in (0, []), (flag, other, shown)
    assert shown["streak_days"] >= 1
    make_public(user, profile_show_languages=True, profile_show_projects=True)
    full = status(httpx.get(url), 200)
    assert full["languages"] == [
        {"language": "Rust", "seconds": 600},
        {"language": "Python", "seconds": 300},
    ]
    assert full["projects"][0] == {"project": "core", "seconds": 600}
    assert full["member_since"].endswith("Z")


def test_follow_unfollow_and_following(server: CodeTrackrProcess) -> None:
    alice, bob, carol = Client(server.url), Client(server.url), Client(server.url)
    make_public(bob)

    def follow(who: Client, whom: str) -> httpx.Response:
        return who.http.post(f"/api/v1/user/follow/{whom}", headers=who.bearer)

    yourself = follow(alice, alice.username)
    assert yourself.status_code == 400
    private, unknown = follow(alice, carol.username), follow(alice, "nobody-by-that-name")
    assert private.status_code == unknown.status_code == 404
    assert private.json() == unknown.json()
    assert status(follow(alice, bob.username), 200) == {"status": "following"}
    assert status(follow(alice, bob.username), 200) == {"status": "following"}  # idempotent
    check = f"/api/v1/user/following/{bob.username}"
    assert alice.get(check) == {"following": True}
    assert bob.get(f"/api/v1/user/following/{alice.username}") == {"following": False}
    profile = status(httpx.get(f"{server.url}/api/v1/user/profile/{bob.username}"), 200)
    assert (profile["follower_count"], profile["following_count"]) == (1, 0)
    assert [p["username"] for p in alice.get("/api/v1/user/following")["following"]] == [
        bob.username
    ]
    assert bob.get("/api/v1/user/followers")["total"] == 1
    # Bob goes private: Alice may still unfollow him.
    status(
        bob.http.post("/api/v1/user/profile/update", headers=bob.bearer, json={"is_public": False}),
        200,
    )
    gone = alice.http.delete(f"/api/v1/user/unfollow/{bob.username}", headers=alice.bearer)
    assert status(gone, 200)["status"] == "unfollowed"
    assert alice.get(check) == {"following": False}
    again = alice.http.delete(f"/api/v1/user/unfollow/{bob.username}", headers=alice.bearer)
    assert again.status_code == 404  # private, and not followed any more
    anonymous = httpx.post(f"{server.url}/api/v1/user/follow/{bob.username}")
    assert anonymous.status_code == 401


def test_hire_contact_rules_and_inbox(server: CodeTrackrProcess) -> None:
    dev, recruiter, private_dev = Client(server.url), Client(server.url), Client(server.url)
    make_public(dev, available_for_hire=True)
    status(
        private_dev.http.post(
            "/api/v1/user/profile/update",
            headers=private_dev.bearer,
            json={"available_for_hire": True},
        ),
        200,
    )
    body = {"name": "Rita", "email": "rita@example.com", "message": "x" * 2000}

    def contact(who: Client, whom: str, payload: dict[str, Any]) -> httpx.Response:
        return who.http.post(f"/api/v1/user/contact/{whom}", headers=who.bearer, json=payload)

    too_long = contact(recruiter, dev.username, {**body, "message": "x" * 2001})
    assert too_long.status_code == 400
    assert "message" in too_long.json()["error"]["details"]["fields"]
    for broken in ({**body, "email": "not-an-email"}, {**body, "message": "   "}, {"name": "R"}):
        assert contact(recruiter, dev.username, broken).status_code == 400
    assert contact(dev, dev.username, body).status_code == 400
    not_hireable = Client(server.url)
    make_public(not_hireable)
    for whom in (private_dev.username, not_hireable.username, "nobody-by-that-name"):
        refused = contact(recruiter, whom, body)
        assert refused.status_code == 404
        assert refused.json()["error"]["message"] == "no such user, or the profile is private"
    assert status(contact(recruiter, dev.username, body), 200) == {"status": "sent"}
    second = {**body, "message": "Still interested?"}
    status(contact(recruiter, dev.username, second), 200)
    inbox = dev.get("/api/v1/user/contact")
    assert inbox["total"] == 2
    newest = inbox["messages"][0]
    assert newest["message"] == "Still interested?"
    assert newest["from_username"] == recruiter.username
    assert (newest["name"], newest["email"]) == ("Rita", "rita@example.com")
    assert recruiter.get("/api/v1/user/contact")["total"] == 0
    anonymous = httpx.post(f"{server.url}/api/v1/user/contact/{dev.username}", json=body)
    assert anonymous.status_code == 401


# ---- the log is the database ------------------------------------------------------------------


def test_accounts_are_rebuilt_from_the_log_and_replay_equals_live(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = CodeTrackrProcess("serve", data, env=ENV).start()
    try:
        alice, bob = Client(server.url), Client(server.url)
        name = f"rebuilt-{time.time_ns() % 10**9}"
        profile = {"username": name, "bio": "b", "website": "https://x.example"}
        make_public(alice, available_for_hire=True, show_in_leaderboard=True, **profile)
        make_public(bob)
        status(bob.http.post(f"/api/v1/user/follow/{name}", headers=bob.bearer), 200)
        message = {"name": "B", "email": "b@example.com", "message": "hi"}
        contacted = bob.http.post(f"/api/v1/user/contact/{name}", headers=bob.bearer, json=message)
        status(contacted, 200)
        ro = status(
            alice.http.post("/api/v1/keys", headers=alice.bearer, json={"read_only": True}), 200
        )
        assert alice.http.get("/api/v1/user/me", headers=alice.key_header).status_code == 200
        laptop = login(server, alice.account_number)
        status(httpx.post(f"{server.url}/auth/logout", headers=bearer(laptop["token"])), 200)
        sent = alice.http.post(
            "/api/v1/heartbeats",
            headers=alice.key_header,
            json=[{"project": "p", "time": yesterday_noon(), "duration": 60}],
        )
        status(sent, 200)
        eventually(lambda: _equal(alice.summary_total(), 60))
        eventually(lambda: _assert(alice.get("/api/v1/keys")["keys"][0]["last_used_at"]))
        before = _account_views(alice, bob)
    finally:
        server.stop()
    url = f"chdb://{(data / 'clickhouse').resolve()}"
    live = snapshot_tables(url)
    run_cli(["replay", "--data-dir", str(data), "--quiet"], env=ENV)
    assert snapshot_tables(url) == live
    server = CodeTrackrProcess("serve", data, env=ENV, port=server.port).start()
    try:
        assert _account_views(alice, bob) == before
        me = f"{server.url}/api/v1/user/me"
        assert httpx.get(me, headers=bearer(laptop["token"])).status_code == 401
        ro_key = {"X-API-Key": ro["key"]["key"]}
        assert (
            httpx.post(
                f"{server.url}/api/v1/heartbeat", headers=ro_key, json={"project": "p"}
            ).status_code
            == 403
        )
    finally:
        server.stop()


def _account_views(alice: Client, bob: Client) -> dict[str, Any]:
    name = alice.get("/api/v1/user/me")["username"]
    return {
        "me": alice.get("/api/v1/user/me"),
        "keys": alice.get("/api/v1/keys"),
        "sessions": alice.get("/api/v1/user/sessions"),
        "inbox": alice.get("/api/v1/user/contact"),
        "following": bob.get("/api/v1/user/following"),
        "profile": status(httpx.get(f"{alice.base_url}/api/v1/user/profile/{name}"), 200),
    }


def _equal(a: object, b: object) -> None:
    assert a == b


def _assert(value: object) -> None:
    assert value
