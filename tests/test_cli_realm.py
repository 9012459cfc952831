"""`apsis-sso realm apply` on a fresh realm of its own: dry run, create, idempotency."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from tests.cli_fixtures import Cli, cli_environment


@pytest.fixture
def fresh(settings: Settings, realm: str, tmp_path) -> Iterator[tuple[Cli, Settings]]:
    own = settings.model_copy(update={"realm": f"cli-new-{secrets.token_hex(3)}"})
    work = tmp_path / "realm"
    work.mkdir()
    try:
        yield Cli(env=cli_environment(own), workdir=work), own
    finally:
        KeycloakRepository.for_admin(own).delete_realm()


def test_realm_apply_dry_run_then_apply_then_nothing_to_do(fresh):
    cli, own = fresh
    admin = KeycloakRepository.for_admin(own)
    dry = cli.run("realm", "apply", "--dry-run")
    assert f"realm {own.realm}: plan (dry run, nothing changed)" in dry.stdout
    assert f"+ create realm {own.realm}" in dry.stdout
    assert "+ create client apsis-sso-admin" in dry.stdout
    assert "secret: null -> (set)" in dry.stdout
    assert admin.get_realm() is None

    doc = cli.json("realm", "apply")
    assert doc["applied"] is True and doc["plan"]["summary"]["create"] >= 4
    assert admin.get_realm()["organizationsEnabled"] is True

    again = cli.run("realm", "apply")
    assert "No changes." in again.stdout
    assert cli.json("realm", "apply", "--dry-run")["plan"]["changes"] == []
    # The tooling client it configured works for every other command.
    assert cli.json("account", "list")["accounts"] == []


def test_realm_apply_needs_the_tooling_secret_and_the_admin_password(fresh):
    cli, own = fresh
    result = cli.run("realm", "apply", env={"APSIS_SSO_KEYCLOAK_CLIENT_SECRET": None}, expect=2)
    assert "realm apply needs the tooling client's secret" in result.stderr
    result = cli.run("realm", "apply", env={"APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD": None}, expect=2)
    assert "no Keycloak admin password" in result.stderr
    assert KeycloakRepository.for_admin(own).get_realm() is None


def test_realm_apply_detailed_exitcode_says_whether_there_were_changes(fresh):
    cli, own = fresh
    assert cli.run("realm", "apply", "--dry-run", "--detailed-exitcode", expect=3).stdout  # pending
    assert KeycloakRepository.for_admin(own).get_realm() is None
    cli.run("realm", "apply", "--detailed-exitcode", expect=3)  # applied
    cli.run("realm", "apply", "--detailed-exitcode", expect=0)  # nothing to do
    cli.run("realm", "apply", "--dry-run", "--detailed-exitcode", "-o", "json", expect=0)
    cli.run("realm", "apply", expect=0)  # without the flag: 0 either way
