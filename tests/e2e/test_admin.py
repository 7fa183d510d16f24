"""``codetrackr admin`` against a running ``serve``: list accounts, suspend and lift a
suspension (every request of the account refused meanwhile, across a restart), list and revoke a
user's keys; only the instance's admins, with a full-access credential, may."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Client, CodeTrackrProcess, run_cli

pytestmark = [pytest.mark.e2e]

ADMIN = "ops-admin"
ENV = {"CODETRACKR_ADMINS": ADMIN}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("admin") / "data"


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[CodeTrackrProcess]:
    process = CodeTrackrProcess("serve", data_dir, env=ENV).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def admin(server: CodeTrackrProcess) -> Client:
    user = Client(server.url)
    renamed = user.http.post(
        "/api/v1/user/profile/update", headers=user.bearer, json={"username": ADMIN}
    )
    assert renamed.status_code == 200, renamed.text
    user.username = ADMIN
    return user


def cli(server: CodeTrackrProcess, admin: Client, *args: str) -> str:
    env = {"CODETRACKR_ADMIN_KEY": admin.api_key, "CODETRACKR_ADMIN_URL": server.url}
    return run_cli(["admin", *args], env=env)


def test_suspension_refuses_every_request_until_lifted(
    server: CodeTrackrProcess, admin: Client
) -> None:
    alice = Client(server.url)
    listed = cli(server, admin, "users", "--search", alice.username)
    assert alice.username in listed
    assert "(1 account)" in listed

    assert f"{alice.username}: suspended" in cli(
        server, admin, "ban", alice.username, "--reason", "spam heartbeats"
    )
    for response in (
        alice.http.get("/api/v1/user/me", headers=alice.bearer),
        alice.http.post("/api/v1/heartbeats", json=[], headers=alice.key_header),
    ):
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["code"] == "account_suspended"
        assert "spam heartbeats" in error["message"]

    assert f"{alice.username}: active" in cli(server, admin, "unban", alice.username)
    assert alice.http.get("/api/v1/user/me", headers=alice.bearer).status_code == 200


def test_only_admins_with_full_access_may_act(server: CodeTrackrProcess, admin: Client) -> None:
    bob = Client(server.url)
    refused = bob.http.get("/api/v1/admin/users", headers=bob.bearer)
    assert refused.status_code == 403
    read_only = admin.http.post(
        "/api/v1/keys", headers=admin.bearer, json={"name": "ro", "read_only": True}
    ).json()["key"]["key"]
    env = {"CODETRACKR_ADMIN_KEY": read_only, "CODETRACKR_ADMIN_URL": server.url}
    with pytest.raises(RuntimeError, match="read-only"):
        run_cli(["admin", "ban", bob.username], env=env)
    with pytest.raises(RuntimeError, match="cannot suspend their own account"):
        cli(server, admin, "ban", ADMIN)
    with pytest.raises(RuntimeError, match="no user"):
        cli(server, admin, "ban", "nobody-by-this-name")


def test_keys_are_listed_without_secrets_and_revoked(
    server: CodeTrackrProcess, admin: Client
) -> None:
    carol = Client(server.url)
    listed = cli(server, admin, "--json", "keys", carol.username)
    assert carol.api_key not in listed
    assert carol.api_key[:12] in listed
    (key_id,) = [
        line.split('"')[3] for line in listed.splitlines() if line.strip().startswith('"id"')
    ]
    assert f"revoked key {key_id}" in cli(server, admin, "keys", carol.username, "--revoke", key_id)
    assert carol.http.get("/api/v1/user/me", headers=carol.key_header).status_code == 401
    assert carol.http.get("/api/v1/user/me", headers=carol.bearer).status_code == 200


def test_a_suspension_is_on_the_log_and_survives_a_restart(
    server: CodeTrackrProcess, admin: Client, data_dir: Path
) -> None:
    dave = Client(server.url)
    cli(server, admin, "ban", dave.username)
    server.stop()
    server.start()
    assert dave.http.get("/api/v1/user/me", headers=dave.bearer).status_code == 403
    cli(server, admin, "unban", dave.username)
    assert dave.http.get("/api/v1/user/me", headers=dave.bearer).status_code == 200
