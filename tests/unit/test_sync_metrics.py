"""The daemon's alerting gauges computed from cycle reports, without a server."""

from __future__ import annotations

import time

import pytest
from prometheus_client import generate_latest

from sync.metrics import FAILING_STREAK, SyncMetrics
from sync.report import AccountResult, CycleReport

pytestmark = pytest.mark.unit


def cycle(metrics: SyncMetrics, **statuses: str) -> None:
    results = [AccountResult(account, status=status) for account, status in statuses.items()]  # type: ignore[arg-type]
    metrics.record_cycle(CycleReport(results, False, "2026-01-01T00:00:00Z", 1.0), len(results), [30, 7])


def value(metrics: SyncMetrics, name: str) -> float:
    got = metrics.registry.get_sample_value(name)
    assert got is not None, name
    return got


def test_an_account_counts_as_repeatedly_failing_only_after_a_streak_and_stops_on_success() -> None:
    metrics = SyncMetrics()
    for _ in range(FAILING_STREAK - 1):
        cycle(metrics, acme="error", globex="ok")
    assert value(metrics, "apsis_sync_repeatedly_failing_accounts") == 0
    cycle(metrics, acme="error", globex="error")
    assert value(metrics, "apsis_sync_repeatedly_failing_accounts") == 1  # acme; globex failed once
    cycle(metrics, acme="skipped", globex="error")  # a skip (stopping) neither breaks nor extends it
    assert value(metrics, "apsis_sync_repeatedly_failing_accounts") == 1
    cycle(metrics, acme="ok", globex="ok")
    assert value(metrics, "apsis_sync_repeatedly_failing_accounts") == 0


def test_deprovisioning_lag_grows_from_an_accounts_last_ok_sync_and_forgets_deleted_accounts() -> None:
    metrics = SyncMetrics()
    assert value(metrics, "apsis_sync_deprovision_lag_seconds") == 0  # nothing synced yet: nothing late
    cycle(metrics, acme="ok", globex="ok")
    metrics._last_ok["acme"] -= 7200  # acme's last ok sync two hours ago
    cycle(metrics, acme="quarantined", globex="ok")  # the guard holds acme's deactivations
    assert 7200 <= value(metrics, "apsis_sync_deprovision_lag_seconds") < 7200 + 60
    cycle(metrics, globex="ok")  # acme was deleted: no longer late
    assert value(metrics, "apsis_sync_deprovision_lag_seconds") < 60
    assert b"acme" not in generate_latest(metrics.registry)  # never a per-account label
    assert time.time() - metrics._last_ok["globex"] < 60


def test_on_a_shared_state_the_lag_counts_the_accounts_another_replica_synced() -> None:
    from datetime import UTC, date, datetime, timedelta

    from apsis_core.timestamps import to_text
    from sync.state import AccountState

    metrics = SyncMetrics()
    cycle(metrics, acme="ok")  # this replica's lease: acme only
    an_hour_ago = to_text(datetime.now(UTC) - timedelta(hours=1))
    states = [
        AccountState("acme", last_success=to_text(datetime.now(UTC))),
        AccountState("globex", last_success=an_hour_ago),
    ]
    metrics.record_shared(states, date.today(), [30, 7])  # globex is the other replica's (or a dead one's)
    assert 3600 <= value(metrics, "apsis_sync_deprovision_lag_seconds") < 3600 + 60
