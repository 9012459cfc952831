"""A real Prometheus (Debian's ``prometheus``, as bootstrap installs it) scrapes the real
daemon, the portal and both Keycloak nodes, with monitoring/'s rules loaded; after a sync
cycle that deactivates someone, an SSO login, a refused SSO login and a refused link at the
portal, every dashboard panel's query and
every rule's metric selectors return series. A renamed metric, a Keycloak option that stops
the user-event metrics, or a label the rules expect and nobody exports breaks this test.

The queries are read from the dashboard JSON and the rule file themselves. Panels are queried
whole. Alert expressions compare to thresholds that a healthy test run does not reach, so for
rules each *selector* inside the expression is queried instead (``metric{matchers}``): it must
return a series; the one matcher that only a failure satisfies (Keycloak answering 5xx:
``outcome="SERVER_ERROR"``) is checked for its label, present on the series with other values.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from devenv.accounts import PASSWORD, OnboardedAccount
from devenv.entra_emulator import EntraEmulator
from devenv.processes import free_port
from tests.portal_fixtures import start_portal
from tests.production.conftest import Lane
from tests.promql import render, selectors
from tests.sync_fixtures import SmtpServer, build_harness, entra_oid

pytestmark = pytest.mark.production

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring/rules/apsis-sso.rules.yml"
DASHBOARD = REPO / "monitoring/grafana/apsis-sso.dashboard.json"
FAILURE_ONLY = {("outcome", "SERVER_ERROR")}  # matchers only a failing system satisfies


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(1)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


class Prometheus:
    def __init__(self, workdir: Path, targets: dict[str, list[str]]) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is missing: run scripts/bootstrap.sh (Debian's prometheus package)"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": hosts}]} for job, hosts in targets.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "prometheus.log").open("w"),
        )
        wait_until(lambda: get(f"{self.url}/-/ready")[0] == 200, 60, "Prometheus is ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, body = get(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
        assert status == 200, f"{expr}: {body}"
        return list(json.loads(body)["data"]["result"])

    def targets_up(self) -> bool:
        return len(self.query("up == 1")) == len(self.query("up"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def panel_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(r.get("alert") or r["record"], str(r["expr"])) for g in groups for r in g["rules"]]


def test_prometheus_sees_every_panel_and_every_rule_selector(
    lane: Lane,
    onboard: Callable[..., OnboardedAccount],
    emulator: EntraEmulator,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    acct = onboard(lane.node1)  # pilot stage
    ann, _ = acct.person("ann")  # on the pilot list: her SSO login goes through
    rex, _ = acct.person("rex", pilot=False)  # not on it: refused (not_pilot)
    lin, lin_id = acct.person("lin")  # deleted in Entra: the daemon deactivates her
    harness = build_harness(lane.settings_for(lane.node1), smtp_server, tmp_path / "sync")
    harness.add(acct)
    assert harness.cycle(acct).ok  # the delta link the daemon starts from
    harness.rt.state.close()
    emulator.delete_user(acct.tenant_id, entra_oid(emulator, acct, lin))
    assert lane.browser().sso_login(ann, PASSWORD, acct.alias).ok
    assert not lane.browser().sso_login(rex, PASSWORD, acct.alias).ok

    metrics_port = free_port()
    env = dict(
        harness.env(),
        APSIS_SSO_KEYCLOAK_URL=lane.node1.url,
        APSIS_SYNC_INTERVAL_SECONDS="10",
        APSIS_SYNC_METRICS_PORT=str(metrics_port),
        APSIS_SYNC_METRICS_ADDRESS="127.0.0.1",
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sync", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    portal_port = free_port()
    portal = start_portal(
        lane.settings_for(lane.node1), smtp_server, tmp_path / "portal", APSIS_PORTAL_METRICS_PORT=str(portal_port)
    )
    assert 400 <= get(f"{portal.url}/i/{acct.id}/{'A' * 43}")[0] < 500  # no such link: refused
    keycloak = [f"127.0.0.1:{node.management_port}" for node in (lane.node1, lane.node2)]
    (tmp_path / "prom").mkdir()
    prometheus = Prometheus(
        tmp_path / "prom",
        {
            "apsis-sync": [f"127.0.0.1:{metrics_port}"],
            "apsis-portal": [f"127.0.0.1:{portal_port}"],
            "keycloak": keycloak,
        },
    )
    try:
        wait_until(lambda: get(f"http://127.0.0.1:{metrics_port}/readyz")[0] == 200, 120, "the daemon's cycle")
        wait_until(prometheus.targets_up, 60, "every target scraped")
        wait_until(lambda: bool(prometheus.query("apsis_sync_deactivations_total")), 60, "the deactivation scraped")
        wait_until(lambda: bool(prometheus.query('apsis:sso_refusals:rate5m{error!=""}')), 60, "the refusal recorded")
        time.sleep(3)  # a few more scrapes and rule evaluations: rates over two samples at least

        missing = [f"panel {title!r}: {expr}" for title, expr in panel_queries() if not prometheus.query(expr)]
        for rule, expr in rule_expressions():
            for name, matchers in selectors(expr):
                if prometheus.query(render(name, matchers)):
                    continue
                failure = [m for m in matchers if (m[0], m[2]) in FAILURE_ONLY]
                rest = [m for m in matchers if m not in failure]
                labels = {label for label, _, _ in failure}
                if failure and all(prometheus.query(f"count by ({label}) ({render(name, rest)})") for label in labels):
                    continue  # the label exists; only a failure would give it that value
                missing.append(f"rule {rule}: {render(name, matchers)}")
        assert not missing, "\n".join(missing)
        assert prometheus.query(
            render("keycloak_user_events_total", [("idp", "=", acct.alias)])
        )  # the per-account view
        series = int(float(prometheus.query("count({__name__=~'.+'})")[0]["value"][1]))
        print(f"\nPrometheus saw {series} series from the daemon, the portal and two Keycloak nodes")
    finally:
        prometheus.stop()
        portal.stop()
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    user = lane.api(lane.node1).user(lin_id)
    assert user is not None and user["enabled"] is False
