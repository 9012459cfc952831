"""`apsis-sso` with certificate credentials: create with --credential certificate, publish the
public certificate, switch an account from its secret to the certificate and back (proved
first, never breaking a working account), and the assertion-key commands."""

from __future__ import annotations

import json
from pathlib import Path

from apsis_core import certificates
from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import PASSWORD
from tests.certificate_fixtures import AssertionKey
from tests.cli_fixtures import Cli


def cert_cli(cli: Cli, key: AssertionKey) -> Cli:
    return Cli(env={**cli.env, "APSIS_SSO_ASSERTION_KEY_FILE": str(key.path)}, workdir=cli.workdir)


def test_create_with_a_certificate_needs_no_secret_and_records_the_certificates_expiry(
    cli: Cli, entra_app, assertion_key: AssertionKey, api: KeycloakRepository
) -> None:
    app = entra_app()
    c = cert_cli(cli, assertion_key)
    args = app.create_args(**{"--client-secret-file": None, "--secret-expires": None})
    refused = c.run(*args, "--credential", "certificate", expect=2)  # not uploaded yet: AADSTS700027
    assert "AADSTS700027" in refused.stderr and "Certificates & secrets" in refused.stderr
    assert api.organization_by_alias(app.account) is None  # nothing was created

    app.emulator.upload_certificate(app.tenant_id, app.app_id, assertion_key.pair.certificate.pem)
    c.run(*args, "--credential", "certificate")
    shown = c.json("account", "show", app.account)
    org = api.organization_by_alias(app.account)
    assert org is not None and org["attributes"]["apsis.credential"] == ["certificate"]
    expires = assertion_key.pair.certificate.not_after.date().isoformat()
    assert org["attributes"]["apsis.secretExpires"] == [expires]
    assert shown["id"] == app.account
    idp = api.identity_provider(f"entra-{app.account}")
    assert idp is not None and idp["config"]["clientAuthMethod"] == "private_key_jwt"


def test_certificate_prints_and_saves_the_public_certificate_only(
    cli: Cli, onboarded, assertion_key: AssertionKey, tmp_path: Path
) -> None:
    acct = onboarded()
    c = cert_cli(cli, assertion_key)
    cert = assertion_key.pair.certificate
    printed = c.run("account", "certificate", acct.id)
    assert cert.pem in printed.stdout and cert.sha1_thumbprint in printed.stdout
    assert "PRIVATE KEY" not in printed.stdout
    data = c.json("account", "certificate", acct.id, "--save", str(tmp_path / "apsis.cer"))
    assert data["thumbprint_sha1"] == cert.sha1_thumbprint and data["thumbprint_sha256"] == cert.sha256_thumbprint
    assert certificates.parse_public((tmp_path / "apsis.cer").read_text()) == cert
    c.run("account", "certificate", acct.id, "--next", expect=2)  # none published yet
    cli.run("account", "certificate", acct.id, expect=2)  # no key file configured: one clear line


