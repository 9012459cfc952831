"""What every page of the portal needs (``Portal``), built once per process.

Blocking work — python-keycloak over ``requests``, Entra through ``asyncio.run`` in the
library — runs in Starlette's thread pool; each pool thread keeps its own Keycloak
repository (and token), as the daemon's workers do. The routes are ``portal.app``'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from apsis_core.keycloak import KeycloakRepository
from apsis_core.mail import MailSettings
from apsis_core.settings import Settings
from portal.audit import Audit
from portal.ratelimit import Limiter, limiter
from portal.security import SessionCodec
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
    submissions: Limiter = field(init=False)
    opens: Limiter = field(init=False)
    templates: Jinja2Templates = field(init=False)

    def __post_init__(self) -> None:
        assert self.settings.portal_url and self.portal.session_key
        self.sessions = SessionCodec(
            self.portal.session_key.get_secret_value(), self.portal.session_minutes * 60, secure=self.https
        )
        shared = self.portal.rate_limit_url.get_secret_value() if self.portal.rate_limit_url else None
        self.submissions = limiter(
            self.portal.submissions_per_link, self.portal.submission_window_seconds, "submit", shared
        )
        self.opens = limiter(self.portal.opens_per_minute, 60, "open", shared)
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


def portal_of(request: Request) -> Portal:
    """The ``Portal`` of the application serving ``request``."""
    portal: Portal = request.app.state.portal
    return portal
