"""The deployment files: compose accepted by `docker compose config`, images pinned and
non-root, no secret in any committed file, and CI running README's test command."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-test-secret-1",
    "KC_BOOTSTRAP_ADMIN_PASSWORD": "kc-test-secret-2",
    "APSIS_SSO_KEYCLOAK_CLIENT_SECRET": "tool-test-secret-3",
}


def _env_file(tmp_path: Path) -> Path:
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    return env


@pytest.mark.skipif(shutil.which("docker") is None, reason="the Docker client is not installed on this machine")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    assert version.returncode == 0, "the docker compose plugin is missing: scripts/bootstrap.sh builds it"
    out = subprocess.run(
        ["docker", "compose", "--env-file", str(_env_file(tmp_path)), "-f", str(COMPOSE), "config", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    services = config["services"]
    assert set(services) == {"postgres", "keycloak", "realm-apply", "apsis-sync", "mailpit"}
    assert services["apsis-sync"]["depends_on"]["realm-apply"]["condition"] == "service_completed_successfully"
    assert services["realm-apply"]["depends_on"]["keycloak"]["condition"] == "service_healthy"
    for name in ("postgres", "keycloak", "mailpit", "apsis-sync"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("the Docker client is not installed on this machine")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    out = subprocess.run(["docker", "compose", "--env-file", str(empty), "-f", str(COMPOSE), "config", "--quiet"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode != 0
    # Compose names whichever missing variable it meets first, and its order varies run to run.
    assert any(f"set {name} in .env" in out.stderr for name in SECRETS), out.stderr


def test_compose_file_holds_no_secret_and_pins_every_image() -> None:
    text = COMPOSE.read_text()
    compose = yaml.safe_load(text)
    built_here = {"keycloak", "realm-apply", "apsis-sync"}
    for name, service in compose["services"].items():
        if name not in built_here:
            assert re.search(r":v?\d+\.\d+", service["image"]), f"{name} image {service['image']} is not pinned"
    assert "quay.io/keycloak/keycloak:${KEYCLOAK_VERSION}" in (ROOT / "docker/keycloak.Dockerfile").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET)\s*:", line):
            assert "${" in line, f"a literal secret in docker-compose.yml: {line.strip()}"


@pytest.mark.unit
def test_the_image_copies_every_package_the_wheel_ships() -> None:
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in (p.rstrip("*") for p in packages):
        assert f"COPY {package} ./{package}\n" in dockerfile, f"the image build does not copy {package}/"


def test_tooling_image_is_pinned_small_and_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", dockerfile)
    assert "USER 10001:10001" in dockerfile
    assert dockerfile.count("FROM ") == 2  # build stage + runtime stage: no compilers in the image
    assert "--no-cache-dir" in dockerfile


def test_ci_runs_the_test_command_of_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make \w+)\s+#", readme, flags=re.M)
    assert commands[:2] == ["make demo", "make test"]
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)
