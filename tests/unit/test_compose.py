"""The distributed deployment (``docker-compose.yml``, ``Dockerfile``) checked against the code.

No Docker engine is needed: the files are parsed and compared with what the code really defines
(CLI subcommands, ``Settings`` fields, the routes the app serves, the packages ``pyproject.toml``
ships). Building a FastAPI app opens nothing, so these stay unit tests (no sockets).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml

from codetrackr import cli
from codetrackr.bootstrap import Role, build_event_log, build_store, create_app
from codetrackr.health import WORKER_HEALTH_PATHS
from codetrackr.settings import Settings
from eventlog.kafka import KafkaEventLog

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = ROOT / "pyproject.toml"

KAFKA, CLICKHOUSE, REDIS = "kafka", "clickhouse", "redis"
# CodeTrackr service -> the ``codetrackr`` subcommand it runs.
APP_SERVICES = {"ingest": "ingest", "api": "api", "worker": "worker", "hooks": "worker"}
# The HTTP services -> the app role they serve (codetrackr.bootstrap.create_app).
HTTP_ROLES: dict[str, Role] = {"ingest": "ingest", "api": "api"}
HTTP_SERVICES = tuple(HTTP_ROLES)
# What each role talks to, hence must wait for (codetrackr.bootstrap.create_app builds the
# projection store only for api; codetrackr.cli._worker prepares the log and writes projections).
NEEDS = {
    "ingest": {KAFKA},
    "api": {KAFKA, CLICKHOUSE},
    "worker": {KAFKA, CLICKHOUSE},
    # plugin SQL reads ClickHouse; ctx.redis is the key-value store
    "hooks": {KAFKA, CLICKHOUSE, REDIS},
}
# Where the official images keep their data.
DATA_DIRS = {CLICKHOUSE: "/var/lib/clickhouse"}
OFFICIAL_IMAGES = {
    KAFKA: "apache/kafka",
    CLICKHOUSE: "clickhouse/clickhouse-server",
    REDIS: "redis",
}

PREFIX = str(Settings.model_config.get("env_prefix", ""))
SETTINGS_ENV_NAMES = {PREFIX + name.upper() for name in Settings.model_fields}
DUMMY = "Zx8q2Lr5Tn7Vb1Kw4Hs6Jd9Fg3Mc0Pa5Ye8Ru2Wi"  # stands for a required ${VAR:?...}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+x}, $VAR, $$
_INTERPOLATION = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)
_REQUIRED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}")


# ---- helpers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def _interpolate(value: str) -> str:
    """The value compose would use: defaults applied, required variables set to ``DUMMY``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        op = match.group("op")
        if op in (":-", "-"):
            return match.group("arg")
        if op in (":+", "+"):
            return ""
        return DUMMY

    return _INTERPOLATION.sub(replace, value)


def _variables(value: str) -> set[str]:
    return {
        m.group("name") or m.group("bare")
        for m in _INTERPOLATION.finditer(value)
        if m.group(0) != "$$"
    }


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as written (interpolations left in), values as strings."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) if "=" in item else (item, None) for item in raw)
    return {key: str(value) for key, value in raw.items() if value is not None}


def _resolved_env(service: dict[str, Any]) -> dict[str, str]:
    return {key: _interpolate(value) for key, value in _env(service).items()}


def _settings_kwargs(service: dict[str, Any]) -> dict[str, Any]:
    return {
        key.removeprefix(PREFIX).lower(): value
        for key, value in _resolved_env(service).items()
        if key.startswith(PREFIX)
    }


