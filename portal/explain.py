"""What the portal says, in the customer's words: Entra's refusals, a link that no longer
works, and why a test user's sign-in was refused.

The operator's one-line messages (``apsis_core.entra.AADSTS``) tell the platform team what
to ask for; these tell the customer's IT what to change in their tenant. Keyed by the
same codes, so nothing is parsed out of sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from apsis_core import domain_ownership
from apsis_core.contract import RefusalReason
from apsis_core.errors import EntraRefused
from apsis_core.invitations import Invitation, Verdict

ENTRA: dict[str, str] = {
    "AADSTS90002": "Microsoft Entra has no tenant \u201c{tenant}\u201d. Copy the Directory (tenant) ID from the app's "
    "Overview page, or enter a verified domain of your tenant.",
    "AADSTS700016": "Your tenant has no application with the Application (client) ID {client_id}. Copy it from the "
    "app's Overview page (the Application (client) ID, not the Object ID).",
    "AADSTS7000215": "Entra did not accept the client secret. Enter the secret's Value (shown only right after you "
    "create it), not its Secret ID.",
    "AADSTS7000222": "This client secret has expired in Entra. Create a new one under Certificates & secrets.",
    "AADSTS700027": "Entra does not know APSIS's certificate on the app {client_id} yet. Download it from this page "
    "and upload it under Certificates & secrets \u203a Certificates \u203a Upload certificate, then submit again. "
    "Nothing was changed.",
    "consent": "Entra accepted the app and its secret, but the app may not read your directory yet: the application "
    "permission User.Read.All has no admin consent. Under API permissions, choose \u201cGrant admin "
    "consent for your organization\u201d (a Global Administrator or Privileged Role Administrator can), "
    "then submit again. Nothing was set up yet.",
}


def entra_refusal(error: EntraRefused, tenant: str, client_id: str) -> str:
    """The customer's sentence for a refusal; the operator's line when we have none."""
    text = ENTRA.get(error.reason)
    return text.format(tenant=tenant, client_id=client_id) if text else error.format_message()


def domain_refusal(verdicts: Sequence[domain_ownership.Verdict], tenant: str, contact: str | None) -> str:
    """Why a setup was refused because the tenant does not own every domain of the account,
    and what the IT contact can do: one sentence per domain, then the way out."""
    said: list[str] = []
    for v in verdicts:
        if v.status == "other-tenant":
            said.append(
                f"{v.domain} is a verified domain of another Microsoft Entra tenant ({v.owner}), not of the "
                f"tenant you entered ({tenant})."
            )
        else:
            said.append(f"{v.domain} is not a verified domain of any Microsoft Entra tenant.")
    ask = f"your APSIS contact{f' ({contact})' if contact else ''}"
    return (
        " ".join(said) + " Single sign-on can only be set up with the tenant where every domain of this account "
        "is verified, so nothing was set up. Enter the Directory (tenant) ID of that tenant, with an app "
        "registered there; or, if the domain belongs to your tenant, add and verify it there (Microsoft Entra "
        "admin center, Settings, Domain names) and submit again. If the domain should not be part of this "
        f"account, ask {ask}."
    )


SIGN_IN_REFUSED: dict[str, str] = {
    "no_organization": "single sign-on is not connected for this account",
    "sso_disabled": "single sign-on is off for this account",
    "email_missing": "Entra sent no email address for this user: fill in the user's Email in Entra",
    "email_unverified": "the address's domain is not a verified domain of your tenant",
    "domain_not_allowed": "the user signed in with an address outside this account's domains",
    "domain_unproven": "Entra sent no xms_edov claim, and the address's domain is not proven to be verified in your "
    "tenant yet: add the optional claim xms_edov to the app's ID token, or ask your APSIS contact",
    "no_user": "there is no APSIS One user with this address",
    "ambiguous_email": "more than one APSIS One user has this address: ask your APSIS contact",
    "user_disabled": "this APSIS One user is deactivated",
    "not_member": "this APSIS One user does not belong to this account: ask your APSIS contact",
    "not_pilot": "this address is not on the test-user list",
    "linked_to_other_identity": "this APSIS One user is already linked to another Entra user",
}


def sign_in_refused(reason: RefusalReason | str) -> str:
    return SIGN_IN_REFUSED.get(reason, f"refused ({reason})")


@dataclass(frozen=True)
class Problem:
    """A page for a link or session that cannot be used: title, what happened, what to do."""

    status: int
    title: str
    text: str
    action: str


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "earlier"


def link_problem(verdict: Verdict, invitation: Invitation | None, contact: str | None) -> Problem:
    """Why a link does not open, and how to get a new one."""
    ask = f"Ask your APSIS contact{f' ({contact})' if contact else ''} for a new link."
    if verdict == "expired" and invitation is not None:
        return Problem(410, "This link has expired", f"It worked until {_when(invitation.expires)}.", ask)
    if verdict == "used" and invitation is not None:
        done = (
            "The single sign-on setup was completed"
            if invitation.intent == "setup"
            else "The new client secret was put in place"
        )
        return Problem(
            410,
            "This link has been used",
            f"{done} on {_when(invitation.closed)}; the link ended then.",
            f"If something needs changing, {ask[0].lower()}{ask[1:]}",
        )
    if verdict == "revoked" and invitation is not None:
        return Problem(410, "This link was withdrawn", f"It was withdrawn on {_when(invitation.closed)}.", ask)
    if verdict == "superseded" and invitation is not None:
        return Problem(
            410,
            "A newer link was sent",
            f"On {_when(invitation.closed)} a newer link for the same task was sent to you, and this one ended.",
            "Use the link in the newest mail.",
        )
    return Problem(
        404,
        "This link is not valid",
        "Check that you opened the whole link from the mail (some mail programs break long links).",
        f"If it still does not work, {ask[0].lower()}{ask[1:]}",
    )


NO_CERTIFICATE = (
    "APSIS has not published a certificate for this service yet. Choose a client secret instead, or ask your "
    "APSIS contact. Nothing was set up."
)

SETUP_BUSY = Problem(
    409,
    "This setup is already under way",
    "Another submission through this link set up single sign-on for this account a moment ago, or is doing it "
    "right now. Nothing was changed by this one.",
    "Open the page again in a minute to see the result.",
)
SESSION_ENDED = Problem(
    401,
    "Your session has ended",
    "For your security, a session lasts at most an hour from the moment you opened the link.",
    "Open the link from your mail again: it keeps working until the task is done or it expires.",
)
FORM_EXPIRED = Problem(
    403,
    "This form could not be accepted",
    "It did not come with this session's security token (it may be from an older tab, or another site).",
    "Go back, reload the page and submit it again.",
)
