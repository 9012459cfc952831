"""An in-memory implementation of OUR Keycloak seam, ``apsis_core.keycloak.KeycloakPort``.

In the spirit of httpx's ``MockTransport``: the same interface (declared, checked by mypy and
by ``tests/unit/test_keycloak_port.py``), the data in dicts, so the
unit lane runs planners, apply steps, the matcher, the guard and deprovisioning without a
server. It is a test double of the repository, not a model of Keycloak: it keeps only the
rules our code relies on (unique organization aliases, names and domains; a masked IdP
secret on read; deleting an IdP drops its links; deleting an organization keeps its
members as users) and every behaviour it stands in for is also covered against the real
Keycloak by the integration tests. Reads return copies, as JSON over HTTP would.

``fail_after(n)`` makes the (n+1)-th write fail as a Keycloak gone away would, which is how
the unit tests interrupt an apply or a deactivation midway.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, cast

from apsis_core.errors import Conflict, KeycloakUnavailable, NotFound
from apsis_core.keycloak import KeycloakPort
from apsis_core.keycloak.port import (
    Event,
    FederatedIdentity,
    IdentityProvider,
    IdentityProviderMapper,
    LinkRow,
    Organization,
    OrganizationRef,
    User,
    UserSession,
)
from apsis_core.keycloak.repository import change_attribute
from apsis_core.validation import ascii_lower

MASKED = "**********"
_ids = itertools.count(1)


def _new_id(kind: str) -> str:
    return f"{kind}-{next(_ids)}"


class MemoryKeycloak(KeycloakPort):
    """``KeycloakPort`` over dicts (``tests/unit/test_keycloak_port.py`` keeps its signatures
    the port's)."""

    def __init__(self, realm: str = "apsis") -> None:
        self.realm = realm
        self.orgs: dict[str, Organization] = {}
        self.idps: dict[str, IdentityProvider] = {}
        self.secrets: dict[str, str] = {}
        self.mappers: dict[str, list[IdentityProviderMapper]] = {}
        self.users_by_id: dict[str, User] = {}
        self.links: dict[str, dict[str, FederatedIdentity]] = {}
        self.membership: dict[str, set[str]] = {}
        self.sessions: dict[str, int] = {}
        self.requests = 0
        self.writes: list[tuple[str, str]] = []
        self._fail_after: int | None = None
        self._lock = threading.Lock()

    @property
    def who(self) -> str:
        return f"client apsis-sso-admin of realm {self.realm} (in memory)"

    def worker(self) -> MemoryKeycloak:
        """A parallel apply's connection per thread: here the same dicts (writes are locked)."""
        return self

    # -- test controls ----------------------------------------------------------------

    def fail_after(self, writes: int | None) -> None:
        """Fail every write after the next ``writes`` ones (None: never)."""
        self._fail_after = None if writes is None else len(self.writes) + writes

    def _read(self) -> None:
        self.requests += 1

    def _write(self, what: str, target: str) -> None:
        with self._lock:
            self.requests += 1
            if self._fail_after is not None and len(self.writes) >= self._fail_after:
                raise KeycloakUnavailable("Keycloak at memory:// is unreachable")
            self.writes.append((what, target))

    def add_user(
        self,
        email: str,
        *,
        enabled: bool = True,
        username: str | None = None,
        sessions: int = 0,
        attributes: dict[str, list[str]] | None = None,
    ) -> str:
        """An APSIS One user as it exists before SSO (no request counted)."""
        user_id = _new_id("user")
        self.users_by_id[user_id] = {
            "id": user_id,
            "username": username or email,
            "email": email,
            "enabled": enabled,
            "attributes": dict(attributes or {}),
        }
        self.sessions[user_id] = sessions
        return user_id

    def add_link(self, user_id: str, alias: str, idp_user_id: str) -> None:
        user = self.users_by_id[user_id]
        self.links.setdefault(user_id, {})[alias] = {
            "identityProvider": alias,
            "userId": idp_user_id,
            "userName": user.get("email", ""),
        }

    # -- organizations ----------------------------------------------------------------

    def organizations(self, query: str | None = None) -> Iterator[Organization]:
        self._read()
        key, _, value = (query or "").partition(":")
        for org in list(self.orgs.values()):
            # Keycloak's attribute query reads the key "alias" as the organization's alias.
            held = [org.get("alias")] if key == "alias" else (org.get("attributes") or {}).get(key, [])
            if query is None or value in held:
                yield copy.deepcopy(org)

    def organizations_count(self) -> int:
        self._read()
        return len(self.orgs)

    def organizations_named(self, text: str, limit: int = 50) -> list[Organization]:
        self._read()
        found = [
            o
            for o in self.orgs.values()
            if o.get("name") == text or any(d.get("name") == text for d in o.get("domains", []))
        ]
        return copy.deepcopy(found[:limit])

    def organization_by_alias(self, alias: str) -> Organization | None:
        self._read()
        return next((copy.deepcopy(o) for o in self.orgs.values() if o.get("alias") == alias), None)

    def organization(self, org_id: str) -> Organization | None:
        self._read()
        return copy.deepcopy(self.orgs.get(org_id))

    def _check_unique(self, rep: Organization, org_id: str | None) -> None:
        for other in self.orgs.values():
            if other["id"] == org_id:
                continue
            taken = {d["name"] for d in other.get("domains", [])} & {d["name"] for d in rep.get("domains", [])}
            if other.get("alias") == rep.get("alias") or other.get("name") == rep.get("name") or taken:
                raise Conflict("Keycloak reports a conflict on POST organizations")

    def create_organization(self, rep: Organization) -> str | None:
        self._write("create_organization", str(rep.get("alias")))
        self._check_unique(rep, None)
        org_id = _new_id("org")
        self.orgs[org_id] = {**copy.deepcopy(rep), "id": org_id}
        self.membership[org_id] = set()
        return org_id

    def update_organization(self, org_id: str, rep: Organization) -> None:
        self._write("update_organization", org_id)
        if org_id not in self.orgs:
            raise NotFound(f"Keycloak has no organizations/{org_id}")
        self._check_unique(rep, org_id)
        self.orgs[org_id] = {**copy.deepcopy(rep), "id": org_id}

    def change_organization_attribute(
        self, org_id: str, key: str, change: Callable[[list[str]], list[str] | None]
    ) -> Organization | None:
        return change_attribute(self, org_id, key, change)  # the real one's code, on the dicts

    def delete_organization(self, org_id: str) -> None:
        self._write("delete_organization", org_id)
        self.orgs.pop(org_id, None)
        self.membership.pop(org_id, None)  # members are unmanaged: their users stay
        for idp in self.idps.values():
            if idp.get("organizationId") == org_id:
                idp.pop("organizationId")

    def link_organization_idp(self, org_id: str, alias: str) -> None:
        self._write("link_organization_idp", alias)
        self.idps[alias]["organizationId"] = org_id

    def unlink_organization_idp(self, org_id: str, alias: str) -> None:
        self._write("unlink_organization_idp", alias)
        if alias in self.idps and self.idps[alias].get("organizationId") == org_id:
            self.idps[alias].pop("organizationId")

    def members(self, org_id: str) -> Iterator[User]:
        self._read()
        for user_id in sorted(self.membership.get(org_id, set())):
            yield copy.deepcopy(self.users_by_id[user_id])

    def members_count(self, org_id: str) -> int:
        self._read()
        return len(self.membership.get(org_id, set()))

    def add_member(self, org_id: str, user_id: str) -> None:
        self._write("add_member", user_id)
        self.membership.setdefault(org_id, set()).add(user_id)

    def remove_member(self, org_id: str, user_id: str) -> None:
        self._write("remove_member", user_id)
        self.membership.get(org_id, set()).discard(user_id)

    def user_organizations(self, user_id: str) -> list[OrganizationRef]:
        self._read()
        return [
            cast(OrganizationRef, {"id": o["id"], "alias": o["alias"], "name": o.get("name")})
            for o in self.orgs.values()
            if user_id in self.membership.get(o["id"], set())
        ]

    # -- identity providers -----------------------------------------------------------

    def _shown(self, idp: IdentityProvider) -> IdentityProvider:
        shown = copy.deepcopy(idp)
        if idp["alias"] in self.secrets:
            shown.setdefault("config", {})["clientSecret"] = MASKED
        return shown

    def identity_providers(self) -> Iterator[IdentityProvider]:
        self._read()
        for idp in list(self.idps.values()):
            yield self._shown(idp)

    def identity_provider(self, alias: str) -> IdentityProvider | None:
        self._read()
        return self._shown(self.idps[alias]) if alias in self.idps else None

    def _store_idp(self, rep: IdentityProvider) -> None:
        rep = copy.deepcopy(rep)
        secret = (rep.get("config") or {}).pop("clientSecret", None)
        if secret and secret != MASKED:
            self.secrets[rep["alias"]] = secret
        self.idps[rep["alias"]] = cast(IdentityProvider, {k: v for k, v in rep.items() if v is not None})

    def create_identity_provider(self, rep: IdentityProvider) -> None:
        self._write("create_identity_provider", rep["alias"])
        if rep["alias"] in self.idps:
            raise Conflict("Keycloak reports a conflict on POST identity-provider/instances")
        self._store_idp(rep)

    def update_identity_provider(self, alias: str, rep: IdentityProvider) -> None:
        self._write("update_identity_provider", alias)
        organization = self.idps[alias].get("organizationId")
        self._store_idp({**rep, "alias": alias})
        if organization is not None:  # the link is the organization's, not a field a PUT changes
            self.idps[alias]["organizationId"] = organization

    def delete_identity_provider(self, alias: str) -> None:
        self._write("delete_identity_provider", alias)
        self.idps.pop(alias, None)
        self.secrets.pop(alias, None)
        self.mappers.pop(alias, None)
        for links in self.links.values():
            links.pop(alias, None)

    def idp_mappers(self, alias: str) -> list[IdentityProviderMapper]:
        self._read()
        return copy.deepcopy(self.mappers.get(alias, []))

    def all_idp_mappers(self) -> dict[str, list[IdentityProviderMapper]] | None:
        self._read()
        return copy.deepcopy({alias: mappers for alias, mappers in self.mappers.items() if mappers})

    def create_idp_mapper(self, alias: str, rep: IdentityProviderMapper) -> None:
        self._write("create_idp_mapper", alias)
        self.mappers.setdefault(alias, []).append({**copy.deepcopy(rep), "id": _new_id("mapper")})

    def update_idp_mapper(self, alias: str, mapper_id: str, rep: IdentityProviderMapper) -> None:
        self._write("update_idp_mapper", alias)
        self.mappers[alias] = [
            {**copy.deepcopy(rep), "id": mapper_id} if m["id"] == mapper_id else m for m in self.mappers.get(alias, [])
        ]

    def delete_idp_mapper(self, alias: str, mapper_id: str) -> None:
        self._write("delete_idp_mapper", alias)
        self.mappers[alias] = [m for m in self.mappers.get(alias, []) if m["id"] != mapper_id]

    # -- users ------------------------------------------------------------------------

    def users(self, **params: Any) -> Iterator[User]:
        self._read()
        email = str(params.get("email", "")).lower()
        for user in list(self.users_by_id.values()):
            if email in (user.get("email") or "").lower():
                yield copy.deepcopy(user)

    def users_count(self, **params: Any) -> int:
        return sum(1 for _ in self.users(**params))

    def users_by_email(self, email: str) -> list[User]:
        self._read()
        # Keycloak's admin search folds case with Java's toLowerCase, which also folds U+212A to "k".
        return [copy.deepcopy(u) for u in self.users_by_id.values() if (u.get("email") or "").lower() == email.lower()]

    def user(self, user_id: str) -> User | None:
        self._read()
        return copy.deepcopy(self.users_by_id.get(user_id))

    def update_user(self, user_id: str, rep: User) -> None:
        self._write("update_user", user_id)
        self.users_by_id[user_id] = {**copy.deepcopy(rep), "id": user_id}

    def logout_user(self, user_id: str) -> None:
        self._write("logout_user", user_id)
        self.sessions[user_id] = 0

    def user_sessions(self, user_id: str) -> list[UserSession]:
        self._read()
        return [{"id": f"{user_id}-s{n}", "userId": user_id} for n in range(self.sessions.get(user_id, 0))]

    def user_by_idp_link(self, alias: str, idp_user_id: str) -> User | None:
        self._read()
        for user_id, links in self.links.items():
            if links.get(alias, {}).get("userId") == idp_user_id:
                return copy.deepcopy(self.users_by_id[user_id])
        return None

    def linked_users(self, alias: str, *, brief: bool = True) -> Iterator[User]:
        self._read()
        for user_id, links in list(self.links.items()):
            if alias in links:
                yield copy.deepcopy(self.users_by_id[user_id])

    def idp_links(self, alias: str, oids: list[str] | None = None) -> Iterator[LinkRow]:
        """The extension's links resource: one row per link, ordered by user id."""
        self._read()
        wanted = set(oids) if oids is not None else None
        for user_id in sorted(self.links):
            link = self.links[user_id].get(alias)
            if link is None or (wanted is not None and link["userId"] not in wanted):
                continue
            yield self._row(user_id, link["userId"])

    def users_by_emails(self, alias: str, emails: list[str]) -> Iterator[LinkRow]:
        """The extension's users-by-address lookup: links-resource rows, ``oid`` None when unlinked."""
        self._read()
        wanted = {ascii_lower(e) for e in emails}  # the extension folds ASCII letters only (Ascii.java)
        for user_id in sorted(self.users_by_id):
            if ascii_lower(self.users_by_id[user_id].get("email") or "") in wanted:
                link = self.links.get(user_id, {}).get(alias)
                yield self._row(user_id, link["userId"] if link else None)

    def _row(self, user_id: str, oid: str | None) -> LinkRow:
        user = self.users_by_id[user_id]
        row = {
            "userId": user_id,
            "oid": oid,
            "email": user.get("email"),
            "enabled": user.get("enabled", True),
            "username": user.get("username"),
            "organizations": [
                {"id": o["id"], "alias": o["alias"]}
                for o in self.orgs.values()
                if user_id in self.membership.get(o["id"], set())
            ],
        }
        return cast(LinkRow, {k: v for k, v in row.items() if v is not None})  # Keycloak's JSON leaves nulls out

    def linked_users_count(self, alias: str) -> int:
        return sum(1 for _ in self.linked_users(alias))

    def federated_identities(self, user_id: str) -> list[FederatedIdentity]:
        self._read()
        return copy.deepcopy(list(self.links.get(user_id, {}).values()))

    def unlink_user(self, user_id: str, alias: str) -> None:
        self._write("unlink_user", user_id)
        self.links.get(user_id, {}).pop(alias, None)

    def events(self, **params: Any) -> list[Event]:
        self._read()
        return []
