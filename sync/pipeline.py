"""One account's cycle, inside its own error boundary.

Finish what an earlier run left half-done; read Graph with the account's own credentials
(``graph_read``: a delta round, or a full listing when there is no usable delta link; the
app's secrets when due), planning each page as it arrives (``deprovision``, ``resync``: the
page is staged in the state database, its leavers matched with one bulk read of their
links); let the guard judge the whole round's deactivations, apply them concurrently; then
check the secret's expiry and send what is due. Whatever fails for one account (a wrong
secret, a throttled tenant, a Keycloak hiccup) is recorded on that account and the others
carry on.

The cycle is a coroutine on the runtime's event loop (Graph); Keycloak and the state
database are blocking, so those steps run in the runtime's threads (``rt.blocking``).

Nothing is written anywhere in ``dry_run``: no Keycloak change, no state, no mail. Notices go
through an ``Outbox``, whose notifier in a dry run records instead of sending; the report
lists them either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from apsis_core import invitations
from apsis_core.account import AccountRecord
from apsis_core.errors import ApsisError, EntraRefused, is_temporary
from apsis_core.keycloak import KeycloakPort
from sync import deprovision, domain_check, expiry, graph_read, guard, resync
from sync.deprovision import Action, Plan, Restored
from sync.graph_pages import DeltaPage, PasswordCredential
from sync.graph_read import Applications, GraphRead
from sync.matching import Matcher
from sync.notify import (
    RenewalLink,
    expiry_notice,
    quarantine_notice,
    restored_notice,
    stale_secret_notice,
    token_notice,
)
from sync.outbox import Outbox
from sync.report import AccountResult
from sync.runtime import Runtime
from sync.state import round_key

log = logging.getLogger("apsis_sync.daemon")


@dataclass
class _Progress:
    """What ``_sync`` got as far as committing: filled only once deactivations are done."""

    delta_link: str | None = None
    full_listing: bool = False
    staged: bool = False  # the round wrote users to the staging table


class RoundPlan:
    """A round planned page by page: each page staged (under ``round_key``) and its leavers
    planned with the account's ``Matcher``; who is missing from a full listing is planned at
    the end. Blocking (Keycloak, SQLite): called through ``rt.blocking``."""

    def __init__(self, rt: Runtime, account: AccountRecord, dry_run: bool) -> None:
        self.rt, self.account = rt, account
        self.key = round_key(account.id, dry_run)
        self.full = False
        self.staged = False
        self.plan = Plan()
        self.matcher = Matcher(rt.keycloak, account, rt.sync.keycloak_concurrency)

    def start(self, full: bool) -> None:
        self.full = full
        self.plan = Plan()
        self.matcher = Matcher(self.rt.keycloak, self.account, self.rt.sync.keycloak_concurrency)
        self.rt.state.clear_staged(self.key)

    def page(self, page: DeltaPage) -> None:
        if not page.users:
            return
        self.staged = True
        self.rt.state.stage(self.key, page.users)
        if self.full:
            resync.plan_listed(self.matcher, page.users, self.rt.state, self.plan)
        else:
            deprovision.plan_changes(self.matcher, page.users, self.rt.state, self.plan)

    def finish(self) -> Plan:
        if self.full:
            resync.plan_absent(self.matcher, self.rt.state, self.plan, self.key)
        self.plan.notes.extend(self.matcher.notes)
        return self.plan

    def discard(self) -> None:
        self.rt.state.clear_staged(self.key)


async def sync_account(rt: Runtime, account: AccountRecord, dry_run: bool = False) -> AccountResult:
    """One account, inside its own error boundary; the run is recorded in the state whatever happened."""
    started = time.monotonic()
    result = AccountResult(account.id)
    progress = _Progress()
    try:
        await _sync(rt, account, dry_run, result, progress)
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
        await rt.blocking(_record, rt, account, result, progress)
    else:
        await rt.blocking(rt.state.clear_staged, round_key(account.id, dry_run))
    rt.metrics.account_runs.labels(result.status).inc()
    eventful = (
        result.errors or result.actions or result.resumed or result.notices or result.restored or result.status != "ok"
    )
    level = logging.ERROR if result.status == "error" else logging.INFO if eventful else logging.DEBUG
    log.log(
        level,
        "account synced",
        extra={
            "account": account.id,
            "status": result.status,
            "mode": result.mode,
            "deactivated": result.applied,
            "planned": len(result.actions),
            "errors": result.errors,
            "dry_run": dry_run,
            "seconds": round(result.seconds, 3),
        },
    )
    return result


def _record(rt: Runtime, account: AccountRecord, result: AccountResult, progress: _Progress) -> None:
    try:
        rt.state.record_run(
            account.id,
            ok=result.status == "ok",  # a quarantined or failed cycle is no successful sync
            status=result.status,
            errors=result.errors,
            deactivated=result.applied,
            delta_link=progress.delta_link,
            full_listing=progress.full_listing,
            staged=progress.staged,
            secret_expires=result.expiry.expires if result.expiry else None,
            secret_expires_source=result.expiry.source if result.expiry else None,
        )
    except Exception:  # noqa: BLE001 - the log has it; the next cycle redoes the same work
        log.exception("cannot record the run", extra={"account": account.id})


@dataclass
class _Before:
    """What the cycle knows before Graph is read."""

    secret: SecretStr | None
    delta_link: str | None
    quarantined: str | None
    released: bool
    allowance: int
    stale: bool
    outbox: Outbox


def _before(rt: Runtime, account: AccountRecord, dry_run: bool, result: AccountResult) -> _Before:
    outbox = Outbox(rt, account, result, dry_run)
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
        if not dry_run and outbox.due(key):  # the first notice failed, or none was sent
            outbox.send(quarantine_notice(account, reason, [], rt.sync), key)
    elif released:
        allowance = st.quarantine_held  # released since the last cycle: let the held changes through
        result.notes.append(f"quarantine released; up to {allowance} held deactivations may proceed")
    _resume(rt, account, dry_run, result)
    stale = (
        secret is not None
        and bool(account.secret_hint)
        and not secret.get_secret_value().startswith(account.secret_hint or "")
    )
    if stale:
        assert secret is not None
        _flag_stale_secret(rt, account, secret, outbox)
    return _Before(secret, st.delta_link, quarantined, released, allowance, stale, outbox)


async def _sync(rt: Runtime, account: AccountRecord, dry_run: bool, result: AccountResult, progress: _Progress) -> None:
    before = await rt.blocking(_before, rt, account, dry_run, result)
    secret, quarantined = before.secret, before.quarantined
    read = GraphRead()
    planner = RoundPlan(rt, account, dry_run)
    if secret is None:
        result.fail(f"no client secret for account {account.id} (expected in {rt.secrets.describe(account.id)})")
    elif not account.tenant_id or not account.client_id:
        result.fail(f"account {account.id} has no tenant id or client id recorded")
    else:
        client = rt.graph_client(account, secret, graph_read.retry_policy(rt, account))
        applications = Applications(rt, account, rt.today())

        async def on_start(full: bool) -> None:
            await rt.blocking(planner.start, full)

        async def on_page(page: DeltaPage) -> None:
            await rt.blocking(planner.page, page)

        # A quarantined account is not deprovisioned; a dry run still reads what is held.
        try:
            read = await graph_read.read_graph(
                account, client, before.delta_link, not quarantined or dry_run, on_start, on_page, applications
            )
        finally:
            rt.release_graph(client)
        applications.record(dry_run)
        result.graph_waits = list(read.waits)
        result.graph_requests = read.requests
        if read.failure is not None:
            result.fail(str(read.failure), temporary=is_temporary(read.failure))

    await rt.blocking(_after, rt, account, dry_run, result, progress, before, read, planner)
    await domain_check.run(rt, account, dry_run, before.outbox)  # once a day per domain; needs no secret


def _after(
    rt: Runtime,
    account: AccountRecord,
    dry_run: bool,
    result: AccountResult,
    progress: _Progress,
    before: _Before,
    read: GraphRead,
    planner: RoundPlan,
) -> None:
    outbox, secret = before.outbox, before.secret
    progress.staged = planner.staged  # kept with the delta link, or dropped without one
    if read.token_error is not None and not before.stale:  # a stale file of ours is not the customer's problem
        _flag_token_error(rt, rt.keycloak, account, read.token_error, secret, outbox)

    if read.complete:
        result.mode = "full" if read.full else "incremental"
        result.resync_cause = read.resync_cause
        if read.full:
            rt.metrics.full_resyncs.labels(read.resync_cause or "initial").inc()
        plan = planner.finish()
        result.actions = plan.actions
        result.notes.extend(plan.notes)
        result.restored = plan.restored
        # Held by the guard: the delta link is not advanced, so after a release the same
        # changes are read again and carried out.
        if before.quarantined:
            result.notes.append("held by the quarantine until `apsis-sync release`")
        elif not _guarded(rt, rt.keycloak, account, plan, before.allowance, dry_run, outbox):
            if not dry_run:
                done = deprovision.apply(rt.keycloak, account, plan.actions, rt.state, rt.sync.keycloak_concurrency)
                result.applied += len(done)
                for action in done:  # not those another process carried out first
                    rt.metrics.deactivations.labels(action.kind, action.why).inc()
                if before.released:
                    rt.state.clear_quarantine(account.id)
            _report_restored(rt, account, plan.restored, outbox)
            progress.delta_link = read.delta_link
            progress.full_listing = read.full

    _check_expiry(rt, rt.keycloak, account, read.credentials, outbox)


def _resume(rt: Runtime, account: AccountRecord, dry_run: bool, result: AccountResult) -> None:
    """Deactivations an earlier run started and did not finish come first (before Graph is
    read: they need Keycloak only, and a half-done user must not wait for Entra)."""
    if dry_run:
        result.resumed = [Action.from_dict(a) for a in rt.state.pending_deactivations(account.id)]
        return
    result.resumed = deprovision.resume(rt.keycloak, account, rt.state, rt.sync.keycloak_concurrency)
    result.applied += len(result.resumed)
    for action in result.resumed:
        rt.metrics.deactivations.labels(action.kind, action.why).inc()
    if result.resumed:
        log.warning(
            "finished deactivations of an interrupted run",
            extra={"account": account.id, "users": [a.user_id for a in result.resumed]},
        )


def _guarded(
    rt: Runtime,
    api: KeycloakPort,
    account: AccountRecord,
    plan: Plan,
    allowance: int,
    dry_run: bool,
    outbox: Outbox,
) -> bool:
    """True when the guard holds the plan back (and, unless dry, quarantines the account)."""
    count = plan.deactivating
    limits = rt.limits
    if not guard.needs_members(count, limits, allowance):
        return False
    reason = guard.verdict(count, api.members_count(account.org_id), limits, allowance)
    if reason is None:
        return False
    result = outbox.result
    result.status = "quarantined"
    result.quarantine = reason
    notice = quarantine_notice(account, reason, plan.actions, rt.sync)
    if dry_run:
        result.notes.append(f"would quarantine: {reason}")
        outbox.send(notice)
        return True
    value = guard.quarantine(api, account, reason)
    rt.state.set_quarantine(account.id, value.partition(" ")[0], reason, count)
    log.warning("account quarantined", extra={"account": account.id, "reason": reason, "held": count})
    outbox.send(notice, f"quarantine:{value}")  # not delivered: retried by the next cycles
    return True


def _report_restored(rt: Runtime, account: AccountRecord, restored: list[Restored], outbox: Outbox) -> None:
    if not restored:
        return
    for r in restored:
        log.warning(
            "user back in Entra, left deactivated",
            extra={"account": account.id, "user_id": r.user_id, "email": r.email, "how": r.how},
        )

    def reported() -> None:
        for r in restored:
            rt.state.mark_restored_reported(account.id, r.user_id, r.oid, r.email)

    outbox.send(restored_notice(account, restored, rt.sync), after=reported)


def _renewal(rt: Runtime, api: KeycloakPort, account: AccountRecord, outbox: Outbox) -> RenewalLink | None:
    """A fresh ``renew`` link for a notice about the secret, when the portal is configured
    (``APSIS_SSO_PORTAL_URL``). It replaces the account's previous renew link, whose page then
    says a newer one was sent. A dry run mints nothing and shows where the link would go."""
    portal, valid = rt.settings.portal_url, timedelta(days=rt.settings.invitation_days)
    if not portal:
        return None
    if outbox.dry_run:
        return RenewalLink(
            invitations.link(portal, account.id, "<minted when the notice is sent>"), datetime.now(UTC) + valid
        )
    try:
        token, invitation = invitations.issue(api, account, "renew", valid)
    except ApsisError as exc:  # the notice still goes out, with the old instructions
        log.warning("no renewal link for the notice", extra={"account": account.id, "error": str(exc)})
        return None
    return RenewalLink(invitations.link(portal, account.id, token), invitation.expires)


def _check_expiry(
    rt: Runtime,
    api: KeycloakPort,
    account: AccountRecord,
    credentials: list[PasswordCredential] | None,
    outbox: Outbox,
) -> None:
    exp = expiry.effective(account.secret_expires, account.secret_hint, credentials, rt.today())
    outbox.result.expiry = exp
    if exp is None:
        return
    due = expiry.due_threshold(exp.days_left, rt.sync.expiry_thresholds)
    if due is None:
        return
    key = expiry.notice_key(exp, due)
    if outbox.due(key):
        outbox.send(expiry_notice(account, exp, due, rt.sync, _renewal(rt, api, account, outbox)), key)


def _flag_token_error(
    rt: Runtime,
    api: KeycloakPort,
    account: AccountRecord,
    error: EntraRefused,
    secret: SecretStr | None,
    outbox: Outbox,
) -> None:
    rt.metrics.token_errors.labels(error.kind).inc()
    if error.kind not in ("expired", "invalid"):
        return
    key = expiry.token_notice_key(error.kind, account.secret_hint, secret)
    if outbox.due(key):
        outbox.send(token_notice(account, error.kind, error.aadsts, rt.sync, _renewal(rt, api, account, outbox)), key)


def _flag_stale_secret(rt: Runtime, account: AccountRecord, secret: SecretStr, outbox: Outbox) -> None:
    """Our secret file does not hold the account's current secret (its hint differs from
    ``apsis.secretHint``): a rotation that did not reach the daemon. The platform team fixes
    that; the customer's IT contact is not bothered with it."""
    path = rt.secrets.describe(account.id)
    outbox.result.fail(
        f"the client secret in {path} is not account {account.id}'s current one (hint {account.secret_hint!r}); "
        f"store the rotated secret with `apsis-sync secret set {account.id}`"
    )
    key = expiry.token_notice_key("stale-file", account.secret_hint, secret)
    if outbox.due(key):
        outbox.send(stale_secret_notice(account, path, rt.sync), key)
