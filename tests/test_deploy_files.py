"""The deployment files keep their promises: every setting is documented, compose has the topology.

Fast and offline: the text and YAML checks always run; `docker compose config` runs where the
Compose plugin is installed (it needs no Docker engine), and is skipped elsewhere.
"""

from __future__ import annotations

import graphlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from happ_integ.settings import Settings
from happ_integ.temporal import search_attribute_kinds

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "happ_integ" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY_README = ROOT / "deploy" / "README.md"
README = ROOT / "README.md"
NGINX = ROOT / "deploy" / "nginx" / "happ.conf"
SCHEMA_SCRIPT = ROOT / "deploy" / "temporal" / "setup-schema.sh"
NAMESPACE_SCRIPT = ROOT / "deploy" / "temporal" / "setup-namespace.sh"
DYNAMIC_CONFIG_FILE = ROOT / "deploy" / "temporal" / "dynamicconfig.yaml"

SERVICES = (
    "postgres",
    "temporal-schema",
    "temporal",
    "temporal-admin-tools",
    "temporal-ui",
    "setup",
    "api",
    "worker",
    "gateway",
    "prometheus",
    "grafana",
)
APP_SERVICES = ("setup", "api", "worker")
ONE_SHOTS = ("temporal-schema", "temporal-admin-tools", "setup")
SEARCH_ATTRIBUTES = {
    "Integration": "Keyword",
    "HandlerName": "Keyword",
    "CallStatus": "Keyword",
    "CallAttempt": "Int",
    "CampaignId": "Keyword",
}
REQUIRED = ("HAPP_ADMIN_TOKEN", "HAPP_SECRET_KEY")
# Required by compose too, for Grafana's admin (tests/test_grafana_dashboard.py checks its service).
GRAFANA_PASSWORD = "GRAFANA_ADMIN_PASSWORD"
# Host ports, exactly: the proxy for webhooks on every interface; the UI, the frontend, Prometheus
# and Grafana on loopback only; nothing else (the api replicas and the scaled workers publish none).
PUBLISHED = {
    "gateway": ["${HAPP_API_PORT:-3001}:3001"],
    "temporal": ["127.0.0.1:7233:7233"],
    "temporal-ui": ["127.0.0.1:8080:8080"],
    "prometheus": ["127.0.0.1:9090:9090"],
    "grafana": ["127.0.0.1:3000:3000"],
}


def settings_names() -> list[str]:
    names = re.findall(r'validation_alias="([A-Z0-9_]+)"', SETTINGS.read_text())
    assert len(names) >= 10, "settings.py no longer names its variables with validation_alias=..."
    return names


def settings_aliases() -> set[str]:
    return {str(field.validation_alias) for field in Settings.model_fields.values()}


def documented() -> set[str]:
    return set(re.findall(r"^# ([A-Z][A-Z0-9_]*): ", ENV_EXAMPLE.read_text(), re.M))


