"""From an Entra user to the APSIS One (Keycloak) user it stands for, conservatively.

The IdP link is the strong key: its user id is the Entra object id (see docs/contracts.md),
so a user who has signed in with SSO is found by ``oid`` whatever their email became. A user
who never signed in is matched by email, with the same safeguards as linking at login: the
address must be in one of the account's domains, exactly one realm user may have it, and that
user must not be linked to this IdP under another object id. In every case the user must be a
member of the account's organization: the daemon never touches anyone else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from apsis_core.account import AccountRecord


class Directory(Protocol):
    """What deprovisioning plans read from Keycloak: the repository's read methods (the unit
    tests pass an in-memory one). They are lookups driven by what Graph reported — the user
    linked to an object id, the users with an address, their accounts and links — so they
    are not read up front like the provisioning snapshot: that would cost a request per
    member until Keycloak can list links in bulk."""

    def user_by_idp_link(self, alias: str, idp_user_id: str) -> dict[str, Any] | None: ...
    def users_by_email(self, email: str) -> list[dict[str, Any]]: ...
    def user_organizations(self, user_id: str) -> list[dict[str, Any]]: ...
    def federated_identities(self, user_id: str) -> list[dict[str, Any]]: ...
    def user_sessions(self, user_id: str) -> list[dict[str, Any]]: ...
    def members(self, org_id: str) -> Iterable[dict[str, Any]]: ...
    def linked_users(self, alias: str, *, brief: bool = True) -> Iterable[dict[str, Any]]: ...


@dataclass(frozen=True)
class Match:
    """A Keycloak user and how it was found (``link`` or ``email``)."""

    user: dict[str, Any]
    via: str
    email: str | None

    @property
    def user_id(self) -> str:
        return str(self.user["id"])


class Matcher:
    """Matches for one account in one cycle; caches what it reads from Keycloak."""

    def __init__(self, api: Directory, account: AccountRecord, member_ids: set[str] | None = None) -> None:
        self.api = api
        self.account = account
        self._member_ids = member_ids
        self._orgs: dict[str, list[dict[str, Any]]] = {}
        self.notes: list[str] = []

    def is_member(self, user_id: str) -> bool:
        if self._member_ids is not None:
            return user_id in self._member_ids
        return any(o.get("id") == self.account.org_id for o in self.organizations(user_id))

    def organizations(self, user_id: str) -> list[dict[str, Any]]:
        if user_id not in self._orgs:
            self._orgs[user_id] = self.api.user_organizations(user_id) or []
        return self._orgs[user_id]

    def other_accounts(self, user_id: str) -> list[str]:
        """Aliases of the other organizations (accounts) the user belongs to."""
        return sorted(str(o.get("alias")) for o in self.organizations(user_id) if o.get("id") != self.account.org_id)

    def by_link(self, oid: str) -> Match | None:
        user = self.api.user_by_idp_link(self.account.idp_alias, oid)
        if user is None:
            return None
        if not self.is_member(user["id"]):
            self.notes.append(f"user {user.get('username')} is linked to {oid} but not a member of {self.account.id}; left alone")
            return None
        return Match(user, "link", (user.get("email") or "").lower() or None)

    def by_email(self, emails: list[str], oid: str) -> Match | None:
        for email in emails:
            if not self.account.owns_email(email):
                continue
            users = self.api.users_by_email(email)
            if len(users) > 1:
                self.notes.append(f"{len(users)} users have email {email}; none was matched to Entra user {oid}")
                return None
            if not users:
                continue
            user = users[0]
            if not self.is_member(user["id"]):
                continue
            if self._linked_elsewhere(user["id"], oid):
                self.notes.append(f"user {user.get('username')} is linked to another Entra user than {oid}; left alone")
                return None
            return Match(user, "email", email)
        return None

    def match(self, oid: str, emails: list[str]) -> Match | None:
        """By link first, then by the given addresses (from Graph or remembered in the state)."""
        return self.by_link(oid) or self.by_email(emails, oid)

    def _linked_elsewhere(self, user_id: str, oid: str) -> bool:
        links = self.api.federated_identities(user_id) or []
        return any(l.get("identityProvider") == self.account.idp_alias and l.get("userId") != oid for l in links)
