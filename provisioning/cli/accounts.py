"""`apsis-sso account ...`: one account's lifecycle, from create to delete."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from apsis_core import output
from apsis_core.cli import AppContext, F, confirm, dry_run_option, output_option, pass_app, yes_option
from apsis_core.contract import STAGES, InvitationIntent, Stage
from provisioning.cli import output as plan_output
from provisioning.cli.members import members

if TYPE_CHECKING:
    from datetime import datetime

    from apsis_core.account import AccountRecord
    from provisioning.onboarding import Result


account_argument = click.argument("account_id", metavar="ACCOUNT")
CLIENT_SECRET_ENV = "APSIS_SSO_ENTRA_CLIENT_SECRET"


def unproven_option(f: F) -> F:
    return click.option(
        "--allow-unproven-domains",
        "allow_unproven",
        metavar="REASON",
        help="Link domains Entra does not place in the account's tenant anyway, for this reason (recorded on the "
        "account per domain, shown by `account show` and `apsis-sync status`). Sign-ins without Entra's "
        "xms_edov claim stay refused in such a domain.",
    )(f)


def secret_options(f: F) -> F:
    f = click.option(
        "--client-secret-env",
        metavar="NAME",
        help=f"Read the client secret from this environment variable (default {CLIENT_SECRET_ENV}).",
    )(f)
    return click.option(
        "--client-secret-file",
        metavar="PATH",
        help="Read the client secret from this file ('-' for stdin). Without it or the variable: hidden prompt.",
    )(f)


def _read_client_secret(file: str | None, env: str | None, what: str = "client secret") -> str:
    from apsis_core.secret_input import SecretOptions, read_secret

    return read_secret(file, env, SecretOptions("--client-secret-file", CLIENT_SECRET_ENV, "--client-secret-env", what))


@click.group(short_help="One account's SSO, from create to delete.")
def account() -> None:
    """Onboard and operate one APSIS One account's SSO.

    \b
    Lifecycle:
      create (pilot: test users only) -> go-live (every member)
      back-to-pilot, disable (SSO off; passwords keep working), delete
    """


account.add_command(members)


def _report(result: Result, output_format: str, *, done: str, dry_run: bool, heading: str | None = None) -> None:
    warnings = result.warnings + result.plan.warnings
    if output_format == "json":
        output.emit_json(result.to_dict())
    else:
        title = f"{done} (dry run, nothing changed)" if dry_run else done
        if result.plan.empty:
            title = f"account {result.account.id}: nothing to change"
        plan_output.plan(result.plan, title=title)
        if heading and result.links:
            plan_output.links(result.links, heading=heading)
    if result.secret_file:
        output.status(f"the client secret is stored for apsis-sync in {result.secret_file}")
    output.warnings(warnings)


@account.command("create", short_help="Onboard an account (pilot), or create it awaiting setup.")
@account_argument
@click.option("--name", required=True, help="Display name of the APSIS One account.")
@click.option(
    "--tenant-id",
    metavar="GUID|DOMAIN",
    help="Directory (tenant) ID, or a verified domain of the tenant (resolved to its GUID).",
)
@click.option("--client-id", metavar="GUID", help="Application (client) ID of their app registration.")
@click.option(
    "--provider",
    type=click.Choice(["entra", "okta"]),
    default="entra",
    show_default=True,
    help="Where the account's users sign in (docs/providers.md).",
)
@click.option(
    "--okta-org",
    metavar="ISSUER",
    help="Okta: the issuer of the org's authorization server (https://ORG.okta.com, or .../oauth2/ID); "
    "with --provider okta instead of --tenant-id.",
)
@click.option(
    "--okta-api-client-id",
    metavar="ID",
    help="Okta: the API service app apsis-sync reads the org with (its key: `account okta-key`).",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    required=True,
    metavar="DOMAIN",
    help="An email domain of the account (repeat for several).",
)
@click.option("--secret-expires", metavar="YYYY-MM-DD", help="When the client secret expires.")
@click.option(
    "--credential",
    type=click.Choice(["client-secret", "certificate"]),
    default="client-secret",
    show_default=True,
    help="certificate: the app registration holds APSIS's public certificate (`account certificate`) "
    "instead of a secret; nothing secret is sent, --secret-expires is the certificate's expiry.",
)
@click.option("--it-contact-name", required=True, help="Who sets up and renews the credentials.")
@click.option("--it-contact-email", required=True, help="Their email.")
@click.option(
    "--test-user",
    "test_users",
    multiple=True,
    metavar="EMAIL",
    help="A pilot user allowed to sign in with SSO before go-live (repeat for several).",
)
@secret_options
@unproven_option
@dry_run_option
@output_option
@pass_app
def create(
    app: AppContext,
    account_id: str,
    name: str,
    tenant_id: str | None,
    client_id: str | None,
    domains: tuple[str, ...],
    secret_expires: str | None,
    credential: str,
    it_contact_name: str,
    it_contact_email: str,
    test_users: tuple[str, ...],
    client_secret_file: str | None,
    client_secret_env: str | None,
    allow_unproven: str | None,
    dry_run: bool,
    output_format: str,
    provider: str = "entra",
    okta_org: str | None = None,
    okta_api_client_id: str | None = None,
) -> None:
    """Onboard an account in pilot stage, or create it awaiting setup by its IT.

    With --tenant-id, --client-id and --secret-expires (and the secret): creates the
    organization (domains, SSO metadata), the Entra identity provider from
    realm-templates/ (tenant-specific v2.0 endpoints, issuer pinned, mappers) and links
    them. Before writing anything it validates every option, resolves a tenant domain
    to its GUID, proves that the tenant owns every --domain (Entra's discovery resolves
    the domain to that tenant; otherwise it is refused, exit 2, unless
    --allow-unproven-domains REASON), checks that Keycloak accepts the test-login link it
    will print (the realm must have been applied with APSIS_SSO_KEYCLOAK_PUBLIC_URL), and
    proves the client secret with a client-credentials token request to the tenant. It
    prints what the customer's IT needs next, and warnings.

    Without those three: the organization alone (name, domains, IT contact), stage
    awaiting-setup, no SSO yet. `apsis-sso account invite ACCOUNT` then mails the IT
    contact a link to the portal, where they fill in the Entra details themselves.
    Run on an account awaiting setup with the Entra details, it does the setup.

    The client secret is never an option value: --client-secret-file PATH ('-' reads
    stdin), the variable APSIS_SSO_ENTRA_CLIENT_SECRET (or --client-secret-env NAME),
    or a hidden prompt. If a create stops midway, run it again: it completes.

    \b
    Examples:
      apsis-sso account create acme --name "Acme AB" \\
        --tenant-id acme.onmicrosoft.com --client-id 6a8b...-... \\
        --domain acme.com --domain acme.se --secret-expires 2027-03-31 \\
        --it-contact-name "Ivy Admin" --it-contact-email ivy@acme.com \\
        --test-user ann@acme.com --client-secret-file acme.secret
      apsis-sso account create acme --name "Acme AB" --domain acme.com \\
        --it-contact-name "Ivy Admin" --it-contact-email ivy@acme.com   # then: account invite acme
    """
    from pydantic import SecretStr

    from apsis_core.account import Account
    from provisioning import assertion_keys, onboarding

    if provider == "okta" and tenant_id is not None:
        raise click.UsageError("--provider okta takes --okta-org, not --tenant-id")
    if provider != "okta" and (okta_org or okta_api_client_id):
        raise click.UsageError("--okta-org and --okta-api-client-id need --provider okta")
    if credential == "certificate" and provider == "okta":
        raise click.UsageError(
            "--credential certificate is for Entra accounts; an Okta account's API app uses its own key (account okta-key)"
        )
    certificate = credential == "certificate"
    if certificate:
        if client_secret_file is not None or client_secret_env is not None:
            raise click.UsageError("--credential certificate takes no client secret")
        if secret_expires is not None:
            raise click.UsageError("--credential certificate: the expiry is the certificate's; drop --secret-expires")
        if tenant_id or client_id:
            secret_expires = assertion_keys.certificate(app.settings()).not_after.date().isoformat()
    desired = Account.build(
        id=account_id,
        name=name,
        tenant_id=okta_org if provider == "okta" else tenant_id,
        client_id=client_id,
        domains=list(domains),
        secret_expires=secret_expires,
        it_contact_name=it_contact_name,
        it_contact_email=it_contact_email,
        pilot=list(test_users),
        credential=credential if (tenant_id or client_id) else None,
        provider=provider,
        okta_api_client_id=okta_api_client_id,
    )
    if desired.awaiting_setup:
        if client_secret_file is not None or client_secret_env is not None:
            raise click.UsageError("a client secret needs --tenant-id, --client-id and --secret-expires")
        if allow_unproven is not None:
            raise click.UsageError(
                "--allow-unproven-domains needs the Entra details: an account awaiting setup "
                "links no domain to a tenant yet"
            )
        result = onboarding.create(app.api(), app.settings(), desired, dry_run=dry_run)
        _report(
            result,
            output_format,
            done=f"account {result.account.id} created, awaiting setup by its IT",
            dry_run=dry_run,
            heading=f"For {result.account.id}'s IT ({result.account.it_contact.email}):",
        )
        if output_format != "json":
            output.status(f"next: `apsis-sso account invite {result.account.id}` mails them a link to the portal")
        return
    if not certificate:
        secret = _read_client_secret(client_secret_file, client_secret_env)
        desired = desired.with_changes(client_secret=SecretStr(secret))
    what = "APSIS's certificate" if certificate else "the client secret"
    output.status(f"checking tenant, domain ownership, Keycloak and {what} for account {desired.id} ...")
    result = onboarding.create(app.api(), app.settings(), desired, dry_run=dry_run, allow_unproven=allow_unproven)
    _report(
        result,
        output_format,
        done=f"account {result.account.id} created in pilot stage",
        dry_run=dry_run,
        heading=f"Send to {result.account.id}'s IT ({result.account.it_contact.email}):",
    )


@account.command("show", short_help="Everything about one account.")
@account_argument
@click.option(
    "--events-scan",
    type=click.IntRange(min=0),
    default=5000,
    show_default=True,
    help="How many of the newest LOGIN events to search for last SSO logins (0: skip).",
)
@click.option(
    "--linked-limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="List at most this many linked users, most recent SSO login first (0: all).",
)
@output_option
@pass_app
def show(app: AppContext, account_id: str, events_scan: int, linked_limit: int, output_format: str) -> None:
    """Everything about one account: stage, domains, pilot list, members, secret
    expiry, last SSO login, links to send, warnings, and who is linked (each linked
    user's email and last SSO login, most recent first).

    \b
    Examples:
      apsis-sso account show acme
      apsis-sso account show acme -o json | jq .days_until_secret_expires
      apsis-sso account show acme --linked-limit 0 -o json | jq -r '.linked[].email'
    """
    from provisioning import status

    report = status.account_report(
        app.api(), app.settings(), account_id, events_scan=events_scan, linked_limit=linked_limit
    )
    if output_format == "json":
        output.emit_json(report.to_dict())
    else:
        st = report.status
        a, r = st.account, st.record
        output.key_values(
            [
                ("account", a.id),
                ("name", a.name),
                ("stage", a.stage + ("" if r.sso_enabled or r.awaiting_setup else " (SSO off)")),
                ("login page", st.login_page()),
                ("provider", a.provider),
                ("tenant id" if a.provider == "entra" else "issuer", a.tenant_id),
                ("client id", a.client_id),
                ("domains", ", ".join(a.domains)),
                ("test users", ", ".join(a.pilot)),
                ("members", st.members),
                ("linked users", st.linked_users),
                (
                    "secret expires",
                    f"{a.secret_expires.isoformat()} ({st.days_until_secret_expires_text()})"
                    if a.secret_expires
                    else st.days_until_secret_expires_text(),
                ),
                ("secret hint", r.secret_hint),
                ("IT contact", f"{a.it_contact.name} <{a.it_contact.email}>"),
                ("last SSO login", _when(st.last_sso_login)),
                ("quarantined", r.quarantined),
                ("domain ownership", None if r.awaiting_setup else r.ownership.summary()),
                *[
                    (f"override ({o.domain})", f"{o.reason} (recorded {o.at.strftime('%Y-%m-%d %H:%M UTC')})")
                    for o in r.ownership.overrides
                ],
            ]
        )
        plan_output.links(report.links, heading="Links:")
        if st.linked:
            output.table(
                ["linked user", "username", "enabled", "last SSO login"],
                [[u.email, u.username, "yes" if u.enabled else "no", _when(u.last_sso_login)] for u in st.linked],
            )
        if report.more_linked:
            output.status(f"... and {report.more_linked} more linked user(s) (--linked-limit 0 lists all)")
    output.warnings(report.warnings)


def _when(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else None


@account.command("list", short_help="All accounts, one line each.")
@click.option(
    "--stage", "stages", type=click.Choice(STAGES), multiple=True, help="Only accounts in this stage (repeatable)."
)
@click.option(
    "--counts/--no-counts",
    default=True,
    show_default=True,
    help="Member and linked-user counts: two small requests per account (no bulk API exists).",
)
@click.option(
    "--events-scan",
    type=click.IntRange(min=0),
    default=5000,
    show_default=True,
    help="How many of the newest LOGIN events to search for last SSO logins (0: skip).",
)
@output_option
@pass_app
def list_(app: AppContext, stages: tuple[str, ...], counts: bool, events_scan: int, output_format: str) -> None:
    """Every account the tool manages, one line each.

    Reads organizations and identity providers in bulk (a few paged requests for any
    number of accounts) and the last SSO logins from one bounded scan of LOGIN events;
    --no-counts leaves out the only per-account requests.

    \b
    Examples:
      apsis-sso account list
      apsis-sso account list --stage pilot --no-counts -o json
    """
    from provisioning import status

    rows = status.list_accounts(app.api(), counts=counts, events_scan=events_scan, stages=stages)
    if output_format == "json":
        output.emit_json({"accounts": [s.to_dict() for s in rows]})
        return
    output.table(
        ["account", "name", "stage", "SSO", "members", "linked", "secret expires", "last SSO login", "quarantined"],
        [
            [
                s.account.id,
                s.account.name,
                s.account.stage,
                _sso_column(s.record),
                s.members,
                s.linked_users,
                s.days_until_secret_expires_text(),
                s.last_sso_login.strftime("%Y-%m-%d %H:%M") if s.last_sso_login else None,
                "yes" if s.record.quarantined else "",
            ]
            for s in rows
        ],
    )
    output.status(f"{len(rows)} account(s)")


def _sso_column(record: AccountRecord) -> str:
    if record.awaiting_setup:
        return "awaiting setup"
    if not record.complete:
        return "incomplete"
    return "on" if record.sso_enabled else "off"


def _set_stage(
    app: AppContext,
    account_id: str,
    stage: Stage,
    dry_run: bool,
    output_format: str,
    done: str,
    allow_unproven: str | None = None,
) -> None:
    from apsis_core import stages
    from provisioning import onboarding

    result = onboarding.set_stage(
        app.api(),
        app.settings(),
        account_id,
        stage,
        dry_run=dry_run,
        allow_unproven=allow_unproven,
    )
    _report(result, output_format, done=done.format(account=result.account.id), dry_run=dry_run, heading="Links:")
    if output_format != "json":
        output.status(stages.login_page(result.account.stage, result.account.domains))


@account.command("go-live", short_help="Enable SSO for every member.")
@account_argument
@unproven_option
@dry_run_option
@output_option
@pass_app
def go_live(app: AppContext, account_id: str, allow_unproven: str | None, dry_run: bool, output_format: str) -> None:
    """Enable SSO for every member of the account (leaves pilot; also re-enables a
    disabled account). From now on an address in the account's domains typed on the
    normal login page goes straight to the tenant's Entra sign-in; other addresses
    (contractors) keep the password form. Prints the test-login link.

    Every domain must be proven for the account's tenant: those without a proof are
    asked of Entra first and the proofs recorded; a domain verified in another tenant or
    in none is refused (exit 2) unless --allow-unproven-domains REASON; Entra not
    answering exits 75 (try again).

    \b
    Examples:
      apsis-sso account go-live acme
      apsis-sso account go-live acme --allow-unproven-domains "acme.se verified by phone, ticket 4711"
    """
    _set_stage(app, account_id, "live", dry_run, output_format, "account {account} is live", allow_unproven)


@account.command("prove-domains", short_help="Ask Entra now which tenant owns each domain; record it.")
@account_argument
@dry_run_option
@output_option
@pass_app
def prove_domains(app: AppContext, account_id: str, dry_run: bool, output_format: str) -> None:
    """Ask Entra now which tenant each of the account's domains is verified in, and record
    it on the account, as apsis-sync does once a day: a domain of the account's tenant is
    proven (the extension then trusts its users' emails also without Entra's xms_edov
    claim); one verified in another tenant or in none loses its proof and is flagged.

    The way to prove the domains of an account created before proofs were recorded
    without waiting for the daemon, and to clear a flag once the customer fixed it.
    Exits 0 when every domain is proven, 2 when one is not (recorded either way), 75
    when Entra did not answer.

    \b
    Examples:
      apsis-sso account prove-domains acme
      apsis-sso account prove-domains acme --dry-run -o json
    """
    from provisioning import onboarding

    result = onboarding.prove_domains(app.api(), app.settings(), account_id, dry_run=dry_run)
    if output_format == "json":
        output.emit_json(result.to_dict())
    else:
        output.table(
            ["domain", "verdict", "tenant Entra names"],
            [[v.domain, v.describe(), v.owner or "-"] for v in result.verdicts],
        )
        if result.recorded is not None and result.recorded.new_alerts:
            output.status(f"flagged: {', '.join(a.domain for a in result.recorded.new_alerts)}")
        output.status("recorded on the account" if result.applied else "dry run: nothing recorded")
    onboarding.require_proven(result)


@account.command("back-to-pilot", short_help="Limit SSO to the test users again.")
@account_argument
@dry_run_option
@output_option
@pass_app
def back_to_pilot(app: AppContext, account_id: str, dry_run: bool, output_format: str) -> None:
    """Limit SSO to the test users again (undoes go-live; also re-enables a disabled
    account). The login page shows everyone the password form again; test users sign
    in with the test-login link; other members are refused at their next SSO sign-in.

    \b
    Example:
      apsis-sso account back-to-pilot acme
    """
    _set_stage(app, account_id, "pilot", dry_run, output_format, "account {account} is back in pilot")


@account.command("disable", short_help="Turn SSO off (passwords keep working).")
@account_argument
@yes_option
@dry_run_option
@output_option
@pass_app
def disable(app: AppContext, account_id: str, yes: bool, dry_run: bool, output_format: str) -> None:
    """Turn SSO off for the account: its identity provider is disabled, its users sign
    in with their passwords (the login page shows everyone the password form).
    Users, members, links and settings are kept;
    go-live or back-to-pilot turns SSO on again.

    \b
    Example:
      apsis-sso account disable acme --yes
    """
    if not dry_run:
        confirm(f"Turn SSO off for account {account_id}? Its users will need their passwords.", yes)
    _set_stage(app, account_id, "disabled", dry_run, output_format, "SSO of account {account} is off")


@account.command("delete", short_help="Remove the account's SSO (users are kept).")
@account_argument
@yes_option
@dry_run_option
@output_option
@pass_app
def delete(app: AppContext, account_id: str, yes: bool, dry_run: bool, output_format: str) -> None:
    """Remove the account's SSO: its identity provider (and every user's link to it)
    and its organization with the SSO metadata. Users are never deleted; they keep
    their passwords. Asks for confirmation unless --yes.

    \b
    Example:
      apsis-sso account delete acme --dry-run
      apsis-sso account delete acme --yes
    """
    from provisioning import onboarding

    plan = onboarding.delete(
        app.api(),
        app.settings(),
        account_id,
        dry_run=dry_run,
        confirm=lambda p: confirm(
            f"Delete the SSO of account {account_id} ({len(p.changes)} changes; users are kept)?", yes
        ),
        progress=plan_output.progress,
    )
    if output_format == "json":
        output.emit_json({"id": account_id, "account": account_id, "applied": not dry_run, "plan": plan.to_dict()})
    else:
        title = (
            f"account {account_id} deleted"
            if not dry_run
            else f"account {account_id}: delete plan (dry run, nothing changed)"
        )
        plan_output.plan(plan, title=title)


@account.command("rotate-secret", short_help="Prove and swap in a new client secret.")
@account_argument
@click.option("--secret-expires", required=True, metavar="YYYY-MM-DD", help="When the new client secret expires.")
@secret_options
@dry_run_option
@output_option
@pass_app
def rotate_secret(
    app: AppContext,
    account_id: str,
    secret_expires: str,
    client_secret_file: str | None,
    client_secret_env: str | None,
    dry_run: bool,
    output_format: str,
) -> None:
    """Swap in the customer's new client secret.

    The new secret is read like at create (file, environment variable or hidden
    prompt) and proved with a client-credentials token request to the tenant before
    anything changes; Entra's refusals (AADSTS7000215 invalid secret, 7000222 expired,
    700016 unknown application, 90002 unknown tenant) are explained in one line. The
    swap is one update of the identity provider, so no sign-in breaks while both
    secrets are valid in Entra.

    \b
    Example:
      APSIS_SSO_ENTRA_CLIENT_SECRET=... apsis-sso account rotate-secret acme --secret-expires 2028-03-31
    """
    from apsis_core import validation
    from provisioning import onboarding

    expires = validation.future_date(secret_expires)
    validation.account_id(account_id)
    secret = _read_client_secret(client_secret_file, client_secret_env, what="new client secret")
    output.status(f"proving the new client secret of account {account_id} with Entra ...")
    result = onboarding.rotate_secret(app.api(), app.settings(), account_id, secret, expires, dry_run=dry_run)
    _report(
        result,
        output_format,
        done=f"client secret of account {result.account.id} rotated (expires {expires.isoformat()})",
        dry_run=dry_run,
    )


@account.command("certificate", short_help="The public certificate the customer uploads to Entra.")
@account_argument
@click.option("--next", "upcoming", is_flag=True, help="The next certificate, published before the current expires.")
@click.option(
    "--save",
    "save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the PEM to this file (e.g. acme-apsis.cer) instead of printing it.",
)
@output_option
@pass_app
def certificate(app: AppContext, account_id: str, upcoming: bool, save: Path | None, output_format: str) -> None:
    """Print (or --save) the public certificate for the account's app registration, with its
    thumbprints as the Entra portal shows them. It is not a secret: send it by mail, attach it to
    a ticket. In Entra: App registrations › the app › Certificates & secrets › Certificates ›
    Upload certificate (.cer, .pem or .crt). Then `apsis-sso account credential ACCOUNT --use
    certificate` proves it and switches the account.

    
    Examples:
      apsis-sso account certificate acme --save acme-apsis.cer
      apsis-sso account certificate acme --next -o json
    """
    from provisioning import assertion_keys, onboarding

    onboarding.load(app.api(), account_id)  # the account exists (one certificate serves every account)
    cert = assertion_keys.certificate(app.settings(), upcoming=upcoming)
    data = {
        "account": account_id,
        "subject": cert.subject,
        "thumbprint_sha1": cert.sha1_thumbprint,
        "thumbprint_sha256": cert.sha256_thumbprint,
        "not_before": cert.not_before.isoformat(),
        "not_after": cert.not_after.isoformat(),
        "pem": cert.pem,
    }
    if save is not None:
        save.write_text(cert.pem, encoding="ascii")
        data["saved"] = str(save)
    if output_format == "json":
        output.emit_json(data)
        return
    output.key_values((k, v) for k, v in data.items() if k != "pem")
    if save is None:
        click.echo(cert.pem, nl=False)


@account.command("credential", short_help="Switch an account between client secret and certificate.")
@account_argument
@click.option("--use", "use", type=click.Choice(["certificate", "client-secret"]), required=True)
@click.option("--secret-expires", metavar="YYYY-MM-DD", help="With --use client-secret: when the secret expires.")
@secret_options
@dry_run_option
@output_option
@pass_app
def credential(
    app: AppContext,
    account_id: str,
    use: str,
    secret_expires: str | None,
    client_secret_file: str | None,
    client_secret_env: str | None,
    dry_run: bool,
    output_format: str,
) -> None:
    """Switch how the account's app registration authenticates. With --use certificate the
    customer must have uploaded APSIS's certificate (`account certificate`): it is proved with a
    client-credentials token request signed with the assertion key before anything changes
    (AADSTS700027 means it is not uploaded yet), then the identity provider moves to
    private_key_jwt and apsis-sync to the key; the customer may then delete the old secret.
    With --use client-secret the new secret (read like at create) and --secret-expires are proved
    and swapped in the same way.

    
    Examples:
      apsis-sso account credential acme --use certificate --dry-run
      APSIS_SSO_ENTRA_CLIENT_SECRET=... apsis-sso account credential acme --use client-secret --secret-expires 2028-01-31
    """
    from apsis_core import validation
    from provisioning import onboarding

    validation.account_id(account_id)
    secret = None
    if use == "client-secret":
        if secret_expires is None:
            raise click.UsageError("--use client-secret needs --secret-expires")
        validation.future_date(secret_expires)
        secret = _read_client_secret(client_secret_file, client_secret_env, what="client secret")
    elif secret_expires is not None or client_secret_file is not None or client_secret_env is not None:
        raise click.UsageError("--use certificate takes no secret and no --secret-expires")
    output.status(f"proving the {use} of account {account_id} with Entra ...")
    result = onboarding.switch_credential(
        app.api(),
        app.settings(),
        account_id,
        "certificate" if use == "certificate" else "client-secret",
        secret=secret,
        expires=secret_expires,
        dry_run=dry_run,
    )
    _report(result, output_format, done=f"account {result.account.id} now uses its {use}", dry_run=dry_run)
    if use == "certificate" and not dry_run and output_format != "json":
        output.status("the customer may now delete the old client secret of the app registration in Entra")


@account.command("invite", short_help="Mail the IT contact a link to the self-serve portal.")
@account_argument
@click.option(
    "--intent",
    type=click.Choice(["setup", "renew"]),
    help="setup: fill in the Entra details (default while the account awaits setup); "
    "renew: a new client secret (default afterwards).",
)
@click.option(
    "--valid",
    "valid",
    metavar="DURATION",
    default=None,
    help="How long the link works, e.g. 7d, 36h, 90m (default APSIS_SSO_INVITATION_DAYS, 7 days).",
)
@click.option("--no-mail", is_flag=True, help="Do not mail the link; only print it (pass it on yourself).")
@click.option("--revoke", is_flag=True, help="End the account's open link (of --intent, or all) instead.")
@output_option
@pass_app
def invite(
    app: AppContext,
    account_id: str,
    intent: InvitationIntent | None,
    valid: str | None,
    no_mail: bool,
    revoke: bool,
    output_format: str,
) -> None:
    """Mail the account's IT contact a one-time link to the self-serve portal, and print it.

    With an intent of setup the page shows the Entra steps and takes the tenant, the
    application (client) ID, the secret's value and expiry and the test users, proves
    them with Entra and creates the SSO connection in pilot; then it shows the consent
    and test-login links and which test users have signed in. With renew it takes a new
    client secret, proves it and swaps it in. The link is for one account and one
    intent, expires (7 days by default) and ends when its intent is done; a new link of
    the same intent replaces the old one. Only a hash of it is stored, on the account.

    Mail uses the SMTP settings of apsis-sync (APSIS_SYNC_SMTP_HOST, ...); the link
    points at APSIS_SSO_PORTAL_URL.

    \b
    Examples:
      apsis-sso account invite acme
      apsis-sso account invite acme --intent renew --valid 14d
      apsis-sso account invite acme --no-mail -o json | jq -r .url
      apsis-sso account invite acme --revoke
    """
    from apsis_core import invitations
    from apsis_core.timestamps import to_text
    from provisioning import invite as invites

    validity = invitations.parse_validity(valid) if valid is not None else None
    if revoke:
        if valid is not None or no_mail:
            raise click.UsageError("--revoke takes no --valid or --no-mail")
        ended = invites.revoke(app.api(), account_id, intent)
        if output_format == "json":
            output.emit_json(
                {
                    "id": account_id,
                    "account": account_id,
                    "revoked": [{"invitation": i.id, "intent": i.intent, "expires": to_text(i.expires)} for i in ended],
                }
            )
        elif ended:
            output.status(
                f"revoked {len(ended)} link(s) of account {account_id}: "
                + ", ".join(f"{i.intent} {i.id}" for i in ended)
            )
        else:
            output.status(f"account {account_id} has no open link{f' for {intent}' if intent else ''}")
        return
    result = invites.invite(
        app.api(), app.settings(), None if no_mail else app.mail_settings(), account_id, intent=intent, valid=validity
    )
    if output_format == "json":
        output.emit_json(result.to_dict())
    else:
        click.echo(result.url)
        where = f"mailed to {result.mailed_to}" if result.mailed_to else "not mailed (--no-mail): pass it on yourself"
        output.status(
            f"{result.intent} link for account {result.account}, valid until "
            f"{result.invitation.expires.strftime('%Y-%m-%d %H:%M UTC')}, {where}"
        )


@account.group("pilot", short_help="Test users allowed during pilot.")
def pilot() -> None:
    """The test users allowed to sign in with SSO while the account is in pilot."""


@pilot.command("add", short_help="Put test users on the pilot list.")
@account_argument
@click.argument("emails", nargs=-1, required=True, metavar="EMAIL...")
@dry_run_option
@output_option
@pass_app
def pilot_add(app: AppContext, account_id: str, emails: tuple[str, ...], dry_run: bool, output_format: str) -> None:
    """Put test users on the pilot list (warns when one cannot sign in yet).

    \b
    Example:
      apsis-sso account pilot add acme ann@acme.com bo@acme.com
    """
    from provisioning import onboarding

    result = onboarding.pilot_add(app.api(), app.settings(), account_id, list(emails), dry_run=dry_run)
    _report(result, output_format, done=f"pilot list of account {result.account.id} updated", dry_run=dry_run)


@pilot.command("remove", short_help="Take test users off the pilot list.")
@account_argument
@click.argument("emails", nargs=-1, required=True, metavar="EMAIL...")
@dry_run_option
@output_option
@pass_app
def pilot_remove(app: AppContext, account_id: str, emails: tuple[str, ...], dry_run: bool, output_format: str) -> None:
    """Take test users off the pilot list; during pilot their next SSO sign-in is refused.

    \b
    Example:
      apsis-sso account pilot remove acme bo@acme.com
    """
    from provisioning import onboarding

    result = onboarding.pilot_remove(app.api(), app.settings(), account_id, list(emails), dry_run=dry_run)
    _report(result, output_format, done=f"pilot list of account {result.account.id} updated", dry_run=dry_run)


@account.command("okta-key", short_help="The public key an Okta account's API service app registers.")
@account_argument
@output_option
@pass_app
def okta_key(app: AppContext, account_id: str, output_format: str) -> None:
    """Print the public JWK of the account's Okta API key pair, generating the pair the first
    time (one per account, in APSIS_SSO_SYNC_SECRETS_DIR next to its secret file, owner-only;
    apsis-sync signs its client assertions with it). The customer adds the printed key to the
    API service app (Client authentication: Public key / Private key), grants it the Okta API
    scopes okta.users.read and okta.logs.read, and sends back its client id
    (`account create ... --okta-api-client-id ID`). Nothing secret is printed.

    \b
    Examples:
      apsis-sso account okta-key acme
      apsis-sso account okta-key acme -o json | jq .jwk.kid
    """
    from apsis_core import okta_keys, validation

    directory = app.settings().sync_secrets_dir
    if directory is None:
        raise click.UsageError("set APSIS_SSO_SYNC_SECRETS_DIR: the key pair is kept in apsis-sync's secrets directory")
    jwk = okta_keys.ensure(directory, validation.account_id(account_id))
    if output_format == "json":
        output.emit_json({"id": account_id, "jwk": jwk, "path": str(okta_keys.path_for(directory, account_id))})
        return
    click.echo(okta_keys.jwks_text(jwk))
    output.status(f"the private key stays in {okta_keys.path_for(directory, account_id)}")