def compose_text() -> str:
    return COMPOSE.read_text()


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(compose_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def depends(service: dict[str, Any]) -> dict[str, str]:
    """`{dependency: condition}` of a service (the long form; a bare list means service_started)."""
    given = service.get("depends_on") or {}
    if isinstance(given, list):
        return dict.fromkeys(given, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in given.items()}


def test_every_setting_is_documented_in_env_example() -> None:
    text = ENV_EXAMPLE.read_text()
    missing = []
    for name in settings_names():
        described = re.search(rf"^# {name}: \S", text, re.M)
        assigned = re.search(rf"^(# )?{name}=", text, re.M)
        if not (described and assigned):
            missing.append(name)
    assert not missing, f".env.example lacks a '# NAME: what it is' line and a 'NAME=' line for {missing}"
    assert set(settings_names()) == settings_aliases()


def test_every_variable_compose_reads_is_documented() -> None:
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", compose_text()))
    assert used, "docker-compose.yml reads no variables?"
    assert not used - documented(), f"undocumented in .env.example: {sorted(used - documented())}"


def test_env_example_sets_no_secret() -> None:
    # A copied .env.example must not carry a working token or key, nor a placeholder that
    # Settings refuses: the required values stay commented out until the user fills them.
    text = ENV_EXAMPLE.read_text()
    for name in (*REQUIRED, "HAPP_LLM_API_KEY", "TEMPORAL_API_KEY"):
        assert re.search(rf"^# {name}=$", text, re.M), f"{name} should be an empty, commented-out line"
    assert not re.search(r"^[A-Z]", text, re.M), ".env.example should set nothing: every line is a comment"


def test_compose_names_the_topology() -> None:
    found = list(services())
    for name in SERVICES:
        assert name in found, f"docker-compose.yml has no service {name!r} (has {found})"
    assert set(found) == set(SERVICES), f"services not covered by this test: {set(found) - set(SERVICES)}"


def test_compose_runs_the_images_temporal_recommends() -> None:
    found = services()
    assert "auto-setup" not in compose_text(), "temporalio/auto-setup is deprecated"
    assert found["temporal"]["image"].startswith("temporalio/server:")
    assert found["temporal-ui"]["image"].startswith("temporalio/ui:")
    for job in ("temporal-schema", "temporal-admin-tools"):
        assert found[job]["image"].startswith("temporalio/admin-tools:")
    assert found["temporal"]["environment"]["DB"] == "postgres12"
    assert found["postgres"]["image"].startswith("postgres:")
    # The schema job: both databases created and migrated with temporal-sql-tool.
    assert found["temporal-schema"]["entrypoint"] == ["/bin/sh", "/scripts/setup-schema.sh"]
    script = SCHEMA_SCRIPT.read_text()
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert step in script, step
    assert 'setup "${DBNAME:-temporal}" temporal' in script
    assert 'setup "${VISIBILITY_DBNAME:-temporal_visibility}" visibility' in script
    assert script.startswith("#!/bin/sh\n") and "set -eu" in script


def test_compose_registers_the_search_attributes() -> None:
    assert search_attribute_kinds() == SEARCH_ATTRIBUTES
    job = services()["temporal-admin-tools"]
    assert job["entrypoint"] == ["/bin/sh", "/scripts/setup-namespace.sh"]
    script = NAMESPACE_SCRIPT.read_text()
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script and '--retention "$retention"' in script
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"{name}:{kind}" in script, f"search attribute {name} ({kind}) is not registered"


def test_the_dev_server_and_compose_share_the_servers_load_settings() -> None:
    # The dev server `happ dev` and the tests run on is tuned as the production stack is, so a
    # load that passes here does not fail there for a smaller cache (pending Updates aborted).
    from happ_integ.embedded.temporal import DYNAMIC_CONFIG

    config = yaml.safe_load(DYNAMIC_CONFIG_FILE.read_text())
    assert DYNAMIC_CONFIG, "the dev server starts with no dynamic config"
    for key, value in DYNAMIC_CONFIG.items():
        assert key in config, f"{key} is set for the dev server but not in {DYNAMIC_CONFIG_FILE.name}"
        assert config[key][0]["value"] == value, key


def test_compose_mounts_only_files_that_exist() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).is_file(), f"{name} mounts {source}, which does not exist"
                assert volume.endswith(":ro"), f"{name} should mount {source} read-only"


def test_compose_publishes_only_the_gateway_ui_and_frontend() -> None:
    published = {name: s["ports"] for name, s in services().items() if s.get("ports")}
    assert published == PUBLISHED
    # Scaled services name no container and publish nothing, so `--scale` works.
    for name in ("api", "worker"):
        service = services()[name]
        assert "container_name" not in service and "ports" not in service
        assert service["deploy"]["replicas"] == 2
    assert services()["api"]["expose"] == ["3001"]
    assert services()["worker"]["expose"] == [services()["worker"]["environment"]["HAPP_METRICS_PORT"]]


