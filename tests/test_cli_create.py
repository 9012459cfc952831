"""`apsis-sso account create` against the real Keycloak and the Entra emulator: what it
builds, what it prints, how it reads the secret, every bad input (exit 2, nothing
created), and a create interrupted midway then completed by a rerun."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from apsis_core.account import Account
from apsis_core.contract import MAPPERS_HASH_KEY
from apsis_core.errors import KeycloakError
from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import PASSWORD, create_apsis_user
from devenv.keycloak import free_port
from devenv.login_driver import Browser
from provisioning.accounts import plan_account
from provisioning.snapshot import Snapshot
from tests.cli_fixtures import KNOWN_SECRETS, Cli, EntraApp


def test_create_builds_the_account_and_prints_what_the_customer_needs(
    cli: Cli, entra_app, api: KeycloakRepository, settings, emulator
):
    app: EntraApp = entra_app()
    emulator.add_domain(app.tenant_id, f"mail.{app.domain}")  # a second domain of the customer's tenant
    doc = cli.json(*app.create_args(**{"--tenant-id": app.domain, "--domain": [app.domain, f"mail.{app.domain}"]}))

    assert doc["id"] == doc["account"] == app.account and doc["applied"] is True
    assert doc["plan"]["summary"] == {"create": 4, "update": 0, "delete": 0}
    broker = f"{settings.keycloak_url}/realms/apsis/broker/entra-{app.account}/endpoint"
    assert doc["links"]["redirect_uri"] == broker
    consent = doc["links"]["admin_consent_url"]
    assert consent.startswith(f"{settings.entra_authority}/{app.tenant_id}/adminconsent?")
    assert f"client_id={app.app_id}" in consent and "broker%2Fentra-" in consent
    assert f"kc_idp_hint=entra-{app.account}" in doc["links"]["test_login_url"]
    assert f"test user ann@{app.domain} has no APSIS One user in Keycloak" in doc["warnings"]

    org = api.organization_by_alias(app.account)
    assert org is not None
    attrs = org["attributes"]
    assert attrs["apsis.tenantId"] == [app.tenant_id]  # the domain given was resolved to the GUID
    assert attrs["apsis.stage"] == ["pilot"] and attrs["apsis.pilot"] == [f"ann@{app.domain}"]
    assert attrs["apsis.managedBy"] == ["apsis-sso"]
    assert sorted(d["name"] for d in org["domains"]) == sorted([app.domain, f"mail.{app.domain}"])
    assert sorted(v.split(" ")[:2] for v in attrs["apsis.domainProofs"]) == sorted(  # each domain proven for the tenant
        [[app.domain, app.tenant_id], [f"mail.{app.domain}", app.tenant_id]]
    )
    idp = api.identity_provider(f"entra-{app.account}")
    assert idp is not None and idp["enabled"] and idp["hideOnLogin"]
    assert idp["organizationId"] == org["id"]
    assert idp["config"]["issuer"] == f"{settings.entra_authority}/{app.tenant_id}/v2.0"
    assert idp["config"]["validateIssuer"] == "true"
    assert idp["config"]["clientId"] == app.app_id
    assert idp["config"][MAPPERS_HASH_KEY]
    assert [m["identityProviderMapper"] for m in api.idp_mappers(f"entra-{app.account}")] == ["apsis-entra-oid-mapper"]


def test_a_created_account_lets_its_test_user_sign_in(cli: Cli, entra_app, api: KeycloakRepository, settings, emulator):
    app: EntraApp = entra_app()
    cli.run(*app.create_args())
    email = f"ann@{app.domain}"
    emulator.add_user(app.tenant_id, email, PASSWORD, mail=email)
    user_id = create_apsis_user(api, email)
    cli.run("account", "members", "add", app.account, email)
    result = Browser(settings.keycloak_url, "apsis", ca_bundle=str(emulator.ca_bundle)).sso_login(
        email, PASSWORD, f"entra-{app.account}"
    )
    assert result.ok, result.text[:300]
    assert result.id_claims["sub"] == user_id


def test_create_table_output_names_links_and_warnings(cli: Cli, entra_app):
    app: EntraApp = entra_app()
    expires = (date.today() + timedelta(days=10)).isoformat()
    result = cli.run(*app.create_args(**{"--secret-expires": expires}))
    out = result.stdout
    assert f"account {app.account} created in pilot stage" in out
    assert f"+ create organization {app.account}" in out
    assert "config.clientSecret: null -> (set)" in out
    assert "Redirect URI (app registration, platform Web):" in out
    assert "Admin-consent link" in out and "Test-login link" in out
    assert f"warning: the client secret expires in 10 days ({expires})" in result.stderr
    assert (
        f"warning: APSIS_SSO_SYNC_SECRETS_DIR is not set: hand the new secret of {app.account} to apsis-sync"
        in result.stderr
    )


@pytest.mark.parametrize("how", ["env-default", "env-named", "prompt", "stdin"])
def test_the_secret_comes_from_env_prompt_or_stdin_never_argv(cli: Cli, entra_app, api, how):
    app: EntraApp = entra_app()
    args = app.create_args(**{"--client-secret-file": None})
    env: dict[str, str | None] = {}
    stdin = None
    if how == "env-default":
        env["APSIS_SSO_ENTRA_CLIENT_SECRET"] = app.secret
    elif how == "env-named":
        env["ACME_SECRET"] = app.secret
        args += ["--client-secret-env", "ACME_SECRET"]
    elif how == "prompt":
        stdin = f"{app.secret}\n{app.secret}\n"
    else:
        args += ["--client-secret-file", "-"]
        stdin = app.secret + "\n"
    result = cli.run(*args, input=stdin, env=env)
    if how == "prompt":
        assert "input hidden" in result.stderr and "Repeat the client secret" in result.stderr
    assert api.identity_provider(f"entra-{app.account}") is not None


def test_create_dry_run_changes_nothing(cli: Cli, entra_app, nothing_created):
    app: EntraApp = entra_app()
    result = cli.run(*app.create_args(), "--dry-run")
    assert "(dry run, nothing changed)" in result.stdout
    assert "Plan: 4 to create" in result.stdout
    nothing_created(app.account)


def _days(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


BAD_INPUT = {
    "account id": ({"account": "Acme_Corp"}, "invalid account id 'Acme_Corp'"),
    "tenant neither guid nor domain": ({"--tenant-id": "not a tenant!"}, "invalid tenant id 'not a tenant!'"),
    "tenant guid truncated": ({"--tenant-id": "1234-5678"}, "invalid tenant id"),
    "client id": ({"--client-id": "my-app"}, "invalid client id 'my-app'"),
    "domain": ({"--domain": ["bad_domain"]}, "invalid domain 'bad_domain'"),
    "domain without dot": ({"--domain": ["localhost"]}, "invalid domain 'localhost'"),
    "it contact email": ({"--it-contact-email": "ivy@"}, "invalid email 'ivy@'"),
    "test user email": ({"--test-user": ["ann.example.com"]}, "invalid email 'ann.example.com'"),
    "test user email bad domain": ({"--test-user": ["ann@-x.com"]}, "invalid email 'ann@-x.com': bad domain"),
    "expiry unparseable": ({"--secret-expires": "31/12/2027"}, "invalid date '31/12/2027': expected YYYY-MM-DD"),
    "expiry in the past": ({"--secret-expires": "2020-01-01"}, "date 2020-01-01 is not in the future"),
    "expiry today": ({"--secret-expires": date.today().isoformat()}, "is not in the future"),
    "empty name": ({"--name": " "}, "the name is empty"),
    "name of 100,000 characters": (
        {"--name": "N" * 100_000},
        "the name is 100000 characters long; Keycloak stores at most 255",
    ),
    "name of 256 characters": ({"--name": "N" * 256}, "the name is 256 characters long; Keycloak stores at most 255"),
    "name of 255 characters, one an emoji (256 in Java)": (
        {"--name": "N" * 254 + "\N{GRINNING FACE}"},
        "the name is 256 characters long",
    ),
    "name with a tab": ({"--name": "Acme\tAB"}, "the name 'Acme\\tAB' contains a control character"),
    "IT contact name of 256 characters": (
        {"--it-contact-name": "I" * 256},
        "the IT contact's name is 256 characters long",
    ),
    "empty IT contact name": ({"--it-contact-name": "  "}, "the IT contact's name is empty"),
    "IT contact email longer than 254": (
        {"--it-contact-email": f"{'i' * 64}@{'d' * 60}.{'e' * 60}.{'f' * 60}.{'g' * 60}.example"},
        "longer than 254 characters",
    ),
    "domain of 100,000 characters": ({"--domain": ["d" * 100_000]}, "invalid domain 'ddd"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT), ids=str)
def test_bad_input_is_one_line_exit_2_and_creates_nothing(cli: Cli, entra_app, nothing_created, case):
    app: EntraApp = entra_app()
    overrides, message = BAD_INPUT[case]
    overrides = dict(overrides)
    account = overrides.pop("account", app.account)
    args = app.create_args(**overrides)
    args[2] = account
    result = cli.run(*args, expect=2)
    assert message in result.stderr
    assert len(result.stderr) < 500, "the error repeats the bad value"
    assert result.stdout == ""
    nothing_created(app.account)


def test_free_text_at_keycloaks_limits_is_stored_whole(cli: Cli, entra_app, api):
    """The limits are Keycloak's own: 255 for a name (organization NAME, IdP display
    name) and an attribute value, 254 for an email; text at the limit goes in whole."""
    app: EntraApp = entra_app()
    name = f"{app.account} " + "N" * (255 - len(app.account) - 2) + "\N{LATIN SMALL LETTER A WITH RING ABOVE}"
    contact = "I" * 255
    email = f"{'i' * 63}@{'d' * 60}.{'e' * 60}.{'f' * 60}.example"  # 254 characters
    assert len(name) == 255 and len(email) == 254
    cli.run(*app.create_args(**{"--name": name, "--it-contact-name": contact, "--it-contact-email": email}))
    org = api.organization_by_alias(app.account)
    assert org["name"] == name
    assert org["attributes"]["apsis.itContactName"] == [contact]
    assert org["attributes"]["apsis.itContactEmail"] == [email]
    assert api.identity_provider(f"entra-{app.account}")["displayName"] == name


def _secret_case(app: EntraApp, case: str, emulator, tmp_path: Path) -> tuple[dict, dict, str | None, str]:
    """(option overrides, env, stdin, expected message) for a secret or Entra refusal."""
    secret_file = tmp_path / f"{case}.secret"
    if case == "secret is the secret id":
        secret_file.write_text(str(uuid.uuid4()))
        return (
            {"--client-secret-file": str(secret_file)},
            {},
            None,
            "that is a secret ID (a GUID), not the secret value",
        )
    if case == "empty secret file":
        secret_file.write_text("\n")
        return {"--client-secret-file": str(secret_file)}, {}, None, "the client secret is empty"
    if case == "missing secret file":
        return {"--client-secret-file": str(tmp_path / "nope")}, {}, None, "cannot read the client secret file"
    if case == "no secret at the prompt":
        return {"--client-secret-file": None}, {}, "", "no client secret given"
    if case == "named variable unset":
        return (
            {"--client-secret-file": None, "--client-secret-env": "NOT_SET_ANYWHERE"},
            {},
            None,
            "environment variable NOT_SET_ANYWHERE is not set",
        )
    if case == "wrong secret (AADSTS7000215)":
        wrong = "Wr0ng~" + uuid.uuid4().hex
        KNOWN_SECRETS.add(wrong)
        secret_file.write_text(wrong)
        return {"--client-secret-file": str(secret_file)}, {}, None, "Entra rejected the client secret (AADSTS7000215"
    if case == "expired secret (AADSTS7000222)":
        emulator.expire_secret(app.tenant_id, app.app_id, app.secret[:3])
        return {}, {}, None, "the client secret has expired in Entra (AADSTS7000222)"
    if case == "unknown application (AADSTS700016)":
        other = str(uuid.uuid4())
        return {"--client-id": other}, {}, None, f"Entra has no application {other} in tenant"
    if case == "unknown tenant guid (AADSTS90002)":
        other = str(uuid.uuid4())
        return {"--tenant-id": other}, {}, None, f"Entra has no tenant {other} (AADSTS90002)"
    if case == "unknown tenant domain (AADSTS90002)":
        return {"--tenant-id": "nobody-here.example"}, {}, None, "Entra has no tenant nobody-here.example (AADSTS90002)"
    raise AssertionError(case)


SECRET_CASES = [
    "secret is the secret id",
    "empty secret file",
    "missing secret file",
    "no secret at the prompt",
    "named variable unset",
    "wrong secret (AADSTS7000215)",
    "expired secret (AADSTS7000222)",
    "unknown application (AADSTS700016)",
    "unknown tenant guid (AADSTS90002)",
    "unknown tenant domain (AADSTS90002)",
]


@pytest.mark.parametrize("case", SECRET_CASES)
def test_secret_and_entra_refusals_are_one_line_exit_2_and_create_nothing(
    cli: Cli, entra_app, emulator, nothing_created, tmp_path, case
):
    app: EntraApp = entra_app()
    overrides, env, stdin, message = _secret_case(app, case, emulator, tmp_path)
    result = cli.run(*app.create_args(**overrides), env=env, input=stdin, expect=2)
    assert message in result.stderr
    nothing_created(app.account)


def _state(api: KeycloakRepository, account: str) -> tuple[Any, Any, Any]:
    alias = f"entra-{account}"
    return api.organization_by_alias(account), api.identity_provider(alias), api.idp_mappers(alias)


def test_an_identical_create_run_twice_changes_nothing_the_second_time(cli: Cli, entra_app, api, emulator):
    app: EntraApp = entra_app()
    cli.run(*app.create_args())
    before = _state(api, app.account)
    token_path = f"/{app.tenant_id}/oauth2/v2.0/token"
    proofs = sum(r["path"] == token_path for r in emulator.requests_log)
    assert proofs >= 1

    again = cli.run(*app.create_args())
    assert f"account {app.account}: nothing to change" in again.stdout and "No changes." in again.stdout
    assert "Admin-consent link" in again.stdout  # what to send the customer, again
    assert _state(api, app.account) == before
    assert sum(r["path"] == token_path for r in emulator.requests_log) == proofs  # nothing written, nothing to prove

    # The stage is not create's to choose: a live account stays live.
    cli.run("account", "go-live", app.account)
    doc = cli.json(*app.create_args())
    assert doc["plan"]["changes"] == [] and doc["applied"] is True
    assert api.organization_by_alias(app.account)["attributes"]["apsis.stage"] == ["live"]


def test_an_identical_create_repairs_what_the_templates_own(cli: Cli, entra_app, api):
    app: EntraApp = entra_app()
    cli.run(*app.create_args())
    alias = f"entra-{app.account}"
    api.delete_idp_mapper(alias, api.idp_mappers(alias)[0]["id"])
    doc = cli.json(*app.create_args())
    assert [(c["action"], c["kind"]) for c in doc["plan"]["changes"]] == [("update", "idp-mappers")]
    assert [m["identityProviderMapper"] for m in api.idp_mappers(alias)] == ["apsis-entra-oid-mapper"]


DIFFERENT = {
    "name": (
        {"--name": "Another name"},
        "name: 'Account {account}' in Keycloak, 'Another name' asked "
        "(change with `apsis-sso apply -f FILE`, starting from `apsis-sso export`)",
    ),
    "test users": (
        {"--test-user": ["bo@{domain}"]},
        "test users: [ann@{domain}] in Keycloak, [bo@{domain}] asked (change with "
        "`apsis-sso account pilot add|remove {account}`)",
    ),
    "expiry": ({"--secret-expires": "{expires}"}, "secret expiry: "),
    "secret": ({}, "client secret: another one asked (change with `apsis-sso account rotate-secret {account}`)"),
    "domains": (
        {"--domain": ["{domain}", "eu.{domain}"]},
        "domains: [{domain}] in Keycloak, [eu.{domain}, {domain}] asked",
    ),
    "it contact": (
        {"--it-contact-email": "other@{domain}"},
        "IT contact: 'Ivy IT <it@{domain}>' in Keycloak, 'Ivy IT <other@{domain}>' asked",
    ),
}


@pytest.mark.parametrize("case", sorted(DIFFERENT))
def test_a_create_that_differs_from_the_account_says_what_and_which_command_changes_it(
    cli: Cli, entra_app, api, case, tmp_path
):
    app: EntraApp = entra_app()
    cli.run(*app.create_args())
    before = _state(api, app.account)
    overrides, message = DIFFERENT[case]
    fill = {"account": app.account, "domain": app.domain, "expires": _days(200)}
    overrides = {
        k: [i.format(**fill) for i in v] if isinstance(v, list) else v.format(**fill) for k, v in overrides.items()
    }
    if case == "secret":
        other = tmp_path / "other.secret"
        other.write_text(app.new_secret())
        overrides = {"--client-secret-file": str(other)}
    result = cli.run(*app.create_args(**overrides), expect=2)
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"error: account '{app.account}' already exists with other settings: ")
    assert message.format(**fill) in last and last.endswith("; nothing was changed")
    if case == "expiry":
        assert "rotate-secret" in last
    assert _state(api, app.account) == before


def test_a_domain_of_another_account_is_refused(cli: Cli, entra_app, nothing_created):
    first: EntraApp = entra_app()
    cli.run(*first.create_args())
    second: EntraApp = entra_app()
    result = cli.run(*second.create_args(**{"--domain": [second.domain, first.domain]}), expect=2)
    assert f"domain {first.domain} belongs to account '{first.account}'" in result.stderr
    nothing_created(second.account)


def test_an_organization_not_managed_by_the_tool_is_left_alone(cli: Cli, entra_app, api, nothing_created):
    app: EntraApp = entra_app()
    org_id = api.create_organization(
        {"name": f"hand-made {app.account}", "alias": app.account, "domains": [{"name": f"hand.{app.domain}"}]}
    )
    try:
        result = cli.run(*app.create_args(), expect=2)
        assert f"organization '{app.account}' exists but is not managed by apsis-sso" in result.stderr
        assert api.identity_provider(f"entra-{app.account}") is None
        assert api.organization(str(org_id))["name"] == f"hand-made {app.account}"
        # and its domain counts as taken
        other: EntraApp = entra_app()
        result = cli.run(*other.create_args(**{"--domain": [f"hand.{app.domain}"]}), expect=2)
        assert f"domain hand.{app.domain} belongs to account '{app.account}'" in result.stderr
        nothing_created(other.account)
    finally:
        api.delete_organization(str(org_id))


def test_a_missing_template_placeholder_is_refused_before_anything_is_written(
    cli: Cli, entra_app, nothing_created, tmp_path, settings
):
    templates = tmp_path / "templates"
    shutil.copytree(settings.templates_dir, templates)
    idp = json.loads((templates / "entra-idp.json").read_text())
    idp["config"]["prompt"] = "{{ login_prompt }}"
    (templates / "entra-idp.json").write_text(json.dumps(idp))
    app: EntraApp = entra_app()
    result = cli.run(*app.create_args(), env={"APSIS_SSO_TEMPLATES_DIR": str(templates)}, expect=2)
    assert (
        result.stderr.splitlines()[-1] == "error: entra-idp.json uses placeholder {{ login_prompt }} which has no value"
    )
    nothing_created(app.account)


def test_keycloak_unreachable_or_wrong_credentials_during_create(cli: Cli, entra_app, nothing_created):
    app: EntraApp = entra_app()
    result = cli.run(*app.create_args(), env={"APSIS_SSO_KEYCLOAK_URL": f"http://127.0.0.1:{free_port()}"}, expect=75)
    assert "is unreachable" in result.stderr
    result = cli.run(*app.create_args(), env={"APSIS_SSO_KEYCLOAK_CLIENT_SECRET": "wrong-one"}, expect=2)
    assert "rejected the credentials" in result.stderr
    nothing_created(app.account)


def test_a_create_interrupted_midway_is_completed_by_running_it_again(cli: Cli, entra_app, api, monkeypatch):
    app: EntraApp = entra_app()

    def fail(self, org_id, alias):
        raise KeycloakError("injected failure: Keycloak went away")

    # The last step (linking the IdP to the organization) fails after three have been applied.
    monkeypatch.setattr(KeycloakRepository, "link_organization_idp", fail)
    result = cli.run(*app.create_args(), expect=1)
    assert (
        "stopped after 3 of 4 changes, at create organization-link "
        f"{app.account} <- entra-{app.account}: injected failure"
    ) in result.stderr
    assert "run the same command again to complete it" in result.stderr
    monkeypatch.undo()

    assert api.organization_by_alias(app.account) is not None
    idp = api.identity_provider(f"entra-{app.account}")
    assert idp is not None and not idp.get("organizationId")
    shown = cli.json("account", "show", app.account)
    assert shown["complete"] is False
    assert "only partly created" in shown["warnings"][0]

    doc = cli.json(*app.create_args())
    assert [(c["action"], c["kind"]) for c in doc["plan"]["changes"]] == [("create", "organization-link")]
    assert cli.json("account", "show", app.account)["complete"] is True
    # Complete now: a third run changes nothing.
    assert cli.json(*app.create_args())["plan"]["changes"] == []


def test_a_create_that_only_made_the_organization_is_completed_by_a_rerun(cli: Cli, entra_app, api, settings):
    app: EntraApp = entra_app()
    desired = Account.build(
        id=app.account,
        name=f"Account {app.account}",
        tenant_id=app.tenant_id,
        client_id=app.app_id,
        domains=[app.domain],
        secret_expires=_days(365),
        it_contact_name="Ivy IT",
        it_contact_email=f"it@{app.domain}",
        pilot=[f"ann@{app.domain}"],
        client_secret=app.secret,
    )
    plan = plan_account(settings, desired, Snapshot.for_account(api, app.account, desired.domains))
    plan.changes[0].apply(api)  # the organization only, as if the process died right after
    assert api.identity_provider(f"entra-{app.account}") is None

    doc = cli.json(*app.create_args())
    assert [(c["action"], c["kind"]) for c in doc["plan"]["changes"]] == [
        ("update", "organization"),  # the domain's proof, recorded by this run (the first asked Entra nothing)
        ("create", "identity-provider"),
        ("create", "idp-mappers"),
        ("create", "organization-link"),
    ]
    assert cli.json("account", "show", app.account)["complete"] is True


def test_create_warns_about_test_users_that_will_not_work(cli: Cli, entra_app, api):
    # (A domain verified in another tenant is no warning but a refusal: tests/test_domain_ownership.py.)
    app: EntraApp = entra_app()
    member_email, outsider, stranger = f"ann@{app.domain}", f"bo@{app.domain}", "cy@elsewhere.example"
    create_apsis_user(api, member_email)
    create_apsis_user(api, outsider)
    args = app.create_args(**{"--test-user": [member_email, outsider, stranger]})
    doc = cli.json(*args)
    warnings = doc["warnings"]
    assert (
        f"test user {member_email} is not a member of account {app.account}; add with `account members add`" in warnings
    )
    assert any(w.startswith(f"test user {stranger} is outside the account's domains") for w in warnings), warnings
    assert not any(w.startswith(f"domain {app.domain} ") for w in warnings), warnings


def test_the_name_of_another_account_is_refused(cli: Cli, entra_app, nothing_created):
    first: EntraApp = entra_app()
    cli.run(*first.create_args(**{"--name": f"Shared name {first.account}"}))
    second: EntraApp = entra_app()
    result = cli.run(*second.create_args(**{"--name": f"Shared name {first.account}"}), expect=2)
    assert f"the name 'Shared name {first.account}' is taken by account '{first.account}'" in result.stderr
    nothing_created(second.account)
