"""The real, unmodified legacy WakaTime client (PyPI ``wakatime==13.1.0``), installed and driven.

What it is
    A TEST TOOL that lets the tests send heartbeats the way an editor plugin does: it runs the
    client's own ``wakatime`` command in a child process, with its own HOME holding
    ``.wakatime.cfg``, and reads the client's offline queue (``~/.wakatime.db``) to check what it
    holds. Nothing of the client is patched or re-implemented here.

Installation
    :func:`install` builds a virtualenv owned by the project (``.venv/wakatime-legacy-cli`` by
    default, inside the git-ignored project venv, so a clean clone builds it on first use and
    ``make clean`` removes it) on a Python 3.9 interpreter, where the client runs as published (its
    vendored urllib3 does not import on 3.10+). The wheel is pinned by version and SHA-256, so what
    runs is byte for byte what PyPI serves. A file lock serialises concurrent builders; a marker
    file written last tells a finished build from an interrupted one, which is rebuilt.

Facts about the client this relies on (read from its source, ``wakatime/*.py`` in 13.1.0)
    * ``api_url`` in ``[settings]`` is used verbatim as the bulk URL; every request is a
      ``POST`` of a JSON array with ``Authorization: Basic base64(api_key)``.
    * The key must be a UUIDv4 or the client exits with :data:`AUTH_ERROR` before sending.
    * ``--entity`` must name an existing file (else the heartbeat is skipped); the project comes
      from a ``.wakatime-project`` file, then ``--project``, then the enclosing repository.
    * When the server cannot be reached, or answers a request (or one entry of ``responses``)
      with anything but 201/202, the heartbeats concerned go to the ``heartbeat_2`` table of
      ``$HOME/.wakatime.db`` (``$WAKATIME_HOME`` if set); a 400 drops them instead. A failed
      request exits with :data:`API_ERROR` (:data:`AUTH_ERROR` for a 401, still queued); a
      failed entry in a 201 answer exits with :data:`SUCCESS`. :data:`CONNECTION_ERROR` exists
      but is never returned for an unreachable server.
    * After a successful send it syncs up to ``--sync-offline-activity`` queued heartbeats (100 by
      default, ``none`` for none), 25 per request with a one-second pause before each request;
      ``--sync-offline-activity N`` without ``--entity`` only syncs.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

WAKATIME_VERSION = "13.1.0"
# sha256 of wakatime-13.1.0-py3-none-any.whl as published on PyPI.
WAKATIME_WHEEL_SHA256 = "c8fde21abf55ca1e1a0d7e9b987450c8e3d01c0453cd144513c42ae662865aa2"
DEFAULT_VENV = ROOT / ".venv" / "wakatime-legacy-cli"
VIM_PLUGIN = "vim/9.0 vim-wakatime/11.0"

# Exit codes, from wakatime/constants.py.
SUCCESS = 0
API_ERROR = 102
CONFIG_FILE_PARSE_ERROR = 103
AUTH_ERROR = 104
UNKNOWN_ERROR = 105
CONNECTION_ERROR = 107

_QUEUE_TABLE = "heartbeat_2"
_MARKER = ".codetrackr-installed.json"
_PROBE = "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"
# Variables of the calling environment that would change what the client does or where it
# looks: its home, another interpreter's paths, proxies in front of the loopback server.
_SCRUBBED_ENV = (
    "WAKATIME_HOME",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "VIRTUAL_ENV",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


class InstallError(RuntimeError):
    """The client could not be installed (no PyPI, a broken interpreter, a hash mismatch)."""


def _clean_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(overrides)
    return env


def _interpreter_version(executable: str) -> tuple[Path, str] | None:
    """(real executable, "major.minor") of a working interpreter, or None."""
    try:
        done = subprocess.run(
            [executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=_clean_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2:
        return None
    return Path(lines[0]), lines[1]


def _pyenv_roots() -> list[Path]:
    roots = [Path(p) for p in (os.environ.get("PYENV_ROOT"),) if p]
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            done = subprocess.run(
                [pyenv, "root"], capture_output=True, text=True, timeout=30, check=False
            )
            if done.returncode == 0 and done.stdout.strip():
                roots.append(Path(done.stdout.strip()))
        except (OSError, subprocess.TimeoutExpired):
            pass
    roots.append(Path.home() / ".pyenv")
    return list(dict.fromkeys(roots))


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for a pyenv version directory like ``3.9.18`` (non-numeric parts last)."""
    return tuple(int(part) if part.isdigit() else -1 for part in path.name.split("."))


