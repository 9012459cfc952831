"""What both CLIs (``apsis-sso``, ``apsis-sync``) share: the click group that ends every
failure in one ``error: ...`` line and an exit code, the context that builds settings and
the Keycloak repository on first use, and the common options.

Exit codes ride on the exceptions: ours are ``click.ClickException``s carrying theirs
(``apsis_core.errors``) and print themselves, scrubbed of secrets. This group only adds
what operators and scripts need beyond click: a usage error is one line pointing to
``--help`` (not click's usage block), a group without a command shows its help with exit
0, a failure is one line (its traceback only with ``--debug``), and a
command may return its exit code (``apsis-sync run --once``).

Settings and connections are built on first use, so ``--help`` and input errors never wait
for pydantic or python-keycloak, and a command fails on bad input before it connects.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from apsis_core import redaction
from apsis_core.errors import EX_FAILURE, EX_INTERRUPTED, EX_USAGE, ApsisError, Declined

if TYPE_CHECKING:
    from apsis_core.keycloak import KeycloakRepository
    from apsis_core.mail import MailSettings
    from apsis_core.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class ApsisCli(click.Group):
    """A click group whose ``main`` ends every failure in one stderr line and an exit code,
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
        argv = globals_first(self, list(sys.argv[1:] if args is None else args))
        debug = "--debug" in argv or os.environ.get("APSIS_SSO_DEBUG", "") not in ("", "0", "false")
        try:
            result = super().main(argv, prog_name or self.program, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else 0
        except click.exceptions.NoArgsIsHelpError as exc:  # `apsis-sso account`: show the help
            assert exc.ctx is not None
            click.echo(exc.ctx.get_help())
            code = 0
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            code = _fail(f"{exc.format_message()}{hint}", EX_USAGE)
        except ApsisError as exc:
            if debug:
                _echo_scrubbed(traceback.format_exc())
            exc.show()
            code = exc.exit_code
        except click.ClickException as exc:
            code = _fail(exc.format_message(), exc.exit_code)
        except click.Abort as exc:
            if interrupted(exc):  # Ctrl-C: the shell's convention, apart from a declined question (1)
                code = _fail(
                    "interrupted; if a change was under way, run the command again to finish it", EX_INTERRUPTED
                )
            else:
                code = _fail("aborted", EX_FAILURE)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            detail = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
            hint = "" if debug or not self.debug_option else " (rerun with --debug for the traceback)"
            if debug:
                _echo_scrubbed(traceback.format_exc())
            code = _fail(f"unexpected failure: {detail}{hint}", EX_FAILURE)
        if standalone_mode:
            sys.exit(code)
        return code


def interrupted(exc: click.Abort) -> bool:
    """click turns Ctrl-C (KeyboardInterrupt) into Abort, keeping it as the cause or, in its
    prompts, as the context."""
    return isinstance(exc.__cause__, KeyboardInterrupt) or isinstance(exc.__context__, KeyboardInterrupt)


_NEVER_MOVED = frozenset({"--help", "-h", "--version"})


def globals_first(group: click.Group, argv: list[str]) -> list[str]:
    """The group's own options (``--env-file``, ``--debug``, ...) given after the subcommand,
    moved before it, so ``account show acme --env-file f`` works like ``--env-file f account show
    acme``. An option a subcommand on the way defines itself stays where it is, and so does a
    token that is the value of another option or follows ``--``."""

    def arity(command: click.Command) -> dict[str, bool]:
        found: dict[str, bool] = {}
        for param in command.params:
            if isinstance(param, click.Option):
                for name in (*param.opts, *param.secondary_opts):
                    found[name] = not param.is_flag and not param.count
        return found

    own = {name: value for name, value in arity(group).items() if name not in _NEVER_MOVED}
    i = 0  # the group's leading options stay as they are
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        takes = own.get(argv[i]) and "=" not in argv[i]
        i += 2 if takes else 1
    head, kept, moved = argv[:i], [], []
    command: click.Command = group
    path: dict[str, bool] = {}
    rest = argv[i:]
    j = 0
    while j < len(rest):
        token = rest[j]
        name = token.split("=", 1)[0]
        if token == "--":
            kept.extend(rest[j:])
            break
        if name in path:  # an option of a subcommand on the way, with its value
            width = 2 if path[name] and "=" not in token else 1
            kept.extend(rest[j : j + width])
            j += width
            continue
        if name in own:
            width = 2 if own[name] and "=" not in token else 1
            moved.extend(rest[j : j + width])
            j += width
            continue
        if isinstance(command, click.Group) and token in command.commands:
            command = command.commands[token]
            path.update(arity(command))
        kept.append(token)
        j += 1
    return head + moved + kept


def _echo_scrubbed(text: str) -> None:
    click.echo(redaction.scrub(text), err=True)


def _fail(message: str, code: int) -> int:
    _echo_scrubbed(f"error: {message}")
    return code


@dataclass
class AppContext:
    """What a command needs, built on first use: settings and the tooling's Keycloak."""

    env_file: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _api: KeycloakRepository | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from apsis_core.settings import Settings, load_settings

            self._settings = load_settings(Settings, self.env_file)
            for secret in (self._settings.keycloak_client_secret, self._settings.keycloak_admin_password):
                redaction.remember(secret.get_secret_value() if secret else None)
        return self._settings

    def mail_settings(self) -> MailSettings:
        """The SMTP settings of apsis-sync (``APSIS_SYNC_SMTP_*``), for the mail the CLI sends."""
        from apsis_core.mail import MailSettings
        from apsis_core.settings import load_settings

        found = load_settings(MailSettings, self.env_file)
        redaction.remember(found.smtp_password.get_secret_value() if found.smtp_password else None)
        return found

    def api(self) -> KeycloakRepository:
        """The tooling service account: every command but `realm apply`."""
        if self._api is None:
            from apsis_core.keycloak import KeycloakRepository

            self._api = KeycloakRepository.for_tooling(self.settings())
        return self._api

    def admin_api(self) -> KeycloakRepository:
        from apsis_core.keycloak import KeycloakRepository

        return KeycloakRepository.for_admin(self.settings())


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def env_file_option(f: F) -> F:
    """``--env-file PATH``: settings from this file instead of ``./.env`` (it must exist)."""

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise click.BadParameter(f"{value} does not exist", ctx=ctx, param=param)
        return value

    return click.option(
        "--env-file",
        type=click.Path(dir_okay=False, path_type=Path),
        callback=check,
        help="Read settings from this file instead of ./.env.",
    )(f)


def output_option(f: F) -> F:
    return click.option(
        "--output",
        "-o",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="table for people; json (stable keys) for scripts.",
    )(f)


def dry_run_option(f: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(f)


def yes_option(f: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (scripts).")(f)


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive change; no answer (closed stdin) means no."""
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort as exc:
        click.echo(err=True)  # end the unanswered prompt's line
        if interrupted(exc):
            raise  # Ctrl-C is not an answer
        agreed = False
    if not agreed:
        raise Declined("aborted: nothing was changed (pass --yes to skip this question)")