def test_switching_to_the_certificate_is_proved_first_and_back_again(
    cli: Cli, onboarded, assertion_key: AssertionKey, api: KeycloakRepository, browser, emulator
) -> None:
    acct = onboarded()
    email, user_id = acct.person("gus")
    c = cert_cli(cli, assertion_key)

    refused = c.run("account", "credential", acct.id, "--use", "certificate", expect=2)
    assert "AADSTS700027" in refused.stderr
    idp = api.identity_provider(acct.alias)
    assert idp is not None and idp["config"]["clientAuthMethod"] == "client_secret_post"  # untouched

    emulator.upload_certificate(acct.tenant_id, acct.app_id, assertion_key.pair.certificate.pem)
    plan = c.json("account", "credential", acct.id, "--use", "certificate", "--dry-run")
    paths = {f["path"] for change in plan["plan"]["changes"] for f in change["fields"]}
    assert "config.clientAuthMethod" in paths and "attributes.apsis.credential" in paths
    assert api.identity_provider(acct.alias)["config"]["clientAuthMethod"] == "client_secret_post"

    switched = c.run("account", "credential", acct.id, "--use", "certificate")
    assert "delete the old client secret" in switched.stderr
    assert api.identity_provider(acct.alias)["config"]["clientAuthMethod"] == "private_key_jwt"
    for cred in emulator.get_application(acct.tenant_id, acct.app_id).password_credentials:
        emulator.remove_secret(acct.tenant_id, acct.app_id, cred.key_id)  # the customer deletes it
    assert browser().sso_login(email, PASSWORD, acct.alias).ok

    again = c.run("account", "credential", acct.id, "--use", "certificate")
    assert "nothing to change" in again.stderr + again.stdout
    assert c.json("account", "show", acct.id)["credential"] == "certificate"
    rotate = c.run(
        "account", "rotate-secret", acct.id, "--secret-expires", "2031-01-01",
        env={"APSIS_SSO_ENTRA_CLIENT_SECRET": acct.secret}, expect=2,
    )  # fmt: skip
    assert "--use client-secret" in rotate.stderr

    fresh = emulator.add_secret(acct.tenant_id, acct.app_id, "2031-01-01")
    from tests.cli_fixtures import KNOWN_SECRETS

    KNOWN_SECRETS.add(fresh)
    c.run(
        "account",
        "credential",
        acct.id,
        "--use",
        "client-secret",
        "--secret-expires",
        "2031-01-01",
        env={"APSIS_SSO_ENTRA_CLIENT_SECRET": fresh},
    )
    org = api.organization_by_alias(acct.id)
    assert org is not None and not org["attributes"].get("apsis.credential")
    assert api.identity_provider(acct.alias)["config"]["clientAuthMethod"] == "client_secret_post"
    assert browser().sso_login(email, PASSWORD, acct.alias).ok


def test_assertion_key_generate_never_overwrites_and_status_names_the_signing_key(
    cli: Cli, assertion_key: AssertionKey, tmp_path: Path
) -> None:
    target = tmp_path / "k.pem"
    made = json.loads(cli.run("assertion-key", "generate", str(target), "--days", "400", "-o", "json").stdout)
    pair = certificates.load_key_pair(target)
    assert made["thumbprint_sha1"] == pair.certificate.sha1_thumbprint
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE" not in json.dumps(made)
    cli.run("assertion-key", "generate", str(target), expect=2)
    status = cert_cli(cli, assertion_key).json("assertion-key", "status")
    assert status["signing"] == assertion_key.pair.certificate.sha1_thumbprint
    assert status["current"] == assertion_key.pair.certificate.sha1_thumbprint


def test_export_keeps_a_certificate_account_a_certificate_account(
    cli: Cli, cert_accounts, assertion_key: AssertionKey, tmp_path: Path
) -> None:
    acct = cert_accounts.create(certificate=True)
    file = tmp_path / "accounts.yaml"
    cli.run("export", "--out", str(file))
    assert "credential: certificate" in file.read_text()
    plan = cert_cli(cli, assertion_key).json("plan", "-f", str(file))
    mine = [c for c in plan["changes"] if c.get("account") == acct.id]
    assert mine == []  # re-applying the export does not move it back to a client secret


def test_apply_proves_a_new_certificate_account_before_creating_it(
    cli: Cli, entra_app, assertion_key: AssertionKey, api: KeycloakRepository, tmp_path: Path
) -> None:
    app = entra_app()
    c = cert_cli(cli, assertion_key)
    entry = {
        "id": app.account,
        "name": f"Account {app.account}",
        "tenant_id": app.tenant_id,
        "client_id": app.app_id,
        "credential": "certificate",
        "secret_expires": assertion_key.pair.certificate.not_after.date().isoformat(),
        "domains": [app.domain],
        "it_contact": {"name": "Ivy IT", "email": f"it@{app.domain}"},
    }
    file = tmp_path / "accounts.yaml"
    file.write_text(json.dumps({"version": 1, "accounts": [entry]}))  # JSON is YAML
    refused = c.run("apply", "-f", str(file), "--yes", expect=2)  # the certificate is not uploaded yet
    assert "AADSTS700027" in refused.stderr and app.account in refused.stderr
    assert api.organization_by_alias(app.account) is None  # nothing was created

    app.emulator.upload_certificate(app.tenant_id, app.app_id, assertion_key.pair.certificate.pem)
    applied = c.run("apply", "-f", str(file), "--yes")
    assert f"credential of account {app.account} accepted by Entra" in applied.stderr
    idp = api.identity_provider(f"entra-{app.account}")
    assert idp is not None and idp["config"]["clientAuthMethod"] == "private_key_jwt"
