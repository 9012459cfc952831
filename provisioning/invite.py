"""`apsis-sso account invite`: a one-time link to the self-serve portal, mailed to the
account's IT contact.

``setup`` lets them fill in the Entra details of an account awaiting setup (and, once it
is in pilot, follow their test users' sign-ins and declare it ready); ``renew`` lets them
swap in a new client secret. The token is minted and its hash recorded on the account
(``apsis_core.invitations``) before the mail goes out; a mail that cannot be sent withdraws
the invitation again, so no link exists that nobody received.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apsis_core import invitations, mail
from apsis_core.account import AccountRecord
from apsis_core.contract import INVITATION_INTENTS, InvitationIntent
from apsis_core.errors import InvalidInput, TemporaryFailure
from apsis_core.invitations import Invitation
from apsis_core.keycloak import KeycloakPort
from apsis_core.mail import Mail, MailSettings
from apsis_core.settings import Settings
from apsis_core.timestamps import to_text
from provisioning.onboarding import load

PREFIX = "[APSIS One SSO]"
MAIL_KIND_HEADER = "X-Apsis-Invitation"


@dataclass
class InviteResult:
    account: str
    intent: InvitationIntent
    url: str
    invitation: Invitation
    mailed_to: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.account,
            "account": self.account,  # the same id, kept for scripts written before "id"
            "intent": self.intent,
            "url": self.url,
            "invitation": self.invitation.id,
            "expires": to_text(self.invitation.expires),
            "mailed_to": self.mailed_to,
            "warnings": self.warnings,
        }


def default_intent(record: AccountRecord) -> InvitationIntent:
    """Setup while the account awaits it, renewal of the secret afterwards."""
    return "setup" if record.awaiting_setup else "renew"


def check_intent(record: AccountRecord, intent: InvitationIntent) -> None:
    if intent not in INVITATION_INTENTS:
        raise InvalidInput(f"invalid intent {intent!r}: expected one of {', '.join(INVITATION_INTENTS)}")
    if intent == "setup" and record.stage not in ("awaiting-setup", "pilot"):
        raise InvalidInput(
            f"account {record.id} is set up already (stage {record.stage}); "
            "to let its IT renew the client secret, use --intent renew"
        )
    if intent == "renew" and record.awaiting_setup:
        raise InvalidInput(f"account {record.id} awaits setup: it has no client secret to renew; use --intent setup")


def invite(
    api: KeycloakPort,
    settings: Settings,
    mail_settings: MailSettings | None,
    account_id: str,
    *,
    intent: InvitationIntent | None = None,
    valid: timedelta | None = None,
    now: datetime | None = None,
) -> InviteResult:
    """Mint a link for the account's IT contact and mail it (``mail_settings`` None: only
    return it, for the operator to pass on). Everything that can refuse — the account, the
    intent, the portal URL, the mail settings — is checked before the invitation is stored."""
    if not settings.portal_url:
        raise InvalidInput("APSIS_SSO_PORTAL_URL is not set: the link needs the portal's address")
    if mail_settings is not None and not mail_settings.can_send:
        raise InvalidInput(
            "APSIS_SYNC_SMTP_HOST is not set, so no mail can be sent (the same SMTP settings as "
            "apsis-sync); use --no-mail to print the link only"
        )
    record = load(api, account_id)
    intent = intent or default_intent(record)
    check_intent(record, intent)
    if mail_settings is not None and not record.it_contact.email:
        raise InvalidInput(f"account {record.id} has no IT contact email to send the link to")
    token, invitation = invitations.issue(api, record, intent, valid or timedelta(days=settings.invitation_days), now)
    url = invitations.link(settings.portal_url, record.id, token)
    result = InviteResult(record.id, intent, url, invitation)
    if mail_settings is None:
        return result
    try:
        mail.send(mail_settings, invitation_mail(record, intent, url, invitation))
    except (OSError, smtplib.SMTPException) as exc:
        invitations.revoke(api, record, intent, now)
        raise TemporaryFailure(
            f"the mail to {record.it_contact.email} was not sent ({type(exc).__name__}: {str(exc)[:120]}); "
            "the link was withdrawn: run the command again later (or with --no-mail to pass the link on yourself)"
        ) from None
    result.mailed_to = record.it_contact.email
    return result


def revoke(
    api: KeycloakPort, account_id: str, intent: InvitationIntent | None = None, now: datetime | None = None
) -> list[Invitation]:
    """End the account's open links (of ``intent``, or all): they show "revoked" from now on."""
    return invitations.revoke(api, load(api, account_id), intent, now)


def invitation_mail(record: AccountRecord, intent: InvitationIntent, url: str, invitation: Invitation) -> Mail:
    greeting = f"Hello {record.it_contact.name}," if record.it_contact.name else "Hello,"
    until = invitation.expires.strftime("%Y-%m-%d %H:%M UTC")
    if intent == "setup":
        subject = f"{PREFIX} Set up single sign-on for {record.name}"
        what = f"""APSIS One can let the people of {record.name} sign in with their Microsoft Entra ID
accounts (single sign-on). This link takes you to a page that shows the steps in the
Microsoft Entra admin center, in order, and a form for the app's details. After you submit
it, the page lets your test users try the sign-in and shows, live, who has signed in.

You will need an administrator who can register an application and grant admin consent
(Global Administrator or Privileged Role Administrator) in your tenant."""
    else:
        subject = f"{PREFIX} Renew the Entra client secret for {record.name}"
        what = f"""The client secret that connects your Microsoft Entra tenant to APSIS One single sign-on
(account {record.id}, application (client) ID {record.client_id}) needs renewing. This link
takes you to a page where you enter a new secret's value and expiry date; we check it with
Entra and switch to it at once, with no interruption for your users."""
    body = f"""{greeting}

{what}

    {url}

The link is for you only and works until {until}, or until you have finished.
Enter the client secret on that page only: never send it by mail.

-- APSIS One SSO
"""
    return Mail(
        (record.it_contact.email,), subject, body, headers={MAIL_KIND_HEADER: intent, "X-Apsis-Account": record.id}
    )
