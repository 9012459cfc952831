"""The daily re-check of each account's tenant–domain binding.

Once a day per domain of an account with SSO on (pilot or live), the daemon asks Entra's
discovery again which tenant the domain is verified in (``apsis_core.domain_ownership``: one
request per domain, nothing else; when no domain is due it costs one look at attributes the
cycle already read, no request). A domain still in the account's tenant gets a fresh proof; one
removed from the tenant or moved to another loses its proof — the extension then stops
trusting emails without ``xms_edov`` there — and is flagged (``apsis.domainAlerts``, shown by
``apsis-sync status`` and ``account show``), counted in the metrics and mailed to the platform
team once per change. Accounts created before proofs existed get theirs at their first cycle
(``apsis-sso account prove-domains`` does the same at once). Entra not answering changes
nothing: the domain stays due and is asked again next cycle.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apsis_core import domain_ownership
from apsis_core.account import AccountRecord
from apsis_core.contract import DOMAIN_ALERTS_KEY
from apsis_core.domain_ownership import DomainAlert, Recorded, Verdict
from sync.notify import PREFIX, Notice
from sync.settings import SyncSettings

if TYPE_CHECKING:
    from sync.outbox import Outbox
    from sync.runtime import Runtime

log = logging.getLogger("apsis_sync.daemon")


async def run(rt: Runtime, account: AccountRecord, dry_run: bool, outbox: Outbox) -> None:
    """Re-check the account's due domains (if any), then mail what is news. Entra's discovery
    is the proof; an Okta account's binding is its issuer, recorded at setup (nothing to re-check)."""
    if account.provider != "entra":
        return
    now = datetime.now(UTC).replace(microsecond=0)
    due = domain_ownership.recheck_due(account.attributes, account.tenant_id, account.domains, now)
    alerts: tuple[DomainAlert, ...] | None = None
    if due:
        found = await domain_ownership.discover_async(rt.endpoints, due)
        verdicts = domain_ownership.judge_all(found, account.tenant_id, now)
        for verdict in verdicts:
            rt.metrics.domain_checks.labels(verdict.status).inc()
        recorded = (
            _record(rt, account, verdicts, now, dry_run)
            if dry_run
            else await rt.blocking(_record, rt, account, verdicts, now, dry_run)
        )
        if recorded is not None:
            _report(account, recorded, outbox, dry_run)
            alerts = tuple(a for a in (DomainAlert.parse(v) for v in recorded.alerts) if a is not None)
    if alerts is None:
        # Nothing asked this cycle: what Keycloak holds (parsed only when there is something).
        alerts = account.ownership.alerts if account.attributes.get(DOMAIN_ALERTS_KEY) else ()
    outbox.result.domain_alerts = len(alerts)
    if alerts:
        await rt.blocking(_notify, rt, account, alerts, outbox)


def _record(
    rt: Runtime, account: AccountRecord, verdicts: list[Verdict], now: datetime, dry_run: bool
) -> Recorded | None:
    if dry_run:
        return domain_ownership.after_check(account.attributes, account.tenant_id, account.domains, verdicts, now)
    return domain_ownership.store(rt.keycloak, account.org_id, account.tenant_id, account.domains, verdicts, now)


def _report(account: AccountRecord, recorded: Recorded, outbox: Outbox, dry_run: bool) -> None:
    result = outbox.result
    would = "would be " if dry_run else ""
    for domain in recorded.lost:
        result.notes.append(f"domain {domain}: proof {would}removed (no longer verified in tenant {account.tenant_id})")
    for alert in recorded.new_alerts:
        log.warning(
            "domain ownership lost",
            extra={"account": account.id, "domain": alert.domain, "status": alert.status, "owner": alert.owner},
        )
        result.notes.append(f"domain {alert.describe()}")
    for domain in recorded.recovered:
        log.info("domain ownership proven again", extra={"account": account.id, "domain": domain})
        result.notes.append(f"domain {domain} is verified in tenant {account.tenant_id} again")
    for verdict in recorded.unavailable:
        log.warning(
            "domain ownership not checked",
            extra={"account": account.id, "domain": verdict.domain, "detail": verdict.detail},
        )
        result.notes.append(f"{verdict.describe()}; asked again next cycle")


def _notify(rt: Runtime, account: AccountRecord, alerts: tuple[DomainAlert, ...], outbox: Outbox) -> None:
    """Each alert is mailed once (per state database): a new one, or one whose mail failed."""
    for alert in alerts:
        key = f"domain:{alert.change}"
        if outbox.due(key):
            outbox.send(domain_notice(account, alert, rt.sync), key)


def domain_notice(account: AccountRecord, alert: DomainAlert, settings: SyncSettings) -> Notice:
    to = (settings.platform_team_email,) if settings.platform_team_email else ()
    if alert.status == "other-tenant":
        what = (
            f"Entra's discovery now places {alert.domain} in another tenant ({alert.owner}), not in the "
            f"account's tenant {alert.tenant_id}."
        )
    else:
        what = f"{alert.domain} is no longer a verified domain of any Entra tenant (AADSTS90002)."
    live = (
        "\nThe account is live: addresses in that domain typed on the login page still go to the account's "
        "Entra sign-in; consider `apsis-sso account back-to-pilot " + account.id + "` until this is clear.\n"
        if account.stage == "live"
        else ""
    )
    body = f"""The daily check of account {account.id} ({account.name}) found that its tenant no longer owns
one of its domains: {what}

Its proof was removed: single sign-on no longer trusts an email address in {alert.domain} unless
Entra vouches for it with the xms_edov claim, so new links of users in that domain are refused.
Users already linked keep signing in (their link is by Entra object id).
{live}
Ask the customer's IT contact ({account.it_contact.name} <{account.it_contact.email or "unknown"}>) what
happened. When the domain is verified in the tenant again, `apsis-sso account prove-domains {account.id}`
records it at once (the daily check does too). If the domain has left the customer, remove it
from the account (`apsis-sso apply -f` with the domain removed).

-- apsis-sync
"""
    return Notice(
        "domain-ownership",
        account.id,
        f"{PREFIX} {account.id}: {alert.domain} is no longer proven for its Entra tenant",
        body,
        to,
        (),
        {"domain": alert.domain, "status": alert.status, "owner": alert.owner, "tenant": alert.tenant_id},
    )
