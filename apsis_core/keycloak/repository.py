"""A thin repository over Keycloak's Admin REST API, built on python-keycloak's ``KeycloakAdmin``.

The library has the calls (organizations, members, identity providers and their mappers,
flows, clients, users, sessions, events) and their token handling; this layer adds what
the tooling needs on top and nothing else:

* one place where every failure becomes a one-line error with its exit code
  (``apsis_core.errors``): Keycloak's answers here (``_run``), token and transport failures
  in the connection (``connection.CountingConnection``);
* a request count (``requests``), which the no-change-plan benchmark and tests read;
* lazy paging where a caller may stop early, and bulk reads kept bulk;
* small named methods, so planners and the daemon say what they read and write.

Hand-written requests are marked ``# library lacks: ...`` with the reason; everything else
is ``KeycloakAdmin``'s. Nothing here decides *what* to change; the planners do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar, cast
from urllib.parse import quote

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakDeleteError, KeycloakGetError, raise_error_from_response
from keycloak.exceptions import KeycloakError as LibraryError

from apsis_core.contract import IDP_MAPPERS_RESOURCE, LINKS_RESOURCE
from apsis_core.errors import KeycloakRefused
from apsis_core.keycloak import failures
from apsis_core.keycloak.connection import CountingConnection
from apsis_core.keycloak.port import (
    Event,
    FederatedIdentity,
    IdentityProvider,
    IdentityProviderMapper,
    KeycloakPort,
    LinkRow,
    Organization,
    OrganizationRef,
    User,
    UserSession,
)
from apsis_core.settings import Settings

PAGE_SIZE = 200
LINKS_PAGE = 1000  # the links resource's largest page
LINKS_BY_OID = 100  # object ids per request to it
T = TypeVar("T")


class KeycloakRepository(KeycloakPort):
    """Admin API of one realm, authenticated as the tooling's service account or an admin."""

    def __init__(self, connection: CountingConnection, realm: str) -> None:
        self._conn = connection
        self.admin = KeycloakAdmin(connection=connection)
        self.admin.PAGE_SIZE = PAGE_SIZE  # the library's own paging (100) would double our listings
        self.realm = realm

    @property
    def who(self) -> str:
        return self._conn.who

    @property
    def requests(self) -> int:
        """Admin API requests made so far (token requests not counted)."""
        return self._conn.request_count

    def worker(self) -> KeycloakRepository:
        """The same realm and credentials on a connection of its own, for one thread of a
        parallel apply (a connection's HTTP session and token refresh are not thread-safe);
        its requests count into ``requests`` here too."""
        return KeycloakRepository(self._conn.sibling(), self.realm)

    @classmethod
    def for_tooling(cls, settings: Settings) -> KeycloakRepository:
        """The service account `apsis-sso-admin` of the realm (every command but realm apply)."""
        if settings.keycloak_client_secret is None:
            raise KeycloakRefused(
                "no Keycloak client secret: set APSIS_SSO_KEYCLOAK_CLIENT_SECRET or APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE"
            )
        return cls._connect(
            settings,
            f"client {settings.keycloak_client_id} of realm {settings.realm}",
            client_id=settings.keycloak_client_id,
            grant_type="client_credentials",
            client_secret_key=settings.keycloak_client_secret.get_secret_value(),
        )

    @classmethod
    def for_admin(cls, settings: Settings) -> KeycloakRepository:
        """A master-realm administrator: only `realm apply` needs this much power."""
        if settings.keycloak_admin_password is None:
            raise KeycloakRefused(
                "no Keycloak admin password: set APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD or APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE"
            )
        return cls._connect(
            settings,
            f"admin {settings.keycloak_admin_username} of realm master",
            user_realm_name="master",
            client_id="admin-cli",
            grant_type="password",
            username=settings.keycloak_admin_username,
            password=settings.keycloak_admin_password.get_secret_value(),
        )

    @classmethod
    def for_master(cls, settings: Settings, username: str, password: str) -> KeycloakRepository:
        """The master realm itself, as one of its users (``admin-cli``, as Keycloak's own tools
        sign in): for making the permanent administrator ``realm apply`` uses."""
        conn = CountingConnection(
            who=f"user {username} of realm master",
            server_url=settings.keycloak_url + "/",
            realm_name="master",
            user_realm_name="master",
            client_id="admin-cli",
            grant_type="password",
            username=username,
            password=password,
            verify=settings.keycloak_verify,
            timeout=int(settings.keycloak_timeout),
        )
        return cls(conn, "master")

    def sign_in(self) -> bool:
        """Whether Keycloak issues these credentials a token (see ``CountingConnection.sign_in``)."""
        return self._conn.sign_in()

    @classmethod
    def _connect(cls, settings: Settings, who: str, **credentials: Any) -> KeycloakRepository:
        conn = CountingConnection(
            who=who,
            server_url=settings.keycloak_url + "/",
            realm_name=settings.realm,
            verify=settings.keycloak_verify,
            timeout=int(settings.keycloak_timeout),
            **credentials,
        )
        return cls(conn, settings.realm)

    # -- the seam ---------------------------------------------------------------------

    def _run(self, call: Callable[[], T], *, missing_ok: bool = False) -> T:
        """One library call; Keycloak's error answers become one-line errors (a 404 None
        with ``missing_ok``)."""
        try:
            return call()
        except LibraryError as exc:
            if exc.response_code == 404 and missing_ok:
                return None  # type: ignore[return-value]
            raise self._failure(exc.response_code, exc.response_body) from None

    def _failure(self, status: int | None, body: bytes | None) -> Exception:
        return failures.answer(status, body, self._conn.last_request, self.realm, self.who)

    def _found(self, call: Callable[[], Any]) -> Any:
        """One library read whose 404 means there is none (None); the representation as
        Keycloak sent it (the caller's return type names its shape)."""
        return self._run(call, missing_ok=True)

    def _path(self, tail: str) -> str:
        return f"admin/realms/{self.realm}/{tail}"

    def _get(self, path: str, **params: Any) -> Any:
        """A GET the library has no method for (each caller says why)."""
        return raise_error_from_response(self._conn.raw_get(path, **params), KeycloakGetError)

    def _pages(
        self, fetch: Callable[[dict[str, Any]], list[Any]], query: dict[str, Any], size: int = PAGE_SIZE
    ) -> Iterator[Any]:
        """A listing read page by page as the caller iterates, so a search can stop early."""
        first = 0
        while True:
            page = self._run(partial(fetch, {**query, "first": first, "max": size}))
            if not page:
                return
            yield from page
            if len(page) < size:
                return
            first += size

    # -- realm ------------------------------------------------------------------------

    def get_realm(self) -> dict[str, Any] | None:
        return self._run(lambda: self.admin.get_realm(self.realm), missing_ok=True)

    def create_realm(self, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.create_realm(rep))

    def update_realm(self, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.update_realm(self.realm, rep))

    def delete_realm(self) -> None:
        self._run(lambda: self.admin.delete_realm(self.realm), missing_ok=True)

    def get_user_profile(self) -> dict[str, Any]:
        return self._run(self.admin.get_realm_users_profile)

    def put_user_profile(self, config: dict[str, Any]) -> None:
        self._run(lambda: self.admin.update_realm_users_profile(config))

    def authenticator_providers(self) -> list[dict[str, Any]]:
        # library lacks: its get_authenticator_providers asks the target realm, which does not
        # exist yet when realm apply creates it; the master realm's list is the server's.
        return self._run(lambda: self._get("admin/realms/master/authentication/authenticator-providers"))

    def key_providers(self) -> list[dict[str, Any]]:
        """The realm's key provider components (``privateKey`` comes back masked)."""
        return self._run(lambda: self.admin.get_components({"type": "org.keycloak.keys.KeyProvider"}))

    def create_component(self, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.create_component(rep))

    def update_component(self, component_id: str, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.update_component(component_id, rep))

    def realm_keys(self) -> dict[str, Any]:
        """The realm's keys as Keycloak uses them: ``active`` (algorithm -> kid of the key it signs
        with) and ``keys`` (each with ``kid``, ``algorithm``, ``certificate``, ``providerId``)."""
        found = self._run(self.admin.get_keys)
        return found if isinstance(found, dict) else {}

    # -- authentication flows ---------------------------------------------------------

    def flows(self) -> list[dict[str, Any]]:
        return self._run(self.admin.get_authentication_flows)

    def create_flow(self, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.create_authentication_flow(rep))

    def copy_flow(self, alias: str, new_alias: str) -> None:
        self._run(lambda: self.admin.copy_authentication_flow({"newName": new_alias}, quote(alias, safe="")))

    def update_flow(self, flow_id: str, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.update_authentication_flow(flow_id, rep))

    def executions(self, flow_alias: str) -> list[dict[str, Any]]:
        return self._run(lambda: self.admin.get_authentication_flow_executions(quote(flow_alias, safe="")))

    def add_execution(self, flow_alias: str, provider: str) -> None:
        self._run(
            lambda: self.admin.create_authentication_flow_execution({"provider": provider}, quote(flow_alias, safe=""))
        )

    def update_execution(self, flow_alias: str, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.update_authentication_flow_executions(rep, quote(flow_alias, safe="")))

    def delete_execution(self, execution_id: str) -> None:
        self._run(lambda: self.admin.delete_authentication_flow_execution(execution_id))

    # -- clients ----------------------------------------------------------------------

    def client_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        # library lacks: get_client_id + get_client take two requests for what one query answers.
        found = self._run(lambda: self._get(self._path("clients"), clientId=client_id))
        return found[0] if found else None

    def create_client(self, rep: dict[str, Any]) -> str:
        return str(self._run(lambda: self.admin.create_client(rep)))

    def update_client(self, uuid: str, rep: dict[str, Any]) -> None:
        self._run(lambda: self.admin.update_client(uuid, rep))

    def client_secret(self, uuid: str) -> str | None:
        found = self._run(lambda: self.admin.get_client_secrets(uuid), missing_ok=True)
        return found.get("value") if isinstance(found, dict) else None

    def service_account_user(self, uuid: str) -> dict[str, Any]:
        return self._run(lambda: self.admin.get_client_service_account_user(uuid))

    def client_roles(self, uuid: str) -> list[dict[str, Any]]:
        return self._run(lambda: self.admin.get_client_roles(uuid))

    def user_client_roles(self, user_id: str, client_uuid: str) -> list[dict[str, Any]]:
        return self._run(lambda: self.admin.get_client_roles_of_user(user_id, client_uuid))

    def add_user_client_roles(self, user_id: str, client_uuid: str, roles: list[dict[str, Any]]) -> None:
        self._run(lambda: self.admin.assign_client_role(user_id, client_uuid, roles))

    def remove_user_client_roles(self, user_id: str, client_uuid: str, roles: list[dict[str, Any]]) -> None:
        self._run(lambda: self.admin.delete_client_roles_of_user(user_id, client_uuid, roles))

    # -- organizations ----------------------------------------------------------------

    def organizations(self, query: str | None = None) -> Iterator[Organization]:
        params: dict[str, Any] = {"briefRepresentation": "false"}
        if query:
            params["q"] = query
        return self._pages(self.admin.get_organizations, params)

    def organizations_count(self) -> int:
        """How many organizations the realm has (one cheap count query): what a progress
        display of the listing counts towards."""
        # library lacks: it counts an organization's members, not the organizations.
        return int(self._run(lambda: self._get(self._path("organizations/count"))))

    def organizations_named(self, text: str, limit: int = 50) -> list[Organization]:
        """Organizations whose name or one of whose domains is exactly ``text`` (one request)."""
        return self._run(
            lambda: self.admin.get_organizations(
                {"search": text, "exact": "true", "briefRepresentation": "false", "first": 0, "max": limit}
            )
        )

    def organization_by_alias(self, alias: str) -> Organization | None:
        """The organization with this alias, managed or not, in one request: Keycloak's
        attribute query treats the key ``alias`` as the organization's alias column
        (``JpaOrganizationProvider#buildAttributeSearchPredicate``). It once listed every
        organization when the alias was not ours, a page per ``PAGE_SIZE`` accounts for a create."""
        for org in self.organizations(query=f"alias:{alias}"):
            if org.get("alias") == alias:
                return org
        return None

    def organization(self, org_id: str) -> Organization | None:
        return cast("Organization | None", self._found(lambda: self.admin.get_organization(org_id)))

    def create_organization(self, rep: Organization) -> str | None:
        return self._run(lambda: self.admin.create_organization(dict(rep)))

    def update_organization(self, org_id: str, rep: Organization) -> None:
        self._run(lambda: self.admin.update_organization(org_id, dict(rep)))

    def change_organization_attribute(
        self, org_id: str, key: str, change: Callable[[list[str]], list[str] | None]
    ) -> Organization | None:
        return change_attribute(self, org_id, key, change)

    def delete_organization(self, org_id: str) -> None:
        self._run(lambda: self.admin.delete_organization(org_id))

    def link_organization_idp(self, org_id: str, alias: str) -> None:
        self._run(lambda: self.admin.organization_idp_add(org_id, alias))

    def unlink_organization_idp(self, org_id: str, alias: str) -> None:
        self._run(lambda: self.admin.organization_idp_remove(org_id, quote(alias, safe="")), missing_ok=True)

    def members(self, org_id: str) -> Iterator[User]:
        return self._pages(lambda q: self.admin.get_organization_members(org_id, q), {"briefRepresentation": "false"})

    def members_count(self, org_id: str) -> int:
        return int(self._run(lambda: self.admin.get_organization_members_count(org_id)))

    def add_member(self, org_id: str, user_id: str) -> None:
        self._run(lambda: self.admin.organization_user_add(user_id, org_id))

    def remove_member(self, org_id: str, user_id: str) -> None:
        self._run(lambda: self.admin.organization_user_remove(user_id, org_id), missing_ok=True)

    def user_organizations(self, user_id: str) -> list[OrganizationRef]:
        return self._run(lambda: self.admin.get_user_organizations(user_id))

    # -- identity providers -----------------------------------------------------------

    def identity_providers(self) -> Iterator[IdentityProvider]:
        # library lacks: get_idps takes no query, so neither paging nor the full representation.
        url = self._path("identity-provider/instances")
        return self._pages(lambda q: self._get(url, **q), {"briefRepresentation": "false"})

    def identity_provider(self, alias: str) -> IdentityProvider | None:
        return cast("IdentityProvider | None", self._found(lambda: self.admin.get_idp(quote(alias, safe=""))))

    def create_identity_provider(self, rep: IdentityProvider) -> None:
        self._run(lambda: self.admin.create_idp(dict(rep)))

    def update_identity_provider(self, alias: str, rep: IdentityProvider) -> None:
        self._run(lambda: self.admin.update_idp(quote(alias, safe=""), dict(rep)))

    def delete_identity_provider(self, alias: str) -> None:
        self._run(lambda: self.admin.delete_idp(quote(alias, safe="")), missing_ok=True)

    def idp_mappers(self, alias: str) -> list[IdentityProviderMapper]:
        return self._run(lambda: self.admin.get_idp_mappers(quote(alias, safe="")))

    def all_idp_mappers(self) -> dict[str, list[IdentityProviderMapper]] | None:
        """Every identity provider's mappers by alias, in one request; None when the server's
        extension predates that listing (then read them per provider)."""
        # library lacks: Keycloak's Admin API lists mappers per provider only; the extension's
        # realm resource lists them all (same representation, same view-identity-providers right).
        found = self._run(lambda: self._get(f"realms/{self.realm}/{IDP_MAPPERS_RESOURCE}"), missing_ok=True)
        if found is None:
            return None
        by_alias: dict[str, list[IdentityProviderMapper]] = {}
        for mapper in found:
            by_alias.setdefault(str(mapper.get("identityProviderAlias")), []).append(mapper)
        return by_alias

    def create_idp_mapper(self, alias: str, rep: IdentityProviderMapper) -> None:
        self._run(lambda: self.admin.add_mapper_to_idp(quote(alias, safe=""), dict(rep)))

    def update_idp_mapper(self, alias: str, mapper_id: str, rep: IdentityProviderMapper) -> None:
        self._run(lambda: self.admin.update_mapper_in_idp(quote(alias, safe=""), mapper_id, dict(rep)))

    def delete_idp_mapper(self, alias: str, mapper_id: str) -> None:
        # library lacks: it can add and update an IdP's mappers but not delete one.
        url = self._path(f"identity-provider/instances/{quote(alias, safe='')}/mappers/{mapper_id}")
        self._run(
            lambda: raise_error_from_response(self._conn.raw_delete(url), KeycloakDeleteError, [204]), missing_ok=True
        )

    # -- users ------------------------------------------------------------------------

    def users(self, **params: Any) -> Iterator[User]:
        return self._pages(self.admin.get_users, {"briefRepresentation": "false", **params})

    def users_by_email(self, email: str) -> list[User]:
        found = self._run(
            lambda: self.admin.get_users(
                {"email": email, "exact": "true", "briefRepresentation": "false", "first": 0, "max": PAGE_SIZE}
            )
        )
        return [u for u in found if (u.get("email") or "").lower() == email.lower()]

    def users_count(self, **params: Any) -> int:
        return int(self._run(lambda: self.admin.users_count(params or None)))

    def user(self, user_id: str) -> User | None:
        return cast("User | None", self._found(lambda: self.admin.get_user(user_id)))

    def create_user(self, rep: User) -> str:
        return str(self._run(lambda: self.admin.create_user(dict(rep))))

    def update_user(self, user_id: str, rep: User) -> None:
        self._run(lambda: self.admin.update_user(user_id, dict(rep)))

    def delete_user(self, user_id: str) -> None:
        self._run(lambda: self.admin.delete_user(user_id), missing_ok=True)

    def user_by_username(self, username: str) -> User | None:
        found = self._run(
            lambda: self.admin.get_users({"username": username, "exact": "true", "briefRepresentation": "false"})
        )
        return next((cast(User, u) for u in found if (u.get("username") or "").lower() == username.lower()), None)

    def set_password(self, user_id: str, password: str) -> None:
        """A permanent password for the user (its other credentials stay)."""
        self._run(lambda: self.admin.set_user_password(user_id, password, temporary=False))

    def add_realm_role(self, user_id: str, role_name: str) -> None:
        """Give the user a role of the realm (itself a representation Keycloak looks up)."""
        self._run(lambda: self.admin.assign_realm_roles(user_id, [self.admin.get_realm_role(role_name)]))

    def logout_user(self, user_id: str) -> None:
        self._run(lambda: self.admin.user_logout(user_id))

    def user_sessions(self, user_id: str) -> list[UserSession]:
        return self._run(lambda: self.admin.get_sessions(user_id))

    # -- links to the account's identity provider -------------------------------------

    def user_by_idp_link(self, alias: str, idp_user_id: str) -> User | None:
        found = self._run(
            lambda: self.admin.get_users(
                {"idpAlias": alias, "idpUserId": idp_user_id, "briefRepresentation": "false", "first": 0, "max": 2}
            )
        )
        return found[0] if found else None

    def linked_users(self, alias: str, *, brief: bool = True) -> Iterator[User]:
        """Every user linked to the IdP (paged)."""
        return self._pages(self.admin.get_users, {"idpAlias": alias, "briefRepresentation": str(brief).lower()})

    def idp_links(self, alias: str, oids: list[str] | None = None) -> Iterator[LinkRow]:
        """Links to the IdP as ``{userId, oid, email, enabled, username}`` (``oid`` is the
        link's user id): every link, a page of 1,000 per request (by key: ``after`` the last
        user id), or only those of ``oids``, 100 per request.

        library lacks: Keycloak's Admin API finds one user per link, or lists linked users
        without their link (a request per user to learn it); this reads the extension's bulk
        links resource (docs/contracts.md) with the same service-account token (view-users)."""
        url = f"realms/{self.realm}/{LINKS_RESOURCE}/links/{quote(alias, safe='')}"
        if oids is None:
            after: str | None = None
            while True:  # keyset pages: each one query, wherever it is in the listing
                page = self._run(partial(self._get, url, max=LINKS_PAGE, **({"after": after} if after else {})))
                yield from page
                if len(page) < LINKS_PAGE:
                    return
                after = page[-1]["userId"]
        wanted = list(dict.fromkeys(oids))
        for i in range(0, len(wanted), LINKS_BY_OID):
            chunk = wanted[i : i + LINKS_BY_OID]
            yield from self._run(partial(self._get, url, oid=chunk))

    def users_by_emails(self, alias: str, emails: list[str]) -> Iterator[LinkRow]:
        """The users of these addresses as links-resource rows (``oid``: their link to the IdP,
        absent when there is none; ``organizations``), 100 addresses per request.

        library lacks: matching a user by address through the Admin API is three requests (the
        search, the user's organizations, its links); the extension answers them together."""
        url = f"realms/{self.realm}/{LINKS_RESOURCE}/users"
        wanted = list(dict.fromkeys(e.lower() for e in emails))
        for i in range(0, len(wanted), LINKS_BY_OID):
            chunk = wanted[i : i + LINKS_BY_OID]
            yield from self._run(partial(self._get, url, idp=alias, email=chunk))

    def linked_users_count(self, alias: str) -> int:
        return self.users_count(idpAlias=alias)

    def federated_identities(self, user_id: str) -> list[FederatedIdentity]:
        return self._run(lambda: self.admin.get_user_social_logins(user_id))

    def link_user(self, user_id: str, alias: str, idp_user_id: str, idp_username: str) -> None:
        self._run(lambda: self.admin.add_user_social_login(user_id, quote(alias, safe=""), idp_user_id, idp_username))

    def unlink_user(self, user_id: str, alias: str) -> None:
        """Drop the user's link to the IdP (their next SSO sign-in is a first one); no link is fine."""
        self._run(lambda: self.admin.delete_user_social_login(user_id, quote(alias, safe="")), missing_ok=True)

    # -- events -----------------------------------------------------------------------

    def events(self, **params: Any) -> list[Event]:
        return self._run(lambda: self.admin.get_events(params))


def change_attribute(
    api: KeycloakPort, org_id: str, key: str, change: Callable[[list[str]], list[str] | None]
) -> Organization | None:
    """Replace one attribute's values by ``change(current values)`` (None removes it),
    leaving the rest of the organization as it is now: a PUT replaces the whole
    representation, so it is read first. Two writers of one organization at the same
    instant can still lose one update (Keycloak offers no version check for
    organizations). Returns the organization as written, or None when it is gone."""

    org = api.organization(org_id)
    if org is None:
        return None
    attributes = dict(org.get("attributes") or {})
    values = change(list(attributes.get(key) or []))
    if values is None:
        attributes.pop(key, None)
    else:
        attributes[key] = values
    org["attributes"] = attributes
    api.update_organization(org_id, org)
    return org
