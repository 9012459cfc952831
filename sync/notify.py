"""Notifications: plain-text mail to the account's IT contact and the platform team, and an
optional JSON webhook (chat, ticketing).

Texts are rendered here from facts only — account, dates, the secret's public ``hint``,
user emails — never a secret, token or delta link. A notice counts as delivered when one
channel took it; the caller records it only then, so a mail server that is down means the
notice is tried again next cycle instead of being lost.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import httpx

from apsis_core import mail
from apsis_core.account import AccountRecord
from apsis_core.certificates import PublicCertificate
from apsis_core.contract import NoticeKind
from sync.deprovision import Action, Restored
from sync.expiry import EXPIRED, SecretExpiry
from sync.settings import SyncSettings

log = logging.getLogger("apsis_sync.notify")
PREFIX = "[APSIS One SSO]"


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    account: str
    subject: str
    body: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    private: tuple[str, ...] = field(default=(), repr=False)
    """Parts of the body for the mail's recipients only (a renewal link): the webhook, which
    may feed a chat or a ticket system, gets the text without them."""

    def to_dict(self) -> dict[str, Any]:
        text = self.body
        for part in self.private:
            text = text.replace(part, "(sent to the IT contact by mail)")
        return {
            "kind": self.kind,
            "account": self.account,
            "subject": self.subject,
            "to": list(self.to),
            "cc": list(self.cc),
            "text": text,
            "data": self.data,
        }


@dataclass(frozen=True)
class RenewalLink:
    """A ``renew`` link to the self-serve portal, minted for one notice (``sync.pipeline``)."""

    url: str
    expires: datetime


class Sender(Protocol):
    """Anything that takes notices: ``send`` is True when the notice was delivered."""

    def send(self, notice: Notice) -> bool: ...


class RecordingNotifier:
    """A dry run's notifier: keeps what would have been sent, and sends nothing."""

    def __init__(self) -> None:
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> bool:
        self.sent.append(notice)
        return True


