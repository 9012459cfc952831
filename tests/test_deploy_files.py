"""The deployment files, checked without a Docker engine (this machine kind has none).

* docker-compose.yml as `docker compose config` renders it: the daemon and the CLI hold no
  admin password, every secret comes from a file, realm-apply uses the permanent admin,
  SMTP comes from .env, the daemon's metrics port is published and health-checked, the
  account secrets volume is shared by the daemon and the CLI, Keycloak starts with the
  options the production lane runs (devenv/cluster.py);
* both Dockerfiles: pinned, non-root, a HEALTHCHECK, the same build options as the lane;
* the Keycloak entry point that turns *_FILE variables into secrets, run for real;
* docker/init-secrets.sh, run for real; .dockerignore; CI running README's test command;
* the hardening on the rendered config: read-only root file systems with their tmpfs, no
  capabilities, no new privileges, memory and CPU limits (Keycloak's heap from its limit),
  rotated logs, the networks (only Keycloak reaches PostgreSQL), the locally built image never
  pulled; and the nginx example exposing only /realms/ and /resources/ of Keycloak.

What the image's Python install does is replayed for real in tests/production/test_image_install.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.cluster import BUILD_OPTIONS, node_options
from devenv.keycloak import cache_dir
from tests.dockerfile import build_stage

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
SECRET_FILES = {  # what docker/init-secrets.sh makes, with the values these tests put there
    "postgres_password": "pg-test-secret-1",
    "keycloak_bootstrap_admin_password": "kc-bootstrap-test-secret-2",
    "keycloak_admin_password": "kc-admin-test-secret-3",
    "tooling_client_secret": "tool-test-secret-4",
    "smtp_password": "smtp-test-secret-5",
    "portal_session_key": "portal-session-test-secret-6-at-least-32-chars",
}
LONG_RUNNING = {"postgres", "keycloak", "apsis-sync", "apsis-portal", "mailpit"}
ONE_SHOT = {"keycloak-admin", "realm-apply", "apsis-sso"}


def compose_binary() -> list[str]:
    """`docker compose`, or the standalone plugin scripts/bootstrap.sh builds into the cache."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    standalone = cache_dir() / "bin" / "docker-compose"
    assert standalone.exists(), "no docker compose on this machine: run scripts/bootstrap.sh"
    return [str(standalone)]


