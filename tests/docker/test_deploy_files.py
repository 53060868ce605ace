"""The deployment files under docker/ (no Docker engine needed): compose.yaml's services,
health checks, restart policies and start order; no literal secret in compose or .env.example;
the Dockerfile's final stage; every metric the dashboard and the alarms in docs/OPERATIONS.md
use is served by /metrics; ``docker compose config`` where the compose plugin exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from schoolsync.app.bootstrap import build_runtime
from schoolsync.app.platforms import CONFIG_BLOCKS
from schoolsync.app.web.app import FastPath, create_app
from schoolsync.core.config import load_config
from schoolsync.core.db.migrate import upgrade
from schoolsync.core.settings import Settings
from tests.conftest import RedisServer, need

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ROLES = ("web", "worker", "scheduler")
SERVICES = {"redis", "postgres", "migrate", *ROLES}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|DSN|(^|_)KEY$|PASS\d*$")
REFERENCE = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(:?[-?][^}]*)?\}$")
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
METRIC = re.compile(r"\bschoolsync_[a-z0-9_]+")


def is_secret(name: str) -> bool:
    """SCHOOLSYNC_SECRETS__* all are; otherwise by the last part of the name (the ``ROLE`` of
    SCHOOLSYNC_ADMIN_TOKENS__ANNA__ROLE is not)."""
    return name.startswith("SCHOOLSYNC_SECRETS__") or bool(
        SECRET_NAME.search(name.rsplit("__", 1)[-1])
    )


def placeholder(value: str) -> bool:
    value = value.strip()
    return value == "" or value.startswith("change-me") or bool(REFERENCE.match(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def long_running(services: dict[str, dict[str, Any]]) -> list[str]:
    """Every service of a plain `up` (no profile) except the one-shot migration."""
    return [n for n, s in services.items() if n != "migrate" and not s.get("profiles")]


# --- compose.yaml --------------------------------------------------------------------------


def test_compose_has_the_six_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= SERVICES
    assert set(long_running(services)) == SERVICES - {"migrate"}


def test_every_long_running_service_has_a_healthcheck_and_restarts(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in long_running(services):
        service = services[name]
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name


def test_roles_run_the_image_with_their_commands_and_checks(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["web"]["command"][0] == "web"
    assert "8000:8000" in services["web"]["ports"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for role in ("worker", "scheduler"):
        assert services[role]["command"] == [role]
        assert services[role]["healthcheck"]["test"] == ["CMD", "schoolsync", "healthcheck", role]
    for role in (*ROLES, "migrate"):
        assert services[role]["build"]["dockerfile"] == "docker/Dockerfile"
        assert services[role]["image"] == services["web"]["image"]


def test_roles_start_after_the_migration_completed(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    for role in ROLES:
        assert services[role]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }, role


def test_workers_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    for role in ("worker", "scheduler"):
        assert "container_name" not in services[role]
        assert "ports" not in services[role]
    assert services["worker"]["scale"] == "${WORKER_CONTAINERS:-1}"  # from .env, default one


def test_redis_keeps_an_append_only_file_and_never_evicts(
    services: dict[str, dict[str, Any]],
) -> None:
    redis = services["redis"]
    argv = redis["command"]
    assert argv[0] == "redis-server"
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options == {
        "--appendonly": "yes",
        "--appendfsync": "everysec",
        "--maxmemory-policy": "noeviction",
    }
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert any("/var/lib/postgresql/data" in v for v in services["postgres"]["volumes"])


def test_roles_share_config_secrets_and_no_sandboxes(services: dict[str, dict[str, Any]]) -> None:
    for role in (*ROLES, "migrate"):
        service = services[role]
        assert service["env_file"] == ".env", role
        env = service["environment"]
        assert env["SCHOOLSYNC_SANDBOX"] == "false"
        assert env["SCHOOLSYNC_CONFIG"] == "/app/schoolsync.yaml"
        assert env["SCHOOLSYNC_REDIS_URL"] == "redis://redis:6379/0"
        assert env["SCHOOLSYNC_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "./schoolsync.yaml:/app/schoolsync.yaml:ro" in service["volumes"]


def strings_under(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from strings_under(v, str(k))
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and "=" in item:  # KEY=value in a list
                name, _, text = item.partition("=")
                yield name, text
            else:
                yield from strings_under(item, key)
    elif isinstance(value, str):
        yield key, value


def test_no_literal_secret_in_compose(compose: dict[str, Any]) -> None:
    for key, value in strings_under(compose):
        if SECRET_NAME.search(key):
            assert REFERENCE.match(value) or value == "", f"{key} is written in compose.yaml"
        plain = re.sub(r"\$\{[^}]*\}", "__REF__", value)  # ${...} may hold spaces and slashes
        for password in re.findall(r"://[^/@\s:]*:([^/@\s]*)@", plain):
            assert password == "__REF__", f"a password is written in a URL under {key}"


# --- .env.example ----------------------------------------------------------------------------


def env_example() -> list[tuple[int, str, str]]:
    """(line index, name, value) of every assignment, commented out or not."""
    lines = (DOCKER / ".env.example").read_text().splitlines()
    found = []
    for index, line in enumerate(lines):
        match = ASSIGNMENT.match(line.strip())
        if match:
            found.append((index, match[1], match[2]))
    return found


def test_env_example_holds_placeholders_only() -> None:
    assignments = env_example()
    assert assignments
    for _, name, value in assignments:
        if is_secret(name):
            assert placeholder(value), f"{name} has a value that is not a placeholder"


def test_env_example_explains_every_variable() -> None:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    for index, name, _ in env_example():
        above = index - 1
        while above >= 0 and ASSIGNMENT.match(lines[above].strip()):
            above -= 1  # a pair (TOKEN, ROLE) may share its comment
        assert above >= 0 and lines[above].startswith("#") and lines[above].strip("# "), name


def test_env_example_names_what_the_roles_and_compose_need(compose: dict[str, Any]) -> None:
    names = {name for _, name, _ in env_example()}
    assert {"POSTGRES_PASSWORD", "SCHOOLSYNC_SENTRY_DSN"} <= names
    assert any(re.fullmatch(r"SCHOOLSYNC_ADMIN_TOKENS__\w+__TOKEN", n) for n in names)
    # every secret name the README's examples give to a `*_env` key
    readme = (ROOT / "README.md").read_text()
    for secret in set(re.findall(r"\b\w+_env:\s+([a-z][a-z0-9_]*)\b", readme)):
        assert f"SCHOOLSYNC_SECRETS__{secret.upper()}" in names, secret
    # every variable compose.yaml reads from docker/.env
    text = (DOCKER / "compose.yaml").read_text()
    for variable in set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text)):
        assert variable in names, variable
    # and every SCHOOLSYNC_* one is a setting (a typo would be ignored silently)
    fields = set(Settings.model_fields)
    for name in names:
        if name.startswith("SCHOOLSYNC_") and name != "SCHOOLSYNC_IMAGE":
            assert name.removeprefix("SCHOOLSYNC_").split("__")[0].lower() in fields, name


def test_an_empty_generic_secret_is_not_offered() -> None:
    # an empty SCHOOLSYNC_GENERIC_SECRET would switch the generic source on with an empty key
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.startswith("SCHOOLSYNC_GENERIC_SECRET="):
            assert line.removeprefix("SCHOOLSYNC_GENERIC_SECRET=").strip()


def test_the_example_config_is_valid() -> None:
    config = load_config(DOCKER / "schoolsync.example.yaml", required=True, blocks=CONFIG_BLOCKS)
    assert len(config.schools) == 1


# --- Dockerfile and .dockerignore ------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = (DOCKER / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)
    stages: list[list[str]] = [[]]
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_has_a_builder_and_a_slim_final_stage() -> None:
    preamble, *stages = dockerfile_stages()
    assert len(stages) == 2
    builder, final = stages
    assert any(line.startswith("ARG PYTHON_IMAGE=python:3.11-slim") for line in preamble)
    assert builder[0] == "FROM ${PYTHON_IMAGE} AS builder"
    assert final[0].startswith("FROM ${PYTHON_IMAGE}")
    assert any("python -m venv /opt/venv" in line for line in builder)
    assert any("pip wheel" in line for line in builder)


def test_final_stage_runs_as_a_user_and_has_no_build_tools() -> None:
    final = dockerfile_stages()[-1]
    users = [line.split(None, 1)[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any("--uid 10001" in line for line in final)
    copies = [line for line in final if line.upper().startswith("COPY ")]
    assert copies == ["COPY --from=builder /opt/venv /opt/venv"]
    for line in final:
        if line.upper().startswith("RUN "):
            assert not re.search(r"\b(apt-get|apt|apk|pip)\s+(install|add)\b", line), line
            assert not re.search(r"\b(gcc|g\+\+|clang|build-essential|make)\b", line), line


def test_final_stage_runs_the_web_role_by_default() -> None:
    final = " \n".join(dockerfile_stages()[-1])
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "SCHOOLSYNC_LOG_FORMAT=json",
        "SCHOOLSYNC_DATA_DIR=/app/var",
    ):
        assert setting in final
    assert "WORKDIR /app" in final
    assert "chown schoolsync:schoolsync /app/var" in final
    assert "EXPOSE 8000" in final
    assert 'ENTRYPOINT ["schoolsync"]' in final
    assert 'CMD ["web", "--host", "0.0.0.0", "--port", "8000"]' in final
    assert re.search(r"HEALTHCHECK .*CMD .*127\.0\.0\.1:8000/readyz", final)


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_secrets_and_clutter_out_of_the_context() -> None:
    ignored = set(dockerignore())
    assert {".git", ".venv", "var", "tests/artifacts", "docker/.env", "**/__pycache__"} <= ignored
    # what the builder copies is in the context
    builder = dockerfile_stages()[1]
    for line in builder:
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
                assert source not in ignored, source


# --- monitoring ------------------------------------------------------------------------------


def test_prometheus_scrapes_the_web_role() -> None:
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["web:8000"]
    for path in (DOCKER / "grafana").rglob("*.yml"):
        assert yaml.safe_load(path.read_text())["apiVersion"] == 1


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    assert 36 <= dashboard["schemaVersion"] <= 41
    exprs = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        exprs += [target["expr"] for target in panel["targets"]]
    return exprs


def test_dashboard_has_a_panel_for_each_part() -> None:
    used = set(METRIC.findall(" ".join(dashboard_exprs())))
    for needed in (
        "schoolsync_webhooks_total",
        "schoolsync_inbox_unprocessed_oldest_seconds",
        "schoolsync_job_attempts_total",
        "schoolsync_job_duration_seconds_bucket",
        "schoolsync_job_retries_total",
        "schoolsync_pacing_waits_total",
        "schoolsync_platform_429_total",
        "schoolsync_failures_open",
        "schoolsync_reconcile_queue",
        "schoolsync_outbox_lag_seconds",
        "schoolsync_queue_depth",
    ):
        assert needed in used, needed


def alarm_section() -> str:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    return text.split("\n## Alarms\n", 1)[1].split("\n## ", 1)[0]


def test_operations_alarm_table_covers_the_stuck_states() -> None:
    section = alarm_section()
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`" in line]
    assert len(rows) >= 10
    for needed in (
        "max(schoolsync_inbox_unprocessed_oldest_seconds) > 300",
        "max(schoolsync_outbox_lag_seconds)",
        "schoolsync_failures_open",
        "schoolsync_platform_429_total",
    ):
        assert needed in section, needed


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Metric families (name -> type) that the web role's /metrics serves."""
    tmp_path = tmp_path_factory.mktemp("metrics")
    need(shutil.which("redis-server") is not None, "redis-server")
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.start()
    try:
        settings = Settings(
            data_dir=tmp_path,
            redis_url=redis_server.url,
            config=tmp_path / "missing.yaml",
            database_url=f"sqlite:///{tmp_path / 'state.db'}",
            sandbox=False,
        )
        runtime = build_runtime(settings)
        upgrade(runtime.db)
        with TestClient(FastPath(create_app(runtime))) as client:
            text = client.get("/metrics").text
        runtime.db.dispose()
    finally:
        redis_server.stop()
    yield {family.name: family.type for family in text_string_to_metric_families(text)}


