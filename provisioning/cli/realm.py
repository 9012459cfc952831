"""`apsis-sso realm apply`: the shared realm from realm-templates/realm.json."""

from __future__ import annotations

import click

from apsis_core import output
from apsis_core.cli import AppContext, dry_run_option, output_option, pass_app
from apsis_core.errors import EX_CHANGES
from provisioning.cli import output as plan_output


@click.group(short_help="The realm that holds every account.")
def realm() -> None:
    """The one realm that holds every account (flows, clients, user profile)."""


@realm.command("apply", short_help="Create or converge the realm.")
@dry_run_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 3 when there were changes (applied, or pending with --dry-run), 0 when there were none.",
)
@output_option
@pass_app
def realm_apply(app: AppContext, dry_run: bool, detailed_exitcode: bool, output_format: str) -> None:
    """Create or converge the realm from realm-templates/realm.json.

    Needs a master-realm administrator (APSIS_SSO_KEYCLOAK_ADMIN_USERNAME and
    APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD or _FILE) and the tooling client's secret
    (APSIS_SSO_KEYCLOAK_CLIENT_SECRET or _FILE), which it sets on the apsis-sso-admin
    client. Only the fields the template names are compared; settings made by hand
    elsewhere in the realm are left alone. Running it twice changes nothing.

    \b
    Examples:
      apsis-sso realm apply --dry-run
      apsis-sso realm apply
      apsis-sso realm apply --dry-run --detailed-exitcode || echo "the realm has drifted"
    """
    from provisioning.realm import plan_realm

    settings = app.settings()
    admin = app.admin_api()
    plan = plan_realm(admin, settings)
    if not dry_run and not plan.empty:
        output.status(f"applying {len(plan.changes)} change(s) to realm {settings.realm}")
        plan.apply(admin, progress=plan_output.progress)
    if output_format == "json":
        output.emit_json({"realm": settings.realm, "applied": not dry_run, "plan": plan.to_dict()})
    else:
        title = f"realm {settings.realm}: " + ("plan (dry run, nothing changed)" if dry_run else "applied")
        plan_output.plan(plan, title=title)
    if detailed_exitcode and not plan.empty:
        click.get_current_context().exit(EX_CHANGES)
