"""docker-compose.yml and Dockerfile checked against the project (no Docker engine needed).

* ``docker-compose config -q`` accepts the file (Debian's docker-compose 1.29; skipped if absent);
* every file and folder they reference exists;
* every CREDIT_SCORER_* variable is a setting the code reads, with a valid value;
* ports agree: Prometheus' scrape targets, the services' settings, the published and exposed ports,
  Grafana's datasource; Kafka and Redis addresses point at the compose services.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import BaseModel

from credit_scorer.settings import PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
PROMETHEUS = PROJECT_ROOT / "dashboards" / "prometheus" / "prometheus.yml"
DATASOURCES = PROJECT_ROOT / "dashboards" / "provisioning" / "datasources" / "prometheus.yml"
PREFIX = "CREDIT_SCORER_"
# Bind mounts whose source is outside the repository on purpose (the raw data, given by a variable).
EXTERNAL_SOURCE = re.compile(r"^\$\{HOME_CREDIT_RAW_DIR:-[^}]+\}$")
SCORER_SERVICES = ("prepare", "worker", "api", "producer")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def setting_names() -> set[str]:
    """Every CREDIT_SCORER_* variable the Settings object reads (groups nested with __)."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"{PREFIX}{name.upper()}__{sub.upper()}" for sub in annotation.model_fields)
        else:
            names.add(f"{PREFIX}{name.upper()}")
    return names


def dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def env_of(service: dict[str, Any], shell: dict[str, str] | None = None) -> dict[str, str]:
    """The service's environment as compose interpolates it (``${VAR:-default}`` from ``shell``)."""
    shell = shell or {}

    def interpolate(match: re.Match[str]) -> str:
        return shell.get(match.group(1)) or match.group(2)

    return {
        k: re.sub(r"\$\{(\w+):-([^}]*)\}", interpolate, str(v))
        for k, v in (service.get("environment") or {}).items()
    }


def scorer_env(service: dict[str, Any], shell: dict[str, str] | None = None) -> dict[str, str]:
    """What the code sees in a scorer container: the image's ENV, then the service's environment."""
    return {**dockerfile_env(), **env_of(service, shell)}


