"""`apsis-sso account show|list|go-live|back-to-pilot|disable|delete|rotate-secret` against
the real Keycloak and the emulator; logins are real logins through Keycloak."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from apsis_core.account import Account
from apsis_core.keycloak import KeycloakRepository
from devenv.accounts import PASSWORD, now_ms, refusals, user_count
from devenv.login_driver import Browser
from provisioning import onboarding
from tests.cli_fixtures import KNOWN_SECRETS, Cli, EntraApp

if TYPE_CHECKING:
    from devenv.accounts import OnboardedAccount

STATUS_KEYS = {
    "id",
    "name",
    "stage",
    "sso_enabled",
    "complete",
    "provider",
    "tenant_id",
    "client_id",
    "domains",
    "pilot",
    "secret_expires",
    "days_until_secret_expires",
    "secret_hint",
    "credential",
    "it_contact",
    "members",
    "linked_users",
    "last_sso_login",
    "quarantined",
    "redirects_by_domain",
    "domain_ownership",
}


@pytest.fixture
def browser(settings, emulator, realm):
    return lambda: Browser(settings.keycloak_url, realm, ca_bundle=str(emulator.ca_bundle))


def _sso(browser, email: str, acct: OnboardedAccount):
    return browser().sso_login(email, PASSWORD, acct.alias)


# -- show / list ---------------------------------------------------------------------------


def test_show_reports_counts_expiry_last_login_and_links(cli: Cli, onboarded, browser):
    acct = onboarded(secret_days=20)
    email, user_id = acct.person("ann")
    acct.apsis_user(f"bo@{acct.domain}")
    before = cli.json("account", "show", acct.id)
    assert before["last_sso_login"] is None and before["linked_users"] == 0

    started = datetime.now(UTC) - timedelta(seconds=5)
    assert _sso(browser, email, acct).ok
    doc = cli.json("account", "show", acct.id)
    assert set(doc) == STATUS_KEYS | {"links", "warnings", "linked"}
    assert doc["stage"] == "pilot" and doc["sso_enabled"] is True and doc["complete"] is True
    assert doc["members"] == 2 and doc["linked_users"] == 1
    assert doc["pilot"] == [email]
    assert doc["days_until_secret_expires"] == 20
    assert doc["secret_hint"] == acct.secret[:3]
    assert datetime.fromisoformat(doc["last_sso_login"]) >= started
    assert doc["links"]["redirect_uri"].endswith(f"/broker/{acct.alias}/endpoint")
    assert any("expires in 20 days" in w for w in doc["warnings"])

    table = cli.run("account", "show", acct.id).stdout
    assert "linked users" in table and "in 20 days" in table and acct.tenant_id in table
    assert "Admin-consent link" in table


def test_show_lists_who_is_linked_with_their_last_sso_login(cli: Cli, onboarded, browser):
    acct = onboarded(stage="live")
    ann, ann_id = acct.person("ann", pilot=False)
    bo, bo_id = acct.person("bo", pilot=False)
    acct.apsis_user(f"cy@{acct.domain}")  # a member who never signed in with SSO: not linked
    assert _sso(browser, ann, acct).ok
    assert _sso(browser, bo, acct).ok

    doc = cli.json("account", "show", acct.id)
    assert doc["linked_users"] == 2
    assert [(u["id"], u["email"], u["enabled"]) for u in doc["linked"]] == [(bo_id, bo, True), (ann_id, ann, True)]
    bo_login, ann_login = (datetime.fromisoformat(u["last_sso_login"]) for u in doc["linked"])
    assert bo_login >= ann_login and datetime.fromisoformat(doc["last_sso_login"]) == bo_login

    assert _sso(browser, ann, acct).ok  # ann is now the most recent
    assert [u["email"] for u in cli.json("account", "show", acct.id)["linked"]] == [ann, bo]
    table = cli.run("account", "show", acct.id).stdout
    rows = [line for line in table.splitlines() if line.lstrip().startswith((ann, bo))]
    assert len(rows) == 2 and rows[0].lstrip().startswith(ann) and "UTC" in rows[0]

    limited = cli.run("account", "show", acct.id, "--linked-limit", "1")
    assert ann in limited.stdout and bo not in limited.stdout.split("Links:")[-1]
    assert "... and 1 more linked user(s) (--linked-limit 0 lists all)" in limited.stderr
    assert len(cli.json("account", "show", acct.id, "--linked-limit", "1")["linked"]) == 1

    blind = cli.json("account", "show", acct.id, "--events-scan", "0")
    assert {u["email"] for u in blind["linked"]} == {ann, bo} and all(
        u["last_sso_login"] is None for u in blind["linked"]
    )


def test_list_is_one_row_per_account_with_stage_counts_and_filters(cli: Cli, onboarded, browser):
    pilot_acct = onboarded()
    live_acct = onboarded(stage="live")
    email, _ = live_acct.person("cy", pilot=False)
    assert _sso(browser, email, live_acct).ok

    doc = cli.json("account", "list")
    rows = {r["id"]: r for r in doc["accounts"]}
    assert set(rows[pilot_acct.id]) == STATUS_KEYS
    assert rows[pilot_acct.id]["stage"] == "pilot" and rows[live_acct.id]["stage"] == "live"
    assert rows[live_acct.id]["members"] == 1 and rows[live_acct.id]["linked_users"] == 1
    assert rows[live_acct.id]["last_sso_login"] is not None
    assert rows[pilot_acct.id]["last_sso_login"] is None

    live_only = {r["id"] for r in cli.json("account", "list", "--stage", "live")["accounts"]}
    assert live_acct.id in live_only and pilot_acct.id not in live_only

    lean = {r["id"]: r for r in cli.json("account", "list", "--no-counts", "--events-scan", "0")["accounts"]}
    assert lean[live_acct.id]["members"] is None and lean[live_acct.id]["last_sso_login"] is None

    table = cli.run("account", "list").stdout
    line = next(row for row in table.splitlines() if row.startswith(live_acct.id))
    assert "live" in line and "in 365 days" in line


@pytest.mark.parametrize(
    "command",
    [
        "account show {id}",
        "account go-live {id}",
        "account back-to-pilot {id}",
        "account disable {id} --yes",
        "account delete {id} --yes",
        "account members list {id}",
        "account members add {id} x@y.example",
        "account members remove {id} x@y.example",
        "account pilot add {id} x@y.example",
        "account pilot remove {id} x@y.example",
    ],
)
def test_an_unknown_account_is_one_line_exit_2(cli: Cli, unique, command):
    missing = f"{unique}-missing"
    result = cli.run(*command.format(id=missing).split(), expect=2)
    assert result.stderr.splitlines()[-1] == f"error: no account '{missing}'"


# -- stages ---------------------------------------------------------------------------------


def test_go_live_then_back_to_pilot_take_effect_at_the_next_login(cli: Cli, onboarded, api, browser):
    acct = onboarded()
    email, user_id = acct.person("dee", pilot=False)

    dry = cli.run("account", "go-live", acct.id, "--dry-run")
    assert "(dry run, nothing changed)" in dry.stdout
    assert 'attributes.apsis.stage: ["pilot"] -> ["live"]' in dry.stdout
    assert api.organization_by_alias(acct.id)["attributes"]["apsis.stage"] == ["pilot"]

    since = now_ms()
    assert not _sso(browser, email, acct).ok
    assert "not_pilot" in [e["details"].get("reason") for e in refusals(api, since)]

    cli.run("account", "go-live", acct.id)
    assert api.organization_by_alias(acct.id)["attributes"]["apsis.stage"] == ["live"]
    assert _sso(browser, email, acct).ok
    again = cli.run("account", "go-live", acct.id)
    assert f"account {acct.id}: nothing to change" in again.stdout and "No changes." in again.stdout

    cli.run("account", "back-to-pilot", acct.id)
    since = now_ms()
    assert not _sso(browser, email, acct).ok
    assert "not_pilot" in [e["details"].get("reason") for e in refusals(api, since)]


def test_go_live_without_members_warns(cli: Cli, onboarded):
    acct = onboarded()
    result = cli.run("account", "go-live", acct.id)
    assert f"warning: account {acct.id} has no members: nobody can sign in with SSO yet" in result.stderr


def test_disable_turns_sso_off_but_passwords_keep_working(cli: Cli, onboarded, api, browser):
    acct = onboarded(stage="live")
    email, user_id = acct.person("eve")
    assert _sso(browser, email, acct).ok

    declined = cli.run("account", "disable", acct.id, input="n\n", expect=1)
    assert "aborted: nothing was changed" in declined.stderr
    assert api.identity_provider(acct.alias)["enabled"] is True
    cli.run("account", "disable", acct.id, expect=1)  # no answer at all (closed stdin) is a no

    cli.run("account", "disable", acct.id, "--yes")
    assert api.identity_provider(acct.alias)["enabled"] is False
    assert api.organization_by_alias(acct.id)["attributes"]["apsis.stage"] == ["disabled"]
    assert not _sso(browser, email, acct).ok
    password = browser().password_login(email, PASSWORD)
    assert password.ok and password.id_claims["sub"] == user_id
    shown = cli.json("account", "show", acct.id)
    assert shown["stage"] == "disabled" and shown["sso_enabled"] is False and shown["members"] == 1

    cli.run("account", "go-live", acct.id)
    assert api.identity_provider(acct.alias)["enabled"] is True
    assert _sso(browser, email, acct).ok


def test_delete_removes_sso_and_keeps_every_user(cli: Cli, onboarded, api, browser):
    acct = onboarded(stage="live")
    email, user_id = acct.person("fay")
    assert _sso(browser, email, acct).ok
    users_before = user_count(api)

    dry = cli.run("account", "delete", acct.id, "--dry-run")
    assert f"- delete identity-provider {acct.alias}" in dry.stdout
    assert "members are kept as realm users" in dry.stdout
    cli.run("account", "delete", acct.id, input="no\n", expect=1)
    assert api.organization_by_alias(acct.id) is not None

    doc = cli.json("account", "delete", acct.id, "--yes")
    assert doc["applied"] is True and doc["plan"]["summary"] == {"create": 0, "update": 0, "delete": 2}
    assert api.organization_by_alias(acct.id) is None and api.identity_provider(acct.alias) is None
    assert user_count(api) == users_before
    assert api.federated_identities(user_id) == []
    assert browser().password_login(email, PASSWORD).ok
    assert cli.run("account", "delete", acct.id, "--yes", expect=2).stderr.endswith(f"error: no account '{acct.id}'\n")


def test_delete_removes_the_daemons_copy_of_the_secret(cli: Cli, entra_app, api, tmp_path):
    app: EntraApp = entra_app()
    daemon_dir = tmp_path / "daemon"
    env = {"APSIS_SSO_SYNC_SECRETS_DIR": str(daemon_dir)}
    cli.run(*app.create_args(), env=env)
    stored = daemon_dir / app.account
    assert stored.read_text().strip() == app.secret

    dry = cli.json("account", "delete", app.account, "--dry-run", env=env)
    assert ("delete", "daemon-secret", app.account) in [
        (c["action"], c["kind"], c["name"]) for c in dry["plan"]["changes"]
    ]
    assert stored.exists()
    cli.run("account", "delete", app.account, "--yes", env=env)
    assert not stored.exists()
    assert api.organization_by_alias(app.account) is None

    # A copy left behind by an earlier delete (before this fix, or without the setting) goes too.
    stored.write_text(app.secret)
    doc = cli.json("account", "delete", app.account, "--yes", env=env)
    assert [(c["action"], c["kind"]) for c in doc["plan"]["changes"]] == [("delete", "daemon-secret")]
    assert not stored.exists()
    assert cli.run("account", "delete", app.account, "--yes", env=env, expect=2).stderr.endswith(
        f"error: no account '{app.account}'\n"
    )


def test_delete_with_confirmation_typed_yes(cli: Cli, onboarded, api):
    acct = onboarded()
    result = cli.run("account", "delete", acct.id, input="y\n")
    assert "Delete the SSO of account" in result.stderr
    assert api.organization_by_alias(acct.id) is None


def test_delete_leaves_resources_the_tool_does_not_own(cli: Cli, api, unique):
    alias = f"{unique}-hand"
    org_id = api.create_organization({"name": alias, "alias": alias, "domains": [{"name": f"{alias}.example"}]})
    try:
        result = cli.run("account", "delete", alias, "--yes", expect=2)
        assert f"organization '{alias}' is not managed by apsis-sso; leaving it alone" in result.stderr
        assert api.organization(str(org_id)) is not None
    finally:
        api.delete_organization(str(org_id))
    api.create_identity_provider(
        {
            "alias": f"entra-{alias}",
            "providerId": "oidc",
            "config": {
                "clientId": "x",
                "authorizationUrl": "https://x.example/a",
                "tokenUrl": "https://x.example/t",
                "clientAuthMethod": "client_secret_post",
                "clientSecret": "x",
            },
        }
    )
    try:
        result = cli.run("account", "delete", alias, "--yes", expect=2)
        assert f"identity provider 'entra-{alias}' is not managed by apsis-sso" in result.stderr
        assert api.identity_provider(f"entra-{alias}") is not None
    finally:
        api.delete_identity_provider(f"entra-{alias}")


# -- rotate-secret --------------------------------------------------------------------------


def _in(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def test_rotate_secret_proves_then_swaps_and_logins_keep_working(cli: Cli, onboarded, api, emulator, browser, tmp_path):
    acct = onboarded(stage="live")
    email, user_id = acct.person("gus")
    assert _sso(browser, email, acct).ok
    new = emulator.add_secret(acct.tenant_id, acct.app_id, datetime.now(UTC) + timedelta(days=700))
    KNOWN_SECRETS.add(new)
    secret_file = tmp_path / "new.secret"
    secret_file.write_text(new)

    doc = cli.json(
        "account", "rotate-secret", acct.id, "--secret-expires", _in(700), "--client-secret-file", str(secret_file)
    )
    fields = {f["path"]: f for c in doc["plan"]["changes"] for f in c.get("fields", [])}
    assert fields["config.clientSecret"] == {"path": "config.clientSecret", "before": "(set)", "after": "(changed)"}
    assert fields["attributes.apsis.secretExpires"]["after"] == [_in(700)]
    org = api.organization_by_alias(acct.id)
    assert org["attributes"]["apsis.secretHint"] == [new[:3]]
    assert org["attributes"]["apsis.secretExpires"] == [_in(700)]

    # Entra drops the old secret: Keycloak must already be using the new one.
    emulator.remove_secret(acct.tenant_id, acct.app_id, acct.secret[:3])
    result = _sso(browser, email, acct)
    assert result.ok and result.id_claims["sub"] == user_id

    again = cli.run(
        "account", "rotate-secret", acct.id, "--secret-expires", _in(700), "--client-secret-file", str(secret_file)
    )
    assert "nothing to change" in again.stdout


def _onboard_unchecked(api: KeycloakRepository, settings, unique: str, *, tenant: str, client: str) -> str:
    """An account whose app registration or tenant is gone from Entra (onboarded without
    the secret check, as a bulk import would)."""
    account_id = f"{unique}gone"
    secret = "Old~" + uuid.uuid4().hex
    KNOWN_SECRETS.add(secret)
    onboarding.create(
        api,
        settings,
        Account.build(
            id=account_id,
            name=f"Gone {account_id}",
            tenant_id=tenant,
            client_id=client,
            domains=[f"{account_id}.example"],
            secret_expires=_in(100),
            it_contact_name="Ivy",
            it_contact_email=f"it@{account_id}.example",
            client_secret=secret,
        ),
        check_secret=False,
        allow_unproven="a bulk import of an account whose tenant is gone",
    )
    return account_id


@pytest.mark.parametrize("case", ["7000215", "7000222", "700016", "90002"])
def test_rotate_secret_explains_entra_refusals_and_changes_nothing(
    cli: Cli, onboarded, api, settings, emulator, unique, tmp_path, case
):
    secret_file = tmp_path / "new.secret"
    if case in ("7000215", "7000222"):
        acct = onboarded()
        account_id, tenant_id, app_id = acct.id, acct.tenant_id, acct.app_id
        if case == "7000215":
            candidate = "Typo~" + uuid.uuid4().hex
        else:
            candidate = emulator.add_secret(tenant_id, app_id, datetime.now(UTC) + timedelta(days=30))
            emulator.expire_secret(tenant_id, app_id, candidate[:3])
    else:
        acct = onboarded()
        tenant = str(uuid.uuid4()) if case == "90002" else acct.tenant_id
        client = str(uuid.uuid4()) if case == "700016" else acct.app_id
        account_id = _onboard_unchecked(api, settings, unique, tenant=tenant, client=client)
        candidate = emulator.add_secret(acct.tenant_id, acct.app_id, datetime.now(UTC) + timedelta(days=30))
    KNOWN_SECRETS.add(candidate)
    secret_file.write_text(candidate)
    before = api.organization_by_alias(account_id)["attributes"]

    result = cli.run(
        "account",
        "rotate-secret",
        account_id,
        "--secret-expires",
        _in(300),
        "--client-secret-file",
        str(secret_file),
        expect=2,
    )
    expected = {
        "7000215": "Entra rejected the client secret (AADSTS7000215: invalid secret)",
        "7000222": "the client secret has expired in Entra (AADSTS7000222)",
        "700016": "(AADSTS700016); check the Application (client) ID",
        "90002": "(AADSTS90002); check the Directory (tenant) ID",
    }[case]
    assert expected in result.stderr
    assert api.organization_by_alias(account_id)["attributes"] == before


def test_rotate_secret_bad_input(cli: Cli, onboarded, tmp_path):
    acct = onboarded()
    secret_file = tmp_path / "s"
    secret_file.write_text(acct.secret)
    base = ["account", "rotate-secret", acct.id, "--client-secret-file", str(secret_file)]
    assert "is not in the future" in cli.run(*base, "--secret-expires", "2021-06-01", expect=2).stderr
    assert "expected YYYY-MM-DD" in cli.run(*base, "--secret-expires", "next year", expect=2).stderr
    assert (
        "no account"
        in cli.run(
            "account",
            "rotate-secret",
            f"{acct.id}x",
            "--secret-expires",
            _in(30),
            "--client-secret-file",
            str(secret_file),
            expect=2,
        ).stderr
    )
    both = cli.run(*base, "--secret-expires", _in(30), "--client-secret-env", "X", expect=2)
    assert "either by --client-secret-file or by --client-secret-env" in both.stderr


def test_rotate_secret_hands_the_new_secret_to_the_sync_daemon(cli: Cli, onboarded, api, emulator, tmp_path):
    """With APSIS_SSO_SYNC_SECRETS_DIR set, the daemon's copy is replaced in the same command,
    so a rotation cannot leave apsis-sync holding the old secret."""
    from pydantic import SecretStr

    from sync.secrets import DirectorySecrets

    acct = onboarded()
    secrets_dir = tmp_path / "daemon-secrets"
    DirectorySecrets(secrets_dir).put(acct.id, SecretStr(acct.secret))
    new = emulator.add_secret(acct.tenant_id, acct.app_id, datetime.now(UTC) + timedelta(days=400))
    KNOWN_SECRETS.add(new)
    secret_file = tmp_path / "new.secret"
    secret_file.write_text(new)

    dry = cli.json(
        "account",
        "rotate-secret",
        acct.id,
        "--secret-expires",
        _in(400),
        "--client-secret-file",
        str(secret_file),
        "--dry-run",
        env={"APSIS_SSO_SYNC_SECRETS_DIR": str(secrets_dir)},
    )
    assert dry["secret_file"] is None
    assert DirectorySecrets(secrets_dir).get(acct.id).get_secret_value() == acct.secret

    doc = cli.json(
        "account",
        "rotate-secret",
        acct.id,
        "--secret-expires",
        _in(400),
        "--client-secret-file",
        str(secret_file),
        env={"APSIS_SSO_SYNC_SECRETS_DIR": str(secrets_dir)},
    )
    stored = secrets_dir / acct.id
    assert doc["secret_file"] == str(stored)
    assert DirectorySecrets(secrets_dir).get(acct.id).get_secret_value() == new
    assert stored.stat().st_mode & 0o777 == 0o600
