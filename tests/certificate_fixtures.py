"""Fixtures for certificate credentials: one assertion key pair for the session, installed in the
real Keycloak as its own key provider (as ``apsis-sso assertion-key install`` does), and settings
that point at its file (``APSIS_SSO_ASSERTION_KEY_FILE``).

* ``assertion_key``: the pair and its file;
* ``cert_settings``: the session's settings with ``assertion_key_file`` set;
* ``cert_accounts``: an ``AccountFactory`` whose accounts may be created with ``certificate=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from apsis_core import certificates
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from provisioning import assertion_keys


@dataclass(frozen=True)
class AssertionKey:
    pair: certificates.KeyPair
    path: Path


@pytest.fixture(scope="session")
def assertion_key(realm: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AssertionKey:
    pair = certificates.generate("APSIS SSO client assertions (tests)")
    path = certificates.write_key_pair(tmp_path_factory.mktemp("assertion") / "assertion-key.pem", pair)
    assertion_keys.install(KeycloakRepository.for_admin(settings), pair, active=True)
    return AssertionKey(pair, path)


@pytest.fixture(scope="session")
def cert_settings(settings: Settings, assertion_key: AssertionKey) -> Settings:
    return settings.model_copy(update={"assertion_key_file": assertion_key.path})


@pytest.fixture
def cert_accounts(
    api: KeycloakRepository, cert_settings: Settings, emulator: EntraEmulator, unique: str
) -> AccountFactory:
    return AccountFactory(api=api, settings=cert_settings, emulator=emulator, prefix=unique)
