"""`apsis-sso plan|apply -f accounts.yaml` and `apsis-sso export`: accounts as code.

The file is the desired state of the accounts it lists. `plan` shows what would change
(secrets masked); `apply` proves every new or changed secret with Entra, asks, and
converges; `--prune` also deletes managed accounts the file no longer lists. Keycloak
resources the tool does not own (no `apsis.managedBy`) are never changed or deleted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from apsis_core import output
from apsis_core.cli import AppContext, confirm, output_option, pass_app, yes_option
from provisioning.cli import output as plan_output
from provisioning.parallel import DEFAULT_WORKERS, MAX_WORKERS  # light: no Keycloak client

if TYPE_CHECKING:
    from provisioning.plan import Plan

file_option = click.option(
    "--file",
    "-f",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The accounts file (YAML; see docs/operate.md, 'The declarative file').",
)
prune_option = click.option(
    "--prune",
    is_flag=True,
    help="Also delete accounts managed by apsis-sso that the file does not list.",
)
unproven_option = click.option(
    "--allow-unproven-domains",
    "allow_unproven",
    metavar="REASON",
    help="Link the domains Entra does not place in their account's tenant anyway, for this reason (recorded on "
    "each such account per domain; the plan shows where).",
)
parallel_option = click.option(
    "--parallel",
    "workers",
    type=click.IntRange(1, MAX_WORKERS),
    default=DEFAULT_WORKERS,
    show_default=True,
    metavar="N",
    help="Accounts applied at once (each account's changes stay in order; 1: one after another).",
)


@click.command("plan", short_help="Show what apply would change.")
@file_option
@prune_option
@click.option("--detailed-exitcode", is_flag=True, help="Exit 3 when there are changes, 0 when there are none.")
@unproven_option
@output_option
@pass_app
def plan_file(
    app: AppContext, path: Path, prune: bool, detailed_exitcode: bool, allow_unproven: str | None, output_format: str
) -> None:
    """Show what `apply` would change: creates, updates and deletes per account, with
    secrets shown only as (set)/(changed). Compares what Keycloak holds now (so hand
    edits show up) with the templates: a few paged listings for any number of
    accounts, plus one listing of every IdP mapper (the extension's). With
    APSIS_SSO_SYNC_SECRETS_DIR set, also the daemon's copy of each referenced secret.
    Domains not yet proven for their account's tenant are asked of Entra: new proofs
    show as changes, and a domain verified in another tenant or in none is refused (exit
    2) as apply would refuse it. Changes nothing. Progress goes to stderr (reading
    Keycloak, resolving tenant domains, proving domains, comparing): a live counter with rate and time left on a terminal, plain
    lines otherwise; stdout holds only the plan.

    \b
    Examples:
      apsis-sso plan -f accounts.yaml
      apsis-sso plan -f accounts.yaml --prune -o json
      apsis-sso plan -f accounts.yaml --detailed-exitcode || echo "drift"
    """
    from provisioning import declarative
    from provisioning.cli.progress import for_stderr

    desired = declarative.load(path)
    plan = declarative.plan(
        app.api(), app.settings(), desired, prune=prune, progress=for_stderr(), allow_unproven=allow_unproven
    )
    if output_format == "json":
        output.emit_json({"file": str(path), "prune": prune, **plan.to_dict()})
    else:
        plan_output.plan(plan, title=f"plan for {path} ({len(desired.accounts)} account(s) in the file)")
    output.warnings(plan.warnings)
    if detailed_exitcode and not plan.empty:
        click.get_current_context().exit(3)


@click.command("apply", short_help="Converge Keycloak to the accounts file.")
@file_option
@prune_option
@yes_option
@click.option("--dry-run", is_flag=True, help="Same as plan: print the plan and change nothing.")
@parallel_option
@unproven_option
@output_option
@pass_app
def apply_file(
    app: AppContext,
    path: Path,
    prune: bool,
    yes: bool,
    dry_run: bool,
    workers: int,
    allow_unproven: str | None,
    output_format: str,
) -> None:
    """Make Keycloak hold the file's accounts. Prints the plan, proves every new or
    changed client secret with Entra, asks for confirmation (unless --yes), then
    applies, repairing hand edits of what the templates own. With
    APSIS_SSO_SYNC_SECRETS_DIR set, every referenced secret apsis-sync lacks (or holds
    an older copy of) is written there in the same run. Applying twice changes nothing
    the second time; an apply that stops midway is completed by running it again.

    Every account with an identity provider needs each domain proven for its tenant:
    domains without a proof are asked of Entra before anything changes, and a domain
    verified in another tenant or in none stops the whole apply (exit 2; Entra not
    answering: 75) unless --allow-unproven-domains REASON, recorded on those accounts.

    Accounts are applied --parallel N at a time, each account's changes in order. The
    first failure stops new work: accounts under way finish, none starts, and the error
    says how far it got (exit 75 if the failure was temporary). Progress goes to stderr:
    a live counter with rate and time left on a terminal, one line per account otherwise.

    \b
    Examples:
      apsis-sso apply -f accounts.yaml
      ACME_ENTRA_SECRET=... apsis-sso apply -f accounts.yaml --yes
      apsis-sso apply -f accounts.yaml --prune --yes --parallel 8
    """
    from provisioning import declarative
    from provisioning.cli.progress import for_stderr

    def ask(plan: Plan) -> None:
        counts = plan.counts()
        confirm(f"Apply {counts['create']} create(s), {counts['update']} update(s), {counts['delete']} delete(s)?", yes)

    progress = for_stderr()
    desired = declarative.load(path)
    plan = declarative.plan(
        app.api(), app.settings(), desired, prune=prune, progress=progress, allow_unproven=allow_unproven
    )
    if output_format != "json":
        plan_output.plan(plan, title=f"plan for {path}")
    output.warnings(plan.warnings)
    applied = not dry_run and declarative.apply(
        app.api(), app.settings(), desired, plan, confirm=ask, workers=workers, progress=progress
    )
    if applied:
        output.status("applied")
    if output_format == "json":
        output.emit_json({"file": str(path), "prune": prune, "applied": applied, **plan.to_dict()})


@click.command("export", short_help="Write the managed accounts as a file.")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file instead of stdout."
)
@pass_app
def export(app: AppContext, out: Path | None) -> None:
    """Write every managed account as an accounts file (no secret references, so
    applying it keeps each current secret): the way to adopt the declarative mode.

    \b
    Example:
      apsis-sso export --out accounts.yaml && apsis-sso plan -f accounts.yaml
    """
    import yaml

    from provisioning import declarative

    text = yaml.safe_dump(declarative.export(app.api()), sort_keys=False, allow_unicode=True)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        output.status(f"wrote {out}")
