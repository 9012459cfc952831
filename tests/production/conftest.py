"""The production lane's fixtures: PostgreSQL, two Keycloak nodes in ``start --optimized``
forming one cluster, and the TLS-terminating reverse proxy in front (``devenv.cluster``),
started once for the lane's tests and stopped after them (so the dev-mode Keycloak of the
other tests never runs beside it).

The realm is applied as docker-compose.yml applies it: ``apsis-sso keycloak-admin ensure`` first
turns Keycloak's temporary bootstrap admin into a permanent admin of our own, and the realm
is applied with that one. Settings name a node directly (``settings_for(node)``), as the
tooling inside the compose network does; people's browsers go through the proxy.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import AccountFactory, OnboardedAccount, local_settings
from devenv.cluster import ClusterNode, KeycloakCluster
from devenv.entra_emulator import EntraEmulator
from devenv.login_driver import Browser
from provisioning.realm import apply_realm
from tests.cli_fixtures import CONSOLE_SCRIPT, KNOWN_SECRETS, Cli, cli_environment

REPO = Path(__file__).resolve().parents[2]
PERMANENT_ADMIN = "apsis-realm-admin"


def keycloak_admin_script(
    node: ClusterNode, cluster: KeycloakCluster, password_file: Path
) -> subprocess.CompletedProcess[str]:
    """``apsis-sso keycloak-admin ensure``, as the compose service ``keycloak-admin`` runs it."""
    bootstrap_file = cluster.state_dir / "secrets" / "bootstrap-admin-password"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("APSIS_", "KC_"))}
    env.update(
        {
            "APSIS_SSO_KEYCLOAK_URL": node.url,
            "APSIS_SSO_KEYCLOAK_ADMIN_USERNAME": PERMANENT_ADMIN,
            "APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE": str(password_file),
            "KC_BOOTSTRAP_ADMIN_USERNAME": cluster.admin_username,
            "KC_BOOTSTRAP_ADMIN_PASSWORD_FILE": str(bootstrap_file),
        }
    )
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "keycloak-admin", "ensure"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Lane:
    """The cluster with its realm, and how to reach it: a node directly, or through the proxy."""

    cluster: KeycloakCluster
    settings: Settings  # node 1; settings_for() for the other
    admin_password_file: Path
    ca_bundle: Path  # the emulator's CA and the proxy's, for browsers

    @property
    def node1(self) -> ClusterNode:
        return self.cluster.node("node1")

    @property
    def node2(self) -> ClusterNode:
        return self.cluster.node("node2")

    def settings_for(self, node: ClusterNode) -> Settings:
        return self.settings.model_copy(update={"keycloak_url": node.url})

    def api(self, node: ClusterNode) -> KeycloakRepository:
        return KeycloakRepository.for_tooling(self.settings_for(node))

    def cli(self, node: ClusterNode, workdir: Path) -> Cli:
        settings = self.settings_for(node)
        return Cli(env=cli_environment(settings, APSIS_SSO_KEYCLOAK_PUBLIC_URL=settings.public_url), workdir=workdir)

    def browser(self) -> Browser:
        """A person's browser, at the public URL (the proxy)."""
        return Browser(self.cluster.public_url, self.settings.realm, ca_bundle=str(self.ca_bundle))


@pytest.fixture(scope="package")
def lane(emulator: EntraEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lane]:
    state = tmp_path_factory.mktemp("production")
    cluster = KeycloakCluster(state, truststore_paths=[Path(emulator.ca_bundle)])
    cluster.start()
    try:
        admin_password = secrets.token_urlsafe(24)
        password_file = state / "secrets" / "keycloak-admin-password"
        password_file.write_text(admin_password + "\n")
        password_file.chmod(0o600)
        made = keycloak_admin_script(cluster.node("node1"), cluster, password_file)
        assert made.returncode == 0, made.stderr
        settings = local_settings(
            cluster.node("node1").url,
            admin_password,
            emulator,
            realm="apsis",
            keycloak_admin_username=PERMANENT_ADMIN,
            keycloak_public_url=cluster.public_url,
        )
        assert settings.keycloak_client_secret is not None
        KNOWN_SECRETS.update(
            {admin_password, cluster.admin_password, settings.keycloak_client_secret.get_secret_value()}
        )
        apply_realm(KeycloakRepository.for_admin(settings), settings)
        bundle = state / "ca-bundle.pem"
        bundle.write_text(Path(emulator.ca_bundle).read_text() + cluster.ca_bundle.read_text())
        yield Lane(cluster, settings, password_file, bundle)
    finally:
        report_start_and_memory(cluster)
        cluster.stop()


FIGURES: list[str] = []


def report_start_and_memory(cluster: KeycloakCluster) -> None:
    """The lane's start time and memory, for the terminal summary."""

    def mib(memory: dict[str, int]) -> str:
        return ", ".join(f"{name} {rss / 2**20:.0f} MiB" for name, rss in memory.items())

    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in cluster.timings.items())
    FIGURES.append(
        f"start: {timings}; resident memory after start: {mib(cluster.memory_after_start)}; "
        f"at the end: {mib(cluster.memory())} (load average {os.getloadavg()[0]:.1f})"
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in FIGURES:
        terminalreporter.write_line(f"[production lane] {line}")


@pytest.fixture(autouse=True)
def _every_node_running(request: pytest.FixtureRequest) -> None:
    """A test finds every node up, even after one that killed a node (and rejoined first)."""
    if "lane" in request.fixturenames:
        lane: Lane = request.getfixturevalue("lane")
        for node in lane.cluster.nodes:
            if node.process is None or node.process.poll() is not None:
                lane.cluster.restart(node.name)


@pytest.fixture
def onboard(lane: Lane, emulator: EntraEmulator, unique: str) -> Callable[..., OnboardedAccount]:
    """``onboard(node, stage=...)``: an account onboarded through that node (devenv/accounts.py),
    its secret registered so no CLI output may show it."""
    factories: dict[str, AccountFactory] = {}

    def make(node: ClusterNode, **kw: Any) -> OnboardedAccount:
        factory = factories.setdefault(
            node.name,
            AccountFactory(
                api=lane.api(node), settings=lane.settings_for(node), emulator=emulator, prefix=f"{unique}{node.name}"
            ),
        )
        acct = factory.create(**kw)
        KNOWN_SECRETS.add(acct.secret)
        return acct

    return make
