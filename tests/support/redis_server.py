"""A real ``redis-server`` child process per test, on a loopback port picked here.

Tests never use a Redis that happens to run on the machine (e.g. 127.0.0.1:6379): each starts its
own, by default without persistence (``--save "" --appendonly no``), and stops it afterwards.
``stop`` and ``kill`` keep the port, so ``start`` brings the server back where clients expect it
(empty: Redis is only a transport for live push and tickets). ``RedisServer(..., appendonly=True)``
runs it as ``docker-compose.yml`` does (``--appendonly yes --appendfsync everysec``), in a
directory kept across restarts, for data that must survive one (the plugin key-value store).

The binary comes from Debian's ``redis-server`` package (``make install`` installs it when
missing). Without it the Redis tests are skipped with that hint, except under CI, where a missing
binary fails the run instead of hiding tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.brokers import die_with_parent, free_port

__all__ = ["RedisServer", "redis_server_binary", "running_redis"]

_LOOPBACK = "127.0.0.1"
INSTALL_HINT = "redis-server not found: run `make install` (or `apt-get install redis-server`)"


def redis_server_binary() -> str:
    """The binary's path; skips the test (fails it under CI) when it is not installed."""
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)
    return found


def _ping(port: int) -> bool:
    try:
        with socket.create_connection((_LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, binary: str, port: int | None = None, *, appendonly: bool = False) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        self._dir = Path(tempfile.mkdtemp(prefix="ct-redis-"))
        self._log = self._dir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{_LOOPBACK}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        if self.running:
            return self
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", _LOOPBACK,
            "--save", "",
            *(
                ("--appendonly", "yes", "--appendfsync", "everysec")
                if self.appendonly
                else ("--appendonly", "no")
            ),
            "--daemonize", "no",
            "--dir", str(self._dir),
            "--logfile", "",
        ]  # fmt: skip
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
            )
        deadline = time.monotonic() + timeout_s
        while not _ping(self.port):
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(
                    f"redis-server not answering PING in {timeout_s}s:\n{self.logs()}"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time. The port is kept for a restart."""
        if not self.running:
            return
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if not self.running:
            return
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return self._log.read_text(errors="replace")[-4000:] if self._log.exists() else ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def running_redis(*, appendonly: bool = False) -> Iterator[RedisServer]:
    """Body of a fixture: ``yield from running_redis()`` gives a started server, closed after."""
    server = RedisServer(redis_server_binary(), appendonly=appendonly)
    try:
        yield server.start()
    finally:
        server.close()
