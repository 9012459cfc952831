"""Prometheus metrics, optional (``APSIS_SYNC_METRICS_PORT``).

Labels are low-cardinality on purpose: outcomes, actions, reasons, threshold windows. No
user ever appears in a label, and no account either — with thousands of accounts a label
per account would multiply every series by thousands and make the time-series database the
bottleneck. Per-account detail is what ``apsis-sync status`` is for; the metrics answer
"is the fleet healthy, and how many accounts need attention".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cycles = Counter("apsis_sync_cycles", "Completed cycles by outcome (ok, partial, failed)", ["outcome"], registry=r)
        self.account_runs = Counter(
            "apsis_sync_account_runs", "Account syncs by outcome (ok, error, quarantined, skipped)", ["outcome"], registry=r
        )
        self.deactivations = Counter(
            "apsis_sync_deactivations", "Users deactivated, by action and reason", ["action", "reason"], registry=r
        )
        self.full_resyncs = Counter("apsis_sync_full_resyncs", "Full resyncs by cause", ["cause"], registry=r)
        self.graph_retries = Counter(
            "apsis_sync_graph_retries", "Graph requests retried, by reason (throttled, server_error, transport)", ["reason"],
            registry=r,
        )
        self.graph_wait_seconds = Counter(
            "apsis_sync_graph_wait_seconds", "Seconds waited before Graph retries (Retry-After or backoff)", registry=r
        )
        self.token_errors = Counter("apsis_sync_token_errors", "Token requests Entra refused, by kind", ["kind"], registry=r)
        self.notifications = Counter(
            "apsis_sync_notifications", "Notifications by kind and outcome (sent, failed)", ["kind", "outcome"], registry=r
        )
        self.accounts = Gauge("apsis_sync_accounts", "Accounts this instance (shard) syncs", registry=r)
        self.quarantined = Gauge("apsis_sync_quarantined_accounts", "Accounts held by the deletion guard", registry=r)
        self.failing = Gauge("apsis_sync_failing_accounts", "Accounts whose last sync failed", registry=r)
        self.secrets_expiring = Gauge(
            "apsis_sync_secrets_expiring_accounts", "Accounts whose secret reached a threshold window", ["window"], registry=r
        )
        self.cycle_seconds = Histogram(
            "apsis_sync_cycle_duration_seconds", "Wall time of a cycle",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800), registry=r,
        )
        self.last_cycle = Gauge("apsis_sync_last_cycle_timestamp_seconds", "When the last cycle ended", registry=r)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)
