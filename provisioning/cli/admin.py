"""`apsis-sso keycloak-admin`: Keycloak's own administrators, as a deployment needs them."""

from __future__ import annotations

from pathlib import Path

import click

from apsis_core import redaction
from apsis_core.cli import AppContext, pass_app
from apsis_core.errors import InvalidInput, KeycloakRefused


@click.group("keycloak-admin", short_help="Keycloak's permanent administrator for realm apply.")
def keycloak_admin() -> None:
    """Keycloak's master-realm administrators, as a deployment needs them."""


@keycloak_admin.command("ensure", short_help="Make the permanent admin; retire the bootstrap admin.")
@click.option(
    "--bootstrap-username",
    envvar="KC_BOOTSTRAP_ADMIN_USERNAME",
    default="temp-admin",
    show_default=True,
    help="The temporary admin Keycloak made on its first start (env KC_BOOTSTRAP_ADMIN_USERNAME).",
)
@click.option(
    "--bootstrap-password-file",
    envvar="KC_BOOTSTRAP_ADMIN_PASSWORD_FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="File holding its password (env KC_BOOTSTRAP_ADMIN_PASSWORD_FILE); read only while the "
    "permanent admin does not work yet.",
)
@pass_app
def ensure(app: AppContext, bootstrap_username: str, bootstrap_password_file: Path | None) -> None:
    """Give Keycloak a permanent administrator for `realm apply`, and delete the temporary
    bootstrap admin Keycloak made on its first start.

    The permanent admin is APSIS_SSO_KEYCLOAK_ADMIN_USERNAME with the password of
    APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD(_FILE), as `realm apply` signs in. It is created (or its
    password updated) by the bootstrap admin, given the master realm's admin role, proven to
    sign in, and then every temporary admin is deleted. Run again, it finds the permanent
    admin working and changes nothing: compose runs it on every `up` (service keycloak-admin).

    \b
    Examples:
      APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE=/run/secrets/admin \\
      KC_BOOTSTRAP_ADMIN_PASSWORD_FILE=/run/secrets/bootstrap apsis-sso keycloak-admin ensure
    """
    from apsis_core.keycloak import KeycloakRepository
    from apsis_core.settings import read_secret_file
    from provisioning.master_admin import ensure_permanent_admin

    settings = app.settings()
    if settings.keycloak_admin_password is None:
        raise KeycloakRefused(
            "no Keycloak admin password: set APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD or APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE"
        )

    def bootstrap_password() -> str:
        if bootstrap_password_file is None:
            raise InvalidInput("KC_BOOTSTRAP_ADMIN_PASSWORD_FILE is not set (needed until the permanent admin works)")
        try:
            value = read_secret_file(bootstrap_password_file)
        except ValueError as exc:
            raise InvalidInput(f"KC_BOOTSTRAP_ADMIN_PASSWORD_FILE: {exc}") from None
        if not value:
            raise InvalidInput(f"KC_BOOTSTRAP_ADMIN_PASSWORD_FILE: {bootstrap_password_file} is empty")
        redaction.remember(value)
        return value

    done = ensure_permanent_admin(
        lambda username, password: KeycloakRepository.for_master(settings, username, password),
        settings.keycloak_url,
        settings.keycloak_admin_username,
        settings.keycloak_admin_password.get_secret_value(),
        bootstrap_username,
        bootstrap_password,
    )
    click.echo(done)
