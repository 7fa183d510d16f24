"""The system under test, and the CPU meter every figure reports.

:class:`System` is what a figure needs from a deployment: where ingest and the read API listen,
which processes to meter, accounts, and the raw event log adapter for baselines (the same adapter
class the services use, on the same storage). Two implementations: :class:`Deployment` here (one
``codetrackr serve`` child process, on a NoidaBroker in kafka mode) and
:class:`bench.topology.DistributedDeployment` (broker, ClickHouse over HTTP, ``ingest``, ``api``
and workers). Both are context managers: leaving one (normally, on an exception or on Ctrl-C)
stops every process it started, in reverse order.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from eventlog.embedded import SqliteEventLog
from eventlog.kafka import KafkaEventLog
from eventlog.port import EventLog
from schemas.events import HEARTBEATS_TOPIC
from tests.brokers import NoidaBroker
from tests.e2e.harness import CodeTrackrProcess

Mode = Literal["embedded", "kafka", "distributed"]
MODES: tuple[Mode, ...] = ("embedded", "kafka", "distributed")

# codetrackr's default partition count of the heartbeats topic; the raw baseline uses the same.
HEARTBEAT_PARTITIONS = 3
# The raw Kafka baseline appends to its own topic so the server's projector never reads it.
RAW_KAFKA_TOPIC = "bench.raw-heartbeats"
_CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every request of the bench comes from 127.0.0.1 and a few API keys: per-address and per-key
# rate limits would measure the limiter's budget, not the server. (Servers without rate limits
# ignore the variable.)
NO_RATE_LIMITS = {"CODETRACKR_RATE_LIMIT_ENABLED": "false"}


@dataclass(frozen=True)
class User:
    """An account on the server: login token (stats) and API key (ingest)."""

    user_id: str
    token: str
    api_key: str
    refresh_token: str = ""  # the login's refresh token (the dashboard figure signs a page in)

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


def _status_mib(pid: int, field: str) -> float | None:
    """A memory figure of /proc/<pid>/status (``VmHWM``, ``VmRSS``) in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_peak_rss_mib(pid: int) -> float | None:
    """Peak resident set size (VmHWM) of a process in MiB."""
    return _status_mib(pid, "VmHWM")


def process_rss_mib(pid: int) -> float | None:
    """Resident set size now (VmRSS) of a process in MiB."""
    return _status_mib(pid, "VmRSS")


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


def children_named(fragment: str) -> list[int]:
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


class System(Protocol):
    """What the figures need from a deployment (see the module docs). Accounts are made through
    the accounts API at ``api_url`` (:func:`bench.clients.create_users`)."""

    @property
    def mode(self) -> Mode: ...

    @property
    def ingest_url(self) -> str:
        """Base URL of the process serving the write endpoints."""
        ...

    @property
    def api_url(self) -> str:
        """Base URL of the process serving accounts and stats."""
        ...

    @property
    def heartbeat_partitions(self) -> int: ...

    @property
    def append_label(self) -> str:
        """The raw append the ingest figure compares with, e.g. ``KafkaEventLog.append``."""
        ...

    def cpu_pids(self) -> dict[str, list[int]]:
        """The processes to meter, by the name the notes give them."""
        ...

    def dead(self) -> list[str]:
        """Names of the processes that should run and do not."""
        ...

    def logs(self) -> str:
        """The tail of the logs of the processes that died (or of all, if none did)."""
        ...

    def raw_log(self) -> tuple[EventLog, str]:
        """A fresh, unstarted adapter of the kind the services use, and the topic to append to."""
        ...


