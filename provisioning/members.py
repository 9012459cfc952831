"""Which existing APSIS One users belong to an account: add, remove, list.

Membership is what the login extension checks: only members may link and sign in with the
account's SSO. Users are never created here; they exist in APSIS One beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from apsis_core import validation
from apsis_core.account import idp_alias
from apsis_core.contract import DISABLED_BY_KEY
from apsis_core.errors import Conflict, NotFound
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import User
from provisioning.onboarding import load

MemberOutcome = Literal["added", "already-member", "removed", "not-member"]


@dataclass(frozen=True)
class MemberChange:
    email: str
    user_id: str | None
    outcome: MemberOutcome


def _org_id(api: KeycloakPort, account_id: str) -> str:
    return load(api, account_id).org_id


def _user_for(api: KeycloakPort, email: str) -> User | None:
    users = api.users_by_email(validation.email(email))
    if len(users) > 1:
        raise Conflict(f"more than one user has email {email}")
    return users[0] if users else None


def members_add(
    api: KeycloakPort, account_id: str, emails: list[str], *, from_domains: bool = False, dry_run: bool = False
) -> list[MemberChange]:
    """Add existing users (by email) to the account, and with ``from_domains`` every realm
    user whose email is in one of its domains. Unknown emails fail the whole call before
    anything changes."""
    changes = _add_by_email(api, account_id, emails, dry_run) if emails else []
    if from_domains:
        changes += members_add_from_domains(api, account_id, dry_run=dry_run)
    return changes


def _add_by_email(api: KeycloakPort, account_id: str, emails: list[str], dry_run: bool) -> list[MemberChange]:
    for email in emails:
        validation.email(email)  # malformed input fails before any request
    org_id = _org_id(api, account_id)
    found: list[tuple[str, User]] = []
    for email in emails:
        match = _user_for(api, email)
        if match is None:
            raise NotFound(f"no user with email {validation.email(email)}")
        found.append((validation.email(email), match))
    members = {m["id"] for m in api.members(org_id)}
    out: list[MemberChange] = []
    for email, user in found:
        if user["id"] in members:
            out.append(MemberChange(email, user["id"], "already-member"))
            continue
        if not dry_run:
            api.add_member(org_id, user["id"])
        out.append(MemberChange(email, user["id"], "added"))
    return out


def members_add_from_domains(api: KeycloakPort, account_id: str, *, dry_run: bool = False) -> list[MemberChange]:
    """Add every realm user whose email is in one of the account's domains."""
    record = load(api, account_id)
    members = {m["id"] for m in api.members(record.org_id)}
    out: list[MemberChange] = []
    for domain in record.domains:
        for user in api.users(email=f"@{domain}"):
            email = (user.get("email") or "").lower()
            if not email.endswith(f"@{domain}") or user["id"] in members:
                continue
            if not dry_run:
                api.add_member(record.org_id, user["id"])
            members.add(user["id"])
            out.append(MemberChange(email, user["id"], "added"))
    return out


def members_remove(
    api: KeycloakPort, account_id: str, emails: list[str], *, dry_run: bool = False
) -> list[MemberChange]:
    """Remove users from the account and drop their link to its IdP, so their next SSO
    login is refused; their APSIS One user and password stay."""
    clean = [validation.email(e) for e in emails]
    org_id = _org_id(api, account_id)
    alias = idp_alias(validation.account_id(account_id))
    users = [(email, _user_for(api, email)) for email in clean]  # every lookup before the first change
    members = {m["id"] for m in api.members(org_id)}
    out: list[MemberChange] = []
    for email, user in users:
        if user is None or user["id"] not in members:
            out.append(MemberChange(email, user["id"] if user else None, "not-member"))
            continue
        if not dry_run:
            api.remove_member(org_id, user["id"])
            api.unlink_user(user["id"], alias)
        out.append(MemberChange(email, user["id"], "removed"))
    return out


@dataclass(frozen=True)
class MemberRow:
    """One member as ``account members list`` shows it."""

    id: str
    username: str | None
    email: str | None
    enabled: bool
    linked: bool
    pilot: bool
    disabled_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "enabled": self.enabled,
            "linked": self.linked,
            "pilot": self.pilot,
            "disabled_by": self.disabled_by,
        }


def member_rows(api: KeycloakPort, account_id: str) -> list[MemberRow]:
    """Every member: enabled, linked to the account's Entra identity, on the pilot list,
    disabled by the sync daemon. Two paged listings, whatever the size."""
    record = load(api, account_id)
    linked = {u["id"] for u in api.linked_users(record.idp_alias)}
    pilot = set(record.pilot)
    rows: list[MemberRow] = []
    for user in sorted(api.members(record.org_id), key=lambda u: (u.get("email") or u.get("username") or "").lower()):
        email = (user.get("email") or "").lower()
        rows.append(
            MemberRow(
                id=user["id"],
                username=user.get("username"),
                email=email or None,
                enabled=bool(user.get("enabled", True)),
                linked=user["id"] in linked,
                pilot=email in pilot,
                disabled_by=next(iter((user.get("attributes") or {}).get(DISABLED_BY_KEY) or []), None),
            )
        )
    return rows
