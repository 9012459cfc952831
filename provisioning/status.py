"""Read-only status of accounts for `account show` and `account list`.

Built for a realm with thousands of accounts: everything that has a bulk listing is read
in bulk (organizations and identity providers, a few paged requests however many accounts
there are), and the last SSO login of every account comes from one bounded scan of the
realm's newest ``LOGIN`` events, newest first: a brokered login's event names the
identity provider in ``details.identity_provider``; Keycloak cannot filter events by
detail, so the scan stops when every account has been seen or ``events_scan`` events have
been read. Counts of members and of users linked to the account's IdP have no bulk form
in the Admin API: they cost two small count requests per account, which ``counts=False``
skips. ``account show`` also lists who is linked (one paged listing of the IdP's users) with
each one's last SSO login, found by the same scan, which then runs until every linked user
has been seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from apsis_core import stages
from apsis_core.account import Account, AccountRecord, idp_alias
from apsis_core.keycloak import KeycloakPort
from apsis_core.settings import Settings
from apsis_core.timestamps import to_text
from provisioning import checks
from provisioning.onboarding import checked_links, load
from provisioning.snapshot import Snapshot

EVENTS_SCAN = 5000
EVENTS_PAGE = 500


@dataclass(frozen=True)
class LinkedUser:
    """A user linked to the account's IdP: who signs in with SSO, and when they last did."""

    id: str
    username: str
    email: str | None
    enabled: bool
    last_sso_login: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "enabled": self.enabled,
            "last_sso_login": to_text(self.last_sso_login) if self.last_sso_login else None,
        }


@dataclass(frozen=True)
class AccountStatus:
    """One account as an operator reviews it: what Keycloak holds, with counts and logins."""

    record: AccountRecord
    members: int | None = None
    linked_users: int | None = None
    last_sso_login: datetime | None = None
    linked: list[LinkedUser] | None = field(default=None, compare=False)

    @property
    def account(self) -> Account:
        return self.record.settings()

    def login_page(self) -> str:
        """What Keycloak's login page does now for the account's addresses, and whether that is
        what the stage says (a provider changed by hand shows here and in `plan -f`)."""
        now = "straight to Entra" if self.record.redirects_by_domain else "password form"
        wanted = stages.redirects_by_domain(stages.identity_provider_settings(self.record.stage))
        if wanted == self.record.redirects_by_domain:
            return now
        return f"{now} (drift: the {self.record.stage} stage says otherwise)"

    def days_until_secret_expires(self, today: date | None = None) -> int | None:
        """None while the account awaits setup (no secret yet)."""
        expires = self.account.secret_expires
        return None if expires is None else (expires - (today or date.today())).days

    def days_until_secret_expires_text(self, today: date | None = None) -> str:
        days = self.days_until_secret_expires(today)
        if days is None:
            return "no secret yet"
        if days > 0:
            return f"in {days} day{'s' if days != 1 else ''}"
        return "today" if days == 0 else f"EXPIRED {-days} day{'s' if days != -1 else ''} ago"

    def to_dict(self, today: date | None = None) -> dict[str, Any]:
        """Stable keys for scripts (``--output json``)."""
        a, r = self.account, self.record
        return {
            "id": a.id,
            "name": a.name,
            "stage": a.stage,
            "sso_enabled": r.sso_enabled,
            "complete": r.complete,
            "provider": a.provider,
            "tenant_id": a.tenant_id,
            "client_id": a.client_id,
            "domains": list(a.domains),
            "pilot": list(a.pilot),
            "secret_expires": a.secret_expires.isoformat() if a.secret_expires else None,
            "days_until_secret_expires": self.days_until_secret_expires(today),
            "secret_hint": r.secret_hint,
            "credential": r.credential,
            "it_contact": {"name": a.it_contact.name, "email": a.it_contact.email},
            "members": self.members,
            "linked_users": self.linked_users,
            "last_sso_login": to_text(self.last_sso_login) if self.last_sso_login else None,
            "quarantined": r.quarantined,
            "domain_ownership": None if r.awaiting_setup else r.ownership.to_dict(),
            **({"linked": [u.to_dict() for u in self.linked]} if self.linked is not None else {}),
            "redirects_by_domain": r.redirects_by_domain,
        }


def _status(org: Mapping[str, Any], idp: Mapping[str, Any] | None) -> AccountStatus:
    return AccountStatus(AccountRecord.parse(org, idp))


def _with_counts(api: KeycloakPort, status: AccountStatus) -> AccountStatus:
    return replace(
        status,
        members=api.members_count(status.record.org_id),
        linked_users=api.linked_users_count(status.record.idp_alias),
    )