class Deployment:
    """``codetrackr serve`` (plus a NoidaBroker for ``kafka``) under ``work_dir``."""

    heartbeat_partitions = HEARTBEAT_PARTITIONS

    def __init__(
        self,
        mode: Literal["embedded", "kafka"],
        work_dir: Path,
        *,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.mode = mode
        self.work_dir = work_dir
        self.start_timeout_s = start_timeout_s
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
        env: dict[str, str] = {
            "CODETRACKR_HEARTBEAT_PARTITIONS": str(HEARTBEAT_PARTITIONS),
            **NO_RATE_LIMITS,
        }
        if self.mode == "kafka":
            broker = NoidaBroker(work_dir=self.work_dir / "broker")
            self._stack.callback(broker.close)
            broker.start(timeout_s=60)
            self.broker = broker
            env["CODETRACKR_EVENT_LOG_URL"] = broker.url
        server = CodeTrackrProcess("serve", self.data_dir, env=env)
        self._stack.callback(server.stop)
        server.start(timeout_s=self.start_timeout_s)
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
    def data_dir(self) -> Path:
        """The server's data directory (its embedded event log lives there)."""
        return self.work_dir / "serve"

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def ingest_url(self) -> str:
        return self.url

    @property
    def api_url(self) -> str:
        return self.url

    @property
    def append_label(self) -> str:
        return f"{'SqliteEventLog' if self.mode == 'embedded' else 'KafkaEventLog'}.append"

    def cpu_pids(self) -> dict[str, list[int]]:
        pids = {"server": [self.server_pid]}
        if self.broker is not None:
            pids["broker"] = self.broker_pids()
        return pids

    def dead(self) -> list[str]:
        return [] if self.server_alive() else ["codetrackr serve"]

    @property
    def server_pid(self) -> int:
        assert self.server is not None
        assert self.server.proc is not None
        return self.server.proc.pid

    def broker_pids(self) -> list[int]:
        return children_named("noida-db") if self.broker is not None else []

    def server_alive(self) -> bool:
        return (
            self.server is not None
            and self.server.proc is not None
            and self.server.proc.poll() is None
        )

    def logs(self) -> str:
        return self.server.logs() if self.server is not None else ""

    # -- accounts and baselines ---------------------------------------------------------------

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
    """Wall time and CPU seconds of the system's processes and the bench itself over a phase."""

    wall_s: float
    parts: dict[str, float]  # CPU seconds per process group of the system, in note order
    bench_cpu_s: float
    machine_cpu_s: float

    @property
    def other_cpu_s(self) -> float:
        """CPU used by processes outside the bench (other work on the machine), never < 0."""
        return max(0.0, self.machine_cpu_s - sum(self.parts.values()) - self.bench_cpu_s)

    def share(self, part: str) -> float:
        """``part``'s CPU as a fraction of one core over the phase."""
        return self.parts.get(part, 0.0) / max(self.wall_s, 1e-9)

    def note(self) -> str:
        wall = max(self.wall_s, 1e-9)
        parts = [f"{name} {seconds / wall:.0%}" for name, seconds in self.parts.items()]
        parts.append(f"bench client {self.bench_cpu_s / wall:.0%}")
        parts.append(f"other processes {self.other_cpu_s / wall:.0%}")
        return f"CPU over {self.wall_s:.1f} s (100% = one core): " + ", ".join(parts)


def _cpu_of(pids: list[int]) -> float:
    return sum(process_cpu_s(pid) or 0.0 for pid in pids)


class Meter:
    """Measures :class:`Usage` between construction and :meth:`stop`."""

    def __init__(self, system: System) -> None:
        self._pids = system.cpu_pids()
        self._wall = time.perf_counter()
        self._parts = {name: _cpu_of(pids) for name, pids in self._pids.items()}
        self._bench = own_cpu_s()
        self._machine = machine_busy_cpu_s()

    def stop(self, extra: dict[str, float] | None = None) -> Usage:
        """``extra``: CPU seconds of processes that came and went during the phase (by name)."""
        parts = {name: _cpu_of(pids) - self._parts[name] for name, pids in self._pids.items()}
        return Usage(
            wall_s=time.perf_counter() - self._wall,
            parts={**(extra or {}), **parts},
            bench_cpu_s=own_cpu_s() - self._bench,
            machine_cpu_s=machine_busy_cpu_s() - self._machine,
        )
