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
import contextlib
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schedule

from apsis_core.account import AccountRecord
from apsis_core.errors import ApsisError
from sync.accounts import Shard, managed, select
from sync.pipeline import sync_account
from sync.report import AccountResult, CycleReport
from sync.runtime import Runtime
from sync.state import StateUnavailable, utcnow

log = logging.getLogger("apsis_sync.daemon")


def run_cycle(
    rt: Runtime, accounts: list[AccountRecord], dry_run: bool = False, leases: Leases | None = None
) -> CycleReport:
    """Sync every account once, ``workers`` at a time, on the runtime's event loop; with
    ``leases``, only the due accounts this replica claims (the others are another's)."""
    started_at = utcnow()
    started = time.monotonic()
    results = rt.run(_cycle(rt, accounts, dry_run) if leases is None else _leased_cycle(rt, accounts, leases))
    seconds = time.monotonic() - started
    report = CycleReport(results, dry_run, started_at, seconds)
    rt.metrics.record_cycle(report, len(accounts), rt.sync.expiry_thresholds)
    if leases is not None:  # the other replicas' accounts too: the fleet as the shared state knows it
        listed = {a.id for a in accounts}
        states = [st for st in rt.state.accounts() if st.account in listed]
        rt.metrics.record_shared(states, rt.today(), rt.sync.expiry_thresholds)
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


async def _leased_cycle(rt: Runtime, accounts: list[AccountRecord], leases: Leases) -> list[AccountResult]:
    """The cycle of a replica on a shared state: workers take accounts in batches claimed
    from the database (one transaction per batch, ``StateStore.claim``), and give the leases
    back a batch at a time. Accounts another replica holds or synced this interval are not
    this cycle's: they are not in its results."""
    by_id = {a.id: a for a in accounts}
    waiting = [a.id for a in accounts]
    mine: list[str] = []
    finished: list[str] = []
    results: list[AccountResult] = []
    batch = max(2 * rt.sync.workers, 16)
    claiming = asyncio.Lock()

    async def take() -> str | None:
        async with claiming:
            while not mine and waiting and not rt.stop.is_set():
                chunk, waiting[:] = waiting[:batch], waiting[batch:]
                done, finished[:] = finished[:], []
                if done:
                    await rt.blocking(rt.state.release, leases.holder, done)
                mine.extend(await rt.blocking(rt.state.claim, leases.holder, chunk, leases.seconds, leases.period()))
            return mine.pop(0) if mine else None

    syncing: set[str] = set()

    async def worker() -> None:
        while (account_id := await take()) is not None:
            syncing.add(account_id)
            try:
                results.append(await sync_account(rt, by_id[account_id], False))
            finally:
                syncing.discard(account_id)
            finished.append(account_id)

    async def renew() -> None:
        """Keep the leases of the accounts this cycle holds (being synced or claimed and
        waiting) for as long as it holds them: a sync that outlasts ``lease_seconds`` (a large
        tenant's first round) is not taken over by another replica half-way."""
        while True:
            await asyncio.sleep(leases.seconds / 3)
            held = sorted(syncing | set(mine))
            if not held:
                continue
            try:
                kept = set(await rt.blocking(rt.state.renew, leases.holder, held, leases.seconds))
            except StateUnavailable as e:  # the next try may reach it before the leases run out
                log.warning("could not renew %d leases: %s", len(held), e)
                continue
            lost = [a for a in held if a not in kept]
            if lost:  # renewals failed for a whole lease (the database away): another may have them
                mine[:] = [a for a in mine if a in kept]
                log.warning("leases lost to another replica: %s", ", ".join(lost))

    renewing = asyncio.create_task(renew())
    try:
        await asyncio.gather(*(worker() for _ in range(min(rt.sync.workers, len(accounts)))))
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        left = finished + mine  # claimed but not started (a stop): free for another replica now
        if left:
            await rt.blocking(rt.state.release, leases.holder, left)
    return results


@dataclass
class Leases:
    """This replica's claims on a shared state: its name, how long a claim holds, and when
    the cycle started. An account claimed in this cycle is due again 0.9 interval after the
    cycle's start, so the next cycle of any replica (one interval later) takes it, while a
    replica whose cycle starts half an interval later does not sync it a second time."""

    holder: str
    seconds: float
    interval: float
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def for_replica(cls, rt: Runtime, interval: float) -> Leases:
        return cls(f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}", rt.sync.lease_seconds, interval)

    def period(self) -> float:
        return max(0.0, 0.9 * self.interval - (time.monotonic() - self.started))


def run_once(
    rt: Runtime,
    only: list[str] | None = None,
    shard: Shard | None = None,
    dry_run: bool = False,
    leases: Leases | None = None,
) -> CycleReport:
    """List the accounts (Keycloak errors propagate: nothing can be synced), forget the state
    of accounts deleted since, and run a cycle (with ``leases``: of the accounts it claims)."""
    with rt.api() as api:
        every = managed(api)
    accounts = select(every, only, shard)
    if every and not dry_run:  # an empty listing proves nothing: never wipe the state on it
        for gone in rt.state.forget_accounts_except({a.id for a in every}):
            log.info("forgot a deleted account", extra={"account": gone})
        rt.forget_tokens_except({a.id for a in every})
    return run_cycle(rt, accounts, dry_run, leases)


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

    holder = Leases.for_replica(rt, every).holder

    def job() -> None:
        started = time.monotonic()
        # Replicas on a shared state share the accounts out by leases; a lone SQLite daemon syncs all.
        leases = Leases(holder, rt.sync.lease_seconds, every, started) if rt.state.shared and not dry_run else None
        try:
            report = run_once(rt, only, shard, dry_run, leases)
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
                "replica": holder if rt.state.shared else None,
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
