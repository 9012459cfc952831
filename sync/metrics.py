"""Prometheus metrics and the probes, optional (``APSIS_SYNC_METRICS_PORT``).

Labels are low-cardinality on purpose: outcomes, actions, reasons, threshold windows. No
user ever appears in a label, and no account either — with thousands of accounts a label
per account would multiply every series by thousands and make the time-series database the
bottleneck. Per-account detail is what ``apsis-sync status`` is for; the metrics answer
"is the fleet healthy, and how many accounts need attention".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from apsis_core import timestamps
from apsis_core.errors import RefusalKind
from sync import expiry
from sync.health import Health, Verdict

if TYPE_CHECKING:
    from datetime import date

    from sync.report import AccountResult, CycleReport
    from sync.state import AccountState

GRAPH_RETRY_REASONS = ("throttled", "server_error", "token_throttled", "token_server_error", "transport")
"""``apsis_sync_graph_retries`` reasons (``sync.graph_client``)."""
GRAPH_REFUSALS = (401, 403)
"""Graph statuses counted by ``apsis_sync_graph_refusals``: the tenant took our access away."""
FAILING_STREAK = 3
"""Cycles in a row an account must fail to count as repeatedly failing (an alert, not a blip)."""


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cycles = Counter(
            "apsis_sync_cycles", "Completed cycles by outcome (ok, partial, failed)", ["outcome"], registry=r
        )
        self.account_runs = Counter(
            "apsis_sync_account_runs",
            "Account syncs by outcome (ok, error, quarantined, skipped)",
            ["outcome"],
            registry=r,
        )
        self.deactivations = Counter(
            "apsis_sync_deactivations", "Users deactivated, by action and reason", ["action", "reason"], registry=r
        )
        self.full_resyncs = Counter("apsis_sync_full_resyncs", "Full resyncs by cause", ["cause"], registry=r)
        self.graph_retries = Counter(
            "apsis_sync_graph_retries",
            "Graph requests retried, by reason (throttled, server_error, transport)",
            ["reason"],
            registry=r,
        )
        self.graph_wait_seconds = Counter(
            "apsis_sync_graph_wait_seconds", "Seconds waited before Graph retries (Retry-After or backoff)", registry=r
        )
        self.token_errors = Counter(
            "apsis_sync_token_errors", "Token requests Entra refused, by kind", ["kind"], registry=r
        )
        self.graph_refusals = Counter(
            "apsis_sync_graph_refusals",
            "Graph reads refused with 401 or 403 (consent revoked, permission removed), by status",
            ["status"],
            registry=r,
        )
        self.notifications = Counter(
            "apsis_sync_notifications",
            "Notifications by kind and outcome (sent, failed)",
            ["kind", "outcome"],
            registry=r,
        )
        self.accounts = Gauge(
            "apsis_sync_accounts",
            "Accounts this instance (shard) syncs; with a shared state, every account",
            registry=r,
        )
        self.quarantined = Gauge("apsis_sync_quarantined_accounts", "Accounts held by the deletion guard", registry=r)
        self.failing = Gauge("apsis_sync_failing_accounts", "Accounts whose last sync failed", registry=r)
        self.secrets_expiring = Gauge(
            "apsis_sync_secrets_expiring_accounts",
            "Accounts whose secret reached a threshold window",
            ["window"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "apsis_sync_cycle_duration_seconds",
            "Wall time of a cycle",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.last_cycle = Gauge("apsis_sync_last_cycle_timestamp_seconds", "When the last cycle ended", registry=r)
        self.domain_checks = Counter(
            "apsis_sync_domain_checks",
            "Daily domain ownership checks by outcome (proven, other-tenant, unverified, unavailable)",
            ["outcome"],
            registry=r,
        )
        self.domain_flagged = Gauge(
            "apsis_sync_domain_flagged_accounts", "Accounts with a domain their tenant no longer owns", registry=r
        )
        self.interval = Gauge("apsis_sync_interval_seconds", "Seconds between the starts of two cycles", registry=r)
        self.repeatedly_failing = Gauge(
            "apsis_sync_repeatedly_failing_accounts",
            f"Accounts whose last {FAILING_STREAK} or more cycles failed (in this process)",
            registry=r,
        )
        self.deprovision_lag = Gauge(
            "apsis_sync_deprovision_lag_seconds",
            "Worst case over the accounts: seconds since an account last synced ok (a user deleted in Entra "
            "since then may still be enabled; quarantined and failing accounts count from their last ok sync)",
            registry=r,
        )
        # Known label values start at 0, so `increase()` and the dashboard see a series before
        # the first event (and a renamed metric is missed at once, not at the first failure).
        for outcome in ("ok", "partial", "failed"):
            self.cycles.labels(outcome)
        for outcome in ("ok", "error", "quarantined", "skipped"):
            self.account_runs.labels(outcome)
        for reason in GRAPH_RETRY_REASONS:
            self.graph_retries.labels(reason)
        for kind in get_args(RefusalKind):
            self.token_errors.labels(kind)
        for status in GRAPH_REFUSALS:
            self.graph_refusals.labels(str(status))
        self._last_ok: dict[str, float] = {}
        self._streaks: dict[str, int] = {}
        self.deprovision_lag.set_function(self._worst_lag)

    def record_cycle(self, report: CycleReport, accounts: int, thresholds: list[int]) -> None:
        """The gauges and counters a finished cycle sets."""
        results = report.results
        self.accounts.set(accounts)
        self.cycle_seconds.observe(report.seconds)
        self.last_cycle.set(time.time())
        self.quarantined.set(sum(r.status == "quarantined" for r in results))
        errors = sum(r.status == "error" for r in results)
        self.failing.set(errors)
        self.domain_flagged.set(sum(1 for r in results if r.domain_alerts))
        windows: dict[str, int] = {}
        for r in results:
            if r.expiry is not None:
                w = expiry.window(r.expiry.days_left, thresholds)
                if w is not None:
                    windows[w] = windows.get(w, 0) + 1
        for w in ["expired", *(str(t) for t in thresholds)]:
            self.secrets_expiring.labels(w).set(windows.get(w, 0))
        self.cycles.labels("ok" if errors == 0 else "failed" if errors == len(results) else "partial").inc()
        self._track(results)

    def _track(self, results: list[AccountResult]) -> None:
        """Per-account streaks and last ok syncs, kept here so the metrics stay per fleet."""
        now = time.time()
        last_ok, streaks = {}, {}
        for r in results:
            if r.status == "skipped":
                last_ok[r.account] = self._last_ok.get(r.account, now)
                streaks[r.account] = self._streaks.get(r.account, 0)
                continue
            last_ok[r.account] = now if r.status == "ok" else self._last_ok.get(r.account, now)
            streaks[r.account] = self._streaks.get(r.account, 0) + 1 if r.status == "error" else 0
        self._last_ok, self._streaks = last_ok, streaks
        self.repeatedly_failing.set(sum(n >= FAILING_STREAK for n in streaks.values()))

    def _worst_lag(self) -> float:
        oldest = min(self._last_ok.values(), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def record_shared(self, states: list[AccountState], today: date, thresholds: list[int]) -> None:
        """Replicas on a shared state: the fleet gauges from every account's last run in the
        state (whichever replica synced it), not only the accounts this replica's cycle took."""
        self.quarantined.set(sum(1 for st in states if st.quarantined_at))
        self.failing.set(sum(1 for st in states if st.last_status == "error"))
        windows: dict[str, int] = {}
        for st in states:
            if st.secret_expires is not None:
                w = expiry.window((st.secret_expires - today).days, thresholds)
                if w is not None:
                    windows[w] = windows.get(w, 0) + 1
        for w in ["expired", *(str(t) for t in thresholds)]:
            self.secrets_expiring.labels(w).set(windows.get(w, 0))
        # The deprovisioning lag of the fleet: each account's last ok sync by whichever replica
        # (an account another replica synced is no older here than there).
        shared = {st.account: _epoch(st.last_success) for st in states if st.last_success}
        merged = dict(self._last_ok)  # this cycle's accounts, also those never synced ok
        for account, at in shared.items():
            if at is not None:
                merged[account] = max(at, merged.get(account, at))
        self._last_ok = merged

    def serve(self, port: int, address: str = "0.0.0.0", health: Health | None = None) -> ThreadingHTTPServer:
        """``/metrics`` (Prometheus text format), ``/livez`` and ``/readyz`` (200 or 503 with a
        JSON reason, see ``sync.health``; ``/health`` is ``/readyz``) in a background thread;
        any other path is a 404."""
        registry = self.registry
        probes: dict[str, Callable[[], Verdict]] = {}
        if health is not None:
            probes = {"/livez": health.liveness, "/readyz": health.verdict, "/health": health.verdict}
            self.interval.set_function(lambda: health.interval)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = urlsplit(self.path).path
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path in probes:
                    verdict = probes[path]()
                    self._send(200 if verdict.healthy else 503, "application/json", json.dumps(verdict.body).encode())
                else:
                    self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics, /livez or /readyz\n")

            def do_HEAD(self) -> None:  # noqa: N802
                self.do_GET()

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - probes every few seconds: no log
                return

        server = ThreadingHTTPServer((address, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="apsis-sync-http", daemon=True).start()
        return server


def _epoch(moment: str) -> float | None:
    """A state timestamp (``2026-12-07T22:36:48Z``) in seconds since the epoch."""
    try:
        return timestamps.from_text(moment).timestamp()
    except ValueError:
        return None
