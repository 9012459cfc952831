"""Cycles: every account once, ``workers`` at a time; and the loop that repeats them.

A cycle is a coroutine on the runtime's one event loop: ``workers`` tasks take accounts
from a queue, each account inside its own error boundary (``pipeline``), so 10,000 idle
accounts cost 10,000 delta requests in flight ``workers`` at a time, not 10,000 threads or
event loops. A cycle that cannot even list the accounts (Keycloak down) fails whole and
says so to ``/health``. A stop (SIGTERM, SIGINT) lets the running cycle finish the accounts
already started.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import schedule

from apsis_core.account import AccountRecord
from apsis_core.errors import ApsisError
from sync.accounts import Shard, managed, select
from sync.pipeline import sync_account
from sync.report import AccountResult, CycleReport
from sync.runtime import Runtime
from sync.state import utcnow

log = logging.getLogger("apsis_sync.daemon")


def run_cycle(rt: Runtime, accounts: list[AccountRecord], dry_run: bool = False) -> CycleReport:
    """Sync every account once, ``workers`` at a time, on the runtime's event loop."""
    started_at = utcnow()
    started = time.monotonic()
    results = rt.run(_cycle(rt, accounts, dry_run))
    seconds = time.monotonic() - started
    report = CycleReport(results, dry_run, started_at, seconds)
    rt.metrics.record_cycle(report, len(accounts), rt.sync.expiry_thresholds)
    log.info(
        "cycle done",
        extra={
            "accounts": len(results),
            "ok": sum(r.status == "ok" for r in results),
            "errors": sum(r.status == "error" for r in results),
            "quarantined": sum(r.status == "quarantined" for r in results),
            "deactivated": sum(r.applied for r in results),
            "dry_run": dry_run,
            "seconds": round(seconds, 3),
        },
    )
    return report


async def _cycle(rt: Runtime, accounts: list[AccountRecord], dry_run: bool) -> list[AccountResult]:
    results: list[AccountResult | None] = [None] * len(accounts)
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(accounts)):
        todo.put_nowait(i)

    async def worker() -> None:
        while not todo.empty():
            i = todo.get_nowait()
            account = accounts[i]
            if rt.stop.is_set():
                results[i] = AccountResult(account.id, status="skipped", notes=["stopping"])
                continue
            results[i] = await sync_account(rt, account, dry_run)

    await asyncio.gather(*(worker() for _ in range(min(rt.sync.workers, len(accounts)))))
    return [r for r in results if r is not None]


def run_once(
    rt: Runtime, only: list[str] | None = None, shard: Shard | None = None, dry_run: bool = False
) -> CycleReport:
    """List the accounts (Keycloak errors propagate: nothing can be synced), forget the state
    of accounts deleted since, and run a cycle."""
    with rt.api() as api:
        every = managed(api)
    accounts = select(every, only, shard)
    if every and not dry_run:  # an empty listing proves nothing: never wipe the state on it
        for gone in rt.state.forget_accounts_except({a.id for a in every}):
            log.info("forgot a deleted account", extra={"account": gone})
        rt.forget_tokens_except({a.id for a in every})
    return run_cycle(rt, accounts, dry_run)


def serve(
    rt: Runtime,
    only: list[str] | None = None,
    shard: Shard | None = None,
    dry_run: bool = False,
    interval: int | None = None,
    on_report: Callable[[CycleReport], None] | None = None,
) -> None:
    """Run a cycle now and then every ``interval`` seconds until SIGTERM/SIGINT (or
    ``rt.stop``). A stop lets the running cycle finish the accounts already started."""
    every = interval or rt.sync.interval_seconds
    rt.health.interval = every
    scheduler = schedule.Scheduler()

    def job() -> None:
        started = time.monotonic()
        try:
            report = run_once(rt, only, shard, dry_run)
        except ApsisError as exc:
            log.error("cycle failed", extra={"error": str(exc)})
            rt.metrics.cycles.labels("failed").inc()
            rt.health.cycle_failed(str(exc), time.monotonic() - started)
            return
        rt.health.cycle_finished(len(report.results), sum(r.status == "error" for r in report.results), report.seconds)
        if on_report:
            on_report(report)

    def stop(signum: int, _frame: Any) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        rt.stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, stop)
    try:
        log.info(
            "daemon started",
            extra={
                "interval_seconds": every,
                "shard": str(shard) if shard else None,
                "accounts": only,
                "dry_run": dry_run,
            },
        )
        scheduler.every(every).seconds.do(job)
        job()
        while not rt.stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            rt.stop.wait(max(0.05, min(1.0, idle if idle is not None else 1.0)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("daemon stopped")


def run(
    rt: Runtime,
    only: list[str] | None = None,
    shard: Shard | None = None,
    *,
    dry_run: bool = False,
    once: bool = False,
    interval: int | None = None,
    on_report: Callable[[CycleReport], None] | None = None,
) -> int:
    """``apsis-sync run``: one cycle (its exit code), or the daemon with ``/metrics`` and
    ``/health`` on ``APSIS_SYNC_METRICS_PORT`` when set, until stopped (exit 0)."""
    try:
        if once:
            report = run_once(rt, only, shard, dry_run)
            if on_report is not None:
                on_report(report)
            return report.exit_code
        if rt.sync.metrics_port:
            rt.metrics.serve(rt.sync.metrics_port, rt.sync.metrics_address, rt.health)
        serve(rt, only, shard, dry_run, interval, on_report=on_report)
        return 0
    finally:
        rt.close()