def _sso_logins(api: KeycloakPort, events_scan: int) -> Iterator[tuple[str, str | None, datetime]]:
    """(IdP alias, user id, time) of the brokered LOGIN events among the newest
    ``events_scan``, newest first; a page is only read when the caller asks for more."""
    first = 0
    while first < events_scan:
        size = min(EVENTS_PAGE, events_scan - first)
        page = api.events(type="LOGIN", first=first, max=size)
        for event in page:
            alias = (event.get("details") or {}).get("identity_provider")
            if alias:
                yield alias, event.get("userId"), datetime.fromtimestamp(event.get("time", 0) / 1000, tz=UTC)
        if len(page) < size:
            return
        first += size


def last_sso_logins(api: KeycloakPort, aliases: set[str], events_scan: int = EVENTS_SCAN) -> dict[str, datetime]:
    """Newest successful SSO login per IdP alias among the newest ``events_scan`` LOGIN events."""
    found: dict[str, datetime] = {}
    if not aliases:
        return found
    for alias, _, when in _sso_logins(api, events_scan):
        if alias in aliases and alias not in found:
            found[alias] = when
            if len(found) == len(aliases):
                break
    return found


def linked_users(
    api: KeycloakPort, account_id: str, events_scan: int = EVENTS_SCAN
) -> tuple[list[LinkedUser], datetime | None]:
    """Every user linked to the account's IdP with their last SSO login through it (most
    recent first, then never-seen ones by email), and the account's last SSO login."""
    alias = idp_alias(account_id)
    users = list(api.linked_users(alias))
    last: dict[str, datetime] = {}
    newest: datetime | None = None
    if events_scan:
        ids = {u["id"] for u in users}
        for event_alias, user_id, when in _sso_logins(api, events_scan):
            if event_alias != alias:
                continue
            newest = newest or when
            if user_id is not None and user_id in ids and user_id not in last:
                last[user_id] = when
            if len(last) == len(ids):
                break
    rows = [
        LinkedUser(
            id=u["id"],
            username=u.get("username", ""),
            email=u.get("email"),
            enabled=bool(u.get("enabled", True)),
            last_sso_login=last.get(u["id"]),
        )
        for u in users
    ]
    rows.sort(
        key=lambda u: (u.last_sso_login is None, -(u.last_sso_login or _EPOCH).timestamp(), u.email or u.username)
    )
    return rows, newest


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def list_accounts(
    api: KeycloakPort, *, counts: bool = True, events_scan: int = EVENTS_SCAN, stages: tuple[str, ...] = ()
) -> list[AccountStatus]:
    """Every account the tool manages (or those in ``stages``), sorted by id."""
    snapshot = Snapshot.load(api)
    statuses = [_status(org, snapshot.idps.get(idp_alias(alias))) for alias, org in sorted(snapshot.managed().items())]
    statuses = [s for s in statuses if not stages or s.record.stage in stages]
    logins = last_sso_logins(api, {idp_alias(s.account.id) for s in statuses}, events_scan) if events_scan else {}
    out: list[AccountStatus] = []
    for status in statuses:
        if counts:
            status = _with_counts(api, status)
        out.append(replace(status, last_sso_login=logins.get(idp_alias(status.account.id))))
    return out


@dataclass(frozen=True)
class AccountReport:
    """``account show``: the status (linked users up to a limit), the links to send, warnings."""

    status: AccountStatus
    links: dict[str, str]
    warnings: list[str]
    more_linked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.status.to_dict(), "links": self.links, "warnings": self.warnings}


def account_report(
    api: KeycloakPort,
    settings: Settings,
    account_id: str,
    *,
    events_scan: int = EVENTS_SCAN,
    linked_limit: int = 0,
) -> AccountReport:
    """Everything about one account; ``linked_limit`` (0: all) caps the linked users listed."""
    status = show_account(api, account_id, events_scan=events_scan)
    linked = status.linked or []
    shown = linked[:linked_limit] if linked_limit else linked
    status = replace(status, linked=shown)
    links, refused = checked_links(settings, status.account)
    warnings = refused + checks.ownership_warnings(status.record) + checks.account_warnings(api, status.account)
    if status.record.awaiting_setup:
        warnings.insert(
            0,
            f"account {status.record.id} awaits setup by its IT: send them a link with "
            f"`apsis-sso account invite {status.record.id}`",
        )
    elif not status.record.complete:
        warnings.insert(
            0, f"account {status.record.id} is only partly created: run `account create` again to complete it"
        )
    return AccountReport(status, links, warnings, len(linked) - len(shown))


def show_account(api: KeycloakPort, account_id: str, *, events_scan: int = EVENTS_SCAN) -> AccountStatus:
    status = _with_counts(api, AccountStatus(load(api, account_id)))
    linked, newest = linked_users(api, status.record.id, events_scan)
    return replace(status, last_sso_login=newest, linked=linked)
