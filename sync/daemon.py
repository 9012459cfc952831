"""One cycle over the accounts, and the loop that repeats it.

Per account: read Graph with the account's own credentials (delta round, or a full listing
when there is no usable delta link; the app's secrets when the tenant allows), plan the
deactivations, let the guard judge them, apply them, then check the secret's expiry and send
what is due. Each account runs in its own worker with its own error boundary: whatever
fails for one (a wrong secret, a throttled tenant, a Keycloak hiccup) is recorded on that
account and the others carry on.

Nothing is written anywhere in ``dry_run``: no Keycloak change, no state, no mail. The
report says what would have happened.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import schedule

from apsis_core.errors import EX_FAILURE, EX_TEMPFAIL, ApsisError, is_temporary
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from sync import deprovision, expiry, guard, resync
from apsis_core.account import AccountRecord
from apsis_core.entra import EntraEndpoints
from sync.accounts import Shard, managed, select
from sync.deprovision import Action, Plan, Restored
from sync.graph_client import (
    DeltaRound,
    DeltaTokenExpired,
    GraphClient,
    GraphFailure,
    PasswordCredential,
    RetryPolicy,
    Sleep,
    TokenRejected,
)
from sync.health import Health
from sync.metrics import SyncMetrics
from sync.notify import (
    Notice,
    Notifier,
    expiry_notice,
    quarantine_notice,
    restored_notice,
    stale_secret_notice,
    token_notice,
)
from sync.secrets import DirectorySecrets, SecretSource
from sync.settings import SyncSettings
from sync.state import KnownUser, StateStore, utcnow

log = logging.getLogger("apsis_sync.daemon")


@dataclass
class Runtime:
    """Everything a cycle needs, built once per process. Tests build it with their own
    pieces (a recording ``sleep``, a fixed ``today``)."""

    settings: Settings
    sync: SyncSettings
    state: StateStore
    secrets: SecretSource
    notifier: Notifier
    metrics: SyncMetrics
    api_factory: Callable[[], KeycloakRepository]
    sleep: Sleep = asyncio.sleep
    today: Callable[[], date] = date.today
    stop: threading.Event = field(default_factory=threading.Event)
    health: Health = field(default_factory=lambda: Health(300))
    _apis: "queue.SimpleQueue[KeycloakRepository]" = field(default_factory=queue.SimpleQueue)

    @classmethod
    def build(cls, settings: Settings, sync: SyncSettings, **overrides: Any) -> "Runtime":
        return cls(
            settings=settings,
            sync=sync,
            state=overrides.pop("state", None) or StateStore(sync.database),
            secrets=overrides.pop("secrets", None) or DirectorySecrets(sync.secrets_path),
            notifier=overrides.pop("notifier", None) or Notifier(sync),
            metrics=overrides.pop("metrics", None) or SyncMetrics(),
            api_factory=overrides.pop("api_factory", None) or (lambda: KeycloakRepository.for_tooling(settings)),
            health=overrides.pop("health", None) or Health(sync.interval_seconds),
            **overrides,
        )

    @contextmanager
    def api(self) -> Iterator[KeycloakRepository]:
        """A Keycloak client for this thread's work; clients (and their tokens) are reused."""
        try:
            api = self._apis.get_nowait()
        except queue.Empty:
            api = self.api_factory()
        try:
            yield api
        finally:
            self._apis.put(api)

    @property
    def endpoints(self) -> EntraEndpoints:
        return EntraEndpoints.from_settings(self.settings, timeout=self.sync.graph_timeout)

    @property
    def limits(self) -> guard.GuardLimits:
        return guard.GuardLimits(self.sync.guard_max_users, self.sync.guard_max_percent, self.sync.guard_percent_min_users)


