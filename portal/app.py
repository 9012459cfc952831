"""The portal as an ASGI application: its routes, the handlers of refusals and errors, and
the security headers around every answer (``Portal``, in ``portal.context``, is what the
pages share)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from portal import pages
from portal.context import Portal
from portal.observability import Observe
from portal.refusals import Refused
from portal.security import SecurityHeaders

HERE = Path(__file__).resolve().parent


def create_app(portal: Portal) -> Starlette:
    routes = [
        Route("/", pages.home),
        Route("/healthz", pages.healthz),
        Route("/livez", pages.healthz),
        Route("/readyz", pages.readyz),
        Route("/i/{account}/{token}", pages.open_link),
        Route("/setup", pages.setup, methods=["GET", "POST"]),
        Route("/setup/ready", pages.ready, methods=["POST"]),
        Route("/renew", pages.renew, methods=["GET", "POST"]),
        Route("/certificate.cer", pages.certificate_file),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Observe, routes=routes), Middleware(SecurityHeaders, https=portal.https)],
        exception_handlers={Refused: pages.refused, 404: pages.not_found, 405: pages.not_allowed, 500: pages.failed},
    )
    app.state.portal = portal
    return app
