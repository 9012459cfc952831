"""What an operator should fix before people try to sign in: warnings, never refusals.

A create, the pilot commands and ``account show`` end with these: a secret about to
expire, a test user who has no APSIS One user or is not a member, a domain whose ownership
is not proven or was lost, a stage nobody can use yet. Each is one line that says what to do.
(A domain Entra places in another tenant is no warning at create: it is refused before
anything is written, ``provisioning.ownership``.)
"""

from __future__ import annotations

from datetime import date

from apsis_core.account import Account, AccountRecord
from apsis_core.keycloak import KeycloakPort

EXPIRY_WARNING_DAYS = 30


def account_warnings(api: KeycloakPort, account: Account, today: date | None = None) -> list[str]:
    """What an operator should fix before the customer's test users try to sign in."""
    out: list[str] = []
    if account.secret_expires is not None:
        days = (account.secret_expires - (today or date.today())).days
        if days <= EXPIRY_WARNING_DAYS:
            out.append(
                f"the client secret expires in {days} days ({account.secret_expires.isoformat()}); "
                "ask for a new one soon"
            )
    org = api.organization_by_alias(account.id)
    for email in account.pilot:
        if email.rpartition("@")[2] not in account.domains:
            out.append(
                f"test user {email} is outside the account's domains ({', '.join(account.domains)}); SSO will refuse them"
            )
        users = api.users_by_email(email)
        if not users:
            out.append(f"test user {email} has no APSIS One user in Keycloak")
            continue
        user = users[0]
        orgs = {o.get("id") for o in api.user_organizations(user["id"])} if org else set()
        if org is None or org["id"] not in orgs:
            out.append(f"test user {email} is not a member of account {account.id}; add with `account members add`")
        elif not user.get("enabled", True):
            out.append(f"test user {email} is disabled in Keycloak")
    return out


def ownership_warnings(record: AccountRecord) -> list[str]:
    """Domains of an account with SSO whose binding to the tenant is not (or no longer) proven."""
    if record.awaiting_setup:
        return []
    held = record.ownership
    out = [
        f"domain {a.describe()}; its users' emails are trusted only with Entra's xms_edov claim; "
        "ask the customer's IT, then `apsis-sso account prove-domains " + record.id + "`"
        for a in held.alerts
    ]
    alerted = {a.domain for a in held.alerts}
    for domain in held.unproven:
        if domain in alerted:
            continue
        if domain in held.overridden:
            out.append(f"domain {domain} is linked without proof of ownership (override recorded on the account)")
        else:
            out.append(
                f"domain {domain} has no proof of ownership for tenant {record.tenant_id} yet: run "
                f"`apsis-sso account prove-domains {record.id}` (apsis-sync proves it at its next daily check)"
            )
    return out


def stage_warnings(api: KeycloakPort, record: AccountRecord, stage: str) -> list[str]:
    """A stage nobody can use yet: live without members, pilot without test users."""
    out: list[str] = []
    if stage == "live" and api.members_count(record.org_id) == 0:
        out.append(f"account {record.id} has no members: nobody can sign in with SSO yet")
    if stage == "pilot" and not record.pilot:
        out.append(f"account {record.id} has no test users: nobody can sign in with SSO during pilot")
    return out
