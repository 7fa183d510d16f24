"""A tiny OAuth 2.0 identity provider, run as its own process by the OAuth tests.

It speaks the three dialects CodeTrackr logs in with, on one port:

* GitHub: ``GET /login/oauth/authorize``, ``POST /login/oauth/access_token``, ``GET /user``
  (``{id, login, name, avatar_url}``);
* GitLab (as a self-hosted instance at this base URL): ``GET /oauth/authorize``,
  ``POST /oauth/token``, ``GET /api/v4/user`` (``{id, username, name, avatar_url}``);
* OpenID Connect: the GitLab endpoints and ``GET /userinfo`` (``{sub, preferred_username,
  name, picture}``).

The authorize endpoint approves at once (no login page) and redirects to ``redirect_uri`` with a
``code`` and the ``state``; who is "logged in" is chosen by the test with ``&login_as=<login>``
(default ``octocat``), and ``&deny=1`` answers ``error=access_denied`` instead. Codes are single
use, expire after a minute, are bound to the client, the redirect URI and (when a PKCE challenge
was sent) the verifier. GitHub's token endpoint answers a bad code with 200 and
``{"error": "bad_verification_code"}``, as GitHub does; the others with 400.

Run: ``python -m tests.support.oauth_provider --port N --client-id ID --client-secret SECRET``.
It prints ``ready`` once listening; :func:`start_provider` does that for a test. Standard library
only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CODE_TTL_S = 60.0


@dataclass
class _Grant:
    login: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    expires_at: float


class _Provider:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.codes: dict[str, _Grant] = {}
        self.tokens: dict[str, str] = {}  # access token -> login
        self.lock = threading.Lock()

    def identity(self, login: str) -> dict[str, Any]:
        # A stable numeric id per login, like GitHub's and GitLab's.
        return {
            "id": zlib.crc32(login.encode()) % 10_000_000 + 1,
            "login": login,
            "name": login.replace("-", " ").title(),
            "avatar_url": f"https://avatars.example.test/{login}.png",
        }


def _handler(provider: _Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path in ("/login/oauth/authorize", "/oauth/authorize"):
                self._authorize(query)
            elif url.path in ("/user", "/api/v4/user", "/userinfo"):
                self._userinfo(url.path)
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if url.path in ("/login/oauth/access_token", "/oauth/token"):
                self._token(form, github=url.path.startswith("/login/"))
            else:
                self._send(404, {"error": "not_found"})

        def _authorize(self, query: dict[str, str]) -> None:
            redirect_uri = query.get("redirect_uri", "")
            if query.get("client_id") != provider.client_id or not redirect_uri:
                self._send(400, {"error": "invalid_client"})
                return
            back: dict[str, str] = {}
            if query.get("deny"):
                back["error"] = "access_denied"
            else:
                code = secrets.token_urlsafe(16)
                with provider.lock:
                    provider.codes[code] = _Grant(
                        login=query.get("login_as", "octocat"),
                        client_id=provider.client_id,
                        redirect_uri=redirect_uri,
                        challenge=query.get("code_challenge"),
                        expires_at=time.monotonic() + CODE_TTL_S,
                    )
                back["code"] = code
            if "state" in query:
                back["state"] = query["state"]
            separator = "&" if "?" in redirect_uri else "?"
            self.send_response(302)
            self.send_header("Location", f"{redirect_uri}{separator}{urlencode(back)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _token(self, form: dict[str, str], *, github: bool) -> None:
            def refuse(error: str) -> None:
                # GitHub answers 200 with an error body; the others a 400.
                self._send(200 if github else 400, {"error": error})

            if (
                form.get("client_id") != provider.client_id
                or form.get("client_secret") != provider.client_secret
            ):
                self._send(401, {"error": "invalid_client"})
                return
            with provider.lock:
                grant = provider.codes.pop(form.get("code", ""), None)  # single use
            if grant is None or grant.expires_at < time.monotonic():
                refuse("bad_verification_code" if github else "invalid_grant")
                return
            if grant.redirect_uri != form.get("redirect_uri"):
                refuse("redirect_uri_mismatch")
                return
            if grant.challenge is not None:
                verifier = form.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                if expected != grant.challenge:
                    refuse("invalid_grant")
                    return
            token = secrets.token_urlsafe(24)
            with provider.lock:
                provider.tokens[token] = grant.login
            self._send(200, {"access_token": token, "token_type": "bearer", "scope": "read"})

        def _userinfo(self, path: str) -> None:
            token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            with provider.lock:
                login = provider.tokens.get(token)
            if login is None:
                self._send(401, {"message": "Bad credentials"})
                return
            who = provider.identity(login)
            if path == "/userinfo":
                body = {
                    "sub": str(who["id"]),
                    "preferred_username": login,
                    "name": who["name"],
                    "picture": who["avatar_url"],
                }
            elif path == "/api/v4/user":
                body = {key: who[key] for key in ("id", "name", "avatar_url")} | {"username": login}
            else:
                body = who
            self._send(200, body)

    return Handler


@dataclass
class ProviderProcess:
    """A running provider (for the tests): its base URL and process."""

    url: str
    proc: subprocess.Popen[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_provider(client_id: str, client_secret: str) -> ProviderProcess:
    """Start the provider on a free port of 127.0.0.1 and wait until it listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.oauth_provider",
            "--port",
            str(port),
            "--client-id",
            client_id,
            "--client-secret",
            client_secret,
        ],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the OAuth provider did not start")
    return ProviderProcess(f"http://127.0.0.1:{port}", proc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args(argv)
    provider = _Provider(args.client_id, args.client_secret)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), _handler(provider))
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