class Notifier:
    """Delivers notices by SMTP and/or webhook, as configured."""

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings

    @property
    def channels(self) -> list[str]:
        out = []
        if self.settings.smtp_host:
            out.append("smtp")
        if self.settings.webhook_url:
            out.append("webhook")
        return out

    def send(self, notice: Notice) -> bool:
        """True when at least one channel accepted the notice (or none is configured: then the
        log is the channel, and retrying every cycle would only repeat the same line)."""
        if not self.channels:
            log.warning(
                "notification not delivered: no SMTP host or webhook configured",
                extra={"account": notice.account, "kind": notice.kind, "subject": notice.subject},
            )
            return True
        delivered = False
        if self.settings.smtp_host and (notice.to or notice.cc):
            try:
                self._mail(notice)
                delivered = True
            except (OSError, smtplib.SMTPException) as exc:
                log.error(
                    "mail not sent",
                    extra={
                        "account": notice.account,
                        "kind": notice.kind,
                        "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                    },
                )
        if self.settings.webhook_url:
            try:
                self._webhook(notice)
                delivered = True
            except httpx.HTTPError as exc:
                log.error(
                    "webhook not called",
                    extra={
                        "account": notice.account,
                        "kind": notice.kind,
                        "error": f"{type(exc).__name__}: {str(exc)[:200]}",
                    },
                )
        if delivered:
            log.info(
                "notification sent",
                extra={"account": notice.account, "kind": notice.kind, "to": list(notice.to), "cc": list(notice.cc)},
            )
        return delivered

    def _mail(self, notice: Notice) -> None:
        mail.send(
            self.settings,
            mail.Mail(
                notice.to,
                notice.subject,
                notice.body,
                notice.cc,
                {"X-Apsis-Sync-Kind": notice.kind, "X-Apsis-Sync-Account": notice.account},
            ),
        )

    def _webhook(self, notice: Notice) -> None:
        resp = httpx.post(self.settings.webhook_url or "", json=notice.to_dict(), timeout=self.settings.webhook_timeout)
        resp.raise_for_status()


# -- texts ------------------------------------------------------------------------------


def _recipients(account: AccountRecord, settings: SyncSettings) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Secret notices go to the IT contact, with the platform team in copy."""
    to = (account.it_contact.email,) if account.it_contact.email else ()
    cc = (settings.platform_team_email,) if settings.platform_team_email else ()
    if not to:
        return cc, ()
    return to, cc


def _greeting(account: AccountRecord) -> str:
    return f"Hello {account.it_contact.name}," if account.it_contact.name else "Hello,"


def _renewal_steps(account: AccountRecord, renewal: RenewalLink | None) -> str:
    """How to renew: through the link when the notice carries one, else as at onboarding."""
    add = f"""1. In the Microsoft Entra admin center, open App registrations > the app with client ID
   {account.client_id} > Certificates & secrets, and add a new client secret."""
    if renewal is None:
        return f"""{add}
2. Send us the new secret's value and its expiry date through the secure channel you used
   at onboarding. Please do not reply to this mail with the secret.
3. Keep the old secret until we confirm the switch; then you may delete it."""
    return f"""{add}
2. Open this link and enter the new secret's value and its expiry date. We check it with
   Entra and switch to it at once, with no interruption for your users. The link is for
   you only and works until {renewal.expires.strftime("%Y-%m-%d %H:%M UTC")}:

       {renewal.url}

3. Then you may delete the old secret. Please never send a secret by mail."""


def expiry_notice(
    account: AccountRecord,
    expiry: SecretExpiry,
    threshold: int,
    settings: SyncSettings,
    renewal: RenewalLink | None = None,
) -> Notice:
    to, cc = _recipients(account, settings)
    which = f'the secret whose value starts with "{expiry.hint}"' if expiry.hint else "the client secret"
    if threshold == EXPIRED:
        subject = f"{PREFIX} {account.id}: the Entra client secret has expired ({expiry.expires.isoformat()})"
        when = f"expired on {expiry.expires.isoformat()}"
        effect = "Single sign-on for your users stops working until a new secret is in place."
    else:
        days = expiry.days_left
        subject = (
            f"{PREFIX} {account.id}: the Entra client secret expires in {days} day{'s' if days != 1 else ''} "
            f"({expiry.expires.isoformat()})"
        )
        when = f"expires on {expiry.expires.isoformat()}, in {days} day{'s' if days != 1 else ''}"
        effect = "When it expires, single sign-on for your users stops working."
    body = f"""{_greeting(account)}

The client secret of the app registration that connects your Microsoft Entra tenant to
APSIS One single sign-on (account {account.id}, application (client) ID {account.client_id},
{which}) {when}.
{effect}

To renew it:
{_renewal_steps(account, renewal)}

Source of the date: {"the app registration in your tenant" if expiry.source == "graph" else "the date you gave us at onboarding"}.

-- APSIS One SSO (apsis-sync)
"""
    kind: NoticeKind = "secret-expired" if threshold == EXPIRED else "secret-expiry"
    return Notice(
        kind,
        account.id,
        subject,
        body,
        to,
        cc,
        {
            "expires": expiry.expires.isoformat(),
            "days_left": expiry.days_left,
            "source": expiry.source,
            "hint": expiry.hint,
            "threshold": "expired" if threshold == EXPIRED else threshold,
            "renewal_link": renewal is not None,
        },
        private=(renewal.url,) if renewal else (),
    )


def certificate_notice(
    account: AccountRecord,
    current: PublicCertificate,
    upcoming: PublicCertificate | None,
    days_left: int,
    threshold: int,
    settings: SyncSettings,
) -> Notice:
    """Ask the IT contact to upload APSIS's next certificate (a certificate account): the public
    certificate is in the mail itself, since it is not a secret."""
    to, cc = _recipients(account, settings)
    ends = current.not_after.date().isoformat()
    days = f"{days_left} day{'s' if days_left != 1 else ''}"
    subject = (
        f"{PREFIX} {account.id}: upload APSIS's new certificate before {ends} (in {days})"
        if threshold != EXPIRED
        else f"{PREFIX} {account.id}: APSIS's certificate expired on {ends}"
    )
    if upcoming is None:
        steps = "APSIS has not published the next certificate yet; we will send it to you."
    else:
        steps = f"""1. In the Microsoft Entra admin center, open App registrations > the app with client ID
   {account.client_id} > Certificates & secrets > Certificates > Upload certificate.
2. Upload this certificate (save it as apsis-sso.cer; it is public, not a secret):

{upcoming.pem}
   Its thumbprint, as Entra shows it: {upcoming.sha1_thumbprint}
3. Keep the current certificate ({current.sha1_thumbprint}) until it expires; nothing else
   is needed: we check the upload ourselves and switch without interruption."""
    body = f"""{_greeting(account)}

The certificate that connects your Microsoft Entra tenant to APSIS One single sign-on
(account {account.id}, application (client) ID {account.client_id}) expires on {ends}.
When it expires, single sign-on for your users stops working unless the new one is uploaded.

{steps}

-- APSIS One SSO (apsis-sync)
"""
    return Notice(
        "certificate-renewal",
        account.id,
        subject,
        body,
        to,
        cc,
        {
            "expires": ends,
            "days_left": days_left,
            "threshold": "expired" if threshold == EXPIRED else threshold,
            "current": current.sha1_thumbprint,
            "next": upcoming.sha1_thumbprint if upcoming else None,
        },
    )


def token_notice(
    account: AccountRecord, kind: str, aadsts: int | None, settings: SyncSettings, renewal: RenewalLink | None = None
) -> Notice:
    to, cc = _recipients(account, settings)
    if kind == "expired":
        subject = f"{PREFIX} {account.id}: Entra reports the client secret as expired (AADSTS{aadsts})"
        what = "Entra refused our sign-in with the client secret because the secret has expired."
    else:
        subject = f"{PREFIX} {account.id}: Entra rejects the client secret (AADSTS{aadsts})"
        what = (
            "Entra refused our sign-in with the client secret: it is not a valid secret of the app "
            "(it may have been deleted, or replaced without telling us)."
        )
    body = f"""{_greeting(account)}

{what}
Account {account.id}, application (client) ID {account.client_id}, tenant {account.tenant_id}.
Until a working secret is in place, single sign-on and the deactivation of users removed
from your directory do not work for this account.

To renew it:
{_renewal_steps(account, renewal)}

-- APSIS One SSO (apsis-sync)
"""
    return Notice(
        "token-expired" if kind == "expired" else "token-invalid",
        account.id,
        subject,
        body,
        to,
        cc,
        {"aadsts": aadsts, "hint": account.secret_hint, "renewal_link": renewal is not None},
        private=(renewal.url,) if renewal else (),
    )


def quarantine_notice(account: AccountRecord, reason: str, held: list[Action], settings: SyncSettings) -> Notice:
    to = (settings.platform_team_email,) if settings.platform_team_email else ()
    shown = "\n".join(f"  - {a.describe(account.id)}" for a in held[:20])
    if not held:
        shown = f"  (listed by: apsis-sync run --dry-run --account {account.id})"
    more = f"\n  ... and {len(held) - 20} more" if len(held) > 20 else ""
    body = f"""The apsis-sync guard quarantined account {account.id}: {reason}.
Nothing was deactivated. Held back:
{shown}{more}

If these changes are intended (check with the account's IT contact, {account.it_contact.email or "unknown"}),
release the account and the next cycle carries them out:

    apsis-sync release {account.id}

If they are not, ask the customer to restore the users in Entra before releasing.

-- apsis-sync
"""
    return Notice(
        "quarantine",
        account.id,
        f"{PREFIX} {account.id}: quarantined by the deletion guard",
        body,
        to,
        (),
        {"reason": reason, "held": len(held)},
    )


def stale_secret_notice(account: AccountRecord, path: str, settings: SyncSettings) -> Notice:
    to = (settings.platform_team_email,) if settings.platform_team_email else ()
    body = f"""The client secret apsis-sync holds for account {account.id} ({path}) is not the one
Keycloak records as current (hint {account.secret_hint!r}): the last rotation did not reach
the daemon. Until it does, the daemon signs in to Entra with the old secret, which stops
working when the customer deletes it or it expires.

Store the current secret:

    apsis-sync secret set {account.id}

-- apsis-sync
"""
    return Notice(
        "secret-file-stale",
        account.id,
        f"{PREFIX} {account.id}: apsis-sync holds an outdated client secret",
        body,
        to,
        (),
        {"hint": account.secret_hint, "path": path},
    )


def restored_notice(account: AccountRecord, restored: list[Restored], settings: SyncSettings) -> Notice:
    to = (settings.platform_team_email,) if settings.platform_team_email else ()
    lines = "\n".join(f"  - {r.describe()}" for r in restored)
    body = f"""Users of account {account.id} that apsis-sync deactivated are back in Entra:
{lines}

They were not re-enabled automatically. If access should be restored, re-enable the user
(and for users removed from the account, add them back as members) by hand.

-- apsis-sync
"""
    return Notice(
        "restored",
        account.id,
        f"{PREFIX} {account.id}: {len(restored)} deactivated user(s) back in Entra",
        body,
        to,
        (),
        {"users": [r.email or r.user_id for r in restored]},
    )
