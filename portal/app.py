"""The portal as an ASGI application: what every page needs (``Portal``), and the routes.

Blocking work — python-keycloak over ``requests``, Entra through ``asyncio.run`` in the
library — runs in Starlette's thread pool; each pool thread keeps its own Keycloak
repository (and token), as the daemon's workers do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from apsis_core.keycloak import KeycloakRepository
from apsis_core.mail import MailSettings
from apsis_core.settings import Settings
from portal.audit import Audit
from portal.ratelimit import RateLimiter
from portal.security import SecurityHeaders, SessionCodec
from portal.settings import PortalSettings

HERE = Path(__file__).resolve().parent
T = TypeVar("T")


class Repositories:
    """One Keycloak repository per thread, made on first use and kept (with its token)."""

    def __init__(self, factory: Callable[[], KeycloakRepository]) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self) -> KeycloakRepository:
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = self._factory()
        return api


@dataclass
class Portal:
    """Everything the pages need, built once per process."""

    settings: Settings
    portal: PortalSettings
    mail: MailSettings
    audit: Audit
    repositories: Repositories
    sessions: SessionCodec = field(init=False)
    submissions: RateLimiter = field(init=False)
    opens: RateLimiter = field(init=False)
    templates: Jinja2Templates = field(init=False)

    def __post_init__(self) -> None:
        assert self.settings.portal_url and self.portal.session_key
        self.sessions = SessionCodec(
            self.portal.session_key.get_secret_value(), self.portal.session_minutes * 60, secure=self.https
        )
        self.submissions = RateLimiter(self.portal.submissions_per_link, self.portal.submission_window_seconds)
        self.opens = RateLimiter(self.portal.opens_per_minute, 60)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals["contact"] = self.mail.platform_team_email

    @property
    def https(self) -> bool:
        return bool(self.settings.portal_url and self.settings.portal_url.startswith("https://"))

    @property
    def url(self) -> str:
        assert self.settings.portal_url
        return self.settings.portal_url

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(api, *args)`` in the thread pool with this thread's Keycloak repository."""
        return await run_in_threadpool(lambda: fn(self.repositories.get(), *args, **kwargs))

    def page(
        self, request: Request, name: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any
    ) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status, headers=headers)


def create_app(portal: Portal) -> Starlette:
    from portal import pages

    routes = [
        Route("/", pages.home),
        Route("/healthz", pages.healthz),
        Route("/i/{account}/{token}", pages.open_link),
        Route("/setup", pages.setup, methods=["GET", "POST"]),
        Route("/setup/ready", pages.ready, methods=["POST"]),
        Route("/renew", pages.renew, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, https=portal.https)],
        exception_handlers={404: pages.not_found, 405: pages.not_allowed, 500: pages.failed},
    )
    app.state.portal = portal
    return app
