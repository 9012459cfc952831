"""The Keycloak seam: what the planners, the daemon and the portal may ask of Keycloak
(``KeycloakPort``), and the shapes of what they read and write (TypedDicts of Keycloak's
Admin API representations, and of the extension's link rows, docs/contracts.md).

Three classes declare the port and satisfy it, checked by mypy: the repository over
python-keycloak (``KeycloakRepository``), the daemon's thread-safe pool of repositories
(``sync.runtime.PooledKeycloak``) and the unit tests' in-memory fake
(``tests/keycloak_memory.py``; ``tests/unit/test_keycloak_port.py`` compares its signatures
with the port's). A second identity provider's code reads accounts through this port too.

Realm-level administration (the realm, flows, clients, roles, the user profile) is not part
of it: only ``realm apply`` does that, as a master-realm administrator, on the repository
itself. The representations list the fields the project reads or writes; Keycloak sends
more, and they pass through untouched (``total=False``: an absent field is absent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypedDict

Attributes = dict[str, list[str]]
"""Keycloak's multi-valued attributes (organizations, users)."""


class OrganizationDomain(TypedDict, total=False):
    name: str
    verified: bool


class Organization(TypedDict, total=False):
    """An account (``apsis_core.account.AccountRecord.parse`` reads it)."""

    id: str
    alias: str
    name: str
    enabled: bool
    description: str
    redirectUrl: str
    domains: list[OrganizationDomain]
    attributes: Attributes


class OrganizationRef(TypedDict, total=False):
    """An organization as a user's membership lists it."""

    id: str
    alias: str
    name: str


class IdentityProvider(TypedDict, total=False):
    """An account's SSO connection (``config`` holds the OIDC endpoints, the client id and the
    secret, masked as ``**********`` when read)."""

    alias: str
    internalId: str
    displayName: str
    providerId: str
    enabled: bool
    hideOnLogin: bool
    trustEmail: bool
    storeToken: bool
    linkOnly: bool
    firstBrokerLoginFlowAlias: str
    postBrokerLoginFlowAlias: str
    organizationId: str
    config: dict[str, str]


class IdentityProviderMapper(TypedDict, total=False):
    id: str
    name: str
    identityProviderAlias: str
    identityProviderMapper: str
    config: dict[str, str]


class User(TypedDict, total=False):
    id: str
    username: str
    email: str
    emailVerified: bool
    enabled: bool
    firstName: str
    lastName: str
    createdTimestamp: int
    attributes: Attributes


class FederatedIdentity(TypedDict, total=False):
    """A user's link to an identity provider (``userId``: the provider's id, Entra's ``oid``)."""

    identityProvider: str
    userId: str
    userName: str


class LinkRow(TypedDict, total=False):
    """A row of the extension's links resource (docs/contracts.md): a user, their link's
    ``oid`` (absent when unlinked) and their organizations."""

    userId: str
    oid: str
    email: str
    enabled: bool
    username: str
    organizations: list[OrganizationRef]


class UserSession(TypedDict, total=False):
    id: str
    userId: str
    username: str
    start: int
    lastAccess: int


class Event(TypedDict, total=False):
    """A login event (``details`` carry the identity provider and the extension's reason)."""

    time: int
    type: str
    userId: str
    error: str
    details: dict[str, str]


class KeycloakPort(Protocol):
    """The Admin API of one realm as the accounts' code sees it (``KeycloakRepository`` has
    the meaning of each method)."""

    realm: str

    @property
    def who(self) -> str: ...

    def worker(self) -> KeycloakPort: ...

    # -- organizations ----------------------------------------------------------------

    def organizations(self, query: str | None = None) -> Iterator[Organization]: ...

    def organizations_count(self) -> int: ...

    def organizations_named(self, text: str, limit: int = 50) -> list[Organization]: ...

    def organization_by_alias(self, alias: str) -> Organization | None: ...

    def organization(self, org_id: str) -> Organization | None: ...

    def create_organization(self, rep: Organization) -> str | None: ...

    def update_organization(self, org_id: str, rep: Organization) -> None: ...

    def change_organization_attribute(
        self, org_id: str, key: str, change: Callable[[list[str]], list[str] | None]
    ) -> Organization | None: ...

    def delete_organization(self, org_id: str) -> None: ...

    def link_organization_idp(self, org_id: str, alias: str) -> None: ...

    def unlink_organization_idp(self, org_id: str, alias: str) -> None: ...

    def members(self, org_id: str) -> Iterator[User]: ...

    def members_count(self, org_id: str) -> int: ...

    def add_member(self, org_id: str, user_id: str) -> None: ...

    def remove_member(self, org_id: str, user_id: str) -> None: ...

    def user_organizations(self, user_id: str) -> list[OrganizationRef]: ...

    # -- identity providers -----------------------------------------------------------

    def identity_providers(self) -> Iterator[IdentityProvider]: ...

    def identity_provider(self, alias: str) -> IdentityProvider | None: ...

    def create_identity_provider(self, rep: IdentityProvider) -> None: ...

    def update_identity_provider(self, alias: str, rep: IdentityProvider) -> None: ...

    def delete_identity_provider(self, alias: str) -> None: ...

    def idp_mappers(self, alias: str) -> list[IdentityProviderMapper]: ...

    def all_idp_mappers(self) -> dict[str, list[IdentityProviderMapper]] | None: ...

    def create_idp_mapper(self, alias: str, rep: IdentityProviderMapper) -> None: ...

    def update_idp_mapper(self, alias: str, mapper_id: str, rep: IdentityProviderMapper) -> None: ...

    def delete_idp_mapper(self, alias: str, mapper_id: str) -> None: ...

    # -- users ------------------------------------------------------------------------

    def users(self, **params: Any) -> Iterator[User]: ...

    def users_by_email(self, email: str) -> list[User]: ...

    def users_count(self, **params: Any) -> int: ...

    def user(self, user_id: str) -> User | None: ...

    def update_user(self, user_id: str, rep: User) -> None: ...

    def logout_user(self, user_id: str) -> None: ...

    def user_sessions(self, user_id: str) -> list[UserSession]: ...

    # -- links to an account's identity provider --------------------------------------

    def user_by_idp_link(self, alias: str, idp_user_id: str) -> User | None: ...

    def linked_users(self, alias: str, *, brief: bool = True) -> Iterator[User]: ...

    def idp_links(self, alias: str, oids: list[str] | None = None) -> Iterator[LinkRow]: ...

    def users_by_emails(self, alias: str, emails: list[str]) -> Iterator[LinkRow]: ...

    def linked_users_count(self, alias: str) -> int: ...

    def federated_identities(self, user_id: str) -> list[FederatedIdentity]: ...

    def unlink_user(self, user_id: str, alias: str) -> None: ...

    # -- events -----------------------------------------------------------------------

    def events(self, **params: Any) -> list[Event]: ...
