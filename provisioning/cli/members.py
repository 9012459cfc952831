"""`apsis-sso account members ...`: which APSIS One users belong to an account.

Membership is what the login extension checks: only members may link and sign in with
the account's SSO. Users are never created here; they exist in APSIS One beforehand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from apsis_core import output
from apsis_core.cli import AppContext, dry_run_option, output_option, pass_app

if TYPE_CHECKING:
    from provisioning.members import MemberChange


@click.group(short_help="Which users belong to an account.")
def members() -> None:
    """Add, remove and list the users of an account."""


def _report(account_id: str, changes: list[MemberChange], output_format: str, dry_run: bool) -> None:
    if output_format == "json":
        output.emit_json(
            {
                "id": account_id,
                "account": account_id,
                "applied": not dry_run,
                "members": [{"email": c.email, "user_id": c.user_id, "outcome": c.outcome} for c in changes],
            }
        )
        return
    if not changes:
        output.status(f"account {account_id}: nothing to change")
        return
    output.table(
        ["email", "outcome"],
        [[c.email, c.outcome] for c in changes],
        title=f"account {account_id}" + (" (dry run, nothing changed)" if dry_run else ""),
    )


@members.command("add", short_help="Add users to the account.")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("emails", nargs=-1, metavar="[EMAIL]...")
@click.option(
    "--from-domains", is_flag=True, help="Add every realm user whose email is in one of the account's domains."
)
@dry_run_option
@output_option
@pass_app
def add(
    app: AppContext, account_id: str, emails: tuple[str, ...], from_domains: bool, dry_run: bool, output_format: str
) -> None:
    """Add existing users (by email) to the account. An unknown email fails the whole
    command before anything changes.

    \b
    Examples:
      apsis-sso account members add acme ann@acme.com contractor@agency.example
      apsis-sso account members add acme --from-domains --dry-run
    """
    from provisioning import members as library

    if not emails and not from_domains:
        raise click.UsageError("give the EMAIL of at least one user, or --from-domains")
    changes = library.members_add(app.api(), account_id, list(emails), from_domains=from_domains, dry_run=dry_run)
    _report(account_id, changes, output_format, dry_run)


@members.command("remove", short_help="Remove users from the account.")
@click.argument("account_id", metavar="ACCOUNT")
@click.argument("emails", nargs=-1, required=True, metavar="EMAIL...")
@dry_run_option
@output_option
@pass_app
def remove(app: AppContext, account_id: str, emails: tuple[str, ...], dry_run: bool, output_format: str) -> None:
    """Remove users from the account and drop their link to its identity provider, so
    their next SSO sign-in is refused. Their APSIS One user and password stay.

    \b
    Example:
      apsis-sso account members remove acme bo@acme.com
    """
    from provisioning import members as library

    changes = library.members_remove(app.api(), account_id, list(emails), dry_run=dry_run)
    _report(account_id, changes, output_format, dry_run)


@members.command("list", short_help="The account's users.")
@click.argument("account_id", metavar="ACCOUNT")
@output_option
@pass_app
def list_(app: AppContext, account_id: str, output_format: str) -> None:
    """The account's users: enabled, linked to the account's Entra identity, on the
    pilot list, disabled by the sync daemon. Two paged listings, whatever the size.

    \b
    Examples:
      apsis-sso account members list acme
      apsis-sso account members list acme -o json | jq -r '.members[].email'
    """
    from apsis_core import validation
    from provisioning import members as library

    rows = library.member_rows(app.api(), account_id)
    account_id = validation.account_id(account_id)
    if output_format == "json":
        output.emit_json({"id": account_id, "account": account_id, "members": [r.to_dict() for r in rows]})
        return
    output.table(
        ["email", "username", "enabled", "SSO linked", "test user"],
        [
            [
                r.email,
                r.username,
                "yes" if r.enabled else (f"no ({r.disabled_by})" if r.disabled_by else "no"),
                "yes" if r.linked else "no",
                "yes" if r.pilot else "",
            ]
            for r in rows
        ],
        title=f"account {account_id}: {len(rows)} member(s)",
    )
