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

``AccountCycle`` holds one account's cycle (the runtime, the account, whether it is a dry
run, the result and the outbox) and has a method per step: ``prepare`` (quarantine,
``resume``, a stale secret file), ``read_changes`` (Graph), ``apply_round`` (the guard, the
deactivations, ``check_expiry``) and ``record``.

Nothing is written anywhere in ``dry_run``: no Keycloak change, no state, no mail. Notices go
through an ``Outbox``, whose notifier in a dry run records instead of sending; the report
lists them either way.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from apsis_core import invitations
from apsis_core.account import AccountRecord
from apsis_core.certificates import KeyPair
from apsis_core.errors import ApsisError, EntraRefused, GraphRequestFailed, is_temporary
from sync import certificate_renewal, deprovision, domain_check, expiry, graph_read, guard, okta_read, resync
from sync.certificate_renewal import RenewalState
from sync.deprovision import Action, Plan, Restored
from sync.graph_client import GraphClient
from sync.graph_pages import DeltaPage, PasswordCredential
from sync.graph_read import Applications, GraphRead
from sync.matching import Matcher
from sync.metrics import GRAPH_REFUSALS
from sync.notify import (
    RenewalLink,
    certificate_notice,
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


async def sync_account(rt: Runtime, account: AccountRecord, dry_run: bool = False) -> AccountResult:
    """One account, inside its own error boundary; the run is recorded in the state whatever happened."""
    return await AccountCycle(rt, account, dry_run).run()


@dataclass
class Committed:
    """What the cycle got as far as committing, recorded with the run: the round's delta link
    and whether it was a full listing (set only once its deactivations are done), and whether
    the round staged users."""

    delta_link: str | None = None
    full_listing: bool = False
    staged: bool = False


@dataclass
class StartingPoint:
    """What the cycle knows before Graph is read."""

    secret: SecretStr | KeyPair | None
    """The client secret, or (a certificate account) the assertion key pair."""
    delta_link: str | None
    quarantine: str | None
    """The account's quarantine (``<when> <reason>``): its deactivations are held."""
    released: bool
    """The quarantine was released since the last cycle."""
    allowance: int
    """How many held deactivations the release lets through."""
    stale_secret: bool
    """Our secret file holds another secret than the account's current one."""


class RoundPlan:
    """A round planned page by page: each page staged (under ``round_key``) and its leavers
    planned with the account's ``Matcher``; who is missing from a full listing is planned at
    the end. Blocking (Keycloak, SQLite): called through ``rt.blocking``."""

    def __init__(self, rt: Runtime, account: AccountRecord, dry_run: bool) -> None:
        self.rt, self.account = rt, account
        self.key = round_key(account.id, dry_run)
        self.full = False
        self.staged = False
        self.cleared = False
        self.plan = Plan()
        self.matcher = Matcher(rt.keycloak, account, rt.sync.keycloak_concurrency)

    def start(self, full: bool) -> None:
        """A new round (no I/O: what an earlier, cut-short round staged is cleared with this
        round's first page, or before a full listing's end; an idle round touches nothing)."""
        self.full = full
        self.cleared = False
        self.plan = Plan()
        self.matcher = Matcher(self.rt.keycloak, self.account, self.rt.sync.keycloak_concurrency)

    def page(self, page: DeltaPage) -> None:
        if not page.users:
            return
        self.staged = True
        self.rt.state.stage(self.key, page.users, fresh=not self.cleared)
        self.cleared = True
        if self.full:
            resync.plan_listed(self.matcher, page.users, self.rt.state, self.plan)
        else:
            deprovision.plan_changes(self.matcher, page.users, self.rt.state, self.plan)

    def finish(self) -> Plan:
        if self.full:
            if not self.cleared:  # a full listing of no one: nothing staged before may count as listed
                self.rt.state.clear_staged(self.key)
                self.cleared = True
            resync.plan_absent(self.matcher, self.rt.state, self.plan, self.key)
        self.plan.notes.extend(self.matcher.notes)
        return self.plan

    def discard(self) -> None:
        self.rt.state.clear_staged(self.key)


class AccountCycle:
    """One account's cycle: the runtime's pieces, the account, whether it is a dry run, the
    result being filled and the outbox of its notices, with a method per step. ``run`` is the
    error boundary; the steps that touch Keycloak or the state database are blocking and run
    in the runtime's threads (``rt.blocking``), Graph is read on the event loop."""

    def __init__(self, rt: Runtime, account: AccountRecord, dry_run: bool = False) -> None:
        self.rt = rt
        self.account = account
        self.dry_run = dry_run
        self.keycloak = rt.keycloak
        self.result = AccountResult(account.id)
        self.outbox = Outbox(rt, account, self.result, dry_run)
        self.committed = Committed()
        self.round_plan = RoundPlan(rt, account, dry_run)
        self.graph = GraphRead()
        self.renewal: RenewalState | None = None

    async def run(self) -> AccountResult:
        started = time.monotonic()
        result = self.result
        try:
            await self._steps()
        except ApsisError as exc:  # Keycloak said no or is gone: one line, no trace
            result.fail(str(exc), temporary=is_temporary(exc))
        except Exception as exc:  # noqa: BLE001 - one account's bug must not stop the others
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            result.fail(f"unexpected {type(exc).__name__}: {first}")
            log.exception("unexpected error", extra={"account": self.account.id})
        if result.errors and result.status == "ok":
            result.status = "error"
        result.seconds = time.monotonic() - started
        if not self.dry_run:
            await self.rt.blocking(self.record)
        else:
            await self.rt.blocking(self.rt.state.clear_staged, round_key(self.account.id, self.dry_run))
        self.rt.metrics.account_runs.labels(result.status).inc()
        self._log()
        return result

    async def _steps(self) -> None:
        start = await self.rt.blocking(self.prepare)
        await self.read_changes(start)
        await self.rt.blocking(self.apply_round, start)
        await domain_check.run(self.rt, self.account, self.dry_run, self.outbox)  # once a day per domain

    # -- before Graph -----------------------------------------------------------------

    def prepare(self) -> StartingPoint:
        """The quarantine as the account and the state hold it, the deactivations an earlier
        run left half-done (``resume``), and whether our copy of the secret is current."""
        rt, account, result = self.rt, self.account, self.result
        known, journal = rt.state.starting_point(account.id)
        secret: SecretStr | KeyPair | None
        secret = rt.assertion_key() if account.credential == "certificate" else rt.secrets.get(account.id)
        quarantine = account.quarantined
        released = not quarantine and known.quarantined_at is not None
        allowance = 0
        if quarantine:
            result.status = "quarantined"
            result.quarantine = quarantine
            at, _, reason = quarantine.partition(" ")
            if not known.quarantined_at and not self.dry_run:  # state lost, or quarantined by hand: mirror it
                rt.state.set_quarantine(account.id, at, reason, 0)
            key = f"quarantine:{quarantine}"
            if not self.dry_run and self.outbox.due(key):  # the first notice failed, or none was sent
                self.outbox.send(quarantine_notice(account, reason, [], rt.sync), key)
        elif released:
            allowance = known.quarantine_held  # released since the last cycle: let the held changes through
            result.notes.append(f"quarantine released; up to {allowance} held deactivations may proceed")
        self.resume(journal)
        stale = (
            isinstance(secret, SecretStr)
            and bool(account.secret_hint)
            and not secret.get_secret_value().startswith(account.secret_hint or "")
        )
        if stale:
            assert isinstance(secret, SecretStr)
            self.flag_stale_secret(secret)
        return StartingPoint(secret, known.delta_link, quarantine, released, allowance, stale)

    def resume(self, journal: list[dict[str, Any]]) -> None:
        """Deactivations an earlier run started and did not finish (``journal``) come first
        (before Graph is read: they need Keycloak only, and a half-done user must not wait
        for Entra)."""
        rt, account, result = self.rt, self.account, self.result
        if self.dry_run:
            result.resumed = [Action.from_dict(a) for a in journal]
            return
        result.resumed = deprovision.resume(self.keycloak, account, rt.state, rt.sync.keycloak_concurrency, journal)
        result.applied += len(result.resumed)
        for action in result.resumed:
            rt.metrics.deactivations.labels(action.kind, action.why).inc()
        if result.resumed:
            log.warning(
                "finished deactivations of an interrupted run",
                extra={"account": account.id, "users": [a.user_id for a in result.resumed]},
            )

    def flag_stale_secret(self, secret: SecretStr) -> None:
        """Our secret file does not hold the account's current secret (its hint differs from
        ``apsis.secretHint``): a rotation that did not reach the daemon. The platform team fixes
        that; the customer's IT contact is not bothered with it."""
        account = self.account
        path = self.rt.secrets.describe(account.id)
        self.result.fail(
            f"the client secret in {path} is not account {account.id}'s current one (hint {account.secret_hint!r}); "
            f"store the rotated secret with `apsis-sync secret set {account.id}`"
        )
        key = expiry.token_notice_key("stale-file", account.secret_hint, secret)
        if self.outbox.due(key):
            self.outbox.send(stale_secret_notice(account, path, self.rt.sync), key)

    # -- Graph ------------------------------------------------------------------------

    async def read_changes(self, start: StartingPoint) -> None:
        """The round from Graph (a delta round, or a full listing), each page planned as it
        arrives (``RoundPlan``), and the app's secrets when due; a quarantined account's round
        is not read, except in a dry run, which shows what is held."""
        rt, account, result = self.rt, self.account, self.result
        if account.provider == "okta":  # the Users API instead of Graph (sync.okta_read)
            self.graph = await okta_read.read_changes(
                rt,
                account,
                start.delta_link,
                start.quarantine,
                self.dry_run,
                self.round_plan.start,
                self.round_plan.page,
            )
            result.graph_waits, result.graph_requests = list(self.graph.waits), self.graph.requests
            if self.graph.failure is not None:
                result.fail(str(self.graph.failure), temporary=is_temporary(self.graph.failure))
            return
        if start.secret is None:
            where = rt.settings.assertion_key_file if account.credential == "certificate" else None
            result.fail(
                f"no assertion key for certificate account {account.id} (APSIS_SSO_ASSERTION_KEY_FILE: {where})"
                if account.credential == "certificate"
                else f"no client secret for account {account.id} (expected in {rt.secrets.describe(account.id)})"
            )
            return
        if not account.tenant_id or not account.client_id:
            result.fail(f"account {account.id} has no tenant id or client id recorded")
            return
        client = rt.graph_client(account, start.secret, graph_read.retry_policy(rt, account))
        applications = Applications(rt, account, rt.today())
        planner = self.round_plan

        async def on_start(full: bool) -> None:
            planner.start(full)

        async def on_page(page: DeltaPage) -> None:
            await rt.blocking(planner.page, page)

        want_round = not start.quarantine or self.dry_run
        try:
            self.graph = await graph_read.read_graph(
                account, client, start.delta_link, want_round, on_start, on_page, applications
            )
            if isinstance(start.secret, KeyPair) and self.graph.token_error is None:
                self.renewal = await self.check_next_certificate(client, start.secret)
        finally:
            rt.release_graph(client)
        applications.record(self.dry_run)
        result.graph_waits = list(self.graph.waits)
        result.graph_requests = self.graph.requests
        failure = self.graph.failure
        if failure is not None:
            if isinstance(failure, GraphRequestFailed) and failure.status in GRAPH_REFUSALS:
                self.rt.metrics.graph_refusals.labels(str(failure.status)).inc()  # consent revoked: an alert
            result.fail(str(failure), temporary=is_temporary(failure))

    # -- after Graph ------------------------------------------------------------------

    def apply_round(self, start: StartingPoint) -> None:
        """Flag a refused token, let the guard judge the whole round, carry out its
        deactivations, report users back in Entra, then check the secret's expiry."""
        rt, account, result, graph = self.rt, self.account, self.result, self.graph
        self.committed.staged = self.round_plan.staged  # kept with the delta link, or dropped without one
        if graph.token_error is not None and not start.stale_secret:  # a stale file of ours is not the customer's
            self.flag_token_error(graph.token_error, start.secret)

        if graph.complete:
            result.mode = "full" if graph.full else "incremental"
            result.resync_cause = graph.resync_cause
            if graph.full:
                rt.metrics.full_resyncs.labels(graph.resync_cause or "initial").inc()
            plan = self.round_plan.finish()
            result.actions = plan.actions
            result.notes.extend(plan.notes)
            result.restored = plan.restored
            # Held by the guard: the delta link is not advanced, so after a release the same
            # changes are read again and carried out.
            if start.quarantine:
                result.notes.append("held by the quarantine until `apsis-sync release`")
            elif not self.guarded(plan, start.allowance):
                if not self.dry_run:
                    done = deprovision.apply(
                        self.keycloak, account, plan.actions, rt.state, rt.sync.keycloak_concurrency
                    )
                    result.applied += len(done)
                    for action in done:  # not those another process carried out first
                        rt.metrics.deactivations.labels(action.kind, action.why).inc()
                    if start.released:
                        rt.state.clear_quarantine(account.id)
                self.report_restored(plan.restored)
                self.committed.delta_link = graph.delta_link
                self.committed.full_listing = graph.full

        self.check_expiry(graph.credentials)

    def guarded(self, plan: Plan, allowance: int) -> bool:
        """True when the guard holds the plan back (and, unless dry, quarantines the account)."""
        rt, account = self.rt, self.account
        count = plan.deactivating
        limits = rt.limits
        if not guard.needs_members(count, limits, allowance):
            return False
        reason = guard.verdict(count, self.keycloak.members_count(account.org_id), limits, allowance)
        if reason is None:
            return False
        result = self.result
        result.status = "quarantined"
        result.quarantine = reason
        notice = quarantine_notice(account, reason, plan.actions, rt.sync)
        if self.dry_run:
            result.notes.append(f"would quarantine: {reason}")
            self.outbox.send(notice)
            return True
        value = guard.quarantine(self.keycloak, account, reason)
        rt.state.set_quarantine(account.id, value.partition(" ")[0], reason, count)
        log.warning("account quarantined", extra={"account": account.id, "reason": reason, "held": count})
        self.outbox.send(notice, f"quarantine:{value}")  # not delivered: retried by the next cycles
        return True

    def report_restored(self, restored: list[Restored]) -> None:
        """Users we deactivated who are back in Entra: left deactivated, reported once."""
        if not restored:
            return
        account = self.account
        for r in restored:
            log.warning(
                "user back in Entra, left deactivated",
                extra={"account": account.id, "user_id": r.user_id, "email": r.email, "how": r.how},
            )

        def reported() -> None:
            for r in restored:
                self.rt.state.mark_restored_reported(account.id, r.user_id, r.oid, r.email)

        self.outbox.send(restored_notice(account, restored, self.rt.sync), after=reported)

    async def check_next_certificate(self, client: GraphClient, current: KeyPair) -> RenewalState:
        """Whether the app holds APSIS's next certificate (``sync.certificate_renewal``)."""
        rt, account = self.rt, self.account
        upcoming = rt.assertion_key(upcoming=True)
        if upcoming is None:
            return RenewalState(current.certificate, None, None)
        try:
            thumbprints = await client.key_credential_thumbprints(account.client_id)
        except GraphRequestFailed:
            thumbprints = None
        if thumbprints is not None:
            uploaded: bool | None = certificate_renewal.holds(thumbprints, upcoming.certificate)
        else:  # no Application.Read.All: ask Entra with the next key itself
            uploaded = await certificate_renewal.probe(rt.endpoints, account.tenant_id, account.client_id, upcoming)
        self.result.notes.append(
            f"next certificate {upcoming.certificate.sha1_thumbprint}: "
            + {True: "uploaded", False: "NOT uploaded", None: "unknown"}[uploaded]
        )
        return RenewalState(current.certificate, upcoming.certificate, uploaded)

    def check_certificate(self) -> None:
        """A certificate account: its IT uploads APSIS's next certificate before the current one
        expires; until then a notice per threshold (there is no secret to expire)."""
        rt, account, renewal = self.rt, self.account, self.renewal
        if renewal is None:
            return
        due = renewal.due(rt.today(), rt.sync.expiry_thresholds)
        if due is None:
            return
        key = renewal.notice_key(due)
        if self.outbox.due(key):
            notice = certificate_notice(
                account, renewal.current, renewal.upcoming, renewal.days_left(rt.today()), due, rt.sync
            )
            self.outbox.send(notice, key)

    def check_expiry(self, credentials: list[PasswordCredential] | None) -> None:
        """The secret's expiry (recorded, or Graph's ``credentials``): a notice per threshold."""
        rt, account = self.rt, self.account
        if account.credential == "certificate":
            pair = rt.assertion_key()
            if pair is not None:  # the credential's expiry is the current certificate's (metrics, status)
                ends = pair.certificate.not_after.date()
                self.result.expiry = expiry.SecretExpiry(ends, "certificate", None, (ends - rt.today()).days)
            self.check_certificate()
            return
        exp = expiry.effective(account.secret_expires, account.secret_hint, credentials, rt.today())
        self.result.expiry = exp
        if exp is None:
            return
        due = expiry.due_threshold(exp.days_left, rt.sync.expiry_thresholds)
        if due is None:
            return
        key = expiry.notice_key(exp, due)
        if self.outbox.due(key):
            self.outbox.send(expiry_notice(account, exp, due, rt.sync, self.renewal_link()), key)

    def flag_token_error(self, error: EntraRefused, secret: SecretStr | KeyPair | None) -> None:
        """Entra refused the account's credentials: an expired or invalid secret is the
        customer's to renew, noticed once per secret."""
        self.rt.metrics.token_errors.labels(error.kind).inc()
        if error.kind not in ("expired", "invalid"):
            return
        account = self.account
        key = expiry.token_notice_key(error.kind, account.secret_hint, secret)
        if self.outbox.due(key):
            notice = token_notice(account, error.kind, error.aadsts, self.rt.sync, self.renewal_link())
            self.outbox.send(notice, key)

    def renewal_link(self) -> RenewalLink | None:
        """A fresh ``renew`` link for a notice about the secret, when the portal is configured
        (``APSIS_SSO_PORTAL_URL``). It replaces the account's previous renew link, whose page then
        says a newer one was sent. A dry run mints nothing and shows where the link would go."""
        settings, account = self.rt.settings, self.account
        portal, valid = settings.portal_url, timedelta(days=settings.invitation_days)
        if not portal:
            return None
        if self.dry_run:
            return RenewalLink(
                invitations.link(portal, account.id, "<minted when the notice is sent>"), datetime.now(UTC) + valid
            )
        try:
            token, invitation = invitations.issue(self.keycloak, account, "renew", valid)
        except ApsisError as exc:  # the notice still goes out, with the old instructions
            log.warning("no renewal link for the notice", extra={"account": account.id, "error": str(exc)})
            return None
        return RenewalLink(invitations.link(portal, account.id, token), invitation.expires)

    # -- the run's record -------------------------------------------------------------

    def record(self) -> None:
        result = self.result
        try:
            self.rt.state.record_run(
                self.account.id,
                ok=result.status == "ok",  # a quarantined or failed cycle is no successful sync
                status=result.status,
                errors=result.errors,
                deactivated=result.applied,
                delta_link=self.committed.delta_link,
                full_listing=self.committed.full_listing,
                staged=self.committed.staged,
                secret_expires=result.expiry.expires if result.expiry else None,
                secret_expires_source=result.expiry.source if result.expiry else None,
            )
        except Exception:  # noqa: BLE001 - the log has it; the next cycle redoes the same work
            log.exception("cannot record the run", extra={"account": self.account.id})

    def _log(self) -> None:
        result = self.result
        eventful = (
            result.errors
            or result.actions
            or result.resumed
            or result.notices
            or result.restored
            or result.status != "ok"
        )
        level = logging.ERROR if result.status == "error" else logging.INFO if eventful else logging.DEBUG
        log.log(
            level,
            "account synced",
            extra={
                "account": self.account.id,
                "status": result.status,
                "mode": result.mode,
                "deactivated": result.applied,
                "planned": len(result.actions),
                "errors": result.errors,
                "dry_run": self.dry_run,
                "seconds": round(result.seconds, 3),
            },
        )
