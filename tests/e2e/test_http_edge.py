"""The HTTP edge of every role (``serve``, ``ingest``, ``api``), over raw sockets to real
processes: request heads are capped (431) without the server buffering them, and every response
carries ``X-Content-Type-Options: nosniff``."""

from __future__ import annotations

import socket
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness import CodeTrackrProcess

pytestmark = [pytest.mark.e2e, pytest.mark.clickhouse]

ROLES = ("serve", "ingest", "api")
HUGE = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CodeTrackrProcess]]:
    root = tmp_path_factory.mktemp("edge")
    procs = {role: CodeTrackrProcess(role, root / role) for role in ROLES}
    try:
        for proc in procs.values():
            proc.start()
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


def _raw_request(port: int, head: bytes, *, body_stream: Iterable[bytes] = ()) -> bytes:
    """Send ``head`` (and whatever ``body_stream`` yields) from a thread, and return everything
    the server answers until it closes the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)

    def send() -> None:
        try:
            sock.sendall(head)
            for chunk in body_stream:
                sock.sendall(chunk)
        except OSError:
            pass  # the server closed its side: expected once it refused the head

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    finally:
        sender.join(timeout=30)
        sock.close()
    return received


def _huge_header(port: int) -> bytes:
    """A request whose ``Authorization`` value is 64 MiB (sent in 1 MiB pieces)."""
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer "
    pieces = (b"a" * (1024 * 1024) for _ in range(HUGE // (1024 * 1024)))
    return _raw_request(port, head, body_stream=pieces)


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def _rss_kib(proc: CodeTrackrProcess) -> int:
    assert proc.proc is not None
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("role", ROLES)
def test_request_head_over_byte_cap_answers_431_without_buffering(
    servers: dict[str, CodeTrackrProcess], role: str
) -> None:
    server = servers[role]
    before = _rss_kib(server)
    with ThreadPoolExecutor(5) as pool:
        attacks = [pool.submit(_huge_header, server.port) for _ in range(4)]
        # The server keeps answering others while refusing the oversized heads.
        slowest, checks = 0.0, 0
        while checks < 3 or not all(a.done() for a in attacks):
            started = time.monotonic()
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            checks += 1
            time.sleep(0.02)
        answers = [a.result() for a in attacks]
    for answer in answers:
        assert _status(answer) == 431
        assert b'"code":"request_header_fields_too_large"' in answer.replace(b" ", b"")
    assert slowest < 1.0
    # Four 64 MiB heads held in memory would add ~300 MB; refused at 16 KiB they add nothing.
    assert _rss_kib(server) - before < 32 * 1024


@pytest.mark.parametrize("role", ROLES)
def test_request_with_too_many_header_fields_answers_431(
    servers: dict[str, CodeTrackrProcess], role: str
) -> None:
    server = servers[role]
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(10_000))
    answer = _raw_request(server.port, b"GET /healthz HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
    assert _status(answer) == 431
    assert b"more than 100 header fields" in answer
    # Within the caps (httpx's 5 fields + 94 = 99, a 15 KiB cookie) a request is served.
    ok = {f"X-F{i}": "v" for i in range(93)} | {"Cookie": "c=" + "x" * 15_000}
    assert httpx.get(f"{server.url}/healthz", headers=ok, timeout=5).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_every_response_carries_nosniff(servers: dict[str, CodeTrackrProcess], role: str) -> None:
    server = servers[role]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        answers = [
            http.get("/healthz"),  # 200 JSON
            http.get("/no/such/path"),  # 404 envelope
            http.post("/healthz"),  # 405
            http.get("/api/v1/users/current/stats", headers={"Authorization": "Bearer x"}),
            http.get("/openapi.json"),
        ]
    for response in answers:
        assert response.headers.get("x-content-type-options") == "nosniff", response.url
    # The server's own answers too: a malformed request line (400) and a refused head (431).
    many = b"GET / HTTP/1.1\r\n" + b"X: v\r\n" * 200 + b"\r\n"
    for head in (b"BAD\x00 / HTTP/1.1\r\n\r\n", many):
        answer = _raw_request(server.port, head)
        assert b"\r\nx-content-type-options: nosniff\r\n" in answer.lower(), answer[:300]


def test_data_files_are_readable_by_their_owner_only(
    servers: dict[str, CodeTrackrProcess],
) -> None:
    # The harness made the data directory beforehand with the usual 0755: it is tightened too.
    data = servers["serve"].data_dir
    log = data / "eventlog.sqlite"
    modes = {
        path.name: stat.S_IMODE(path.stat().st_mode)
        for path in (
            data,
            data / "clickhouse",
            log,
            log.with_name(log.name + "-wal"),
            log.with_name(log.name + "-shm"),
            data / "jwt_secret",
        )
    }
    assert modes == {
        data.name: 0o700,
        "clickhouse": 0o700,
        "eventlog.sqlite": 0o600,
        "eventlog.sqlite-wal": 0o600,
        "eventlog.sqlite-shm": 0o600,
        "jwt_secret": 0o600,
    }
    # Nothing anywhere below the data directory is open to group or others.
    for path in data.rglob("*"):
        if not path.is_symlink():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