def render(tmp_path: Path, **settings: str) -> dict[str, Any]:
    """`docker compose config` of a copy of the project with docker/env.example (plus
    ``settings``) as .env and the secret files in place, every profile on."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(COMPOSE, project / "docker-compose.yml")
    env = (ROOT / "docker/env.example").read_text() + "".join(f"{k}={v}\n" for k, v in settings.items())
    (project / ".env").write_text(env)
    (project / "secrets").mkdir()
    for name, value in SECRET_FILES.items():
        (project / "secrets" / name).write_text(value)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("APSIS_", "KC_", "COMPOSE_"))}
    out = subprocess.run(
        [*compose_binary(), "--profile", "*", "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=project,
        env=clean,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render(tmp_path_factory.mktemp("compose"))


def mounted(service: dict[str, Any]) -> set[str]:
    return {s["source"] for s in service.get("secrets", [])}


def test_compose_renders_every_service(config: dict[str, Any]) -> None:
    assert set(config["services"]) == LONG_RUNNING | ONE_SHOT


def test_no_secret_travels_in_the_environment_only_as_files(config: dict[str, Any]) -> None:
    rendered = json.dumps(config)
    for value in SECRET_FILES.values():
        assert value not in rendered, "a secret's value is in the rendered configuration"
    assert set(config["secrets"]) == set(SECRET_FILES)
    for name, secret in config["secrets"].items():
        assert secret.get("file", "").endswith(f"/secrets/{name}"), name
    for name, service in config["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items():
            if re.search(r"(PASSWORD|SECRET)$", key):
                pytest.fail(f"{name}: {key} is given in plain environment; use {key}_FILE")
            if key.endswith(("PASSWORD_FILE", "SECRET_FILE")):
                assert value.startswith("/run/secrets/"), f"{name}: {key}={value}"
                assert value.removeprefix("/run/secrets/") in mounted(service), (
                    f"{name}: {key} names an unmounted secret"
                )


def test_the_daemon_and_the_cli_get_no_admin_password(config: dict[str, Any]) -> None:
    """Only the database, Keycloak and the two admin one-shots hold an admin password; any
    other service (the daemon, the CLI, and whatever is added later) is checked here."""
    admin_secrets = {"keycloak_admin_password", "keycloak_bootstrap_admin_password", "postgres_password"}
    admin_holders = {"postgres", "keycloak", "keycloak-admin", "realm-apply"}
    for name, service in config["services"].items():
        if name in admin_holders:
            continue
        assert not mounted(service) & admin_secrets, name
        assert not [k for k in service.get("environment") or {} if "ADMIN" in k or k.startswith("KC_")], name
    for name in ("apsis-sync", "apsis-sso"):
        assert mounted(config["services"][name]) >= {"tooling_client_secret"}, name


def test_realm_apply_uses_a_permanent_admin_not_the_bootstrap_admin(config: dict[str, Any]) -> None:
    services = config["services"]
    realm_apply, keycloak_admin = services["realm-apply"], services["keycloak-admin"]
    bootstrap = services["keycloak"]["environment"]["KC_BOOTSTRAP_ADMIN_USERNAME"]
    assert realm_apply["environment"]["APSIS_SSO_KEYCLOAK_ADMIN_USERNAME"] != bootstrap
    assert mounted(realm_apply) == {"keycloak_admin_password", "tooling_client_secret"}
    # keycloak-admin makes that admin (the bootstrap admin's only user) before realm-apply runs.
    assert keycloak_admin["command"] == ["apsis-sso", "keycloak-admin", "ensure"]
    assert keycloak_admin["environment"]["KC_BOOTSTRAP_ADMIN_USERNAME"] == bootstrap
    assert (
        keycloak_admin["environment"]["APSIS_SSO_KEYCLOAK_ADMIN_USERNAME"]
        == realm_apply["environment"]["APSIS_SSO_KEYCLOAK_ADMIN_USERNAME"]
    )
    assert mounted(keycloak_admin) == {"keycloak_admin_password", "keycloak_bootstrap_admin_password"}
    assert keycloak_admin["depends_on"]["keycloak"]["condition"] == "service_healthy"
    assert realm_apply["depends_on"]["keycloak-admin"]["condition"] == "service_completed_successfully"
    assert services["apsis-sync"]["depends_on"]["realm-apply"]["condition"] == "service_completed_successfully"


def test_smtp_comes_from_the_env_file(tmp_path: Path, config: dict[str, Any]) -> None:
    assert config["services"]["apsis-sync"]["environment"]["APSIS_SYNC_SMTP_HOST"] == "mailpit"  # trying it out
    relay = render(
        tmp_path,
        APSIS_SYNC_SMTP_HOST="smtp.example.com",
        APSIS_SYNC_SMTP_PORT="587",
        APSIS_SYNC_SMTP_STARTTLS="true",
        APSIS_SYNC_SMTP_USERNAME="apsis-sync",
    )
    env = relay["services"]["apsis-sync"]["environment"]
    assert (env["APSIS_SYNC_SMTP_HOST"], env["APSIS_SYNC_SMTP_PORT"]) == ("smtp.example.com", "587")
    assert (env["APSIS_SYNC_SMTP_STARTTLS"], env["APSIS_SYNC_SMTP_USERNAME"]) == ("true", "apsis-sync")
    assert env["APSIS_SYNC_SMTP_PASSWORD_FILE"] == "/run/secrets/smtp_password"


def test_healthchecks_on_every_long_running_service(config: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = config["services"][name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    daemon = config["services"]["apsis-sync"]
    port = daemon["environment"]["APSIS_SYNC_METRICS_PORT"]
    assert f"127.0.0.1:{port}/livez" in " ".join(daemon["healthcheck"]["test"])  # never restarted for an outage
    assert [p["target"] for p in daemon["ports"]] == [int(port)]  # /metrics reachable for Prometheus
    portal = config["services"]["apsis-portal"]
    assert "127.0.0.1:8090/livez" in " ".join(portal["healthcheck"]["test"])
    assert portal["command"][-1] == "8090" and [p["target"] for p in portal["ports"]] == [8090, 9101]
    assert portal["environment"]["APSIS_PORTAL_METRICS_PORT"] == "9101"  # metrics apart from the public port
    assert all(p["host_ip"] == "127.0.0.1" for p in portal["ports"])  # only the reverse proxy reaches it


def test_the_cli_the_portal_and_the_daemon_share_the_account_secrets(config: dict[str, Any]) -> None:
    daemon, cli = config["services"]["apsis-sync"], config["services"]["apsis-sso"]
    portal = config["services"]["apsis-portal"]
    path = daemon["environment"]["APSIS_SYNC_SECRETS_DIR"]
    assert cli["environment"]["APSIS_SSO_SYNC_SECRETS_DIR"] == path
    assert portal["environment"]["APSIS_SSO_SYNC_SECRETS_DIR"] == path

    def volume_at(service: dict[str, Any]) -> str:
        [volume] = [v["source"] for v in service["volumes"] if v["target"] == path]
        return str(volume)

    assert volume_at(daemon) == volume_at(cli) == volume_at(portal) == "account-secrets"
    # A named volume starts with the image's ownership of that directory: the containers' uid.
    assert (
        "install -d -o 10001 -g 10001 -m 0700 /var/lib/apsis-sso /var/lib/apsis-sso/secrets"
        in (ROOT / "Dockerfile").read_text()
    )


def test_keycloak_starts_as_the_production_lane_runs_it(tmp_path: Path) -> None:
    public = "https://sso.example.com"
    keycloak = render(tmp_path, APSIS_SSO_KEYCLOAK_PUBLIC_URL=public)["services"]["keycloak"]
    lane = ["start", "--optimized", *node_options(public)]
    assert keycloak["command"][: len(lane)] == lane
    # compose's own: the proxy it trusts (the lane's is its test proxy) and JSON logs (the lane reads text)
    assert keycloak["command"][len(lane) :] == ["--proxy-trusted-addresses=127.0.0.1", "--log-console-output=json"]
    assert "--event-metrics-user-tags=realm,idp" in lane and "--event-metrics-user-enabled=true" in BUILD_OPTIONS
    assert keycloak["environment"]["KC_DB_URL"].startswith("jdbc:postgresql://postgres:")
    assert all(p["host_ip"] == "127.0.0.1" for p in keycloak["ports"])  # only the reverse proxy reaches it
    dockerfile = (ROOT / "docker/keycloak.Dockerfile").read_text()
    assert f"RUN /opt/keycloak/bin/kc.sh build {' '.join(BUILD_OPTIONS)}\n" in dockerfile


@pytest.mark.unit
def test_compose_file_holds_no_secret_and_pins_every_image() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    built_here = {"keycloak", "keycloak-admin", "realm-apply", "apsis-sync", "apsis-sso", "apsis-portal"}
    for name, service in compose["services"].items():
        if name not in built_here:
            assert re.search(r":v?\d+\.\d+", service["image"]), f"{name} image {service['image']} is not pinned"
    assert "quay.io/keycloak/keycloak:${KEYCLOAK_VERSION}" in (ROOT / "docker/keycloak.Dockerfile").read_text()


@pytest.mark.unit
def test_both_images_are_pinned_non_root_and_health_checked() -> None:
    tooling = (ROOT / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim", tooling)
    assert "USER 10001:10001" in tooling
    assert tooling.count("FROM ") == 2  # build stage + runtime stage: no compilers in the image
    keycloak = (ROOT / "docker/keycloak.Dockerfile").read_text()
    for dockerfile in (tooling, keycloak):
        assert re.search(r"^HEALTHCHECK ", dockerfile, flags=re.M)
    assert "/livez" in tooling and "/health'" not in tooling  # liveness: an outage never restarts it
    assert 'ENTRYPOINT ["/opt/keycloak/bin/apsis-entrypoint.sh"]' in keycloak


@pytest.mark.unit
def test_the_image_builds_every_package_the_wheel_ships_from_the_lock() -> None:
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dirs = setuptools.get("package-dir", {})
    # Each package's source: its own directory, or the one package-dir names (realm-templates).
    sources = {package_dirs.get(p, p.split(".")[0]) for p in setuptools["packages"]}
    steps = build_stage(ROOT / "Dockerfile")
    copied = {args.split()[0] for instruction, args in steps if instruction == "COPY"}
    for source in sorted(sources):
        assert source in copied, f"the image build does not copy {source}/"
    assert "realm-templates" in sources
    assert [args for instruction, args in steps if instruction == "RUN"] == [
        "scripts/install.sh deps /opt/venv",
        "scripts/install.sh app /opt/venv",
    ]


@pytest.mark.unit
def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".state", ".git", ".env", "secrets", "devenv", "tests"} <= ignored


def fake_kc(tmp_path: Path) -> Path:
    """The entry point next to a kc.sh that prints what it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(ROOT / "docker/keycloak-entrypoint.sh", bin_dir / "apsis-entrypoint.sh")
    (bin_dir / "kc.sh").write_text('#!/bin/bash\necho "args: $*"\nenv | grep "^KC_" | sort\n')
    (bin_dir / "kc.sh").chmod(0o755)
    return bin_dir / "apsis-entrypoint.sh"


