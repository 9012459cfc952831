"""`apsis-portal`: the self-serve portal's web server.

``apsis-portal run`` serves the pages with uvicorn until SIGTERM. Settings: the shared
``APSIS_SSO_*`` (Keycloak, Entra, ``APSIS_SSO_PORTAL_URL``, ``APSIS_SSO_SYNC_SECRETS_DIR``),
the daemon's mail settings (``APSIS_SYNC_SMTP_*``) and the portal's ``APSIS_PORTAL_*``.
A bad setting is one ``error: ...`` line and exit code 2, before anything listens.
"""

from __future__ import annotations

from pathlib import Path

import click

from apsis_core.cli import AppContext, ApsisCli, env_file_option, pass_app

EXIT_CODES = """\b
Exit codes:
  0  stopped by SIGTERM or Ctrl-C
  1  unexpected failure
  2  configuration error (a missing or bad setting): nothing was started
"""


class PortalCli(ApsisCli):
    program = "apsis-portal"
    debug_option = False


@click.group(
    name="apsis-portal",
    cls=PortalCli,
    epilog=EXIT_CODES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@env_file_option
@click.version_option(package_name="apsis-sso", prog_name="apsis-portal")
@click.pass_context
def main(ctx: click.Context, env_file: Path | None) -> None:
    """The self-serve portal: a customer's IT contact sets up SSO and renews the client
    secret through a one-time link (`apsis-sso account invite`).

    \b
    Settings (environment or .env):
      APSIS_SSO_PORTAL_URL          the portal as browsers reach it (https in production)
      APSIS_SSO_SYNC_SECRETS_DIR    where apsis-sync reads each account's secret (read-write here)
      APSIS_PORTAL_SESSION_KEY(_FILE)  signs session cookies; 32+ random characters
      APSIS_SSO_KEYCLOAK_*, APSIS_SSO_ENTRA_*  as for apsis-sso
      APSIS_SYNC_SMTP_*, APSIS_SYNC_PLATFORM_TEAM_EMAIL  mail to the platform team

    \b
    Example:
      apsis-portal --env-file /etc/apsis-sso.env run --port 8090
    """
    ctx.obj = AppContext(env_file=env_file)


@main.command("run")
@click.option("--host", help="Address to listen on (default APSIS_PORTAL_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default APSIS_PORTAL_PORT, 8090).")
@pass_app
def run(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the portal until SIGTERM (or Ctrl-C).

    \b
    Example:
      APSIS_PORTAL_SESSION_KEY_FILE=/run/secrets/portal-key apsis-portal run --host 0.0.0.0
    """
    from portal.server import build, serve

    portal = build(app)
    serve(portal, host or portal.portal.host, port or portal.portal.port)
