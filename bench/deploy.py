"""The system under test: a ``codetrackr serve`` child process, on a NoidaBroker in kafka mode.

A :class:`Deployment` is a context manager: leaving it (normally, on an exception or on Ctrl-C)
stops the server, then the broker. It also hands out the raw event log adapter for baselines
(the same adapter class the server uses, on the same storage kind) and accounts on the server.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from eventlog.embedded import SqliteEventLog
from eventlog.kafka import KafkaEventLog
from eventlog.port import EventLog
from schemas.events import HEARTBEATS_TOPIC
from tests.brokers import NoidaBroker
from tests.e2e.harness import Client, CodeTrackrProcess

Mode = Literal["embedded", "kafka"]
MODES: tuple[Mode, ...] = ("embedded", "kafka")

# codetrackr's default partition count of the heartbeats topic; the raw baseline uses the same.
HEARTBEAT_PARTITIONS = 3
# The raw Kafka baseline appends to its own topic so the server's projector never reads it.
RAW_KAFKA_TOPIC = "bench.raw-heartbeats"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class User:
    """An account on the server: login token (stats) and API key (ingest)."""

    user_id: str
    token: str
    api_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def basic(self) -> dict[str, str]:
        """What WakaTime clients send: ``Basic base64(key)``."""
        return {"Authorization": "Basic " + base64.b64encode(self.api_key.encode()).decode()}


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state) of proc(5); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def process_peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a process in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def machine_busy_cpu_s() -> float:
    """CPU seconds all processes on the machine spent busy (all cores), from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _children_named(fragment: str) -> list[int]:
    """Pids of this process's direct children whose command line contains ``fragment``."""
    me = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and fragment in cmdline:
            found.append(int(entry.name))
    return found


class Deployment:
    """``codetrackr serve`` (plus a NoidaBroker for ``kafka``) under ``work_dir``."""

    def __init__(self, mode: Mode, work_dir: Path) -> None:
        self.mode = mode
        self.work_dir = work_dir
        self.broker: NoidaBroker | None = None
        self.server: CodeTrackrProcess | None = None
        self._stack = contextlib.ExitStack()

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        env: dict[str, str] = {"CODETRACKR_HEARTBEAT_PARTITIONS": str(HEARTBEAT_PARTITIONS)}
        if self.mode == "kafka":
            broker = NoidaBroker(work_dir=self.work_dir / "broker")
            self._stack.callback(broker.close)
            broker.start(timeout_s=60)
            self.broker = broker
            env["CODETRACKR_EVENT_LOG_URL"] = broker.url
        server = CodeTrackrProcess("serve", self.work_dir / "serve", env=env)
        self._stack.callback(server.stop)
        server.start(timeout_s=120)
        self.server = server

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    # -- facts about the processes ------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def server_pid(self) -> int:
        assert self.server is not None
        assert self.server.proc is not None
        return self.server.proc.pid

    def broker_pids(self) -> list[int]:
        return _children_named("noida-db") if self.broker is not None else []

    def server_alive(self) -> bool:
        return (
            self.server is not None
            and self.server.proc is not None
            and self.server.proc.poll() is None
        )

    def logs(self) -> str:
        return self.server.logs() if self.server is not None else ""

    # -- accounts and baselines ---------------------------------------------------------------

    def create_user(self, timezone: str = "UTC") -> User:
        client = Client(self.url, timezone=timezone)
        try:
            me = client.get("/api/v1/user/me")
            user_id = str(me.get("user_id") or me.get("id"))
            return User(user_id=user_id, token=client.token, api_key=client.api_key)
        finally:
            client.http.close()

    def raw_log(self) -> tuple[EventLog, str]:
        """A fresh, unstarted adapter of the kind the server uses, and the topic to append to.

        embedded: a ``SqliteEventLog`` on its own file next to the server's data dir (same disk,
        same fsync policy). kafka: a ``KafkaEventLog`` on the same broker, its own topic.
        """
        if self.mode == "embedded":
            path = self.work_dir / "raw" / f"eventlog-{time.monotonic_ns()}.sqlite"
            return SqliteEventLog(path), HEARTBEATS_TOPIC
        assert self.broker is not None
        return KafkaEventLog(self.broker.bootstrap, client_id="bench-raw"), RAW_KAFKA_TOPIC


@dataclass(frozen=True)
class Usage:
    """Wall time and CPU seconds of the server, the broker and the bench itself over a phase."""

    wall_s: float
    server_cpu_s: float
    broker_cpu_s: float
    bench_cpu_s: float
    machine_cpu_s: float

    @property
    def other_cpu_s(self) -> float:
        """CPU used by processes outside the bench (other work on the machine), never < 0."""
        ours = self.server_cpu_s + self.broker_cpu_s + self.bench_cpu_s
        return max(0.0, self.machine_cpu_s - ours)

    def note(self) -> str:
        wall = max(self.wall_s, 1e-9)
        parts = [f"server {self.server_cpu_s / wall:.0%}"]
        if self.broker_cpu_s:
            parts.append(f"broker {self.broker_cpu_s / wall:.0%}")
        parts.append(f"bench client {self.bench_cpu_s / wall:.0%}")
        parts.append(f"other processes {self.other_cpu_s / wall:.0%}")
        return f"CPU over {self.wall_s:.1f} s (100% = one core): " + ", ".join(parts)


class Meter:
    """Measures :class:`Usage` between construction and :meth:`stop`."""

    def __init__(self, deployment: Deployment) -> None:
        self._deployment = deployment
        self._wall = time.perf_counter()
        self._server = process_cpu_s(deployment.server_pid) or 0.0
        self._broker = self._broker_cpu()
        self._bench = own_cpu_s()
        self._machine = machine_busy_cpu_s()

    def _broker_cpu(self) -> float:
        return sum(process_cpu_s(pid) or 0.0 for pid in self._deployment.broker_pids())

    def stop(self) -> Usage:
        return Usage(
            wall_s=time.perf_counter() - self._wall,
            server_cpu_s=(process_cpu_s(self._deployment.server_pid) or 0.0) - self._server,
            broker_cpu_s=self._broker_cpu() - self._broker,
            bench_cpu_s=own_cpu_s() - self._bench,
            machine_cpu_s=machine_busy_cpu_s() - self._machine,
        )
