"""What the portal tells its operators: Prometheus metrics (served on a port of their own,
``APSIS_PORTAL_METRICS_PORT``, never the public one), one access-log line per request, and a
request id that ties the access line, the audit record and the answer (``X-Request-ID``)
together.

The access log names the route *template* (``/i/{account}/{token}``), never the path: a
link's path holds its token. Labels stay low-cardinality: route templates, methods, status
codes, audit actions, outcomes and refusal reasons; never an account, a user or a token.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("apsis_portal_request_id", default=None)
ACCESS = logging.getLogger("apsis_portal.access")


class PortalMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "apsis_portal_requests",
            "Requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.seconds = Histogram(
            "apsis_portal_request_duration_seconds",
            "Time to answer, by route template",
            ["route"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.actions = Counter(
            "apsis_portal_actions",
            "Audited actions (link-opened: the link checks; setup-submitted, renewal-submitted, ready) by "
            "outcome and refusal reason (rate-limited: a rate limit hit)",
            ["action", "outcome", "reason"],
            registry=r,
        )
        for route in ("/i/{account}/{token}", "/setup", "/setup/ready", "/renew"):
            for status in ("200", "500"):
                self.requests.labels(route, "GET" if route.startswith("/i/") else "POST", status)


METRICS = PortalMetrics()
"""One portal per process: its metrics."""


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """The template of the route that serves ``scope`` (``unmatched`` for a 404)."""
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return f"{route.path}/*" if isinstance(route, Mount) else str(getattr(route, "path", "unmatched"))
    return "unmatched"


class Observe:
    """ASGI middleware: a request id, the metrics and the access-log line of every request."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = secrets.token_hex(8)
        token = REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(self.routes, scope)
            METRICS.requests.labels(route, scope["method"], str(status)).inc()
            METRICS.seconds.labels(route).observe(seconds)
            client = scope.get("client")
            ACCESS.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(seconds * 1000, 1),
                    "client": client[0] if client else None,
                },
            )
            REQUEST_ID.reset(token)


def count_action(action: str, outcome: str, details: dict[str, Any]) -> None:
    METRICS.actions.labels(action, outcome, str(details.get("reason") or "")).inc()
