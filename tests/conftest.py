"""Session fixtures: one real Keycloak (with the extension) and one Entra emulator.

Keycloak is installed and started by the same code as ``python -m devenv.keycloak``;
if it cannot start, every test that needs it errors: nothing here ever skips.

Two lanes: tests marked ``unit`` (``pytest -m unit``) need no server and make no network
connection — a unit test asking for one of the servers is refused at collection, and its
sockets cannot connect — and everything else (``make test`` runs both).
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import AccountFactory, local_settings
from devenv.entra_emulator import EntraEmulator
from devenv.keycloak import KeycloakServer
from devenv.login_driver import Browser
from provisioning.realm import apply_realm
from tests import code_checks

# Fixtures of the CLI, sync and portal test suites live next to them.
pytest_plugins = [
    "tests.cli_fixtures",
    "tests.sync_fixtures",
    "tests.portal_fixtures",
    "tests.certificate_fixtures",
]

SERVERS = {"keycloak", "emulator", "smtp_server", "portal"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        needs = SERVERS & set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("unit") and needs:
            raise pytest.UsageError(f"{item.nodeid} is marked unit but needs {', '.join(sorted(needs))}")
    # The lint/format/type checks run beside the other tests (pytest_collection_finish);
    # their test, which waits for them, comes last.
    items.sort(key=lambda item: item.nodeid == code_checks.TEST)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start lint, format and type checks now when their test was selected (tests/code_checks.py)."""
    if any(item.nodeid == code_checks.TEST for item in session.items):
        session.config.stash[code_checks.RUNNING] = code_checks.start()


@pytest.fixture(autouse=True)
def _unit_tests_stay_offline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(self: socket.socket, *args: Any) -> None:
        raise OSError(f"{request.node.nodeid}: the unit lane makes no network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EntraEmulator]:
    emu = EntraEmulator(state_dir=tmp_path_factory.mktemp("entra")).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def keycloak(emulator: EntraEmulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    log = tmp_path_factory.mktemp("keycloak") / "keycloak.log"
    server = KeycloakServer(truststore_paths=[Path(emulator.ca_bundle)], log_file=log)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def settings(keycloak: KeycloakServer, emulator: EntraEmulator) -> Settings:
    return local_settings(
        keycloak.url, keycloak.admin_password, emulator, realm="apsis", keycloak_admin_username=keycloak.admin_username
    )


@dataclass(frozen=True)
class RealmContents:
    """What the shared realm holds: organizations, identity providers, users (ids)."""

    orgs: frozenset[str]
    idps: frozenset[str]
    users: frozenset[str]

    @classmethod
    def read(cls, api: KeycloakRepository) -> RealmContents:
        return cls(
            frozenset(o["id"] for o in api.organizations()),
            frozenset(i["alias"] for i in api.identity_providers()),
            frozenset(u["id"] for u in api.users(briefRepresentation="true")),
        )

    def destroy_all_but(self, api: KeycloakRepository, keep: RealmContents) -> None:
        for alias in sorted(self.idps - keep.idps):  # first: deleting an IdP drops its links
            api.delete_identity_provider(alias)
        for org_id in sorted(self.orgs - keep.orgs):
            api.delete_organization(org_id)
        for user_id in sorted(self.users - keep.users):
            api.delete_user(user_id)

    def leftovers(self, baseline: RealmContents) -> dict[str, list[str]]:
        return {
            kind: sorted(getattr(self, kind) - getattr(baseline, kind))
            for kind in ("orgs", "idps", "users")
            if getattr(self, kind) - getattr(baseline, kind)
        }


@pytest.fixture(scope="session")
def realm(settings: Settings) -> Iterator[str]:
    """The shared realm, applied once. At the end of the session it must hold nothing the tests
    made (each test removes what it created: ``_destroy_what_the_test_created``)."""
    apply_realm(KeycloakRepository.for_admin(settings), settings)
    tooling = KeycloakRepository.for_tooling(settings)
    baseline = RealmContents.read(tooling)
    yield settings.realm
    leftovers = RealmContents.read(tooling).leftovers(baseline)
    assert not leftovers, f"tests left these behind in realm {settings.realm}: {leftovers}"


@pytest.fixture(scope="session")
def api(realm: str, settings: Settings) -> KeycloakRepository:
    return KeycloakRepository.for_tooling(settings)


@pytest.fixture(autouse=True)
def _destroy_what_the_test_created(request: pytest.FixtureRequest) -> Iterator[None]:
    """Terraform's CheckDestroy habit: whatever a test made in the shared realm (accounts,
    identity providers, users) is deleted after it, so the realm does not grow through the
    session and no test sees another's leftovers."""
    if "realm" not in request.fixturenames:
        yield
        return
    api: KeycloakRepository = request.getfixturevalue("api")
    before = RealmContents.read(api)
    yield
    RealmContents.read(api).destroy_all_but(api, before)


_counter = itertools.count(1)


@pytest.fixture
def unique() -> str:
    """A short name unique in this session (accounts, domains and users share one realm)."""
    return f"t{os.getpid() % 1000}x{next(_counter)}"


@pytest.fixture
def accounts(api: KeycloakRepository, settings: Settings, emulator: EntraEmulator, unique: str) -> AccountFactory:
    return AccountFactory(api=api, settings=settings, emulator=emulator, prefix=unique)


@pytest.fixture
def browser(settings: Settings, emulator: EntraEmulator, realm: str):
    """`browser()`: a fresh person's browser (cookies of its own) against the session's Keycloak."""

    def make() -> Browser:
        return Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))

    return make
