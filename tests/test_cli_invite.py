"""`account create` without Entra details (stage awaiting-setup) and `account invite`, through
the CLI against the real Keycloak and a real SMTP server process: what is stored (hashes
only), what is mailed, what is refused before anything changes, and how every other command
treats an account that awaits setup."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from apsis_core import invitations
from apsis_core.contract import INVITATIONS_KEY
from apsis_core.keycloak import KeycloakRepository
from provisioning.onboarding import load
from sync.accounts import discover
from tests.cli_fixtures import Cli, EntraApp
from tests.sync_fixtures import SmtpServer, free_port

PORTAL = "https://sso-setup.apsis.example"


def mail_env(smtp: SmtpServer) -> dict[str, str | None]:
    return {"APSIS_SSO_PORTAL_URL": PORTAL, "APSIS_SYNC_SMTP_HOST": smtp.host, "APSIS_SYNC_SMTP_PORT": str(smtp.port)}


def create_waiting(cli: Cli, account: str, domain: str, *extra: str) -> dict:
    return cli.json(
        "account",
        "create",
        account,
        "--name",
        f"Account {account}",
        "--domain",
        domain,
        "--it-contact-name",
        "Ivy IT",
        "--it-contact-email",
        f"it@{domain}",
        *extra,
    )


def test_create_without_entra_details_makes_an_account_awaiting_setup(
    cli: Cli, entra_app, api: KeycloakRepository
) -> None:
    app: EntraApp = entra_app()
    done = create_waiting(cli, app.account, app.domain, "--test-user", f"ann@{app.domain}")
    assert [c["kind"] for c in done["plan"]["changes"]] == ["organization"]
    assert list(done["links"]) == ["redirect_uri"]
    record = load(api, app.account)
    assert (record.stage, record.complete, record.pilot) == ("awaiting-setup", True, (f"ann@{app.domain}",))
    assert api.identity_provider(f"entra-{app.account}") is None
    again = create_waiting(cli, app.account, app.domain, "--test-user", f"ann@{app.domain}")
    assert again["plan"]["changes"] == []  # running it twice changes nothing

    shown = cli.json("account", "show", app.account)
    assert (shown["stage"], shown["secret_expires"], shown["days_until_secret_expires"]) == (
        "awaiting-setup",
        None,
        None,
    )
    assert any(f"apsis-sso account invite {app.account}" in w for w in shown["warnings"])
    table = cli.run("account", "list", "--stage", "awaiting-setup", "--no-counts").stdout
    assert app.account in table and "awaiting setup" in table
    assert app.account not in [a.id for a in discover(api)]  # the daemon skips it

    for command in (["go-live"], ["back-to-pilot"], ["disable", "--yes"]):
        refused = cli.run("account", *command, app.account, expect=2)
        assert "awaits setup" in refused.stderr and "account invite" in refused.stderr
    refused = cli.run(
        "account",
        "rotate-secret",
        app.account,
        "--secret-expires",
        "2031-01-01",
        "--client-secret-file",
        str(app.secret_file),
        expect=2,
    )
    assert "awaits setup" in refused.stderr
    assert load(api, app.account).stage == "awaiting-setup"

    half = cli.run(
        "account",
        "create",
        app.account,
        "--name",
        f"Account {app.account}",
        "--domain",
        app.domain,
        "--it-contact-name",
        "Ivy IT",
        "--it-contact-email",
        f"it@{app.domain}",
        "--tenant-id",
        app.tenant_id,
        expect=2,
    )
    assert "--client-id, --secret-expires missing" in half.stderr


def test_create_with_the_entra_details_sets_up_an_account_awaiting_setup(cli: Cli, entra_app, api) -> None:
    app: EntraApp = entra_app()
    create_waiting(cli, app.account, app.domain)
    other_name = cli.run(*app.create_args(**{"--name": "Another name"}), expect=2)
    assert "awaits setup with other settings: name" in other_name.stderr
    set_up = cli.json(*app.create_args())
    assert set_up["applied"] and load(api, app.account).stage == "pilot"
    # In pilot a setup link still makes sense (the test results and "ready for everyone"); live, not.
    cli.run("account", "invite", app.account, "--intent", "setup", "--no-mail", env={"APSIS_SSO_PORTAL_URL": PORTAL})
    cli.run("account", "go-live", app.account)
    live = cli.run(
        "account",
        "invite",
        app.account,
        "--intent",
        "setup",
        "--no-mail",
        expect=2,
        env={"APSIS_SSO_PORTAL_URL": PORTAL},
    )
    assert "set up already (stage live)" in live.stderr and "--intent renew" in live.stderr


def test_invite_mails_the_it_contact_a_link_whose_token_is_stored_only_as_a_hash(
    cli: Cli, entra_app, api: KeycloakRepository, smtp_server: SmtpServer
) -> None:
    app: EntraApp = entra_app()
    create_waiting(cli, app.account, app.domain)
    result = cli.json("account", "invite", app.account, "--valid", "36h", env=mail_env(smtp_server))
    assert result["intent"] == "setup" and result["mailed_to"] == f"it@{app.domain}"
    assert result["id"] == result["account"] == app.account  # "id", as in every output; "account" kept
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result["expires"])  # one format for moments
    token = result["url"].rsplit("/", 1)[1]
    assert result["url"] == f"{PORTAL}/i/{app.account}/{token}" and invitations.well_formed(token)
    (mail,) = smtp_server.messages(to=f"it@{app.domain}")
    assert result["url"] in mail.get_content() and mail["X-Apsis-Invitation"] == "setup"
    assert "Set up single sign-on" in mail["Subject"] and "never send it by mail" in mail.get_content()

    record = load(api, app.account)
    stored = record.attributes[INVITATIONS_KEY]
    assert token not in json.dumps(record.attributes) and invitations.digest(token) in stored[0]
    (held,) = invitations.of_record(record)
    assert held.expires - held.issued == timedelta(hours=36)

    newer = cli.json("account", "invite", app.account, "--no-mail", env={"APSIS_SSO_PORTAL_URL": PORTAL})
    assert newer["mailed_to"] is None and len(smtp_server.messages(to=f"it@{app.domain}")) == 1
    states = {i.id: i.state for i in invitations.of_record(load(api, app.account))}
    assert states == {held.id: "superseded", newer["invitation"]: "open"}

    revoked = cli.json("account", "invite", app.account, "--revoke")
    assert [r["invitation"] for r in revoked["revoked"]] == [newer["invitation"]]
    assert revoked["id"] == app.account and revoked["revoked"][0]["expires"] == newer["expires"]
    assert cli.run("account", "invite", app.account, "--revoke").stderr.startswith(
        f"account {app.account} has no open link"
    )


def test_invite_refuses_before_storing_anything(cli: Cli, entra_app, api, smtp_server: SmtpServer) -> None:
    app: EntraApp = entra_app()
    create_waiting(cli, app.account, app.domain)
    no_portal = cli.run("account", "invite", app.account, "--no-mail", expect=2)
    assert "APSIS_SSO_PORTAL_URL is not set" in no_portal.stderr
    no_smtp = cli.run("account", "invite", app.account, expect=2, env={"APSIS_SSO_PORTAL_URL": PORTAL})
    assert "APSIS_SYNC_SMTP_HOST is not set" in no_smtp.stderr and "--no-mail" in no_smtp.stderr
    renew = cli.run(
        "account",
        "invite",
        app.account,
        "--intent",
        "renew",
        "--no-mail",
        expect=2,
        env={"APSIS_SSO_PORTAL_URL": PORTAL},
    )
    assert "no client secret to renew" in renew.stderr
    cli.run(
        "account", "invite", app.account, "--valid", "2y", "--no-mail", expect=2, env={"APSIS_SSO_PORTAL_URL": PORTAL}
    )
    cli.run("account", "invite", "no-such-account", "--no-mail", expect=2, env={"APSIS_SSO_PORTAL_URL": PORTAL})
    assert INVITATIONS_KEY not in load(api, app.account).attributes

    down = cli.run(
        "account",
        "invite",
        app.account,
        expect=75,
        env={**mail_env(smtp_server), "APSIS_SYNC_SMTP_PORT": str(free_port())},
    )
    assert "was not sent" in down.stderr and "withdrawn" in down.stderr and PORTAL not in down.stdout + down.stderr
    (withdrawn,) = invitations.of_record(load(api, app.account))
    assert withdrawn.state == "revoked"  # no link exists that nobody received


def test_export_and_plan_keep_an_account_awaiting_setup_as_it_is(cli: Cli, entra_app, isolated_realm, tmp_path) -> None:
    from tests.cli_fixtures import cli_environment

    own = Cli(env=cli_environment(isolated_realm), workdir=tmp_path / "own")
    app: EntraApp = entra_app()
    create_waiting(own, app.account, app.domain)
    exported = tmp_path / "accounts.yaml"
    own.run("export", "--out", str(exported))
    text = exported.read_text()
    entry = re.search(rf"- id: {app.account}\n(.*?)(?=\n- |\Z)", text, re.S)
    assert entry and "stage: awaiting-setup" in entry.group(0) and "tenant_id" not in entry.group(0)
    plan = own.json("plan", "-f", str(exported))
    assert plan["summary"] == {"create": 0, "update": 0, "delete": 0}
