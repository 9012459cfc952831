"""The platform team hears about what customers did through the portal: a setup in test
phase, a setup refused because the tenant does not own the account's domains (someone
holding the link tried another tenant), a setup declared ready for everyone, a renewed
secret. Mail through the daemon's SMTP settings to ``APSIS_SYNC_PLATFORM_TEAM_EMAIL``; facts
only, never a secret.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from datetime import date

from apsis_core import mail
from apsis_core.account import AccountRecord
from apsis_core.domain_ownership import Verdict
from apsis_core.mail import Mail, MailSettings

log = logging.getLogger("apsis_portal.notify")
PREFIX = "[APSIS One SSO]"


def _send(settings: MailSettings, account: str, subject: str, body: str, kind: str) -> bool:
    """True when the platform team was told; a failure is logged, never fatal: the customer's
    change is done and stays done."""
    if not settings.can_send or not settings.platform_team_email:
        log.warning("platform team not notified: no SMTP host or platform team address", extra={"account": account})
        return False
    try:
        mail.send(
            settings,
            Mail(
                (settings.platform_team_email,),
                f"{PREFIX} {account}: {subject}",
                body,
                headers={"X-Apsis-Portal": kind, "X-Apsis-Account": account},
            ),
        )
    except (OSError, smtplib.SMTPException) as exc:
        log.error(
            "platform team not notified", extra={"account": account, "error": f"{type(exc).__name__}: {exc}"[:200]}
        )
        return False
    return True


def setup_submitted(settings: MailSettings, record: AccountRecord, test_users: tuple[str, ...]) -> bool:
    body = f"""{record.it_contact.name} <{record.it_contact.email}> set up single sign-on for account {record.id}
({record.name}) through the portal. It is in pilot: only the test users can sign in, with the
test-login link.

Tenant {record.tenant_id}, application (client) ID {record.client_id}.
Domains proven to be verified in that tenant (Entra's discovery): {", ".join(record.ownership.proven) or "none"}
Test users: {", ".join(test_users)}

Nothing to do yet: you will hear when they declare it ready for everyone
(`apsis-sso account show {record.id}` shows the test users' sign-ins meanwhile).

-- apsis-portal
"""
    return _send(settings, record.id, "SSO set up through the portal (pilot)", body, "setup-submitted")


def setup_refused(
    settings: MailSettings, record: AccountRecord, tenant: str, client_id: str, verdicts: Sequence[Verdict], client: str
) -> bool:
    """A setup named a tenant that does not own every domain of the account: refused, nothing
    created. Whoever holds a setup link can try this, so the platform team hears of it."""
    lines = "\n".join(f"  - {v.describe()}" for v in verdicts)
    body = f"""A setup of single sign-on for account {record.id} ({record.name}) through the portal was
REFUSED: the tenant it named does not own every domain of the account. Nothing was created.

Tenant named: {tenant}, application (client) ID {client_id}, from {client}.
{lines}

The setup link was sent to {record.it_contact.name} <{record.it_contact.email}>. If they did not
submit this, the link may have been forwarded or intercepted: check with them, and end it with

    apsis-sso account invite {record.id} --revoke

-- apsis-portal
"""
    return _send(
        settings,
        record.id,
        "portal setup REFUSED: the tenant does not own the account's domains",
        body,
        "setup-refused",
    )


def ready(settings: MailSettings, record: AccountRecord, signed_in: list[str], went_live: bool) -> bool:
    if went_live:
        next_step = "The portal took the account live (APSIS_PORTAL_GO_LIVE): every member may sign in with SSO."
    else:
        next_step = f"Take it live for every member:\n\n    apsis-sso account go-live {record.id}"
    body = f"""{record.it_contact.name} <{record.it_contact.email}> declared single sign-on of account {record.id}
({record.name}) ready for everyone.

Test users who signed in through SSO: {", ".join(signed_in) or "none"}

{next_step}

-- apsis-portal
"""
    subject = "went live through the portal" if went_live else "ready for everyone: please go live"
    return _send(settings, record.id, subject, body, "ready")


def renewed(settings: MailSettings, record: AccountRecord, hint: str, expires: date, old_hint: str | None) -> bool:
    body = f"""{record.it_contact.name} <{record.it_contact.email}> renewed the Entra client secret of account {record.id}
({record.name}) through the portal: the new secret (starting with "{hint}") was proved with
Entra and is in use, valid until {expires.isoformat()}. The previous one started with "{old_hint or "?"}".

Nothing to do: Keycloak and apsis-sync use the new secret.

-- apsis-portal
"""
    return _send(
        settings, record.id, f"client secret renewed through the portal (until {expires.isoformat()})", body, "renewed"
    )
