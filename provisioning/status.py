"""Read-only status of accounts for `account show` and `account list`.

Built for a realm with thousands of accounts: everything that has a bulk listing is read
in bulk (organizations and identity providers, a few paged requests however many accounts
there are), and the last SSO login of every account comes from one bounded scan of the
realm's newest ``LOGIN`` events, newest first: a brokered login's event names the
identity provider in ``details.identity_provider``; Keycloak cannot filter events by
detail, so the scan stops when every account has been seen or ``events_scan`` events have
been read. Counts of members and of users linked to the account's IdP have no bulk form
in the Admin API: they cost two small count requests per account, which ``counts=False``
skips.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import Any

from provisioning import stages
from provisioning.accounts import HASH_KEY, Snapshot, account_from_keycloak
from provisioning.keycloak_api import KeycloakApi
from provisioning.model import Account, idp_alias
from provisioning.onboarding import load

EVENTS_SCAN = 5000
EVENTS_PAGE = 500


@dataclass(frozen=True)
class AccountStatus:
    """One account as an operator reviews it."""

    account: Account
    org_id: str
    sso_enabled: bool
    complete: bool
    secret_hint: str | None
    quarantined: str | None
    redirects_by_domain: bool = False  # Keycloak sends the account's addresses to Entra from the login page
    members: int | None = None
    linked_users: int | None = None
    last_sso_login: datetime | None = None

    def days_until_secret_expires(self, today: date | None = None) -> int:
        return (self.account.secret_expires - (today or date.today())).days

    def days_until_secret_expires_text(self, today: date | None = None) -> str:
        days = self.days_until_secret_expires(today)
        if days > 0:
            return f"in {days} day{'s' if days != 1 else ''}"
        return "today" if days == 0 else f"EXPIRED {-days} day{'s' if days != -1 else ''} ago"

    def to_dict(self, today: date | None = None) -> dict[str, Any]:
        """Stable keys for scripts (``--output json``)."""
        a = self.account
        return {
            "id": a.id,
            "name": a.name,
            "stage": a.stage,
            "sso_enabled": self.sso_enabled,
            "complete": self.complete,
            "tenant_id": a.tenant_id,
            "client_id": a.client_id,
            "domains": list(a.domains),
            "pilot": list(a.pilot),
            "secret_expires": a.secret_expires.isoformat(),
            "days_until_secret_expires": self.days_until_secret_expires(today),
            "secret_hint": self.secret_hint,
            "it_contact": {"name": a.it_contact.name, "email": a.it_contact.email},
            "members": self.members,
            "linked_users": self.linked_users,
            "last_sso_login": self.last_sso_login.isoformat() if self.last_sso_login else None,
            "quarantined": self.quarantined,
            "redirects_by_domain": self.redirects_by_domain,
        }


def _status(org: dict[str, Any], idp: dict[str, Any] | None) -> AccountStatus:
    attrs = org.get("attributes", {})
    complete = bool(idp and idp.get("organizationId") == org.get("id") and idp.get("config", {}).get(HASH_KEY))
    return AccountStatus(
        account=account_from_keycloak(org, idp),
        org_id=str(org["id"]),
        sso_enabled=bool(idp and idp.get("enabled")),
        complete=complete,
        secret_hint=(attrs.get("apsis.secretHint") or [None])[0],
        quarantined=(attrs.get("apsis.quarantined") or [None])[0],
        redirects_by_domain=stages.redirects_by_domain(idp or {}),
    )


def _with_counts(api: KeycloakApi, status: AccountStatus) -> AccountStatus:
    return replace(
        status,
        members=api.members_count(status.org_id),
        linked_users=int(api.call("GET", "users/count", params={"idpAlias": idp_alias(status.account.id)})),
    )


def last_sso_logins(api: KeycloakApi, aliases: set[str], events_scan: int = EVENTS_SCAN) -> dict[str, datetime]:
    """Newest successful SSO login per IdP alias among the newest ``events_scan`` LOGIN events."""
    found: dict[str, datetime] = {}
    first = 0
    while first < events_scan and len(found) < len(aliases):
        size = min(EVENTS_PAGE, events_scan - first)
        page = api.events(type="LOGIN", first=first, max=size)
        for event in page:
            alias = (event.get("details") or {}).get("identity_provider")
            if alias in aliases and alias not in found:
                found[alias] = datetime.fromtimestamp(event.get("time", 0) / 1000, tz=timezone.utc)
        if len(page) < size:
            break
        first += size
    return found


def list_accounts(api: KeycloakApi, *, counts: bool = True, events_scan: int = EVENTS_SCAN) -> list[AccountStatus]:
    """Every account the tool manages, sorted by id."""
    snapshot = Snapshot.load(api)
    statuses = [_status(org, snapshot.idps.get(idp_alias(alias))) for alias, org in sorted(snapshot.managed().items())]
    logins = last_sso_logins(api, {idp_alias(s.account.id) for s in statuses}, events_scan) if events_scan else {}
    out: list[AccountStatus] = []
    for status in statuses:
        if counts:
            status = _with_counts(api, status)
        out.append(replace(status, last_sso_login=logins.get(idp_alias(status.account.id))))
    return out


def show_account(api: KeycloakApi, account_id: str, *, events_scan: int = EVENTS_SCAN) -> AccountStatus:
    account, org, idp = load(api, account_id)
    alias = account.idp_alias
    status = _with_counts(api, _status(org, idp))
    logins = last_sso_logins(api, {alias}, events_scan) if events_scan else {}
    return replace(status, last_sso_login=logins.get(alias))


def linked_user_ids(api: KeycloakApi, account_id: str) -> set[str]:
    """Ids of users linked to the account's IdP (one paged listing)."""
    return {u["id"] for u in api.paged("users", {"idpAlias": idp_alias(account_id), "briefRepresentation": "true"})}
