"""What every command shares: configuration, Keycloak connections, common options.

Settings and connections are built on first use, so `--help` and input errors never wait
for pydantic or python-keycloak, and a command fails on bad input before it connects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from apsis_core.errors import ApsisSsoError, InvalidInput

if TYPE_CHECKING:
    from provisioning.keycloak_api import KeycloakApi
    from provisioning.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S")


class Declined(ApsisSsoError):
    """The operator answered no (or nobody could answer): nothing was changed."""

    exit_code = 1


@dataclass
class AppContext:
    env_file: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _api: KeycloakApi | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from provisioning import secret_input
            from provisioning.settings import Settings

            self._settings = self.load_settings(Settings, "APSIS_SSO_")
            for secret in (self._settings.keycloak_client_secret, self._settings.keycloak_admin_password):
                secret_input.remember(secret.get_secret_value() if secret else None)
        return self._settings

    def load_settings(self, cls: type[S], prefix: str) -> S:
        """A pydantic-settings class from the environment and the env file; a bad value
        is one line naming the variable (exit code 2)."""
        from pydantic import ValidationError

        try:
            extra: dict[str, Any] = {"_env_file": self.env_file} if self.env_file else {}
            return cls(**extra)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
            message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
            raise InvalidInput(f"configuration: {prefix}{where.upper()}: {message}") from None

    def api(self) -> KeycloakApi:
        """The tooling service account: every command but `realm apply`."""
        if self._api is None:
            from provisioning.keycloak_api import KeycloakApi

            self._api = KeycloakApi.for_tooling(self.settings())
        return self._api

    def admin_api(self) -> KeycloakApi:
        from provisioning.keycloak_api import KeycloakApi

        return KeycloakApi.for_admin(self.settings())


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def env_file_option(f: F) -> F:
    """``--env-file PATH``: settings from this file instead of ``./.env`` (it must exist)."""

    def check(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise click.BadParameter(f"{value} does not exist", ctx=ctx, param=param)
        return value

    return click.option("--env-file", type=click.Path(dir_okay=False, path_type=Path), callback=check,
                        help="Read settings from this file instead of ./.env.")(f)


def output_option(f: F) -> F:
    return click.option(
        "--output", "-o", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True,
        help="table for people; json (stable keys) for scripts.",
    )(f)


def dry_run_option(f: F) -> F:
    return click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")(f)


def yes_option(f: F) -> F:
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (scripts).")(f)


def secret_options(f: F) -> F:
    f = click.option(
        "--client-secret-env", metavar="NAME",
        help="Read the client secret from this environment variable (default APSIS_SSO_ENTRA_CLIENT_SECRET).",
    )(f)
    return click.option(
        "--client-secret-file", metavar="PATH",
        help="Read the client secret from this file ('-' for stdin). Without it or the variable: hidden prompt.",
    )(f)


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive change; no answer (closed stdin) means no."""
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:
        click.echo(err=True)  # end the unanswered prompt's line
        agreed = False
    if not agreed:
        raise Declined("aborted: nothing was changed (pass --yes to skip this question)")
