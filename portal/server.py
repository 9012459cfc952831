"""Build the portal from its settings and serve it with uvicorn.

uvicorn's access log is off: a link's path holds its token, and tokens are never logged;
``portal.observability`` writes one line per request with the route template instead.
Our own log lines (``apsis_portal``) and uvicorn's errors go through the shared structured
logging with every known secret scrubbed; the audit trail is its own stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from apsis_core import logs, redaction
from apsis_core.cli import AppContext
from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import load_settings
from portal.app import create_app
from portal.audit import Audit
from portal.context import Portal, Repositories
from portal.settings import PortalSettings

T = TypeVar("T")


def build(app: AppContext) -> Portal:
    """Every setting read and checked; nothing listens yet."""
    problems: list[str] = []

    def attempt(load: Callable[[], T]) -> T | None:
        try:
            return load()
        except InvalidInput as exc:
            problems.append(exc.message.removeprefix("configuration: "))
            return None

    settings = attempt(app.settings)
    portal_settings = attempt(lambda: load_settings(PortalSettings, app.env_file))
    mail = attempt(app.mail_settings)
    if settings is not None:
        if not settings.portal_url:
            problems.append(
                "APSIS_SSO_PORTAL_URL must be set: the portal's address as browsers reach it (links, "
                "cookies and the origin check follow it)"
            )
        if settings.sync_secrets_dir is None:
            problems.append(
                "APSIS_SSO_SYNC_SECRETS_DIR must be set: the portal hands every secret it accepts to apsis-sync there"
            )
        if settings.keycloak_client_secret is None:
            problems.append("no Keycloak client secret: set APSIS_SSO_KEYCLOAK_CLIENT_SECRET or _FILE")
    if problems or settings is None or portal_settings is None or mail is None:  # all at once, as the CLIs do
        raise InvalidInput(f"configuration: {'; '.join(problems)}")
    assert portal_settings.session_key is not None
    redaction.remember(portal_settings.session_key.get_secret_value())
    logs.configure(portal_settings.log_format, portal_settings.log_level, logger="apsis_portal")
    ours = logging.getLogger("apsis_portal").handlers
    for handler in ours:
        handler.addFilter(logs.ScrubSecrets())
    for name in ("uvicorn", "uvicorn.error"):  # its errors (a traceback of ours) in the same stream, scrubbed
        logging.getLogger(name).handlers[:] = ours
        logging.getLogger(name).propagate = False
    return Portal(
        settings,
        portal_settings,
        mail,
        Audit(portal_settings.audit_log),
        Repositories(lambda: KeycloakRepository.for_tooling(settings)),
    )


def serve(portal: Portal, host: str, port: int) -> None:
    import uvicorn

    log = logging.getLogger("apsis_portal")
    log.info("portal listening", extra={"address": f"{host}:{port}", "url": portal.url})
    if portal.portal.metrics_port:
        from prometheus_client import start_http_server

        from portal.observability import METRICS

        start_http_server(portal.portal.metrics_port, portal.portal.metrics_address, registry=METRICS.registry)
        log.info(
            "metrics listening", extra={"address": f"{portal.portal.metrics_address}:{portal.portal.metrics_port}"}
        )
    uvicorn.run(
        create_app(portal),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=portal.portal.forwarded_allow_ips,
        server_header=False,
    )
    portal.audit.close()
