"""`apsis-sso`: the click group and its global options.

Every failure ends as one line on stderr, ``error: ...``, and an exit code a script can
branch on; the traceback is shown only with ``--debug`` (``apsis_core.cli``). Commands live
in small modules (realm, accounts, members, declarative) that only parse, call one library
function of ``provisioning`` and print (``output``); they import the library inside their
functions, so ``apsis-sso --help`` loads click and nothing heavy.
"""

from __future__ import annotations

from pathlib import Path

import click

from apsis_core import logs
from apsis_core.cli import AppContext, ApsisCli, env_file_option
from apsis_core.logs import LEVELS
from provisioning.cli.accounts import account
from provisioning.cli.admin import keycloak_admin
from provisioning.cli.assertion_key import assertion_key
from provisioning.cli.declarative import apply_file, export, plan_file
from provisioning.cli.realm import realm

EXIT_CODES = """\b
Exit codes:
  0  success (for plan: success, whether or not there are changes)
  1  unexpected failure, an apply interrupted midway (rerun it), or a declined confirmation
  2  bad input, unknown or conflicting account, configuration error, Keycloak
     credentials refused, Entra refused the tenant or secret: change something first
  3  plan --detailed-exitcode / realm apply --detailed-exitcode: there were changes
     (to apply, or applied)
  75 temporary failure (EX_TEMPFAIL): Keycloak or Entra unreachable, a timeout,
     HTTP 5xx or 429; nothing is wrong with the request: retry later
  130 interrupted (Ctrl-C): a change under way may be partly done; run the command again
"""


@click.group(
    name="apsis-sso",
    cls=ApsisCli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES,
)
@env_file_option
@click.option(
    "--debug",
    is_flag=True,
    help="Show tracebacks of unexpected failures and log at DEBUG (unless --log-level says otherwise).",
)
@click.option(
    "--log-level",
    type=click.Choice(LEVELS, case_sensitive=False),
    default=None,
    help="Log to stderr at this level (default: no logs). DEBUG also shows what the HTTP libraries "
    "log (secrets scrubbed).",
)
@click.version_option(package_name="apsis-sso", prog_name="apsis-sso")
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, debug: bool, log_level: str | None) -> None:
    """Onboard and operate APSIS One accounts' single sign-on with Microsoft Entra ID.

    Each account is a Keycloak organization (its email domains, members and SSO
    metadata) with an Entra identity provider linked to it. Every change is planned
    first: --dry-run prints the plan, and running a command twice changes nothing
    the second time.

    Configuration comes from APSIS_SSO_* environment variables or a .env file:
    APSIS_SSO_KEYCLOAK_URL, APSIS_SSO_REALM, APSIS_SSO_KEYCLOAK_CLIENT_SECRET(_FILE),
    APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD(_FILE) (realm apply only), APSIS_SSO_ENTRA_AUTHORITY,
    APSIS_SSO_GRAPH_BASE_URL.

    \b
    Examples:
      apsis-sso realm apply --dry-run
      apsis-sso account create acme --name "Acme" --tenant-id acme.onmicrosoft.com \\
          --client-id 0e1c...-... --domain acme.com --secret-expires 2027-03-31 \\
          --it-contact-name "Ivy" --it-contact-email it@acme.com \\
          --test-user ann@acme.com --client-secret-file ./acme.secret
      apsis-sso account list -o json
      apsis-sso plan -f accounts.yaml && apsis-sso apply -f accounts.yaml --yes
    """
    if log_level or debug:
        logs.configure("text", log_level or "DEBUG", logger="apsis_sso")
    ctx.obj = AppContext(env_file=env_file, debug=debug)


main.add_command(realm)
main.add_command(account)
main.add_command(plan_file)
main.add_command(apply_file)
main.add_command(export)
main.add_command(keycloak_admin)
main.add_command(assertion_key)
