"""`apsis-sso`: the click group, its global options, and how failures become exit codes.

Every failure ends as one line on stderr, ``error: ...``, and an exit code a script can
branch on; the traceback is shown only with ``--debug``. Commands live in small modules
(cli_realm, cli_accounts, cli_members, cli_declarative) that import the library inside
their functions, so ``apsis-sso --help`` loads click and nothing heavy.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from provisioning.cli_accounts import account
from provisioning.cli_context import AppContext
from provisioning.cli_declarative import apply_file, export, plan_file
from provisioning.cli_realm import realm
from provisioning.errors import ApsisSsoError

EXIT_CODES = """\b
Exit codes:
  0  success (for plan: success, whether or not there are changes)
  1  unexpected failure, an apply interrupted midway (rerun it), or a declined confirmation
  2  bad input, unknown or conflicting account, configuration error, Keycloak
     unreachable or credentials refused, Entra refused the tenant or secret
  3  plan --detailed-exitcode: there are changes to apply
"""


class ApsisCli(click.Group):
    """A click group whose ``main`` maps every failure to one stderr line and an exit code,
    also under click's test runner (which calls ``main`` too)."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv or os.environ.get("APSIS_SSO_DEBUG", "") not in ("", "0", "false")
        try:
            result = super().main(argv, prog_name or "apsis-sso", complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except ApsisSsoError as exc:
            code = _fail(str(exc), exc.exit_code, debug)
        except click.exceptions.NoArgsIsHelpError as exc:  # `apsis-sso account`: show the help
            assert exc.ctx is not None
            click.echo(exc.ctx.get_help())
            code = 0
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            code = _fail(f"{exc.format_message()}{hint}", 2, False)
        except click.ClickException as exc:
            code = _fail(exc.format_message(), exc.exit_code, False)
        except click.Abort:
            code = _fail("aborted", 1, False)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            code = _fail(f"unexpected failure: {detail}" + ("" if debug else " (rerun with --debug for the traceback)"), 1, debug)
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str, code: int, debug: bool) -> int:
    from provisioning.secret_input import scrub

    if debug and sys.exc_info()[0] is not None:
        click.echo(scrub(traceback.format_exc()), err=True)
    click.echo(f"error: {scrub(message)}", err=True)
    return code


@click.group(
    name="apsis-sso",
    cls=ApsisCli,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES,
)
@click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read APSIS_SSO_* settings from this file instead of ./.env.")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected failures.")
@click.version_option(package_name="apsis-sso", prog_name="apsis-sso")
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, debug: bool) -> None:
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
    if env_file is not None and not env_file.is_file():
        raise click.BadParameter(f"{env_file} does not exist", param_hint="--env-file")
    ctx.obj = AppContext(env_file=env_file, debug=debug)


main.add_command(realm)
main.add_command(account)
main.add_command(plan_file)
main.add_command(apply_file)
main.add_command(export)
