"""Drive real ``codetrackr`` processes over HTTP, as a client would.

A :class:`CodeTrackrProcess` runs one service (``serve``, ``ingest``, ``api``, ``worker``) as a
child process on a free loopback port; :class:`Client` wraps the HTTP calls tests repeat.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]
CODETRACKR = Path(sys.executable).parent / "codetrackr"
T = TypeVar("T")
# Rate limits stay at their defaults except one: the load generators of the fault tests send
# thousands of requests per API key within minutes, which no editor does against the default
# budget of 1,000 an hour; and the tests create dozens of accounts from 127.0.0.1, which the
# default of 5 a minute per address would refuse. tests/e2e/test_ratelimit.py sets its own limits.
_TEST_DEFAULTS = {
    "CODETRACKR_LOG_LEVEL": "warning",
    "CODETRACKR_RATE_LIMIT_API_KEY": "100000/hour",
    "CODETRACKR_RATE_LIMIT_ACCOUNT_CREATION": "100000/hour",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CodeTrackrProcess:
    def __init__(
        self,
        command: str,
        data_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.command = command
        self.args = list(args)
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = {**os.environ, **_TEST_DEFAULTS, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-{command}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> CodeTrackrProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [str(CODETRACKR), self.command, "--data-dir", str(self.data_dir)]
        # Every role listens on its port (the worker serves only /healthz and /readyz there).
        args += ["--host", "127.0.0.1", "--port", str(self.port), *self.args]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        if self.command != "worker":
            self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command} exited early:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.command} not ready in {timeout_s}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def run_cli(
    args: list[str], *, env: Mapping[str, str] | None = None, timeout_s: float = 300
) -> str:
    done = subprocess.run(
        [str(CODETRACKR), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"codetrackr {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


_SNAPSHOT = """
import json, sys
from projections.clickhouse import ClickHouseProjectionStore
from tests.support.store_inspect import snapshot
store = ClickHouseProjectionStore(sys.argv[1], database=sys.argv[2])
out = {t: [list(map(str, r)) for r in snapshot(store, t)] for t in store.table_names()}
print(json.dumps(out))
"""


def _python(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter of this venv and return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout


def snapshot_tables(clickhouse_url: str, database: str = "codetrackr") -> dict[str, Any]:
    """Every projection table, read in a child process (chdb allows one data dir per process)."""
    result: dict[str, Any] = json.loads(_python(_SNAPSHOT, clickhouse_url, database))
    return result


def eventually(check: Callable[[], T], *, timeout_s: float = 30.0, interval_s: float = 0.1) -> T:
    """Retry ``check`` until it stops raising AssertionError; re-raise the last one on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval_s)


class Client:
    """A logged-in user of a running server."""

    def __init__(self, base_url: str, *, timezone: str | None = None) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=30.0)
        body = {"timezone": timezone} if timezone else {}
        created = self.http.post("/auth/anonymous/create", json=body)
        assert created.status_code == 201, created.text
        data = created.json()
        self.account_number: str = data["account_number"]
        self.token: str = data["token"]
        self.username: str = data["username"]
        key = self.http.post("/api/v1/keys", headers=self.bearer, json={"name": "editor"})
        assert key.status_code == 200, key.text
        self.api_key: str = key.json()["key"]["key"]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def key_header(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(path, headers=self.bearer, params=params)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def rename(self, username: str) -> Client:
        """Take ``username`` (e.g. one named in ``CODETRACKR_ADMINS``); returns self."""
        renamed = self.http.post(
            "/api/v1/user/profile/update", headers=self.bearer, json={"username": username}
        )
        assert renamed.status_code == 200, renamed.text
        self.username = username
        return self

    def summary_total(self, **params: Any) -> int:
        return int(self.get("/api/v1/stats/summary", **params)["total_seconds"])


_SCALAR = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
print(client.query(sys.argv[2]).result_rows[0][0])
"""


def query_scalar(clickhouse_url: str, sql: str) -> str:
    """One value from ClickHouse, read in a child process (see :func:`snapshot_tables`)."""
    return _python(_SCALAR, clickhouse_url, sql).strip()
