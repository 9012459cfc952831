"""`apsis-sso` for an Okta account: the API key, create with --provider okta, show."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from apsis_core.keycloak import KeycloakRepository
from devenv.entra_emulator import EntraEmulator
from devenv.okta_emulator import OktaEmulator
from provisioning import links
from tests.cli_fixtures import KNOWN_SECRETS, Cli


@pytest.fixture(scope="module")
def okta(emulator: EntraEmulator) -> Iterator[OktaEmulator]:
    with OktaEmulator(ca_from=emulator.state_dir) as server:
        yield server


def test_an_okta_account_from_the_cli(
    cli: Cli, okta: OktaEmulator, api: KeycloakRepository, settings, unique: str, tmp_path: Path
):
    account = f"{unique}c"
    org = account.replace("-", "")
    okta.add_org(org)
    app, secret = okta.add_web_app(org, "APSIS One", [links.redirect_uri(settings, account)])
    KNOWN_SECRETS.add(secret)
    env = {
        "APSIS_SSO_OKTA_CA_BUNDLE": str(okta.ca_bundle),
        "APSIS_SSO_SYNC_SECRETS_DIR": str(tmp_path / "secrets"),
        "APSIS_SSO_ENTRA_CLIENT_SECRET": secret,
    }
    key = cli.json("account", "okta-key", account, env=env)
    assert key["jwk"]["kty"] == "RSA" and "d" not in key["jwk"]
    assert cli.json("account", "okta-key", account, env=env)["jwk"] == key["jwk"], "one key pair per account"
    service = okta.add_service_app(org, "APSIS sync", [key["jwk"]], ["okta.users.read", "okta.logs.read"])

    common = [
        "account", "create", account, "--name", "Okta CLI", "--provider", "okta", "--client-id", app.client_id,
        "--domain", f"{account}.example", "--secret-expires", (date.today() + timedelta(days=200)).isoformat(),
        "--it-contact-name", "Ivy", "--it-contact-email", f"ivy@{account}.example",
    ]  # fmt: skip
    wrong = cli.run(*common, "--tenant-id", okta.issuer(org), env=env, expect=2)
    assert wrong.stderr.strip().splitlines()[-1].startswith("error: --provider okta takes --okta-org, not --tenant-id")
    doc = cli.json(*common, "--okta-org", okta.issuer(org), "--okta-api-client-id", service.client_id, env=env)
    assert doc["applied"] is True and doc["links"]["redirect_uri"] == links.redirect_uri(settings, account)

    shown = cli.json("account", "show", account, env=env)
    assert (shown["provider"], shown["tenant_id"], shown["client_id"]) == ("okta", okta.issuer(org), app.client_id)
    org_rep = api.organization_by_alias(account)
    assert org_rep is not None
    assert org_rep["attributes"]["apsis.provider"] == ["okta"]
    assert org_rep["attributes"]["apsis.oktaApiClientId"] == [service.client_id]
    table = cli.run("account", "show", account, env=env).stdout
    assert "okta" in table and "issuer" in table


def test_an_okta_account_in_the_declarative_file(
    cli: Cli, okta: OktaEmulator, api: KeycloakRepository, settings, unique: str, tmp_path: Path
):
    account = f"{unique}f"
    org = account.replace("-", "")
    okta.add_org(org)
    app, secret = okta.add_web_app(org, "APSIS One", [links.redirect_uri(settings, account)])
    KNOWN_SECRETS.add(secret)
    env = {
        "APSIS_SSO_OKTA_CA_BUNDLE": str(okta.ca_bundle),
        "APSIS_SSO_SYNC_SECRETS_DIR": str(tmp_path / "secrets"),
        "OKTA_SECRET": secret,
    }
    entry = {
        "id": account,
        "name": "Okta file",
        "provider": "okta",
        "okta_org": okta.issuer(org),
        "client_id": app.client_id,
        "client_secret": {"env": "OKTA_SECRET"},
        "secret_expires": (date.today() + timedelta(days=100)).isoformat(),
        "domains": [f"{account}.example"],
        "it_contact": {"name": "Ivy", "email": f"ivy@{account}.example"},
    }
    path = tmp_path / "accounts.yaml"
    path.write_text(json.dumps({"version": 1, "accounts": [entry]}))  # JSON is YAML
    cli.run("apply", "-f", str(path), "--yes", env=env)
    assert cli.json("plan", "-f", str(path), env=env)["changes"] == [], "applied as planned, nothing left"
    exported = [a for a in yaml.safe_load(cli.run("export", env=env).stdout)["accounts"] if a["id"] == account]
    assert exported and (exported[0]["provider"], exported[0]["okta_org"]) == ("okta", okta.issuer(org))
    held = api.identity_provider(f"entra-{account}")
    assert held is not None and held["config"]["issuer"] == okta.issuer(org)

    path.write_text(json.dumps({"version": 1, "accounts": [entry | {"tenant_id": okta.issuer(org)}]}))
    refused = cli.run("plan", "-f", str(path), env=env, expect=2)
    assert "provider okta takes okta_org, not tenant_id" in refused.stderr
    wrong = {
        **entry,
        "id": f"{account}x",
        "name": "Okta other",
        "domains": [f"{account}x.example"],
        "client_secret": {"env": "WRONG"},
    }
    path.write_text(json.dumps({"version": 1, "accounts": [entry, wrong]}))
    refused = cli.run("apply", "-f", str(path), "--yes", env={**env, "WRONG": "not-the-secret-0123"}, expect=2)
    assert f"account {account}x: Okta refused client id" in refused.stderr
    assert api.organization_by_alias(f"{account}x") is None, "nothing of the file was applied"
