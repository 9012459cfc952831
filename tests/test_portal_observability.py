"""The portal as an operator sees it: metrics on a port of their own, one access-log line
per request naming the route template (never the link's token), a request id shared by the
answer, the access line and the audit record, and probes that split liveness (the process)
from readiness (Keycloak answers): a Keycloak outage makes it unready, never dead.

A real ``apsis-portal run`` process against the session's Keycloak, through the test
reverse proxy so Keycloak can go away and come back.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from prometheus_client.parser import text_string_to_metric_families

from apsis_core.settings import Settings
from devenv.reverse_proxy import ReverseProxy
from tests.portal_fixtures import Customer, start_portal
from tests.sync_fixtures import SmtpServer, free_port

LINK_ROUTE = "/i/{account}/{token}"


def closed_port() -> tuple[str, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return "127.0.0.1", s.getsockname()[1]


def sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of the sample ``name`` whose labels include ``labels``, from Prometheus text."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and labels.items() <= s.labels.items():
                return float(s.value)
    return None


T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 15) -> T:
    """``probe()``'s first non-None answer: the access line and the request count are written
    just after the answer has left, so a client can be faster than them."""
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.1)
    return found


def access_line(log: Path, request_id: str) -> dict[str, Any] | None:
    for raw in log.read_text().splitlines():
        if '"apsis_portal.access"' in raw:
            line = dict(json.loads(raw))
            if line.get("request_id") == request_id:
                return line
    return None


def status(url: str) -> int:
    return requests.get(url, timeout=30).status_code


def test_the_portal_logs_counts_and_probes_without_ever_naming_a_token(
    customer: Callable[..., Customer], settings: Settings, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    acct = customer()
    metrics_port = free_port()
    with ReverseProxy.to(settings.keycloak_url) as proxy:
        keycloak = proxy.backends["keycloak"]
        running = start_portal(
            settings.model_copy(update={"keycloak_url": proxy.url}),
            smtp_server,
            tmp_path / "portal",
            APSIS_PORTAL_METRICS_PORT=str(metrics_port),
        )
        try:
            opened = requests.get(running.url + urlsplit(acct.link).path, timeout=60, allow_redirects=False)
            request_id = opened.headers["X-Request-ID"]
            assert len(request_id) == 16

            [audit] = [r for r in running.audit_records() if r.get("request_id") == request_id]
            assert audit["action"] == "link-opened" and audit["outcome"] == "ok"
            line = eventually(lambda: access_line(running.log, request_id))  # written once the answer is sent
            log = running.log.read_text()
            assert (line["route"], line["method"], line["status"]) == (LINK_ROUTE, "GET", opened.status_code)
            assert acct.token not in log and acct.token not in running.audit.read_text()

            link_checks = {"route": LINK_ROUTE, "method": "GET", "status": str(opened.status_code)}

            def counted() -> str | None:
                text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
                return text if sample(text, "apsis_portal_requests_total", link_checks) == 1.0 else None

            metrics = eventually(counted)
            assert sample(metrics, "apsis_portal_actions_total", {"action": "link-opened", "outcome": "ok"}) == 1.0
            assert acct.token not in metrics and acct.id not in metrics
            assert status(running.url + "/metrics") == 404  # not on the public port

            assert status(running.url + "/livez") == 200 and status(running.url + "/readyz") == 200
            proxy.backends["keycloak"] = closed_port()  # Keycloak goes away
            assert status(running.url + "/readyz") == 503
            assert status(running.url + "/livez") == 200 and status(running.url + "/healthz") == 200
            proxy.backends["keycloak"] = keycloak  # and comes back
            deadline = time.monotonic() + 30
            while status(running.url + "/readyz") != 200:
                assert time.monotonic() < deadline, "the portal stayed unready"
                time.sleep(0.5)
        finally:
            running.stop()