def test_keycloak_entry_point_reads_password_and_secret_files(tmp_path: Path) -> None:
    entry = fake_kc(tmp_path)
    (tmp_path / "db").write_text("s3cret db\n")
    (tmp_path / "client").write_text("client-s3cret")
    env = {
        "PATH": os.environ["PATH"],
        "KC_DB_PASSWORD_FILE": str(tmp_path / "db"),
        "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET_FILE": str(tmp_path / "client"),
        "KC_HTTPS_CERTIFICATE_FILE": "/etc/cert.pem",
        "KC_DB_USERNAME": "keycloak",
    }
    out = subprocess.run([str(entry), "start", "--optimized"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "args: start --optimized",
        "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET=client-s3cret",
        "KC_DB_PASSWORD=s3cret db",
        "KC_DB_USERNAME=keycloak",
        "KC_HTTPS_CERTIFICATE_FILE=/etc/cert.pem",  # a real option that names a file: untouched
    ]


def test_keycloak_entry_point_refuses_a_missing_secret_file(tmp_path: Path) -> None:
    entry = fake_kc(tmp_path)
    out = subprocess.run(
        [str(entry), "start"],
        env={"PATH": os.environ["PATH"], "KC_DB_PASSWORD_FILE": str(tmp_path / "missing")},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"error: KC_DB_PASSWORD_FILE: cannot read {tmp_path / 'missing'}\n"


def test_init_secrets_creates_every_secret_once_readable_only_through_its_directory(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "docker").mkdir(parents=True)
    shutil.copy2(ROOT / "docker/init-secrets.sh", project / "docker/init-secrets.sh")
    first = subprocess.run([str(project / "docker/init-secrets.sh")], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    secrets = project / "secrets"
    assert sorted(p.name for p in secrets.iterdir()) == sorted(SECRET_FILES)
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    values = {p.name: p.read_text() for p in secrets.iterdir()}
    assert values["smtp_password"] == ""
    assert all(len(v) >= 32 for k, v in values.items() if k != "smtp_password")
    assert len(set(values.values())) == len(values)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in secrets.iterdir())
    again = subprocess.run([str(project / "docker/init-secrets.sh")], capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr == ""
    assert {p.name: p.read_text() for p in secrets.iterdir()} == values  # never overwritten
    # ...and they are exactly the files docker-compose.yml mounts.
    compose = yaml.safe_load(COMPOSE.read_text())
    assert {s["file"] for s in compose["secrets"].values()} == {f"./secrets/{n}" for n in SECRET_FILES}


@pytest.mark.unit
def test_ci_runs_the_test_command_of_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(make \w+)\s+#", readme, flags=re.M)
    assert commands[:2] == ["make demo", "make test"]
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


def test_every_container_is_read_only_without_capabilities_and_limited(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        assert service.get("read_only") is True, f"{name} has a writable root file system"
        assert "/tmp" in service.get("tmpfs", []), f"{name} has no tmpfs /tmp"
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory") and float(limits.get("cpus", 0)) > 0, f"{name} has no memory/CPU limit"
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file" and logging["options"].get("max-size"), f"{name}: logs not rotated"
        assert logging["options"].get("max-file"), name
    postgres, keycloak = config["services"]["postgres"], config["services"]["keycloak"]
    assert postgres["user"] == "70:70"  # the image's postgres user: no capability needed to start
    assert any(t.startswith("/var/run/postgresql") for t in postgres["tmpfs"])
    assert any(t.startswith("/opt/keycloak/data") for t in keycloak["tmpfs"])


def test_keycloak_sizes_its_heap_from_its_own_memory_limit(config: dict[str, Any]) -> None:
    keycloak = config["services"]["keycloak"]
    assert int(keycloak["deploy"]["resources"]["limits"]["memory"]) == 2 * 1024**3  # rendered in bytes
    assert "-XX:MaxRAMPercentage=70" in keycloak["environment"]["JAVA_OPTS_KC_HEAP"]


def test_only_keycloak_reaches_the_database(config: dict[str, Any]) -> None:
    services = config["services"]
    assert config["networks"]["db"].get("internal") is True  # no route out of it
    assert set(services["postgres"]["networks"]) == {"db"}
    on_db = {name for name, service in services.items() if "db" in service.get("networks", {})}
    assert on_db == {"postgres", "keycloak"}
    for name in ("apsis-sync", "apsis-portal", "apsis-sso", "realm-apply", "keycloak-admin"):
        assert set(services[name]["networks"]) == {"backend"}, name  # Keycloak, Entra and Graph, not the database
    assert "backend" in services["keycloak"]["networks"]


def test_the_locally_built_images_are_never_pulled(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        if service["image"].startswith(("apsis-sso:", "apsis-sso-keycloak:")):
            expected = "build" if "build" in service else "never"
            assert service.get("pull_policy") == expected, name


def test_keycloak_trusts_forwarded_headers_from_the_configured_proxy_only(tmp_path: Path) -> None:
    keycloak = render(tmp_path, KEYCLOAK_PROXY_TRUSTED_ADDRESSES="172.18.0.1", KEYCLOAK_EVENT_METRICS_USER_TAGS="realm")
    command = keycloak["services"]["keycloak"]["command"]
    assert "--proxy-headers=xforwarded" in command and "--proxy-trusted-addresses=172.18.0.1" in command
    assert "--event-metrics-user-tags=realm" in command  # the per-account tag turned off


@pytest.mark.unit
def test_the_nginx_example_exposes_only_realms_and_resources_of_keycloak() -> None:
    conf = (ROOT / "docker/nginx.conf").read_text()
    servers = re.split(r"^server \{", re.sub(r"#.*", "", conf), flags=re.M)[1:]
    keycloak = [s for s in servers if "127.0.0.1:8080" in s]
    portal = [s for s in servers if "127.0.0.1:8090" in s]
    assert len(keycloak) == 1 and len(portal) == 1 and keycloak != portal
    proxied = set(re.findall(r"location (\S+) \{\s*proxy_pass http://127\.0\.0\.1:8080", keycloak[0]))
    assert proxied == {"/realms/", "/resources/"}
    assert re.search(r"location / \{\s*return 404;", keycloak[0])  # /admin/ and the rest: never proxied
    assert "/admin" not in re.sub(r"location / \{[^}]*\}", "", keycloak[0])
    assert "8080" not in portal[0] and "access_log off" in portal[0]  # the portal's links hold tokens