def test_the_gateway_proxies_every_api_replica() -> None:
    conf = NGINX.read_text()
    assert "resolver 127.0.0.11" in conf  # Docker's DNS, re-resolved: every replica, as they change
    assert re.search(r"set \$\w+ http://api:3001;", conf) and re.search(r"proxy_pass \$\w+;", conf)
    assert re.search(r"location = /metrics \{\s*return 404;", conf)
    gateway = services()["gateway"]
    assert "./deploy/nginx/happ.conf:/etc/nginx/conf.d/default.conf:ro" in gateway["volumes"]
    assert "/nginx-health" in " ".join(gateway["healthcheck"]["test"]) and "/nginx-health" in conf


def app_environment(name: str) -> dict[str, Any]:
    environment: dict[str, Any] = services()[name]["environment"]
    return environment


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_read_only_documented_settings(name: str) -> None:
    service = services()[name]
    assert service["env_file"] == [{"path": ".env", "required": False}]
    assert service["image"] == "happ-integ:latest" and service["build"] == "."
    names = set(app_environment(name))
    assert names, f"{name} sets no environment?"
    assert not names - settings_aliases(), (
        f"{name} sets variables Settings does not read: {names - settings_aliases()}"
    )
    assert not names - documented(), (
        f"{name} sets variables .env.example does not describe: {names - documented()}"
    )
    assert app_environment(name)["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert re.match(
        r"postgresql://happ:\$\{POSTGRES_PASSWORD:-happ\}@postgres:5432/happ$",
        app_environment(name)["DATABASE_URL"],
    )


def test_compose_requires_admin_token_and_secret_key() -> None:
    text = compose_text()
    for name in REQUIRED:
        assert re.search(rf"{name}: \$\{{{name}:\?[^}}]+\}}", text), (
            f"{name} must be required (${{{name}:?...}})"
        )
        assert not re.search(rf"\$\{{{name}:?-", text), f"{name} must not have a default"
        for service in APP_SERVICES:
            assert app_environment(service)[name].startswith(f"${{{name}:?")


def test_the_start_order() -> None:
    found = services()
    graph = {name: set(depends(service)) for name, service in found.items()}
    order = list(graphlib.TopologicalSorter(graph).static_order())  # raises on a cycle
    assert order.index("setup") < order.index("api") and order.index("setup") < order.index("worker")
    for app in ("api", "worker"):
        assert depends(found[app]) == {
            "postgres": "service_healthy",
            "temporal": "service_healthy",
            "temporal-admin-tools": "service_completed_successfully",
            "setup": "service_completed_successfully",
        }, app
    assert depends(found["setup"]) == {
        "postgres": "service_healthy",
        "temporal": "service_healthy",
        "temporal-admin-tools": "service_completed_successfully",
    }
    assert depends(found["temporal-admin-tools"]) == {"temporal": "service_healthy"}
    assert depends(found["temporal"]) == {
        "postgres": "service_healthy",
        "temporal-schema": "service_completed_successfully",
    }
    assert depends(found["temporal-schema"]) == {"postgres": "service_healthy"}
    assert depends(found["temporal-ui"]) == {"temporal": "service_healthy"}
    assert depends(found["gateway"]) == {"api": "service_healthy"}
    # What is waited on as healthy has a health check; what is waited on as completed is a one-shot.
    for service in found.values():
        for dependency, condition in depends(service).items():
            if condition == "service_healthy":
                assert "healthcheck" in found[dependency], dependency
            if condition == "service_completed_successfully":
                assert dependency in ONE_SHOTS, dependency


