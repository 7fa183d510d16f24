"""OAuth login end to end, without a browser: a real ``codetrackr serve`` and a real identity
provider process (``tests/support/oauth_provider.py``), the client following redirects by hand
as a browser would (keeping cookies), for GitHub, a self-hosted GitLab and a generic OIDC
provider, and every way the ``state`` can be wrong."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.e2e.harness import CodeTrackrProcess
from tests.support.oauth_provider import ProviderProcess, start_provider

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse, pytest.mark.slow]

CLIENT_ID, CLIENT_SECRET = "codetrackr-test", "provider-secret-" + "p" * 20


@dataclass
class World:
    server: CodeTrackrProcess
    provider: ProviderProcess


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    provider = start_provider(CLIENT_ID, CLIENT_SECRET)
    p = provider.url
    env = {
        "CODETRACKR_JWT_SECRET": "oauth-e2e-" + "j" * 40,
        "CODETRACKR_OAUTH_GITHUB_CLIENT_ID": CLIENT_ID,
        "CODETRACKR_OAUTH_GITHUB_CLIENT_SECRET": CLIENT_SECRET,
        "CODETRACKR_OAUTH_GITHUB_AUTHORIZE_URL": f"{p}/login/oauth/authorize",
        "CODETRACKR_OAUTH_GITHUB_TOKEN_URL": f"{p}/login/oauth/access_token",
        "CODETRACKR_OAUTH_GITHUB_USERINFO_URL": f"{p}/user",
        # A self-hosted GitLab: one base URL, the paths are GitLab's.
        "CODETRACKR_OAUTH_GITLAB_CLIENT_ID": CLIENT_ID,
        "CODETRACKR_OAUTH_GITLAB_CLIENT_SECRET": CLIENT_SECRET,
        "CODETRACKR_OAUTH_GITLAB_URL": p,
        "CODETRACKR_OAUTH_OIDC_CLIENT_ID": CLIENT_ID,
        "CODETRACKR_OAUTH_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "CODETRACKR_OAUTH_OIDC_AUTHORIZE_URL": f"{p}/oauth/authorize",
        "CODETRACKR_OAUTH_OIDC_TOKEN_URL": f"{p}/oauth/token",
        "CODETRACKR_OAUTH_OIDC_USERINFO_URL": f"{p}/userinfo",
    }
    server = CodeTrackrProcess("serve", tmp_path_factory.mktemp("oauth") / "data", env=env).start()
    try:
        yield World(server, provider)
    finally:
        server.stop()
        provider.stop()


def browser(world: World) -> httpx.Client:
    """A fresh browser: its own cookie jar, redirects followed by hand."""
    return httpx.Client(base_url=world.server.url, timeout=30.0, follow_redirects=False)


def start_login(client: httpx.Client, provider: str) -> str:
    """``GET /auth/{provider}``; returns the provider's authorize URL it redirected to."""
    started = client.get(f"/auth/{provider}")
    assert started.status_code == 302, started.text
    location = started.headers["location"]
    assert "codetrackr_oauth" in client.cookies
    return location