def _subcommands() -> set[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("codetrackr.cli.build_parser() defines no subcommands")


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` -> {NAME: (host, port)}."""
    found = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def _seconds(duration: str | int) -> float:
    """Compose durations: ``30s``, ``1m30s``, ``500ms``; a bare number is seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"unparsable duration {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def _container_ports(service: dict[str, Any]) -> list[int]:
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
        else:
            ports.append(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def _published_ports(service: dict[str, Any]) -> list[str]:
    published = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published.append(str(entry.get("published")))
        else:
            published.append(str(entry).split("/")[0].rsplit(":", 1)[0])
    return published


def _named_volume_mounts(service: dict[str, Any], compose: dict[str, Any]) -> dict[str, str]:
    """{container path: volume name} for the mounts of volumes declared at the top level."""
    declared = set(compose.get("volumes") or {})
    mounts: dict[str, str] = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            source, target = str(entry.get("source")), str(entry["target"])
        else:
            source, target = str(entry).split(":")[:2]
        if source in declared:
            mounts[target] = source
    return mounts


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


def _exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list), f"expected the exec (JSON) form, got {args!r}"
    return [str(part) for part in parsed]


def _copy_sources(args: str) -> list[str] | None:
    """Sources of a COPY from the build context; None for ``COPY --from=<stage>``."""
    parts = _exec_form(args) if args.startswith("[") else shlex.split(args)
    if any(part.startswith("--from") for part in parts):
        return None
    paths = [part for part in parts if not part.startswith("--")]
    return [PurePosixPath(path).as_posix().rstrip("/") or "." for path in paths[:-1]]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def _top_level_packages() -> set[str]:
    packages = _pyproject()["tool"]["setuptools"]["packages"]
    return {name.split(".")[0] for name in packages}


# ---- services and images -------------------------------------------------------------------


def test_compose_defines_the_distributed_services(services: dict[str, dict[str, Any]]) -> None:
    expected = {KAFKA, CLICKHOUSE, REDIS, *APP_SERVICES}
    assert expected <= set(services), f"missing services: {expected - set(services)}"


def test_kafka_runs_in_kraft_mode_without_zookeeper(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "zookeeper" not in name.lower()
        assert "zookeeper" not in str(service.get("image", "")).lower()
    env = _env(services[KAFKA])
    assert {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")} == {
        "broker",
        "controller",
    }
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    controller_names = set(env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","))
    assert controller_names <= set(_listeners(env["KAFKA_LISTENERS"]))
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@{KAFKA}:")
    assert env.get("CLUSTER_ID"), "KRaft needs a stable CLUSTER_ID for the formatted log dir"


def test_infrastructure_services_use_pinned_official_images(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, repository in OFFICIAL_IMAGES.items():
        image = services[name]["image"]
        image_repository, _, tag = image.partition(":")
        assert image_repository == repository, f"{name}: {image}"
        assert tag, f"{name}: pin a version, not an implicit latest"
        assert tag != "latest", f"{name}: pin a version, not latest"
        assert "build" not in services[name]


def test_app_services_share_one_image_built_from_the_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1, f"ingest/api/worker must use one image, found {images}"
    assert None not in images

    builds = [services[name]["build"] for name in APP_SERVICES if "build" in services[name]]
    assert len(builds) == 1 or (
        len(builds) == len(APP_SERVICES) and all(b == builds[0] for b in builds)
    ), "exactly one service builds the shared image, or all declare the same build"
    build = builds[0] if isinstance(builds[0], dict) else {"context": builds[0]}
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    assert context == ROOT
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_app_services_run_their_codetrackr_subcommand(
    services: dict[str, dict[str, Any]],
) -> None:
    subcommands = _subcommands()
    for name, subcommand in APP_SERVICES.items():
        command = services[name]["command"]
        command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        assert command[0] == subcommand, f"{name} runs {command}"
        assert command[0] in subcommands
        # Flags too: the image's ENTRYPOINT is `codetrackr`, so this is its whole argv.
        assert cli.build_parser().parse_args(command).command == subcommand


def test_projections_and_hooks_run_in_workers_of_their_own(
    services: dict[str, dict[str, Any]],
) -> None:
    """Plugin hooks must not take CPU from projection workers (docs/operations.md)."""
    roles = {}
    for name in ("worker", "hooks"):
        command = [str(c) for c in services[name]["command"]]
        roles[name] = cli.build_parser().parse_args(command).role
    assert roles == {"worker": "projections", "hooks": "hooks"}


# ---- settings ------------------------------------------------------------------------------


def test_compose_codetrackr_variables_are_settings_fields(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        unknown = {key for key in _env(service) if key.startswith(PREFIX)} - SETTINGS_ENV_NAMES
        assert not unknown, f"{name} sets variables Settings ignores: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_sets_the_distributed_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = _env(services[name])
    for field in ("event_log_url", "clickhouse_url", "redis_url", "jwt_secret"):
        assert field in Settings.model_fields
        assert env.get(PREFIX + field.upper()), f"{name}: {PREFIX}{field.upper()} is not set"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_app_service_environment_builds_valid_settings(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    settings = Settings(**_settings_kwargs(services[name]))
    assert settings.event_log_url.startswith("kafka://")  # `codetrackr worker` refuses others
    assert settings.jwt_secret is not None
    # The adapters accept the URLs (construction does no I/O).
    assert isinstance(build_event_log(settings), KafkaEventLog)
    build_store(settings)  # raises ValueError for a bad scheme or database name


def test_event_log_url_names_a_kafka_client_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka_env = _env(services[KAFKA])
    listeners = _listeners(kafka_env["KAFKA_LISTENERS"])
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    controllers = set(kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(","))
    for name in APP_SERVICES:
        url = _resolved_env(services[name])[PREFIX + "EVENT_LOG_URL"]
        scheme, _, servers = url.partition("://")
        assert scheme == "kafka"
        for server in servers.split(","):
            host, _, port = server.rpartition(":")
            assert host == KAFKA, f"{name}: {url} does not name the {KAFKA} service"
            names = [n for n, (_, p) in listeners.items() if p == int(port)]
            assert names, f"{name}: no Kafka listener on port {port}"
            assert not set(names) & controllers, f"{name}: port {port} is the controller's"
            assert advertised.get(names[0]) == (KAFKA, int(port)), (
                f"{name}: the broker advertises {advertised} for listener {names[0]}"
            )


def test_clickhouse_url_points_at_the_clickhouse_service(
    services: dict[str, dict[str, Any]],
) -> None:
    clickhouse_env = _env(services[CLICKHOUSE])
    for name in APP_SERVICES:
        raw = _env(services[name])[PREFIX + "CLICKHOUSE_URL"]
        url = urlsplit(_interpolate(raw))
        assert url.scheme in ("http", "https")
        assert url.hostname == CLICKHOUSE
        assert url.port == 8123
        assert url.username == clickhouse_env["CLICKHOUSE_USER"]
        # Not urlsplit: the "?" of ${VAR:?message} would start a query string.
        userinfo = raw.partition("://")[2].rpartition("@")[0]
        password = userinfo.partition(":")[2]
        assert _REQUIRED.fullmatch(password), f"{name}: the ClickHouse password is in clear"
        assert _variables(password) == _variables(clickhouse_env["CLICKHOUSE_PASSWORD"])


def test_redis_url_points_at_the_redis_service(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        url = urlsplit(_resolved_env(services[name])[PREFIX + "REDIS_URL"])
        assert url.scheme in ("redis", "rediss")
        assert url.hostname == REDIS
        assert url.port in (None, 6379)
    assert "--port" not in services[REDIS].get("command", [])


def test_jwt_secret_is_one_required_interpolation_across_services(
    services: dict[str, dict[str, Any]],
) -> None:
    values = {_env(services[name])[PREFIX + "JWT_SECRET"] for name in APP_SERVICES}
    assert len(values) == 1, f"ingest/api/worker must share one JWT secret: {values}"
    (value,) = values
    # Required and without a default: no literal (placeholder) secret can reach a service.
    assert _REQUIRED.fullmatch(value), f"the JWT secret must be ${{VAR:?...}}, not {value!r}"


def test_compose_secrets_are_required_interpolations(
    services: dict[str, dict[str, Any]],
) -> None:
    secret_names = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY")
    checked = 0
    for name, service in services.items():
        for key, value in _env(service).items():
            if secret_names.search(key):
                checked += 1
                assert _REQUIRED.fullmatch(value), f"{name}: {key} is written in clear"
    assert checked >= len(APP_SERVICES) + 1


def test_compose_interpolations_fail_fast_or_have_defaults(compose: dict[str, Any]) -> None:
    # A bare ${VAR} becomes "" when VAR is unset, silently; demand :? (required) or :- (default).
    for text in _strings(compose):
        for match in _INTERPOLATION.finditer(text):
            if match.group(0) == "$$":
                continue
            assert match.group("op") in (":?", "?", ":-", "-"), f"unguarded {match.group(0)}"


# ---- health, ports, start order ------------------------------------------------------------


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    # One-shot jobs (e.g. a replay) would sit behind a profile and need none.
    for name, service in services.items():
        if service.get("profiles"):
            continue
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"{name} has no healthcheck"
        assert not healthcheck.get("disable")
        test = healthcheck["test"]
        assert test, f"{name}: empty healthcheck"
        assert test != ["NONE"], f"{name}: healthcheck disabled"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: {test}"


def test_python_healthchecks_compile(services: dict[str, dict[str, Any]]) -> None:
    compiled = 0
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        if isinstance(test, list) and test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"<{name} healthcheck>", "exec")
            compiled += 1
    assert compiled >= len(APP_SERVICES)


def _probed_url(service: dict[str, Any], name: str) -> SplitResult:
    urls = re.findall(r"https?://[^\s'\"]+", _healthcheck_text(service))
    assert len(urls) == 1, f"{name}: {urls}"
    url = urlsplit(urls[0])
    port = int(_resolved_env(service)[PREFIX + "PORT"])
    assert url.hostname in ("127.0.0.1", "localhost")
    assert url.port == port
    return url


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_http_service_healthcheck_hits_a_served_readyz(
    services: dict[str, dict[str, Any]], name: str, tmp_path: Path
) -> None:
    url = _probed_url(services[name], name)
    assert url.path == "/readyz"

    app = create_app(Settings(data_dir=tmp_path), HTTP_ROLES[name])
    served = {
        (route.path, method)
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if hasattr(route, "path")
    }
    assert (url.path, "GET") in served, f"{name} does not serve GET {url.path}"
    assert ("/healthz", "GET") in served, f"{name} does not serve GET /healthz"


def test_worker_healthcheck_hits_the_readyz_it_serves_on_its_port(
    services: dict[str, dict[str, Any]],
) -> None:
    url = _probed_url(services["worker"], "worker")
    assert url.path == "/readyz"
    assert url.path in WORKER_HEALTH_PATHS
    # The worker takes its listen address from the same settings as the HTTP roles.
    args = cli.build_parser().parse_args(["worker", "--port", str(url.port)])
    assert args.port == url.port


def test_infrastructure_healthchecks_probe_the_ports_clients_use(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka_port = urlsplit(_resolved_env(services["ingest"])[PREFIX + "EVENT_LOG_URL"]).port
    assert f"localhost:{kafka_port}" in _healthcheck_text(services[KAFKA])
    clickhouse_port = urlsplit(_interpolate(_env(services["api"])[PREFIX + "CLICKHOUSE_URL"])).port
    assert f"localhost:{clickhouse_port}/ping" in _healthcheck_text(services[CLICKHOUSE])
    assert "ping" in _healthcheck_text(services[REDIS])


def test_http_services_publish_their_listen_port(services: dict[str, dict[str, Any]]) -> None:
    published: list[str] = []
    for name in HTTP_SERVICES:
        env = _resolved_env(services[name])
        assert env[PREFIX + "HOST"] == "0.0.0.0", f"{name} must listen beyond the container"
        ports = _container_ports(services[name])
        assert ports == [int(env[PREFIX + "PORT"])], f"{name}: {services[name].get('ports')}"
        published += _published_ports(services[name])
    assert len(published) == len(set(published)), f"host ports collide: {published}"
    for name in (KAFKA, CLICKHOUSE, REDIS, "worker"):
        assert not services[name].get("ports"), f"{name} need not be reachable from the host"


def test_depends_on_waits_for_healthy_infrastructure(
    services: dict[str, dict[str, Any]],
) -> None:
    valid = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: use the long depends_on syntax"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown {target}"
            assert spec["condition"] in valid
            if spec["condition"] == "service_healthy":
                assert services[target].get("healthcheck"), f"{target} is never healthy"
        for target in NEEDS.get(name, set()):
            condition = depends_on.get(target, {}).get("condition")
            assert condition == "service_healthy", f"{name} must wait for a healthy {target}"


def test_app_services_stop_after_the_graceful_shutdown(
    services: dict[str, dict[str, Any]],
) -> None:
    tree = ast.parse(inspect.getsource(cli._serve))
    grace = [
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "timeout_graceful_shutdown"
        and isinstance(keyword.value, ast.Constant)
        and isinstance(keyword.value.value, int | float)
    ]
    assert len(grace) == 1, "codetrackr.cli._serve no longer sets timeout_graceful_shutdown"
    for name in APP_SERVICES:
        stop = _seconds(services[name].get("stop_grace_period", "10s"))
        assert stop > grace[0], f"{name} is killed after {stop}s, before shutdown ends"


# ---- durability and scale ------------------------------------------------------------------


def test_kafka_keeps_the_log_forever_without_auto_created_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    env = _env(services[KAFKA])
    assert int(env["KAFKA_LOG_RETENTION_MS"]) == -1
    assert int(env.get("KAFKA_LOG_RETENTION_BYTES", "-1")) == -1
    assert env.get("KAFKA_LOG_CLEANUP_POLICY", "delete") == "delete"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"].lower() == "false"


def test_stateful_services_keep_data_on_named_volumes(
    services: dict[str, dict[str, Any]], compose: dict[str, Any]
) -> None:
    kafka_dirs = _env(services[KAFKA])["KAFKA_LOG_DIRS"].split(",")
    data_dirs = {KAFKA: kafka_dirs, CLICKHOUSE: [DATA_DIRS[CLICKHOUSE]]}
    for name, dirs in data_dirs.items():
        mounts = _named_volume_mounts(services[name], compose)
        for directory in dirs:
            assert any(PurePosixPath(directory).is_relative_to(target) for target in mounts), (
                f"{name}: {directory} is not on a named volume ({mounts})"
            )


def _redis_options(service: dict[str, Any]) -> dict[str, str]:
    """``--name value`` pairs of the redis-server command line (the last one wins, as in Redis)."""
    command = service.get("command", [])
    args = shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]
    assert args[:1] == ["redis-server"], args
    assert len(args) % 2 == 1, f"redis-server: an option without a value in {args}"
    options: dict[str, str] = {}
    for name, value in zip(args[1::2], args[2::2], strict=True):
        assert name.startswith("--"), f"redis-server: expected --option value pairs, got {args}"
        options[name.removeprefix("--")] = value
    return options


def test_redis_keeps_plugin_key_value_data_across_restarts(
    services: dict[str, dict[str, Any]], compose: dict[str, Any]
) -> None:
    options = _redis_options(services[REDIS])
    assert options.get("appendonly") == "yes", "plugin key-value data needs the append-only file"
    assert options.get("appendfsync", "everysec") in ("everysec", "always")
    # The official image starts in /data; an explicit --dir must be the mounted one too.
    directory = options.get("dir", "/data")
    mounts = _named_volume_mounts(services[REDIS], compose)
    assert any(PurePosixPath(directory).is_relative_to(target) for target in mounts), (
        f"redis: {directory} is not on a named volume ({mounts})"
    )
    # Eviction would silently delete user data (Redis's default policy is noeviction).
    assert options.get("maxmemory-policy", "noeviction") == "noeviction"


def test_worker_replicas_do_not_exceed_heartbeat_partitions(
    services: dict[str, dict[str, Any]],
) -> None:
    worker = services["worker"]
    replicas = int(worker.get("scale", (worker.get("deploy") or {}).get("replicas", 1)))
    partitions = Settings(**_settings_kwargs(worker)).heartbeat_partitions
    assert 1 <= replicas <= partitions, f"{replicas} workers for {partitions} partitions"


# ---- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_copies_every_top_level_package() -> None:
    copied = {
        source
        for keyword, args in _dockerfile()
        if keyword in ("COPY", "ADD")
        for source in _copy_sources(args) or []
    }
    missing = _top_level_packages() - copied
    assert "." in copied or not missing, f"the image lacks packages: {sorted(missing)}"
    for package in _top_level_packages():
        assert (ROOT / package / "__init__.py").is_file()


def test_dockerfile_installs_the_project_after_copying_it() -> None:
    instructions = _dockerfile()
    installs = [
        index
        for index, (keyword, args) in enumerate(instructions)
        if keyword == "RUN" and re.search(r"\bpip install\b[^&;|]*\s\.(\s|$)", args)
    ]
    assert installs, "no `pip install .` of the project"
    copies = {
        source: index
        for index, (keyword, args) in enumerate(instructions)
        if keyword in ("COPY", "ADD")
        for source in _copy_sources(args) or []
    }
    for needed in {"pyproject.toml", *_top_level_packages()}:
        position = copies.get(needed, copies.get("."))
        assert position is not None, f"{needed} is not copied into the image"
        assert position < installs[-1], f"{needed} is copied after the project is installed"


def test_dockerfile_entrypoint_is_the_codetrackr_script() -> None:
    instructions = dict(_dockerfile())  # the last ENTRYPOINT/CMD wins, as in Docker
    assert _exec_form(instructions["ENTRYPOINT"]) == ["codetrackr"]
    assert _pyproject()["project"]["scripts"]["codetrackr"] == "codetrackr.cli:main"
    default = _exec_form(instructions["CMD"])
    assert default[0] in _subcommands()


def test_dockerfile_base_image_matches_requires_python() -> None:
    stages = [args.split()[0] for keyword, args in _dockerfile() if keyword == "FROM"]
    image, _, tag = stages[-1].partition(":")
    assert image == "python"
    version = re.match(r"(\d+)\.(\d+)", tag)
    assert version, f"pin the Python minor version: {stages[-1]}"
    requires = _pyproject()["project"]["requires-python"]
    assert f">={version[1]}.{version[2]}" in requires
    assert f"<{version[1]}.{int(version[2]) + 1}" in requires


def test_clickhouse_has_a_read_only_analyst_user(services: dict[str, dict[str, Any]]) -> None:
    """docs/analytics.md: analysts get a ClickHouse user that can only read the projections and
    the analytics views, under limits they cannot change, with a password from the environment."""
    import xml.etree.ElementTree as ET

    from projections.clickhouse.analytics import analytics_database

    clickhouse = services[CLICKHOUSE]
    mounts = {
        str(PurePosixPath(volume.split(":")[1])): volume.split(":")[0]
        for volume in clickhouse["volumes"]
        if volume.startswith("./")
    }
    source = mounts["/etc/clickhouse-server/users.d/analyst.xml"]
    root = ET.parse(ROOT / source).getroot()
    profile = root.find("profiles/analyst")
    assert profile is not None
    assert profile.findtext("readonly") == "1"
    assert profile.findtext("result_overflow_mode") == "throw"
    assert int(profile.findtext("max_result_rows") or 0) > 0
    assert float(profile.findtext("max_execution_time") or 0) > 0
    user = root.find("users/analyst")
    assert user is not None
    password = user.find("password")
    assert password is not None
    assert password.get("from_env") == "CLICKHOUSE_ANALYST_PASSWORD"
    assert "CLICKHOUSE_ANALYST_PASSWORD" in clickhouse["environment"]
    database = Settings().clickhouse_database
    allowed = {d.text for d in user.findall("allow_databases/database")}
    assert allowed == {database, analytics_database(database)}


def test_grafana_and_prometheus_are_provisioned_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    """docs/analytics.md#grafana: the dashboards and data sources are files here, mounted into
    Grafana; Prometheus scrapes every CodeTrackr service; Grafana reads ClickHouse as the
    read-only analyst, whose profile lets its client send the time limit it always sends."""
    import xml.etree.ElementTree as ET

    for name in ("grafana", "prometheus"):
        tag = services[name]["image"].partition(":")[2]
        assert tag, f"{name}: pin a version"
        assert tag != "latest", f"{name}: pin a version"
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts a missing {source}"
    grafana_env = _env(services["grafana"])
    assert grafana_env["GF_INSTALL_PLUGINS"].startswith("grafana-clickhouse-datasource ")
    assert "CLICKHOUSE_ANALYST_PASSWORD" in grafana_env
    datasources = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/codetrackr.yaml").read_text()
    )["datasources"]
    (clickhouse,) = [d for d in datasources if d["type"] == "grafana-clickhouse-datasource"]
    assert clickhouse["jsonData"]["host"] == CLICKHOUSE
    assert clickhouse["jsonData"]["username"] == "analyst"
    assert clickhouse["secureJsonData"]["password"] == "$CLICKHOUSE_ANALYST_PASSWORD"
    scrape = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    (sd,) = job["dns_sd_configs"]
    assert set(sd["names"]) == set(APP_SERVICES)
    assert sd["port"] == int(_env(services["api"])["CODETRACKR_PORT"])
    root = ET.parse(ROOT / "deploy/clickhouse/users.d/analyst.xml").getroot()
    limit = root.find("profiles/analyst/constraints/max_execution_time")
    assert limit is not None
    assert limit.find("changeable_in_readonly") is not None
    assert limit.findtext("max") == root.findtext("profiles/analyst/max_execution_time")