def python39_candidates() -> list[str]:
    """Where a Python 3.9 may be, most specific first (each is checked by running it)."""
    found: list[str] = []
    override = os.environ.get("CODETRACKR_PYTHON39")
    if override:
        found.append(override)
    on_path = shutil.which("python3.9")
    if on_path:
        found.append(on_path)  # may be a pyenv shim that refuses when 3.9 is not selected
    for root in _pyenv_roots():
        versions = root / "versions"
        if versions.is_dir():
            dirs = [d for d in versions.iterdir() if re.fullmatch(r"3\.9\.\d+", d.name)]
            for d in sorted(dirs, key=_version_key, reverse=True):
                found.append(str(d / "bin" / "python3.9"))
    found += ["/usr/local/bin/python3.9", "/usr/bin/python3.9"]
    return list(dict.fromkeys(found))


def find_python39() -> Path | None:
    """A working Python 3.9 interpreter (its real path, not a shim), or None."""
    for candidate in python39_candidates():
        probed = _interpreter_version(candidate)
        if probed is not None and probed[1] == "3.9":
            return probed[0]
    return None


@contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} still locked after {timeout_s}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _run_checked(args: Sequence[str], what: str, timeout_s: float) -> str:
    try:
        done = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env=_clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1"),
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"{what}: no answer in {timeout_s}s") from exc
    if done.returncode != 0:
        raise InstallError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def _installed_version(venv: Path) -> str | None:
    """What ``<venv>/bin/wakatime --version`` reports, or None if it does not run."""
    executable = venv / "bin" / "wakatime"
    if not executable.is_file():
        return None
    try:
        done = subprocess.run(
            [str(executable), "--version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=_clean_env(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # The vendored argparse prints the version on stderr.
    out = (done.stdout + done.stderr).strip()
    return out if done.returncode == 0 else None


def _is_complete(venv: Path) -> bool:
    try:
        marker = json.loads((venv / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("version") == WAKATIME_VERSION
        and marker.get("sha256") == WAKATIME_WHEEL_SHA256
        and _installed_version(venv) == WAKATIME_VERSION
    )


def install(python: Path, venv: Path = DEFAULT_VENV, *, timeout_s: float = 600.0) -> WakaTimeCli:
    """The client in ``venv``, building it with ``python`` (a 3.9) when missing or incomplete."""
    with _file_lock(venv.parent / f"{venv.name}.lock", timeout_s):
        if not _is_complete(venv):
            shutil.rmtree(venv, ignore_errors=True)
            # Built in place: the console script's shebang names the venv's own interpreter.
            _run_checked([str(python), "-m", "venv", str(venv)], "creating the venv", timeout_s)
            requirements = venv / "requirements.txt"
            requirements.write_text(
                f"wakatime=={WAKATIME_VERSION} --hash=sha256:{WAKATIME_WHEEL_SHA256}\n"
            )
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input"]
            _run_checked(
                [
                    *pip,
                    "--no-deps",
                    "--only-binary=:all:",
                    "--require-hashes",
                    "-r",
                    str(requirements),
                ],
                f"pip install wakatime=={WAKATIME_VERSION}",
                timeout_s,
            )
            found = _installed_version(venv)
            if found != WAKATIME_VERSION:
                raise InstallError(f"wakatime --version says {found!r}, not {WAKATIME_VERSION}")
            (venv / _MARKER).write_text(
                json.dumps(
                    {
                        "version": WAKATIME_VERSION,
                        "sha256": WAKATIME_WHEEL_SHA256,
                        "python": str(python),
                    }
                )
            )
    return WakaTimeCli(venv / "bin" / "wakatime")


def bulk_url(server_url: str) -> str:
    """The ``api_url`` the legacy client takes: the full bulk endpoint, used verbatim."""
    return f"{server_url.rstrip('/')}/api/v1/users/current/heartbeats.bulk"


def wakapi_url(server_url: str) -> str:
    """The ``api_url`` Wakapi's README tells users to set (``http://host/api``); the legacy
    client posts its batches to it verbatim."""
    return f"{server_url.rstrip('/')}/api"


class WakaTimeHome:
    """A user's HOME as the client sees it: ``.wakatime.cfg``, the queue, the log."""

    def __init__(self, path: Path, *, api_key: str, api_url: str) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key
        self.write_config(api_url)

    @property
    def config_path(self) -> Path:
        return self.path / ".wakatime.cfg"

    @property
    def queue_path(self) -> Path:
        return self.path / ".wakatime.db"

    @property
    def log_path(self) -> Path:
        return self.path / ".wakatime.log"

    def write_config(self, api_url: str) -> None:
        # debug=true: the client logs every request and answer in .wakatime.log, which failure
        # messages quote. timeout bounds each HTTP request the client makes.
        self.config_path.write_text(
            "[settings]\n"
            f"api_key = {self.api_key}\n"
            f"api_url = {api_url}\n"
            "timeout = 15\n"
            "debug = true\n"
        )

    def queued(self) -> list[dict[str, Any]]:
        """The heartbeats in the client's offline queue, oldest first (empty when none)."""
        if not self.queue_path.exists():
            return []
        with closing(sqlite3.connect(self.queue_path)) as conn:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_QUEUE_TABLE,)
            ).fetchone()
            if exists is None:
                return []
            rows = conn.execute(f"SELECT heartbeat FROM {_QUEUE_TABLE} ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass(frozen=True, slots=True)
class CliRun:
    """One finished run of the client."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    log_tail: str

    def __str__(self) -> str:
        return (
            f"wakatime {' '.join(self.args)} -> exit {self.returncode}\n"
            f"stdout: {self.stdout}\nstderr: {self.stderr}\n.wakatime.log (tail):\n{self.log_tail}"
        )


@dataclass(frozen=True, slots=True)
class WakaTimeCli:
    """The installed ``wakatime`` command."""

    executable: Path

    def run(
        self,
        home: WakaTimeHome,
        *args: str,
        timezone: str | None = None,
        timeout_s: float = 120.0,
    ) -> CliRun:
        """Run the client as an editor would, with ``home`` as HOME (and its cwd)."""
        env = _clean_env(HOME=str(home.path), NO_PROXY="127.0.0.1,localhost")
        if timezone:
            env["TZ"] = timezone  # the client sends it as the Timezone header
        done = subprocess.run(
            [str(self.executable), *args],
            cwd=home.path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return CliRun(tuple(args), done.returncode, done.stdout, done.stderr, home.log_tail())

    def heartbeat(
        self,
        home: WakaTimeHome,
        *,
        entity: Path,
        at: float,
        project: str,
        language: str,
        write: bool = False,
        plugin: str = VIM_PLUGIN,
        extra: Sequence[str] = (),
        timezone: str | None = None,
    ) -> CliRun:
        """One heartbeat for ``entity`` (an existing file) at ``at`` (epoch seconds)."""
        args = [
            "--entity",
            str(entity),
            "--time",
            repr(float(at)),
            "--plugin",
            plugin,
            "--project",
            project,
            "--language",
            language,
            *(["--write"] if write else []),
            *extra,
        ]
        return self.run(home, *args, timezone=timezone)

    def sync_offline(
        self, home: WakaTimeHome, amount: int = 100, *, timezone: str | None = None
    ) -> CliRun:
        """Send up to ``amount`` queued heartbeats and nothing new."""
        return self.run(home, "--sync-offline-activity", str(amount), timezone=timezone)