@dataclass
class AccountResult:
    """What one account's sync did (or, in a dry run, would do)."""

    account: str
    status: str = "ok"  # ok | error | quarantined | skipped
    mode: str | None = None  # incremental | full
    resync_cause: str | None = None
    actions: list[Action] = field(default_factory=list)
    resumed: list[Action] = field(default_factory=list)  # finished for a run that was cut short
    applied: int = 0
    restored: list[Restored] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quarantine: str | None = None
    expiry: expiry.SecretExpiry | None = None
    graph_waits: list[tuple[str, float]] = field(default_factory=list)
    graph_requests: int = 0
    seconds: float = 0.0
    permanent_errors: int = 0  # errors that need a person (the others: retry later)

    def fail(self, message: str, *, temporary: bool = False) -> None:
        self.errors.append(message)
        if not temporary:
            self.permanent_errors += 1

    @property
    def temporary_failure(self) -> bool:
        """Failed only for reasons that pass by themselves (unreachable, 5xx, 429, timeouts)."""
        return bool(self.errors) and self.permanent_errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.account,
            "status": self.status,
            "mode": self.mode,
            "resync_cause": self.resync_cause,
            "actions": [a.to_dict(self.account) for a in self.actions],
            "resumed": [a.to_dict(self.account) for a in self.resumed],
            "applied": self.applied,
            "restored": [r.describe() for r in self.restored],
            "notifications": [{"kind": n.kind, "to": list(n.to), "cc": list(n.cc), "subject": n.subject} for n in self.notices],
            "errors": self.errors,
            "temporary_failure": self.status == "error" and self.temporary_failure,
            "notes": self.notes,
            "quarantine": self.quarantine,
            "secret_expires": self.expiry.expires.isoformat() if self.expiry else None,
            "secret_expiry_source": self.expiry.source if self.expiry else None,
            "days_until_secret_expires": self.expiry.days_left if self.expiry else None,
            "graph_waits": [{"reason": r, "seconds": s} for r, s in self.graph_waits],
            "graph_requests": self.graph_requests,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CycleReport:
    results: list[AccountResult]
    dry_run: bool
    started: str
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.status != "error" for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 all synced; 75 the failures were all temporary (retry later); 1 one needs a person."""
        failed = [r for r in self.results if r.status == "error"]
        if not failed:
            return 0
        return EX_TEMPFAIL if all(r.temporary_failure for r in failed) else EX_FAILURE

    def result(self, account: str) -> AccountResult:
        for r in self.results:
            if r.account == account:
                return r
        raise KeyError(account)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "started": self.started, "seconds": round(self.seconds, 3),
                "ok": self.ok, "exit_code": self.exit_code, "accounts": [r.to_dict() for r in self.results]}


# -- Graph ------------------------------------------------------------------------------


@dataclass
class GraphRead:
    round: DeltaRound | None = None
    resync_cause: str | None = None
    credentials: list[PasswordCredential] | None = None
    token_error: TokenRejected | None = None
    failure: GraphFailure | None = None
    waits: list[tuple[str, float]] = field(default_factory=list)
    requests: int = 0


async def read_graph(rt: Runtime, account: AccountRecord, client: GraphClient, delta_link: str | None, want_delta: bool) -> GraphRead:
    """Everything this cycle needs from Graph, read before Keycloak is touched."""
    out = GraphRead(waits=client.retry.waits)
    try:
        if want_delta:
            if delta_link is None:
                out.resync_cause = "no_delta_link"
                out.round = await client.delta_round(None)
            else:
                try:
                    out.round = await client.delta_round(delta_link)
                except DeltaTokenExpired as exc:
                    out.resync_cause = exc.code
                    log.warning("delta token expired; full resync", extra={"account": account.id, "code": exc.code})
                    out.round = await client.restart_round(exc)
        out.credentials = await client.password_credentials(account.client_id)
    except TokenRejected as exc:
        out.token_error = exc
        out.failure = exc
    except GraphFailure as exc:
        out.failure = exc
    finally:
        out.requests = client.requests
    return out


def _graph_client(rt: Runtime, account: AccountRecord, secret: Any) -> GraphClient:
    def on_wait(reason: str, seconds: float, status: int) -> None:
        rt.metrics.graph_retries.labels(reason).inc()
        rt.metrics.graph_wait_seconds.inc(seconds)
        log.warning("graph retry", extra={"account": account.id, "reason": reason, "status": status,
                                           "wait_seconds": round(seconds, 3)})

    retry = RetryPolicy(
        max_attempts=rt.sync.graph_max_attempts,
        backoff=rt.sync.graph_backoff_seconds,
        max_wait=rt.sync.graph_max_wait_seconds,
        sleep=rt.sleep,
        on_wait=on_wait,
    )
    return GraphClient(rt.endpoints, account.tenant_id, account.client_id, secret, retry=retry)


async def _read(rt: Runtime, account: AccountRecord, secret: Any, delta_link: str | None, want_delta: bool) -> GraphRead:
    async with _graph_client(rt, account, secret) as client:
        return await read_graph(rt, account, client, delta_link, want_delta)


# -- one account ------------------------------------------------------------------------


@dataclass
class _Progress:
    """What ``_sync`` got as far as committing: filled only once deactivations are done."""

    delta_link: str | None = None
    seen: list[KnownUser] = field(default_factory=list)
    full_listing: bool = False


def sync_account(rt: Runtime, api: KeycloakRepository, account: AccountRecord, dry_run: bool = False) -> AccountResult:
    """One account, inside its own error boundary; the run is recorded in the state whatever happened."""
    started = time.monotonic()
    result = AccountResult(account.id)
    progress = _Progress()
    try:
        _sync(rt, api, account, dry_run, result, progress)
    except ApsisError as exc:  # Keycloak said no or is gone: one line, no trace
        result.fail(str(exc), temporary=is_temporary(exc))
    except Exception as exc:  # noqa: BLE001 - one account's bug must not stop the others
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        result.fail(f"unexpected {type(exc).__name__}: {first}")
        log.exception("unexpected error", extra={"account": account.id})
    if result.errors and result.status == "ok":
        result.status = "error"
    result.seconds = time.monotonic() - started
    if not dry_run:
        try:
            rt.state.record_run(
                account.id,
                ok=result.status == "ok",  # a quarantined or failed cycle is no successful sync
                status=result.status,
                errors=result.errors,
                deactivated=result.applied,
                delta_link=progress.delta_link,
                seen=progress.seen,
                full_listing=progress.full_listing,
                secret_expires=result.expiry.expires if result.expiry else None,
                secret_expires_source=result.expiry.source if result.expiry else None,
            )
        except Exception:  # noqa: BLE001 - the log has it; the next cycle redoes the same work
            log.exception("cannot record the run", extra={"account": account.id})
    rt.metrics.account_runs.labels(result.status).inc()
    eventful = result.errors or result.actions or result.resumed or result.notices or result.restored or result.status != "ok"
    level = logging.ERROR if result.status == "error" else logging.INFO if eventful else logging.DEBUG
    log.log(level, "account synced", extra={
        "account": account.id, "status": result.status, "mode": result.mode, "deactivated": result.applied,
        "planned": len(result.actions), "errors": result.errors, "dry_run": dry_run, "seconds": round(result.seconds, 3),
    })
    return result


def _sync(rt: Runtime, api: KeycloakRepository, account: AccountRecord, dry_run: bool, result: AccountResult,
          progress: _Progress) -> None:
    st = rt.state.account(account.id)
    secret = rt.secrets.get(account.id)
    quarantined = account.quarantined
    released = not quarantined and st.quarantined_at is not None
    allowance = 0
    if quarantined:
        result.status = "quarantined"
        result.quarantine = quarantined
        at, _, reason = quarantined.partition(" ")
        if not st.quarantined_at and not dry_run:  # state lost, or quarantined by hand: mirror it
            rt.state.set_quarantine(account.id, at, reason, 0)
        key = f"quarantine:{quarantined}"
        if not dry_run and not rt.state.notice_sent(account.id, key):  # the first notice failed, or none was sent
            _send(rt, account, quarantine_notice(account, reason, [], rt.sync), key, result)
    elif released:
        allowance = st.quarantine_held  # released since the last cycle: let the held changes through
        result.notes.append(f"quarantine released; up to {allowance} held deactivations may proceed")
    _resume(rt, api, account, dry_run, result)

    read = GraphRead()
    stale = secret is not None and bool(account.secret_hint) and \
        not secret.get_secret_value().startswith(account.secret_hint or "")
    if stale:
        _flag_stale_secret(rt, account, secret, dry_run, result)
    if secret is None:
        result.fail(f"no client secret for account {account.id} (expected in {rt.secrets.describe(account.id)})")
    elif not account.tenant_id or not account.client_id:
        result.fail(f"account {account.id} has no tenant id or client id recorded")
    else:
        # A quarantined account is not deprovisioned; a dry run still reads what is held.
        read = asyncio.run(_read(rt, account, secret, st.delta_link, want_delta=not quarantined or dry_run))
        result.graph_waits = list(read.waits)
        result.graph_requests = read.requests
        if read.failure is not None:
            result.fail(str(read.failure), temporary=is_temporary(read.failure))

    if read.token_error is not None and not stale:  # a stale file of ours is not the customer's problem
        _flag_token_error(rt, account, read.token_error, secret, dry_run, result)

    if read.round is not None:
        result.mode = "full" if read.round.full else "incremental"
        result.resync_cause = read.resync_cause
        if read.round.full:
            rt.metrics.full_resyncs.labels(read.resync_cause or "initial").inc()
            plan = resync.plan_full(api, account, read.round, rt.state)
        else:
            plan = deprovision.plan_incremental(api, account, read.round, rt.state)
        result.actions = plan.actions
        result.notes.extend(plan.notes)
        result.restored = plan.restored
        # Held by the guard: the delta link is not advanced, so after a release the same
        # changes are read again and carried out.
        if quarantined:
            result.notes.append("held by the quarantine until `apsis-sync release`")
        elif not _guarded(rt, api, account, plan, allowance, dry_run, result):
            if not dry_run:
                result.applied += deprovision.apply(api, account, plan.actions, rt.state)
                for action in plan.actions:
                    rt.metrics.deactivations.labels(action.kind, action.why).inc()
                if released:
                    rt.state.clear_quarantine(account.id)
            _report_restored(rt, account, plan.restored, dry_run, result)
            progress.delta_link = read.round.delta_link
            progress.seen = [KnownUser(u.oid, u.mail, u.upn, u.enabled, u.removed) for u in read.round.users]
            progress.full_listing = read.round.full

    _check_expiry(rt, account, read.credentials, dry_run, result)


def _resume(rt: Runtime, api: KeycloakRepository, account: AccountRecord, dry_run: bool, result: AccountResult) -> None:
    """Deactivations an earlier run started and did not finish come first (before Graph is
    read: they need Keycloak only, and a half-done user must not wait for Entra)."""
    if dry_run:
        result.resumed = [Action.from_dict(a) for a in rt.state.pending_deactivations(account.id)]
        return
    result.resumed = deprovision.resume(api, account, rt.state)
    result.applied += len(result.resumed)
    for action in result.resumed:
        rt.metrics.deactivations.labels(action.kind, action.why).inc()
    if result.resumed:
        log.warning("finished deactivations of an interrupted run", extra={"account": account.id,
                                                                            "users": [a.user_id for a in result.resumed]})


def _guarded(rt: Runtime, api: KeycloakRepository, account: AccountRecord, plan: Plan, allowance: int, dry_run: bool,
             result: AccountResult) -> bool:
    """True when the guard holds the plan back (and, unless dry, quarantines the account)."""
    count = plan.deactivating
    limits = rt.limits
    if count - allowance <= 0 or (count - allowance < limits.percent_min_users and count - allowance <= limits.max_users):
        return False
    members = api.members_count(account.org_id)
    reason = guard.verdict(count, members, limits, allowance)
    if reason is None:
        return False
    result.status = "quarantined"
    result.quarantine = reason
    notice = quarantine_notice(account, reason, plan.actions, rt.sync)
    if dry_run:
        result.notes.append(f"would quarantine: {reason}")
        result.notices.append(notice)
        return True
    value = guard.quarantine(api, account, reason)
    rt.state.set_quarantine(account.id, value.partition(" ")[0], reason, count)
    log.warning("account quarantined", extra={"account": account.id, "reason": reason, "held": count})
    _send(rt, account, notice, f"quarantine:{value}", result)  # not delivered: retried by the next cycles
    return True


def _report_restored(rt: Runtime, account: AccountRecord, restored: list[Restored], dry_run: bool, result: AccountResult) -> None:
    if not restored:
        return
    for r in restored:
        log.warning("user back in Entra, left deactivated", extra={"account": account.id, "user_id": r.user_id,
                                                                     "email": r.email, "how": r.how})
    notice = restored_notice(account, restored, rt.sync)
    if dry_run:
        result.notices.append(notice)
        return
    if _send(rt, account, notice, None, result):
        for r in restored:
            rt.state.mark_restored_reported(account.id, r.user_id, r.oid, r.email)


def _check_expiry(rt: Runtime, account: AccountRecord, credentials: list[PasswordCredential] | None, dry_run: bool,
                  result: AccountResult) -> None:
    today = rt.today()
    exp = expiry.effective(account.secret_expires, account.secret_hint, credentials, today)
    result.expiry = exp
    if exp is None:
        return
    due = expiry.due_threshold(exp.days_left, rt.sync.expiry_thresholds)
    if due is None:
        return
    key = expiry.notice_key(exp, due)
    if rt.state.notice_sent(account.id, key):
        return
    notice = expiry_notice(account, exp, due, rt.sync)
    if dry_run:
        result.notices.append(notice)
        return
    _send(rt, account, notice, key, result)


def _flag_token_error(rt: Runtime, account: AccountRecord, error: TokenRejected, secret: Any, dry_run: bool,
                      result: AccountResult) -> None:
    rt.metrics.token_errors.labels(error.kind).inc()
    if error.kind not in ("expired", "invalid"):
        return
    key = expiry.token_notice_key(error.kind, account.secret_hint, secret)
    if rt.state.notice_sent(account.id, key):
        return
    notice = token_notice(account, error.kind, error.aadsts, rt.sync)
    if dry_run:
        result.notices.append(notice)
        return
    _send(rt, account, notice, key, result)


def _flag_stale_secret(rt: Runtime, account: AccountRecord, secret: Any, dry_run: bool, result: AccountResult) -> None:
    """Our secret file does not hold the account's current secret (its hint differs from
    ``apsis.secretHint``): a rotation that did not reach the daemon. The platform team fixes
    that; the customer's IT contact is not bothered with it."""
    path = rt.secrets.describe(account.id)
    result.fail(
        f"the client secret in {path} is not account {account.id}'s current one (hint {account.secret_hint!r}); "
        f"store the rotated secret with `apsis-sync secret set {account.id}`"
    )
    key = expiry.token_notice_key("stale-file", account.secret_hint, secret)
    if rt.state.notice_sent(account.id, key):
        return
    notice = stale_secret_notice(account, path, rt.sync)
    if dry_run:
        result.notices.append(notice)
        return
    _send(rt, account, notice, key, result)