def settings_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    with monkeypatch.context() as patch:
        for key in [k for k in __import__("os").environ if k.startswith(PREFIX)]:
            patch.delenv(key)
        for key, value in env.items():
            if key.startswith(PREFIX):
                patch.setenv(key, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


def volume_source(volume: str | dict[str, Any]) -> str:
    """Source of a volume entry (short syntax: up to the first ':' outside a ${VAR:-default})."""
    if isinstance(volume, dict):
        return str(volume["source"])
    if volume.startswith("${"):
        return volume[: volume.index("}") + 1]
    return volume.split(":", 1)[0]


# --- the file is valid --------------------------------------------------------------------------------
def test_docker_compose_config_accepts_the_file() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed (apt-get install --no-install-recommends docker-compose)")
    for extra in ([], ["--profile", "demo"]):
        result = subprocess.run(
            [binary, "-f", str(COMPOSE), *extra, "config", "-q"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


# --- referenced files exist ---------------------------------------------------------------------------
def test_every_referenced_file_exists(services: dict[str, Any]) -> None:
    missing: list[str] = []
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = PROJECT_ROOT / build["context"]
            if not (context / build.get("dockerfile", "Dockerfile")).is_file():
                missing.append(f"{name}: build dockerfile")
        for volume in service.get("volumes") or []:
            source = volume_source(volume)
            if source.startswith((".", "/")) and not (PROJECT_ROOT / source).exists():
                missing.append(f"{name}: volume source {source}")
            elif source.startswith("$") and not EXTERNAL_SOURCE.match(source):
                missing.append(f"{name}: unexpected variable volume {source}")
        command = service.get("command") or []
        for arg in command if isinstance(command, list) else command.split():
            script = PROJECT_ROOT / "docker" / str(arg).removeprefix("/app/docker/")
            if str(arg).startswith("/app/docker/") and not script.is_file():
                missing.append(f"{name}: script {arg}")
        # Container paths in the environment that live in a bind-mounted repo folder (e.g. Grafana's home).
        binds = {
            volume.split(":")[1]: PROJECT_ROOT / volume_source(volume)
            for volume in service.get("volumes") or []
            if isinstance(volume, str) and volume.startswith(".")
        }
        for key, value in env_of(service).items():
            for target, source in binds.items():
                if value.startswith(target + "/") and not (source / value[len(target) + 1 :]).exists():
                    missing.append(f"{name}: {key}={value}")
    rule_files = yaml.safe_load(PROMETHEUS.read_text()).get("rule_files", [])
    missing += [f"prometheus rule file {r}" for r in rule_files if not (PROMETHEUS.parent / r).is_file()]
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                if not (PROJECT_ROOT / source).exists():
                    missing.append(f"Dockerfile: COPY {source}")
        if "HEALTHCHECK" in line or "/app/docker/" in line:
            for script in re.findall(r"/app/docker/([\w.]+)", line):
                if not (PROJECT_ROOT / "docker" / script).is_file():
                    missing.append(f"Dockerfile: {script}")
    assert not missing, missing


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert "uv sync --frozen" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*CMD", text.replace("\\\n", " "), re.M)


# --- environment variables are settings ---------------------------------------------------------------
def test_environment_variables_are_settings_the_code_reads(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    known = setting_names()
    unknown = sorted(
        f"{name}: {key}"
        for name, service in services.items()
        for key in env_of(service)
        if key.startswith(PREFIX) and key not in known
    )
    unknown += [f"Dockerfile: {k}" for k in dockerfile_env() if k.startswith(PREFIX) and k not in known]
    assert not unknown, unknown
    for name in SCORER_SERVICES:
        settings_for(scorer_env(services[name]), monkeypatch)  # raises on an invalid value


def test_the_settings_walk_sees_nested_fields() -> None:
    names = setting_names()
    assert {"CREDIT_SCORER_REDIS__URL", "CREDIT_SCORER_API__PORT", "CREDIT_SCORER_LOG_LEVEL"} <= names
    assert "CREDIT_SCORER_REDIS__NO_SUCH_FIELD" not in names


# --- ports and addresses agree ------------------------------------------------------------------------
def test_prometheus_targets_match_the_services_ports(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    prometheus = yaml.safe_load(PROMETHEUS.read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    worker = settings_for(scorer_env(services["worker"]), monkeypatch)
    api = settings_for(scorer_env(services["api"]), monkeypatch)

    (dns,) = jobs["credit-scorer-worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["port"] == worker.stream.metrics_port
    assert str(worker.stream.metrics_port) in [str(p) for p in services["worker"].get("expose", [])]
    assert env_of(services["worker"])["HEALTHCHECK_URL"].endswith(f":{worker.stream.metrics_port}/metrics")

    (static,) = jobs["credit-scorer-api"]["static_configs"]
    assert static["targets"] == [f"api:{api.api.port}"]
    assert jobs["credit-scorer-api"].get("metrics_path", "/metrics") == "/metrics"
    assert api.api.host == "0.0.0.0"  # reachable from the other containers
    assert any(str(p).endswith(f":{api.api.port}") for p in services["api"]["ports"])
    exposed = re.findall(r"^EXPOSE (.+)$", DOCKERFILE.read_text(), re.M)[0].split()
    assert {str(api.api.port), str(worker.stream.metrics_port)} <= set(exposed)

    assert "prometheus" in services and any(str(p).endswith(":9090") for p in services["prometheus"]["ports"])
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert urlparse(datasource["url"]).netloc == "prometheus:9090"


def test_workers_scale_and_start_after_the_prepare_job(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # replicas cannot share these
    for name in ("worker", "api"):
        assert services[name]["depends_on"]["prepare"]["condition"] == "service_completed_successfully"
    assert services["producer"]["profiles"] == ["demo"]
    assert services["worker"]["command"] == ["credit-scorer", "stream", "worker"]
    assert services["api"]["command"] == ["credit-scorer", "api", "serve"]


def test_kafka_and_redis_addresses_point_at_the_services(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka_env = env_of(services["kafka"])
    advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"].split("://", 1)[1]
    partitions_created = re.search(r"--partitions (\d+)", services["kafka-init"]["command"][0])
    assert partitions_created is not None
    for name in SCORER_SERVICES:
        settings = settings_for(scorer_env(services[name]), monkeypatch)
        assert settings.kafka.bootstrap_servers == advertised
        assert urlparse(settings.redis.url).hostname == "redis"
        assert not settings.redis.is_cluster
        assert settings.kafka.partitions == int(partitions_created.group(1))
        topics = services["kafka-init"]["command"][0]
        for topic in (settings.kafka.applications_topic, settings.kafka.decisions_topic):
            assert topic in topics


def test_the_cluster_profile_serves_the_cache_url_its_header_gives(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    header = (PROJECT_ROOT / "docker-compose.yml").read_text()
    url = re.search(r"REDIS_URL=(redis\+cluster://\S+)", header)
    assert url is not None
    nodes = [
        n for n, svc in services.items() if svc.get("profiles") == ["cluster"] and "cluster-init" not in n
    ]
    assert len(nodes) == 3 and all("--cluster-enabled" in services[n]["command"] for n in nodes)
    for name in SCORER_SERVICES:
        settings = settings_for(scorer_env(services[name], {"REDIS_URL": url.group(1)}), monkeypatch)
        assert settings.redis.is_cluster
        hosts = [h.split(":")[0] for h in settings.redis.url.split("://")[1].split(",")]
        assert sorted(hosts) == sorted(nodes)


def test_docker_scripts_are_valid_shell_and_python() -> None:
    scripts = sorted((PROJECT_ROOT / "docker").glob("*.sh"))
    assert scripts, "docker/*.sh missing"
    for script in scripts:
        result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{script.name}: {result.stderr}"
    compile((PROJECT_ROOT / "docker" / "healthcheck.py").read_text(), "healthcheck.py", "exec")
