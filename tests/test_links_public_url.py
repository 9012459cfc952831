"""Links that work as printed (issue 14, item 3), under a public URL that is neither
``localhost`` nor ``127.0.0.1``: ``http://127.0.0.2:<port>``, forwarded to the session's
Keycloak like a reverse proxy would.

The test-login link lands on the account console of ``APSIS_SSO_KEYCLOAK_PUBLIC_URL``;
Keycloak accepts it only when ``realm apply`` registered that URL for ``apsis-one``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from devenv.accounts import PASSWORD, create_apsis_user
from devenv.entra_emulator import EntraEmulator
from devenv.keycloak import KeycloakServer
from devenv.login_driver import Browser
from provisioning.links import redirect_uri
from tests.cli_fixtures import KNOWN_SECRETS, Cli, EntraApp, cli_environment
from tests.tcp_forward import Forwarder


@pytest.fixture(scope="module")
def public(keycloak: KeycloakServer) -> Iterator[Forwarder]:
    with Forwarder("127.0.0.2", ("127.0.0.1", keycloak.http_port)) as forwarder:
        yield forwarder


def test_create_refuses_to_print_a_link_keycloak_would_refuse(cli: Cli, entra_app, public: Forwarder, nothing_created):
    app = entra_app()
    result = cli.run(*app.create_args(), env={"APSIS_SSO_KEYCLOAK_PUBLIC_URL": public.url}, expect=2)
    assert f"run `apsis-sso realm apply` with APSIS_SSO_KEYCLOAK_PUBLIC_URL={public.url}" in result.stderr
    assert f"{public.url}/realms/apsis/account/" in result.stderr
    nothing_created(app.account)


def test_show_and_stage_commands_leave_out_a_refused_link_and_say_why(cli: Cli, onboarded, public: Forwarder):
    acct = onboarded()
    here = cli.json("account", "show", acct.id)
    assert here["links"]["test_login_url"].startswith(cli.env["APSIS_SSO_KEYCLOAK_URL"])

    elsewhere = cli.json("account", "show", acct.id, env={"APSIS_SSO_KEYCLOAK_PUBLIC_URL": public.url})
    assert "test_login_url" not in elsewhere["links"]
    assert elsewhere["links"]["redirect_uri"].startswith(public.url)  # Keycloak takes no part in that one
    assert any(f"APSIS_SSO_KEYCLOAK_PUBLIC_URL={public.url}" in w for w in elsewhere["warnings"])

    live = cli.run("account", "go-live", acct.id, env={"APSIS_SSO_KEYCLOAK_PUBLIC_URL": public.url})
    assert "test-login link" not in live.stdout.lower() and public.url not in live.stdout
    assert "warning: Keycloak would refuse the test-login link" in live.stderr
    again = cli.json("account", "back-to-pilot", acct.id)
    assert again["links"]["test_login_url"].startswith(cli.env["APSIS_SSO_KEYCLOAK_URL"])


def test_realm_apply_dry_run_shows_the_difference(cli: Cli, public: Forwarder):
    plan = cli.json("realm", "apply", "--dry-run", env={"APSIS_SSO_KEYCLOAK_PUBLIC_URL": public.url})
    fields = [f for c in plan["plan"]["changes"] if c["name"] == "apsis-one" for f in c.get("fields", [])]
    redirect = next(f for f in fields if f["path"] == "redirectUris")
    assert f"{public.url}/realms/apsis/account/*" in redirect["after"]
    assert f"{public.url}/realms/apsis/account/*" not in redirect["before"]


@pytest.fixture
def public_realm(settings: Settings, realm: str, public: Forwarder, tmp_path) -> Iterator[tuple[Cli, Settings]]:
    """A realm of its own, applied with the 127.0.0.2 public URL."""
    own = settings.model_copy(update={"realm": f"pub-{secrets.token_hex(3)}", "keycloak_public_url": public.url})
    env = cli_environment(own, APSIS_SSO_KEYCLOAK_PUBLIC_URL=public.url)
    work = tmp_path / "pub"
    work.mkdir()
    cli = Cli(env=env, workdir=work)
    try:
        yield cli, own
    finally:
        KeycloakRepository.for_admin(own).delete_realm()


def test_after_realm_apply_with_that_url_the_printed_link_signs_the_test_user_in(
    public_realm, public: Forwarder, emulator: EntraEmulator, tmp_path
):
    cli, own = public_realm
    cli.run("realm", "apply")
    account = f"pub{secrets.token_hex(2)}"
    tenant = emulator.add_tenant([f"{account}.example"])
    app = emulator.add_application(tenant.tenant_id, "APSIS One SSO", [redirect_uri(own, account)])
    secret = emulator.add_secret(tenant.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=365))
    KNOWN_SECRETS.add(secret)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    entra = EntraApp(account, f"{account}.example", tenant.tenant_id, app.app_id, secret, secret_file, emulator)
    email = f"ann@{entra.domain}"
    emulator.add_user(tenant.tenant_id, email, PASSWORD, mail=email)
    api = KeycloakRepository.for_tooling(own)
    user_id = create_apsis_user(api, email)

    created = cli.json(*entra.create_args())
    link = created["links"]["test_login_url"]
    assert link.startswith(f"{public.url}/realms/{own.realm}/protocol/openid-connect/auth?")
    cli.run("account", "members", "add", account, email)

    landing = f"{public.url}/realms/{own.realm}/account/"
    result = Browser(public.url, own.realm, ca_bundle=str(emulator.ca_bundle)).follow(
        link, PASSWORD, login=email, landing=landing
    )
    assert result.ok, result.text[:500]
    assert result.forms == ["entra"] and result.url.startswith(landing)
    assert [f["userId"] for f in api.federated_identities(user_id)] == [emulator.find_user(tenant.tenant_id, email).oid]