def _send(rt: Runtime, account: AccountRecord, notice: Notice, key: str | None, result: AccountResult) -> bool:
    ok = rt.notifier.send(notice)
    rt.metrics.notifications.labels(notice.kind, "sent" if ok else "failed").inc()
    if ok:
        result.notices.append(notice)
        if key is not None:
            rt.state.mark_notice(account.id, key, notice.kind)
    else:
        result.fail(f"{notice.kind} notification for {account.id} could not be delivered; retrying next cycle",
                    temporary=True)
    return ok


# -- cycles -----------------------------------------------------------------------------


def run_cycle(rt: Runtime, accounts: list[AccountRecord], dry_run: bool = False) -> CycleReport:
    """Sync every account once, ``workers`` at a time."""
    started_at = utcnow()
    started = time.monotonic()

    def one(account: AccountRecord) -> AccountResult:
        if rt.stop.is_set():
            return AccountResult(account.id, status="skipped", notes=["stopping"])
        with rt.api() as api:
            return sync_account(rt, api, account, dry_run)

    if len(accounts) <= 1 or rt.sync.workers == 1:
        results = [one(a) for a in accounts]
    else:
        with ThreadPoolExecutor(max_workers=rt.sync.workers, thread_name_prefix="apsis-sync") as pool:
            results = list(pool.map(one, accounts))
    seconds = time.monotonic() - started
    report = CycleReport(results, dry_run, started_at, seconds)
    _cycle_metrics(rt, report, len(accounts))
    log.info("cycle done", extra={
        "accounts": len(results), "ok": sum(r.status == "ok" for r in results),
        "errors": sum(r.status == "error" for r in results),
        "quarantined": sum(r.status == "quarantined" for r in results),
        "deactivated": sum(r.applied for r in results), "dry_run": dry_run, "seconds": round(seconds, 3),
    })
    return report