def approve(authorize: str, login_as: str, **extra: str) -> str:
    """The provider's page: approves at once; returns the callback URL it redirects to."""
    answer = httpx.get(
        f"{authorize}&{urlencode({'login_as': login_as, **extra})}", follow_redirects=False
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def login(world: World, provider: str, login_as: str) -> httpx.Response:
    with browser(world) as client:
        callback = approve(start_login(client, provider), login_as)
        return client.get(callback)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_github_login_creates_the_account_then_finds_it(world: World) -> None:
    with browser(world) as client:
        authorize = start_login(client, "github")
        asked = query_of(authorize)
        assert authorize.startswith(f"{world.provider.url}/login/oauth/authorize?")
        assert asked["client_id"] == CLIENT_ID
        assert asked["redirect_uri"] == f"{world.server.url}/auth/github/callback"
        assert asked["code_challenge_method"] == "S256"
        assert asked["state"]
        first = client.get(approve(authorize, "octocat"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["created"] is True
    assert body["username"] == "octocat"
    assert {"token", "refresh_token", "expires_in", "user_id"} <= set(body)
    bearer = {"Authorization": f"Bearer {body['token']}"}
    me = httpx.get(f"{world.server.url}/api/v1/user/me", headers=bearer).json()
    assert me["auth_provider"] == "github"
    assert me["display_name"] == "Octocat"
    assert me["avatar_url"] == "https://avatars.example.test/octocat.png"
    # The /auth/github alias of /auth/github/login, again: the same account, a second session.
    again = login(world, "github", "octocat")
    assert again.status_code == 200, again.text
    assert again.json()["user_id"] == body["user_id"]
    assert again.json()["created"] is False
    sessions = httpx.get(f"{world.server.url}/api/v1/user/sessions", headers=bearer).json()
    assert [s["method"] for s in sessions["sessions"]] == ["github", "github"]
    # The refresh token of an OAuth session rotates like any other.
    refreshed = httpx.post(
        f"{world.server.url}/auth/refresh", json={"refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["user_id"] == body["user_id"]


def test_self_hosted_gitlab_and_oidc_log_in_with_their_own_identities(world: World) -> None:
    gitlab = login(world, "gitlab", "octocat")
    assert gitlab.status_code == 200, gitlab.text
    # Another provider's "octocat" is another person: a new account, and the name is taken.
    github = login(world, "github", "octocat").json()
    assert gitlab.json()["user_id"] != github["user_id"]
    assert gitlab.json()["username"].startswith("octocat-")
    oidc = login(world, "oidc", "kc.user")
    assert oidc.status_code == 200, oidc.text
    assert oidc.json()["username"] == "kc-user"
    assert login(world, "oidc", "kc.user").json()["user_id"] == oidc.json()["user_id"]


def test_only_linked_accounts_publish_plugins_by_default(world: World) -> None:
    """This server keeps CODETRACKR_PLUGIN_PUBLISH at its default, ``linked``."""
    url = world.server.url
    anonymous = httpx.post(f"{url}/auth/anonymous/create", json={}).json()
    plugin = {"name": "linked-only", "display_name": "Linked only", "script": "/* w */"}
    refused = httpx.post(
        f"{url}/api/v1/store/publish",
        headers={"Authorization": f"Bearer {anonymous['token']}"},
        json=plugin,
    )
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "publish_not_allowed"
    assert "CODETRACKR_PLUGIN_PUBLISH" in error["message"]
    assert "GitHub" in error["message"]
    linked = login(world, "github", "publisher").json()
    published = httpx.post(
        f"{url}/api/v1/store/publish",
        headers={"Authorization": f"Bearer {linked['token']}"},
        json=plugin,
    )
    assert published.status_code == 201, published.text
    assert published.json()["plugin"]["author"] == "publisher"


def test_callback_refuses_missing_tampered_foreign_and_replayed_state(world: World) -> None:
    with browser(world) as client:
        callback = approve(start_login(client, "github"), "mona")
        query = query_of(callback)
        path = urlsplit(callback).path

        def call(**params: str) -> httpx.Response:
            return client.get(path, params=params)

        missing = call(code=query["code"])
        assert missing.status_code == 400
        tampered = call(code=query["code"], state=query["state"][:-2] + "xx")
        assert tampered.status_code == 400
        assert tampered.json()["error"]["code"] == "invalid_state"
        # A state issued for GitHub at GitLab's callback.
        foreign = client.get("/auth/gitlab/callback", params=query)
        assert foreign.status_code == 400
        # Another browser (no cookie) cannot complete this login (login CSRF).
        with browser(world) as other:
            stolen = other.get(callback)
            assert stolen.status_code == 400
            assert stolen.json()["error"]["code"] == "invalid_state"
        # The real browser completes it once; the same URL again is refused.
        done = client.get(callback)
        assert done.status_code == 200, done.text
        replayed = client.get(callback)
        assert replayed.status_code == 400
    # A state whose nonce was consumed cannot start a session, even with a fresh code.
    with browser(world) as client:
        authorize = start_login(client, "github")
        state = query_of(authorize)["state"]
        ok = client.get(approve(authorize, "mona"))
        assert ok.status_code == 200
        client.cookies.set("codetrackr_oauth", ok.request.headers["cookie"].split("=", 1)[1])
        fresh = query_of(approve(authorize, "mona"))
        assert fresh["state"] == state
        reused = client.get("/auth/github/callback", params=fresh)
        assert reused.status_code == 400
        assert reused.json()["error"]["code"] == "invalid_state"


def test_denied_bad_code_and_unknown_provider(world: World) -> None:
    with browser(world) as client:
        authorize = start_login(client, "github")
        denied = client.get(approve(authorize, "mona", deny="1"))
        assert denied.status_code == 400
        assert "access_denied" in denied.json()["error"]["message"]
        state = query_of(authorize)["state"]
        bad = client.get("/auth/github/callback", params={"code": "nope", "state": state})
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "provider_refused"
    with browser(world) as client:
        assert client.get("/auth/bitbucket").status_code == 404
        assert client.get("/auth/bitbucket/callback?code=a&state=b").status_code == 404


def test_zz_unreachable_provider_is_a_502(world: World) -> None:
    """Runs last in this module: it stops the provider."""
    with browser(world) as client:
        authorize = start_login(client, "gitlab")
        callback = approve(authorize, "octocat")
        world.provider.stop()
        answer = client.get(callback)
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "provider_unavailable"
