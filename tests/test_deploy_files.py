"""The deployment files keep their promises: every setting is documented, compose has the topology.

Fast and offline: plain text checks always run; `docker compose config` runs where the Compose
plugin is installed (it needs no Docker engine), and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "happ_integ" / "settings.py"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = ("postgres", "temporal", "temporal-ui", "api", "worker")
SEARCH_ATTRIBUTES = {
    "Integration": "Keyword",
    "HandlerName": "Keyword",
    "CallStatus": "Keyword",
    "CallAttempt": "Int",
}
REQUIRED = ("HAPP_ADMIN_TOKEN", "HAPP_SECRET_KEY")


def settings_names() -> list[str]:
    names = re.findall(r'validation_alias="([A-Z0-9_]+)"', SETTINGS.read_text())
    assert len(names) >= 10, "settings.py no longer names its variables with validation_alias=..."
    return names


def compose_text() -> str:
    return COMPOSE.read_text()


def compose_services(text: str) -> list[str]:
    """Keys of the top-level `services:` mapping (two-space indented), without a YAML parser."""
    block = text.split("\nservices:\n", 1)[1]
    block = re.split(r"\n(?=\S)", block, maxsplit=1)[0]
    return re.findall(r"^  ([A-Za-z0-9._-]+):\s*$", block, re.M)


def test_every_setting_is_documented_in_env_example() -> None:
    text = ENV_EXAMPLE.read_text()
    missing = []
    for name in settings_names():
        described = re.search(rf"^# {name}: \S", text, re.M)
        assigned = re.search(rf"^(# )?{name}=", text, re.M)
        if not (described and assigned):
            missing.append(name)
    assert not missing, f".env.example lacks a '# NAME: what it is' line and a 'NAME=' line for {missing}"


def test_every_variable_compose_reads_is_documented() -> None:
    documented = set(re.findall(r"^# ([A-Z][A-Z0-9_]*): ", ENV_EXAMPLE.read_text(), re.M))
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", compose_text()))
    assert used, "docker-compose.yml reads no variables?"
    assert not used - documented, f"undocumented in .env.example: {sorted(used - documented)}"


def test_env_example_sets_no_secret() -> None:
    # A copied .env.example must not carry a working token or key, nor a placeholder that
    # Settings refuses: the two required values stay commented out until the user fills them.
    text = ENV_EXAMPLE.read_text()
    for name in (*REQUIRED, "HAPP_LLM_API_KEY"):
        assert re.search(rf"^# {name}=$", text, re.M), f"{name} should be an empty, commented-out line"


def test_compose_names_the_topology() -> None:
    services = compose_services(compose_text())
    for name in SERVICES:
        assert name in services, f"docker-compose.yml has no service {name!r} (has {services})"
    assert {"setup", "temporal-admin-tools"} <= set(services)


def test_compose_registers_the_search_attributes() -> None:
    text = compose_text()
    assert "temporal operator search-attribute create" in text
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert f"{name}:{kind}" in text, f"search attribute {name} ({kind}) is not registered"


def test_compose_requires_admin_token_and_secret_key() -> None:
    text = compose_text()
    for name in REQUIRED:
        assert re.search(rf"{name}: \$\{{{name}:\?[^}}]+\}}", text), (
            f"{name} must be required (${{{name}:?...}})"
        )
        assert not re.search(rf"\$\{{{name}:?-", text), f"{name} must not have a default"


def test_compose_points_the_app_at_the_in_network_servers() -> None:
    text = compose_text()
    assert re.search(r"^\s+DATABASE_URL: postgresql://\S+@postgres:5432/", text, re.M)
    assert re.search(r"^\s+TEMPORAL_ADDRESS: temporal:7233$", text, re.M)
    assert "DB: postgres12" in text
    assert re.search(r"command: \[\"happ\", \"worker\"\]\n(.*\n)*?\s+deploy:\n\s+replicas: 2\n", text)
    assert "/health" in text
    dynamic_config = re.search(r"\./(deploy/temporal/[\w.-]+\.yaml):", text)
    assert dynamic_config and (ROOT / dynamic_config.group(1)).is_file()


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
    base = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    cmd = [*docker_compose(), "--project-directory", str(ROOT), "--env-file", str(empty)]
    cmd += ["-f", str(COMPOSE), "config", "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**base, **env})


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = run_compose_config(tmp_path, HAPP_ADMIN_TOKEN="test-token", HAPP_SECRET_KEY="test-key")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert set(SERVICES) <= set(config["services"])
    assert config["services"]["worker"]["deploy"]["replicas"] == 2
    api_env = config["services"]["api"]["environment"]
    assert api_env["HAPP_ADMIN_TOKEN"] == "test-token"
    assert api_env["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_docker_compose_config_refuses_missing_secrets(tmp_path: Path) -> None:
    result = run_compose_config(tmp_path)
    assert result.returncode != 0
    assert "set HAPP_ADMIN_TOKEN in .env" in result.stderr or "set HAPP_SECRET_KEY in .env" in result.stderr
