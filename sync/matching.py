"""From an Entra user to the APSIS One (Keycloak) user it stands for, conservatively.

The IdP link is the strong key: its user id is the Entra object id (see docs/contracts.md),
so a user who has signed in with SSO is found by ``oid`` whatever their email became. A user
who never signed in is matched by email, with the same safeguards as linking at login: the
address must be in one of the account's domains, exactly one realm user may have it, and that
user must not be linked to this IdP under another object id. In every case the user must be a
member of the account's organization: the daemon never touches anyone else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar, cast

from apsis_core.account import AccountRecord
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import LinkRow, OrganizationRef, User
from apsis_core.validation import ascii_lower

T = TypeVar("T")
R = TypeVar("R")


def parallel(fn: Callable[[T], R], items: Iterable[T], concurrency: int) -> list[R]:
    """``fn`` over ``items`` with up to ``concurrency`` at once (Keycloak calls are blocking
    HTTP), results in the items' order; the first error is raised."""
    todo = list(items)
    if concurrency <= 1 or len(todo) <= 1:
        return [fn(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(todo)), thread_name_prefix="apsis-kc") as pool:
        return list(pool.map(fn, todo))


def link_user(row: LinkRow) -> User:
    """A links-resource row as the (brief) user it names."""
    return cast(
        User,
        {
            "id": row["userId"],
            "username": row.get("username"),
            "email": row.get("email"),
            "enabled": row.get("enabled", True),
        },
    )


@dataclass(frozen=True)
class Match:
    """A Keycloak user and how it was found (``link`` or ``email``)."""

    user: User
    via: str
    email: str | None

    @property
    def user_id(self) -> str:
        return str(self.user["id"])


class Matcher:
    """Matches for one account in one round; caches what it reads from Keycloak. Safe to use
    from several threads (each cache entry is written whole)."""

    def __init__(self, api: KeycloakPort, account: AccountRecord, concurrency: int = 1) -> None:
        self.api = api
        self.account = account
        self.concurrency = concurrency
        self._orgs: dict[str, list[OrganizationRef]] = {}
        self._links: dict[str, LinkRow | None] = {}  # oid -> link row, or None: known unlinked
        self._users: dict[str, User | None] = {}
        self._by_email: dict[str, list[LinkRow]] = {}  # address -> rows of the users who have it
        self._link_of: dict[str, str | None] = {}  # user id -> oid of its link to this IdP, None: unlinked
        self.notes: list[str] = []

    # -- bulk reads ---------------------------------------------------------------------

    def prefetch(self, oids: list[str], emails: Mapping[str, list[str]] | None = None) -> None:
        """What matching these users will ask, in bulk: the links of ``oids`` with the accounts
        of every user they name, one request per 100 (``idp_links``); then, for those without
        a link, the users of their addresses (``emails``: oid -> addresses), likewise."""
        wanted = [oid for oid in dict.fromkeys(oids) if oid not in self._links]
        if wanted:
            found = {row["oid"]: row for row in self.api.idp_links(self.account.idp_alias, oids=wanted)}
            for oid in wanted:
                self._links[oid] = None
            self.remember_links(found.values())
        if emails:
            self.prefetch_emails(
                e for oid, addresses in emails.items() if self._links.get(oid) is None for e in addresses
            )

    def prefetch_emails(self, emails: Iterable[str]) -> None:
        """The users of these addresses (only the account's own domains: no other is matched),
        each with its link to this IdP and its accounts, one request per 100 addresses."""
        wanted = [
            e
            for e in dict.fromkeys(ascii_lower(e) for e in emails if self.account.owns_email(e))
            if e not in self._by_email
        ]
        if not wanted:
            return
        rows = list(self.api.users_by_emails(self.account.idp_alias, wanted))
        for email in wanted:
            self._by_email[email] = []
        for row in rows:
            self._by_email.setdefault(ascii_lower(row.get("email") or ""), []).append(row)
            self._orgs[row["userId"]] = list(row.get("organizations") or [])
            self._link_of[row["userId"]] = row.get("oid")

    def prefetch_organizations(self, user_ids: Iterable[str]) -> None:
        todo = [u for u in dict.fromkeys(user_ids) if u not in self._orgs]
        parallel(self.organizations, todo, self.concurrency)

    def remember_links(self, rows: Iterable[LinkRow]) -> None:
        """Links-resource rows: each carries the user's organizations, so a linked user's
        memberships cost no request of their own."""
        for row in rows:
            self._links[row["oid"]] = row
            if "organizations" in row:
                self._orgs[row["userId"]] = list(row["organizations"])

    # -- per user -----------------------------------------------------------------------

    def is_member(self, user_id: str) -> bool:
        return any(o.get("id") == self.account.org_id for o in self.organizations(user_id))

    def organizations(self, user_id: str) -> list[OrganizationRef]:
        if user_id not in self._orgs:
            self._orgs[user_id] = self.api.user_organizations(user_id) or []
        return self._orgs[user_id]

    def full_user(self, user_id: str) -> User | None:
        """The whole representation (attributes too), for the few decisions that need it."""
        if user_id not in self._users:
            self._users[user_id] = self.api.user(user_id)
        return self._users[user_id]

    def other_accounts(self, user_id: str) -> list[str]:
        """Aliases of the other organizations (accounts) the user belongs to."""
        return sorted(str(o.get("alias")) for o in self.organizations(user_id) if o.get("id") != self.account.org_id)

    def by_link(self, oid: str) -> Match | None:
        if oid in self._links:
            row = self._links[oid]
            user = link_user(row) if row is not None else None
        else:
            user = self.api.user_by_idp_link(self.account.idp_alias, oid)
        if user is None:
            return None
        if not self.is_member(user["id"]):
            self.notes.append(
                f"user {user.get('username')} is linked to {oid} but not a member of {self.account.id}; left alone"
            )
            return None
        return Match(user, "link", ascii_lower(user.get("email") or "") or None)

    def by_email(self, emails: list[str], oid: str) -> Match | None:
        for email in emails:
            if not self.account.owns_email(email):
                continue
            key = ascii_lower(email)
            rows = self._by_email.get(key)
            found = [link_user(r) for r in rows] if rows is not None else self.api.users_by_email(email)
            # Keycloak's own search folds case with Java's toLowerCase (U+212A KELVIN SIGN is "k"
            # there): only an address equal once ASCII letters are folded is the same address.
            users = [u for u in found if ascii_lower(u.get("email") or "") == key]
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
            return Match(user, "email", key)
        return None

    def match(self, oid: str, emails: list[str]) -> Match | None:
        """By link first, then by the given addresses (from Graph or remembered in the state)."""
        return self.by_link(oid) or self.by_email(emails, oid)

    def _linked_elsewhere(self, user_id: str, oid: str) -> bool:
        if user_id in self._link_of:
            linked = self._link_of[user_id]
            return linked is not None and linked != oid
        links = self.api.federated_identities(user_id) or []
        return any(
            link.get("identityProvider") == self.account.idp_alias and link.get("userId") != oid for link in links
        )
