"""monitoring/: the alerting and recording rules pass ``promtool check rules``; ``promtool
test rules`` fires and clears every alert from synthetic series; every alert says what it
is, what to do and how bad; and every daemon metric the rules and the dashboard name is one
the daemon exports (a renamed metric fails here, not on the pager). promtool comes from
Debian's ``prometheus`` package (scripts/bootstrap.sh): without it these tests fail."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.observability import PortalMetrics
from sync.metrics import SyncMetrics
from tests.promql import selectors

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring/rules/apsis-sso.rules.yml"
RULE_TESTS = ROOT / "monitoring/tests/apsis-sso.test.yml"
DASHBOARD = ROOT / "monitoring/grafana/apsis-sso.dashboard.json"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run scripts/bootstrap.sh (Debian's prometheus package)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def expressions() -> list[str]:
    """Every PromQL expression of the rules and of the dashboard's panels."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    exprs = [str(rule["expr"]) for group in groups for rule in group["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return exprs + [t["expr"] for p in panels for t in p.get("targets", [])]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_fires_and_clears_every_alert() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    cases: dict[str, list[tuple[int, bool]]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            minutes = int(str(case["eval_time"]).removesuffix("m"))
            cases.setdefault(case["alertname"], []).append((minutes, bool(case["exp_alerts"])))
    for alert in alerts():
        seen = sorted(cases.get(alert["alert"], []))
        fired = [t for t, firing in seen if firing]
        assert fired, f"{alert['alert']} is never shown firing"
        assert any(t > fired[0] and not firing for t, firing in seen), f"{alert['alert']} is never shown clearing"


def test_a_broken_rule_test_fails() -> None:
    """The rule tests can fail: an expectation that does not hold makes promtool exit non-zero."""
    doc = yaml.safe_load(RULE_TESTS.read_text())
    first = doc["tests"][0]["alert_rule_test"][0]
    first["exp_alerts"] = []  # claims the alert does not fire where it does
    doc["rule_files"] = [str(RULES)]
    broken = RULE_TESTS.parent / ".broken.test.yml"
    try:
        broken.write_text(yaml.safe_dump(doc))
        assert promtool("test", "rules", str(broken)).returncode != 0
    finally:
        broken.unlink(missing_ok=True)


def test_every_alert_says_what_it_is_what_to_do_and_how_bad() -> None:
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)) and len(names) >= 10
    for alert in alerts():
        annotations = alert.get("annotations", {})
        assert annotations.get("summary") and len(annotations.get("description", "")) > 40, alert["alert"]
        assert alert.get("labels", {}).get("severity") in ("critical", "warning"), alert["alert"]


def test_the_dashboard_is_plain_importable_json_with_the_rows_the_operators_need() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and "id" not in dashboard  # importable as is
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    for wanted in ("daemon", "attention", "SSO", "Keycloak", "portal"):
        assert any(wanted in r for r in rows), f"no {wanted} row in {rows}"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def exported_names() -> set[str]:
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    return {
        family.name + suffix
        for registry in (SyncMetrics().registry, PortalMetrics().registry)
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def test_every_daemon_and_portal_metric_the_rules_and_the_dashboard_name_is_exported() -> None:
    exported = exported_names()
    named = {name for expr in expressions() for name in re.findall(r"\bapsis_(?:sync|portal)_\w+", expr)}
    assert any(n.startswith("apsis_sync_") for n in named) and any(n.startswith("apsis_portal_") for n in named)
    assert named <= exported, f"not exported by the daemon or the portal: {sorted(named - exported)}"
    panels = " ".join(t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p.get("targets", []))
    for alert in alerts():  # what pages someone can be looked at on the dashboard
        for name in re.findall(r"\bapsis_(?:sync|portal)_\w+", str(alert["expr"])):
            assert name in panels or name + "_bucket" in panels, f"{alert['alert']}: {name} is on no panel"


def test_the_selector_reader_finds_metrics_not_functions_or_labels() -> None:
    got = selectors(
        'sum by (instance, outcome) (rate(http_server_requests_seconds_count{job="keycloak"}[5m]))'
        " / on (instance) max(apsis:x) > 3 * apsis_sync_interval_seconds and time() > 0"
    )
    assert got == [
        ("http_server_requests_seconds_count", [("job", "=", "keycloak")]),
        ("apsis:x", []),
        ("apsis_sync_interval_seconds", []),
    ]