def resolves(name: str, families: dict[str, str]) -> bool:
    """Whether a series name used in a query exists: a gauge by its name, a counter's
    ``_total``, a histogram's ``_bucket``/``_sum``/``_count``."""
    if families.get(name) in ("gauge", "untyped", "unknown"):
        return True
    for suffix, kinds in (
        ("_total", {"counter"}),
        ("_created", {"counter", "histogram", "summary"}),
        ("_bucket", {"histogram"}),
        ("_sum", {"histogram", "summary"}),
        ("_count", {"histogram", "summary"}),
    ):
        if name.endswith(suffix) and families.get(name.removesuffix(suffix)) in kinds:
            return True
    return False


def test_dashboard_uses_only_served_metrics(served: dict[str, str]) -> None:
    missing = sorted(
        {n for n in METRIC.findall(" ".join(dashboard_exprs())) if not resolves(n, served)}
    )
    assert missing == [], f"not served by /metrics: {missing}"


def test_operations_alarms_use_only_served_metrics(served: dict[str, str]) -> None:
    missing = sorted({n for n in METRIC.findall(alarm_section()) if not resolves(n, served)})
    assert missing == [], f"not served by /metrics: {missing}"


# --- docker compose config --------------------------------------------------------------------


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI here")
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False, timeout=30
    )
    if version.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here")
    project = tmp_path / "docker"
    shutil.copytree(DOCKER, project)
    shutil.copy(DOCKER / ".env.example", project / ".env")
    shutil.copy(DOCKER / "schoolsync.example.yaml", project / "schoolsync.yaml")
    for profile in ([], ["--profile", "monitoring"]):
        checked = subprocess.run(
            [docker, "compose", "-f", str(project / "compose.yaml"), *profile, "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stderr


def test_the_image_pins_every_runtime_dependency() -> None:
    """The Dockerfile installs with docker/constraints.txt: every dependency pyproject.toml names
    must have an exact version there, or a build would take whatever is newest that day."""
    import tomllib

    from packaging.requirements import Requirement

    def key(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    pins = {}
    for line in (DOCKER / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[key(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    missing = [
        req.name
        for req in map(Requirement, project["dependencies"])
        if key(req.name) not in pins or not req.specifier.contains(pins[key(req.name)])
    ]
    assert not missing, f"refresh docker/constraints.txt (docker/freeze_constraints.py): {missing}"
    assert "--constraint constraints.txt" in (DOCKER / "Dockerfile").read_text(encoding="utf-8")
