"""The tenant–domain binding end to end (issue 19 item 1): the CLI refuses to link a domain the
tenant does not own (or records the operator's override), the extension trusts an email
without xms_edov only in a proven domain, and the daily re-check of apsis-sync flags a domain
that moved to another tenant — against the real Keycloak, the Entra emulator and a real SMTP
server process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import yaml

from apsis_core import contract, output
from apsis_core.account import Account
from apsis_core.domain_ownership import DomainProof
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from apsis_core.timestamps import to_text as iso
from devenv.accounts import PASSWORD, AccountFactory, OnboardedAccount, now_ms, user_count
from devenv.entra_emulator import EntraEmulator
from provisioning import onboarding
from provisioning.links import redirect_uri
from sync import status as sync_status
from sync.accounts import managed
from tests.cli_fixtures import KNOWN_SECRETS, Cli, EntraApp
from tests.login_checks import assert_refused, linked_idp_user_ids
from tests.sync_fixtures import PLATFORM_TEAM, SmtpServer, SyncHarness

REASON = "verified with Acme IT by phone, ticket 4711"


def attrs(api: KeycloakRepository, account: str) -> dict[str, list[str]]:
    org = api.organization_by_alias(account)
    assert org is not None
    return org["attributes"]


def age_records(api: KeycloakRepository, account: str, hours: int = 25) -> None:
    """Move every proof and alert of the account ``hours`` back in time: a day has passed."""
    org = api.organization_by_alias(account)
    assert org is not None
    then = iso(datetime.now(UTC) - timedelta(hours=hours))
    for key in (contract.DOMAIN_PROOFS_KEY, contract.DOMAIN_ALERTS_KEY):
        org["attributes"][key] = [
            " ".join([*v.split(" ")[:2], then, *v.split(" ")[3:]]) for v in org["attributes"].get(key, [])
        ]
    api.update_organization(org["id"], org)


# -- the CLI -------------------------------------------------------------------------------


def test_create_refuses_a_domain_verified_in_another_tenant_and_creates_nothing(
    cli: Cli, entra_app, emulator, nothing_created
):
    app: EntraApp = entra_app()
    victim = emulator.add_tenant([f"victim-{app.domain}"])
    args = app.create_args(**{"--domain": [app.domain, f"victim-{app.domain}"]})

    dry = cli.run(*args, "--dry-run", expect=2)  # a dry run shows the refusal too
    refused = cli.run(*args, expect=2)
    for result in (dry, refused):
        assert (
            f"victim-{app.domain} is verified in another Entra tenant ({victim.tenant_id}), not in {app.tenant_id}"
        ) in result.stderr
        assert "--allow-unproven-domains REASON" in result.stderr
    nothing_created(app.account)

    nowhere = cli.run(*app.create_args(**{"--domain": [f"nowhere-{app.domain}"]}), expect=2)
    assert f"nowhere-{app.domain} is not a verified domain of any Entra tenant (AADSTS90002)" in nowhere.stderr
    nothing_created(app.account)


def test_create_records_each_proof_and_an_override_with_its_reason(
    cli: Cli, entra_app, emulator, api, capsys, monkeypatch
):
    app: EntraApp = entra_app()
    emulator.add_domain(app.tenant_id, f"eu.{app.domain}")
    elsewhere = emulator.add_tenant([f"partner-{app.domain}"])
    doc = cli.json(
        *app.create_args(**{"--domain": [app.domain, f"eu.{app.domain}", f"partner-{app.domain}"]}),
        "--allow-unproven-domains",
        REASON,
    )
    assert any(
        w.startswith(
            f"domain ownership not proven: partner-{app.domain} is verified in another Entra tenant "
            f"({elsewhere.tenant_id})"
        )
        for w in doc["warnings"]
    ), doc["warnings"]
    held = attrs(api, app.account)
    assert {v.split(" ")[0] for v in held[contract.DOMAIN_PROOFS_KEY]} == {app.domain, f"eu.{app.domain}"}
    assert all(v.split(" ")[1] == app.tenant_id and v.endswith(" discovery") for v in held[contract.DOMAIN_PROOFS_KEY])
    [override] = held[contract.OWNERSHIP_OVERRIDE_KEY]
    assert override.startswith(f"partner-{app.domain} {app.tenant_id} ") and override.endswith(f" {REASON}")

    shown = cli.json("account", "show", app.account)["domain_ownership"]
    assert set(shown["proven"]) == {app.domain, f"eu.{app.domain}"}
    assert shown["unproven"] == [f"partner-{app.domain}"]
    assert shown["override"][f"partner-{app.domain}"]["reason"] == REASON
    text = cli.run("account", "show", app.account).stdout
    assert f"partner-{app.domain}: NOT proven" in text or f"partner-{app.domain}: not proven - override" in text
    assert REASON in text

    # `apsis-sync status`, text and JSON, from the same reading of Keycloak.
    doc = sync_status.report(None, [r for r in managed(api) if r.id == app.account])
    assert doc["accounts"][0]["domain_ownership"]["override"][f"partner-{app.domain}"]["reason"] == REASON
    monkeypatch.setattr(output, "PIPE_WIDTH", 400)
    capsys.readouterr()
    sync_status.render(doc)
    assert f"partner-{app.domain}: override ({REASON})" in capsys.readouterr().out


def test_go_live_refuses_a_domain_that_moved_and_goes_live_with_the_override(cli: Cli, onboarded, emulator, api):
    acct: OnboardedAccount = onboarded()
    other = emulator.add_tenant([f"other-{acct.domain}"])
    emulator.move_domain(acct.domain, other.tenant_id, force=True)
    cli.run("account", "prove-domains", acct.id, expect=2)  # the proof goes, the domain is flagged
    assert contract.DOMAIN_PROOFS_KEY not in attrs(api, acct.id)

    refused = cli.run("account", "go-live", acct.id, expect=2)
    assert f"{acct.domain} is verified in another Entra tenant ({other.tenant_id})" in refused.stderr
    assert attrs(api, acct.id)[contract.STAGE_KEY] == ["pilot"]

    live = cli.json("account", "go-live", acct.id, "--allow-unproven-domains", REASON)
    assert attrs(api, acct.id)[contract.STAGE_KEY] == ["live"]
    assert any("linked under the override" in w for w in live["warnings"])
    assert cli.json("account", "show", acct.id)["domain_ownership"]["override"][acct.domain]["reason"] == REASON


def test_go_live_proves_the_domains_of_an_account_created_before_proofs(cli: Cli, onboarded, api):
    acct: OnboardedAccount = onboarded()
    org = api.organization_by_alias(acct.id)
    del org["attributes"][contract.DOMAIN_PROOFS_KEY]  # as every account created before this change
    api.update_organization(org["id"], org)

    cli.run("account", "go-live", acct.id)
    [proof] = attrs(api, acct.id)[contract.DOMAIN_PROOFS_KEY]
    assert proof.startswith(f"{acct.domain} {acct.tenant_id} ")


def test_prove_domains_records_proofs_now(cli: Cli, onboarded, api, emulator):
    acct: OnboardedAccount = onboarded()
    org = api.organization_by_alias(acct.id)
    del org["attributes"][contract.DOMAIN_PROOFS_KEY]
    api.update_organization(org["id"], org)
    assert any("has no proof of ownership" in w for w in cli.json("account", "show", acct.id)["warnings"])

    dry = cli.json("account", "prove-domains", acct.id, "--dry-run")
    assert dry["domains"] == [{"domain": acct.domain, "status": "proven", "owner": acct.tenant_id, "detail": None}]
    assert contract.DOMAIN_PROOFS_KEY not in attrs(api, acct.id)
    cli.run("account", "prove-domains", acct.id)
    assert attrs(api, acct.id)[contract.DOMAIN_PROOFS_KEY][0].startswith(f"{acct.domain} {acct.tenant_id} ")


def test_apply_file_needs_every_domain_proven_also_one_added_later(cli: Cli, entra_app, emulator, api, nothing_created):
    app: EntraApp = entra_app()
    other = emulator.add_tenant([f"other-{app.domain}"])
    entry = {
        "id": app.account,
        "name": f"Account {app.account}",
        "tenant_id": app.tenant_id,
        "client_id": app.app_id,
        "client_secret": {"file": str(app.secret_file)},
        "secret_expires": (datetime.now(UTC) + timedelta(days=300)).date().isoformat(),
        "domains": [app.domain, f"other-{app.domain}"],
        "it_contact": {"name": "Ivy", "email": f"it@{app.domain}"},
        "stage": "pilot",
        "pilot": [],
    }
    path = cli.workdir / "accounts.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "accounts": [entry]}))

    plan = cli.run("plan", "-f", str(path), expect=2)
    assert f"other-{app.domain} is verified in another Entra tenant ({other.tenant_id})" in plan.stderr
    cli.run("apply", "-f", str(path), "--yes", expect=2)
    nothing_created(app.account)

    # The file's other domain alone: proven, recorded with the create; a second plan asks nothing.
    entry["domains"] = [app.domain]
    path.write_text(yaml.safe_dump({"version": 1, "accounts": [entry]}))
    applied = cli.run("apply", "-f", str(path), "--yes")
    assert "proving domain ownership with Entra: 1 accounts" in applied.stderr
    assert attrs(api, app.account)[contract.DOMAIN_PROOFS_KEY][0].startswith(f"{app.domain} {app.tenant_id} ")
    again = cli.run("plan", "-f", str(path))
    assert "proving domain ownership" not in again.stderr and "No changes." in again.stdout

    # Adding a domain of another tenant to the account (it has an identity provider): refused.
    entry["domains"] = [app.domain, f"other-{app.domain}"]
    path.write_text(yaml.safe_dump({"version": 1, "accounts": [entry]}))
    cli.run("apply", "-f", str(path), "--yes", expect=2)
    assert [d["name"] for d in api.organization_by_alias(app.account)["domains"]] == [app.domain]
    cli.run("apply", "-f", str(path), "--yes", "--allow-unproven-domains", REASON)
    assert attrs(api, app.account)[contract.OWNERSHIP_OVERRIDE_KEY][0].endswith(REASON)


def test_a_tenant_change_inherits_no_proof(api: KeycloakRepository, settings: Settings, onboarded, emulator):
    acct: OnboardedAccount = onboarded()
    record = onboarding.load(api, acct.id)
    assert record.ownership.proven == (acct.domain,)
    other = emulator.add_tenant([f"other-{acct.domain}"])
    org = api.organization_by_alias(acct.id)
    org["attributes"][contract.TENANT_ID_KEY] = [other.tenant_id]
    api.update_organization(org["id"], org)
    assert onboarding.load(api, acct.id).ownership.proven == ()


# -- the extension -------------------------------------------------------------------------


def hijacked(
    api: KeycloakRepository, settings: Settings, emulator: EntraEmulator, unique: str
) -> tuple[OnboardedAccount, str, str, str]:
    """Issue 19's attack: an account whose domain is verified in tenant A, linked — by an
    operator's override, the only way left — to tenant X, whose admin gives a user the
    victim's address and empties the app's optional claims. Returns (the account, the
    victim's address, the victim's user id, X's user's sign-in name)."""
    victim_domain = f"victim-{unique}.example"
    emulator.add_tenant([victim_domain])  # tenant A, where the domain is verified
    x = emulator.add_tenant([f"x-{unique}.example"])
    account_id = f"{unique}hx"
    app = emulator.add_application(x.tenant_id, "APSIS One SSO", [redirect_uri(settings, account_id)])
    secret = emulator.add_secret(x.tenant_id, app.app_id, datetime.now(UTC) + timedelta(days=200))
    KNOWN_SECRETS.add(secret)
    account = Account.build(
        id=account_id,
        name=f"Hijacked {unique}",
        tenant_id=x.tenant_id,
        client_id=app.app_id,
        domains=[victim_domain],
        secret_expires=(datetime.now(UTC) + timedelta(days=200)).date().isoformat(),
        it_contact_name="Mallory",
        it_contact_email=f"m@x-{unique}.example",
        client_secret=secret,
        stage="live",
    )
    onboarding.create(api, settings, account, allow_unproven="the attack: an operator fooled into the override")
    org = api.organization_by_alias(account.id)
    hx = OnboardedAccount(
        id=account.id,
        domain=victim_domain,
        tenant_id=x.tenant_id,
        app_id=app.app_id,
        secret=secret,
        api=api,
        settings=settings,
        emulator=emulator,
        org_id=org["id"],
    )
    victim_email = f"victim@{victim_domain}"
    victim_id = hx.apsis_user(victim_email)
    emulator.add_user(x.tenant_id, f"mallory@x-{unique}.example", PASSWORD, mail=victim_email)
    emulator.set_optional_claims(x.tenant_id, app.app_id, [])  # no xms_edov at all
    return hx, victim_email, victim_id, f"mallory@x-{unique}.example"


def test_the_attack_from_issue_19_is_refused(api, settings, emulator, browser, unique):
    hx, victim_email, victim_id, mallory = hijacked(api, settings, emulator, unique)
    before = user_count(api)
    since = now_ms()
    result = browser().sso_login(mallory, PASSWORD, hx.alias)
    assert_refused(result, api, since, "domain_unproven")
    assert linked_idp_user_ids(api, victim_id, hx.alias) == []
    # With the optional claim configured, Entra says the address is not verified in tenant X.
    emulator.set_optional_claims(hx.tenant_id, hx.app_id, ["xms_edov"])
    since = now_ms()
    assert_refused(browser().sso_login(mallory, PASSWORD, hx.alias), api, since, "email_unverified")
    assert linked_idp_user_ids(api, victim_id, hx.alias) == [] and user_count(api) == before


def test_a_token_without_xms_edov_links_in_a_proven_domain_only(accounts: AccountFactory, api, browser, emulator):
    acct = accounts.create(stage="live")
    emulator.set_optional_claims(acct.tenant_id, acct.app_id, [])  # the customer never added the claim
    email, user_id = acct.person("nina")
    signed_in = browser().sso_login(email, PASSWORD, acct.alias)
    assert signed_in.ok, signed_in.text[:500]
    assert signed_in.id_claims["sub"] == user_id

    # Once the proof is gone (moved away, found by the daily check), a new link is refused.
    org = api.organization_by_alias(acct.id)
    del org["attributes"][contract.DOMAIN_PROOFS_KEY]
    api.update_organization(org["id"], org)
    email2, user2 = acct.person("omar")
    since = now_ms()
    assert_refused(browser().sso_login(email2, PASSWORD, acct.alias), api, since, "domain_unproven")
    assert linked_idp_user_ids(api, user2, acct.alias) == []
    # The one already linked keeps signing in: the link is by object id, not by address.
    assert browser().sso_login(email, PASSWORD, acct.alias).ok


# -- the daily re-check --------------------------------------------------------------------


def test_the_daily_check_flags_a_moved_domain_once_and_removes_its_proof(
    accounts: AccountFactory,
    api,
    emulator,
    sync: Callable[..., SyncHarness],
    smtp_server: SmtpServer,
    cli: Cli,
):
    acct = accounts.create(stage="live")
    harness = sync()
    harness.add(acct)
    discovery = f"/{acct.domain}/v2.0/.well-known/openid-configuration"
    emulator.clear_requests_log()
    first = harness.cycle(acct).result(acct.id)
    assert first.status == "ok", first.errors
    assert [r for r in emulator.requests_log if r["path"] == discovery] == []  # proven today: nothing asked

    other = emulator.add_tenant([f"elsewhere-{acct.domain}"])
    emulator.move_domain(acct.domain, other.tenant_id, force=True)
    age_records(api, acct.id)  # a day later
    flagged = harness.cycle(acct).result(acct.id)
    assert flagged.domain_alerts == 1
    assert any(f"{acct.domain} is verified in another Entra tenant ({other.tenant_id})" in n for n in flagged.notes)
    held = attrs(api, acct.id)
    assert contract.DOMAIN_PROOFS_KEY not in held
    [alert] = held[contract.DOMAIN_ALERTS_KEY]
    assert alert.startswith(f"{acct.domain} {acct.tenant_id} ") and alert.endswith(f" other-tenant {other.tenant_id}")
    mails = smtp_server.messages(to=PLATFORM_TEAM, kind="domain-ownership")
    mine = [m for m in mails if m["X-Apsis-Sync-Account"] == acct.id]
    assert len(mine) == 1 and f"{acct.domain} is no longer proven" in mine[0]["Subject"]
    assert len([r for r in emulator.requests_log if r["path"] == discovery]) == 1
    metrics = harness.rt.metrics.registry
    assert metrics.get_sample_value("apsis_sync_domain_flagged_accounts") == 1
    assert metrics.get_sample_value("apsis_sync_domain_checks_total", {"outcome": "other-tenant"}) == 1

    # The next cycles (and the next day) send nothing new; status shows the flag.
    harness.cycle(acct)
    age_records(api, acct.id)
    harness.cycle(acct)
    assert (
        len(
            [
                m
                for m in smtp_server.messages(to=PLATFORM_TEAM, kind="domain-ownership")
                if m["X-Apsis-Sync-Account"] == acct.id
            ]
        )
        == 1
    )
    assert len([r for r in emulator.requests_log if r["path"] == discovery]) == 2  # once a day
    shown = cli.run("account", "show", acct.id)
    assert f"{acct.domain}: NOT proven (in tenant {other.tenant_id})" in shown.stdout
    assert f"domain {acct.domain} is verified in another Entra tenant ({other.tenant_id})" in shown.stderr

    # Back in the tenant: proven again at the next daily check, the flag goes.
    emulator.move_domain(acct.domain, acct.tenant_id)
    age_records(api, acct.id)
    back = harness.cycle(acct).result(acct.id)
    assert back.domain_alerts == 0 and contract.DOMAIN_ALERTS_KEY not in attrs(api, acct.id)
    assert attrs(api, acct.id)[contract.DOMAIN_PROOFS_KEY][0].startswith(f"{acct.domain} {acct.tenant_id} ")


def test_existing_accounts_get_their_proofs_at_the_first_cycle(
    accounts: AccountFactory, api, sync: Callable[..., SyncHarness], emulator
):
    acct = accounts.create(stage="live")
    org = api.organization_by_alias(acct.id)
    del org["attributes"][contract.DOMAIN_PROOFS_KEY]  # created before this change
    api.update_organization(org["id"], org)
    harness = sync()
    harness.add(acct)
    dry = harness.cycle(acct, dry_run=True).result(acct.id)
    assert dry.status == "ok" and contract.DOMAIN_PROOFS_KEY not in attrs(api, acct.id)
    result = harness.cycle(acct).result(acct.id)
    assert result.status == "ok", result.errors
    proof = DomainProof.parse(attrs(api, acct.id)[contract.DOMAIN_PROOFS_KEY][0])
    assert proof is not None and (proof.domain, proof.tenant_id) == (acct.domain, acct.tenant_id)
