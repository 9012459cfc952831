"""What an operator should fix before people try to sign in: warnings, never refusals.

A create, the pilot commands and ``account show`` end with these: a secret about to
expire, a test user who has no APSIS One user or is not a member, a domain Entra places in
another tenant, a stage nobody can use yet. Each is one line that says what to do.
"""

from __future__ import annotations

from datetime import date

from apsis_core import entra
from apsis_core.account import Account, AccountRecord
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import EntraError, EntraRefused
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings

EXPIRY_WARNING_DAYS = 30


def account_warnings(
    api: KeycloakRepository, account: Account, today: date | None = None, *, settings: Settings | None = None
) -> list[str]:
    """What an operator should fix before the customer's test users try to sign in.

    With ``settings``, Entra is asked which tenant claims each domain (one discovery request
    per domain): a domain verified in another tenant, or in none, means those users' SSO
    sign-ins will not work as the customer expects.
    """
    out: list[str] = []
    if account.secret_expires is not None:
        days = (account.secret_expires - (today or date.today())).days
        if days <= EXPIRY_WARNING_DAYS:
            out.append(f"the client secret expires in {days} days ({account.secret_expires.isoformat()}); "
                       "ask for a new one soon")
    if settings is not None and not account.awaiting_setup:
        out.extend(_domain_claims(settings, account))
    org = api.organization_by_alias(account.id)
    for email in account.pilot:
        if email.rpartition("@")[2] not in account.domains:
            out.append(f"test user {email} is outside the account's domains ({', '.join(account.domains)}); SSO will refuse them")
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


def _domain_claims(settings: Settings, account: Account) -> list[str]:
    out: list[str] = []
    for domain in account.domains:
        try:
            owner = entra.resolve_tenant(EntraEndpoints.from_settings(settings), domain)
        except EntraRefused:
            out.append(f"domain {domain} is not a verified domain of any Entra tenant; its users' emails are unverified there")
            continue
        except EntraError:
            continue  # Entra unreachable: the secret check already passed or was skipped; nothing to say
        if owner != account.tenant_id:
            out.append(f"domain {domain} is claimed by another Entra tenant ({owner}), not by {account.tenant_id}")
    return out


def stage_warnings(api: KeycloakRepository, record: AccountRecord, stage: str) -> list[str]:
    """A stage nobody can use yet: live without members, pilot without test users."""
    out: list[str] = []
    if stage == "live" and api.members_count(record.org_id) == 0:
        out.append(f"account {record.id} has no members: nobody can sign in with SSO yet")
    if stage == "pilot" and not record.pilot:
        out.append(f"account {record.id} has no test users: nobody can sign in with SSO during pilot")
    return out
