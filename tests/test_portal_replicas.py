"""Two portal processes counting their rate limits in one PostgreSQL database: the limit
holds across them (an in-process count would let through twice as many)."""

from __future__ import annotations

from pathlib import Path

import requests

from apsis_core.settings import Settings
from devenv.postgres import PostgresServer
from tests.portal_fixtures import start_portal
from tests.sync_fixtures import SmtpServer

LIMIT = 4


def test_two_portals_share_the_rate_limit_of_links_opened_per_client(
    settings: Settings, smtp_server: SmtpServer, postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.create_database("portal_limits")
    extra = {"APSIS_PORTAL_RATE_LIMIT_URL": url, "APSIS_PORTAL_OPENS_PER_MINUTE": str(LIMIT)}
    portals = [start_portal(settings, smtp_server, tmp_path / f"portal{i}", **extra) for i in range(2)]
    try:
        statuses = []
        for i in range(2 * LIMIT):  # alternately through each replica, from one client address
            resp = requests.get(f"{portals[i % 2].url}/i/no-such-account/{'x' * 43}", timeout=30, allow_redirects=False)
            statuses.append(resp.status_code)
        assert 429 not in statuses[:LIMIT], statuses
        assert statuses[LIMIT:] == [429] * LIMIT, statuses  # both replicas refuse: one count
        for portal in portals:
            assert postgres.password not in portal.log.read_text()  # the URL's password is not logged
    finally:
        for portal in portals:
            portal.stop()