def test_health_checks_and_restart_policies() -> None:
    for name, service in services().items():
        restart = service.get("restart", "")
        if name in ONE_SHOTS:
            assert re.fullmatch(r"on-failure(:\d+)?", restart), (
                f"{name} is a one-shot: restart on failure only"
            )
            assert "healthcheck" not in service
        else:
            assert restart == "unless-stopped", name
            if name != "temporal-ui":  # nothing waits on the UI
                assert "healthcheck" in service, f"{name} has no health check"
    api_check = " ".join(services()["api"]["healthcheck"]["test"])
    assert "127.0.0.1:3001/health" in api_check
    worker = services()["worker"]
    assert f"127.0.0.1:{worker['environment']['HAPP_METRICS_PORT']}/metrics" in " ".join(
        worker["healthcheck"]["test"]
    )
    assert worker["environment"]["HAPP_METRICS_HOST"] == "0.0.0.0"
    assert worker["stop_grace_period"] == "60s"


def test_the_ui_decodes_through_the_api_when_payloads_are_encrypted() -> None:
    ui = services()["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "${TEMPORAL_CODEC_ENDPOINT:-}"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert re.search(
        r"^# TEMPORAL_CODEC_ENDPOINT=http://localhost:3001/codec$", ENV_EXAMPLE.read_text(), re.M
    )


def test_compose_points_the_app_at_the_in_network_servers() -> None:
    text = compose_text()
    assert re.search(r"^\s+DATABASE_URL: postgresql://\S+@postgres:5432/", text, re.M)
    assert re.search(r"^\s+TEMPORAL_ADDRESS: temporal:7233$", text, re.M)
    assert "DB: postgres12" in text
    assert re.search(r"command: \[\"happ\", \"worker\"\]\n(.*\n)*?\s+deploy:\n\s+replicas: 2\n", text)
    assert "/health" in text
    dynamic_config = re.search(r"\./(deploy/temporal/[\w.-]+\.yaml):", text)
    assert dynamic_config and (ROOT / dynamic_config.group(1)).is_file()


def test_the_docs_describe_this_file() -> None:
    guide = DEPLOY_README.read_text()
    for name in SERVICES:
        assert f"`{name}`" in guide, f"deploy/README.md does not mention the {name} service"
    for name in ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY", "TEMPORAL_API_KEY", "HAPP_METRICS_PORT"):
        assert name in guide, name
    readme = README.read_text()
    for heading in ("## Find a call", "## Metrics and tracing"):
        assert heading in readme
    for name in ("TEMPORAL_TLS_CERT", "TEMPORAL_API_KEY", "temporal-admin-tools", "gateway"):
        assert name in readme, name


def test_dockerfile_runs_the_gateway_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    assert "pip install ." in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0")), "the image must not run as root"
    assert re.search(r'^CMD \["happ", "api"\]$', text, re.M)


def docker_compose() -> list[str]:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client")
    try:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("docker compose does not answer")
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed")
    return [docker, "compose"]


def run_compose_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # An empty --env-file, so a developer's own .env does not decide the outcome.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = {k: v for k, v in os.environ.items() if k not in (*REQUIRED, GRAFANA_PASSWORD)}
    cmd = [*docker_compose(), "--project-directory", str(ROOT), "--env-file", str(empty)]
    cmd += ["-f", str(COMPOSE), "config", "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**base, **env})


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = run_compose_config(
        tmp_path, HAPP_ADMIN_TOKEN="test-token", HAPP_SECRET_KEY="test-key", GRAFANA_ADMIN_PASSWORD="test-pw"
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(SERVICES) <= set(config["services"])
    assert config["services"]["worker"]["deploy"]["replicas"] == 2
    assert config["services"]["api"]["deploy"]["replicas"] == 2
    api_env = config["services"]["api"]["environment"]
    assert api_env["HAPP_ADMIN_TOKEN"] == "test-token"
    assert api_env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert config["services"]["worker"]["environment"]["HAPP_METRICS_PORT"] == "9464"


def test_docker_compose_config_refuses_missing_secrets(tmp_path: Path) -> None:
    result = run_compose_config(tmp_path)
    assert result.returncode != 0
    assert "set HAPP_ADMIN_TOKEN in .env" in result.stderr or "set HAPP_SECRET_KEY in .env" in result.stderr
