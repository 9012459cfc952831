"""How an apsis CLI turns every failure into one ``error: ...`` line and an exit code.

Shared by ``apsis-sso`` and ``apsis-sync``: click's own errors, the project's
``ApsisSsoError`` (whose class carries its exit code: 2 bad input, 75 try again later;
``provisioning.errors``) and anything unexpected all end the same
way, also under click's test runner (which calls ``main`` too). Secrets are scrubbed from
every message.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

import click

from apsis_core.errors import ApsisSsoError, exit_code_of


class ApsisCli(click.Group):
    """A click group whose ``main`` maps every failure to one stderr line and an exit code,
    also under click's test runner (which calls ``main`` too)."""

    program = "apsis-sso"
    debug_option = True  # the group has --debug; otherwise no hint to rerun with it

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
            result = super().main(argv, prog_name or self.program, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except ApsisSsoError as exc:
            code = _fail(str(exc), exit_code_of(exc), debug)
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
            hint = "" if debug or not self.debug_option else " (rerun with --debug for the traceback)"
            code = _fail(f"unexpected failure: {detail}{hint}", 1, debug)
        if standalone_mode:
            sys.exit(code)
        return code


def _fail(message: str, code: int, debug: bool) -> int:
    from provisioning.secret_input import scrub

    if debug and sys.exc_info()[0] is not None:
        click.echo(scrub(traceback.format_exc()), err=True)
    click.echo(f"error: {scrub(message)}", err=True)
    return code