def _cycle_metrics(rt: Runtime, report: CycleReport, count: int) -> None:
    m = rt.metrics
    m.accounts.set(count)
    m.cycle_seconds.observe(report.seconds)
    m.last_cycle.set(time.time())
    m.quarantined.set(sum(r.status == "quarantined" for r in report.results))
    m.failing.set(sum(r.status == "error" for r in report.results))
    windows: dict[str, int] = {}
    for r in report.results:
        if r.expiry is not None:
            w = expiry.window(r.expiry.days_left, rt.sync.expiry_thresholds)
            if w is not None:
                windows[w] = windows.get(w, 0) + 1
    for w in ["expired", *(str(t) for t in rt.sync.expiry_thresholds)]:
        m.secrets_expiring.labels(w).set(windows.get(w, 0))
    errors = sum(r.status == "error" for r in report.results)
    m.cycles.labels("ok" if errors == 0 else "failed" if errors == len(report.results) else "partial").inc()


def run_once(rt: Runtime, only: list[str] | None = None, shard: Shard | None = None, dry_run: bool = False) -> CycleReport:
    """List the accounts (Keycloak errors propagate: nothing can be synced), forget the state
    of accounts deleted since, and run a cycle."""
    with rt.api() as api:
        every = managed(api)
    accounts = select(every, only, shard)
    if every and not dry_run:  # an empty listing proves nothing: never wipe the state on it
        for gone in rt.state.forget_accounts_except({a.id for a in every}):
            log.info("forgot a deleted account", extra={"account": gone})
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
        log.info("daemon started", extra={"interval_seconds": every, "shard": str(shard) if shard else None,
                                          "accounts": only, "dry_run": dry_run})
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
