"""A thin repository over Keycloak's Admin REST API.

python-keycloak gives us token handling (client credentials or password grant, refresh)
and the HTTP session; this layer adds what the tooling needs on top: one place that turns
transport and HTTP failures into one-line errors, paged listings, and small typed methods
per resource. Nothing here decides *what* to change; the planners do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

from keycloak import KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakAuthenticationError, KeycloakConnectionError, KeycloakError as PKError

from apsis_core.contract import ACCOUNT_KEY
from apsis_core.errors import Conflict, KeycloakError, KeycloakRefused, KeycloakUnavailable, NotFound
from provisioning.settings import Settings

PAGE_SIZE = 200


class KeycloakApi:
    """Admin API of one realm, authenticated as the tooling's service account or an admin."""

    def __init__(self, connection: KeycloakOpenIDConnection, realm: str, who: str) -> None:
        self._conn = connection
        self.realm = realm
        self.who = who
        self.requests = 0

    @classmethod
    def for_tooling(cls, settings: Settings) -> "KeycloakApi":
        """The service account `apsis-sso-admin` of the realm (every command but realm apply)."""
        if settings.keycloak_client_secret is None:
            raise KeycloakRefused(
                "no Keycloak client secret: set APSIS_SSO_KEYCLOAK_CLIENT_SECRET or APSIS_SSO_KEYCLOAK_CLIENT_SECRET_FILE"
            )
        conn = KeycloakOpenIDConnection(
            server_url=settings.keycloak_url + "/",
            realm_name=settings.realm,
            client_id=settings.keycloak_client_id,
            client_secret_key=settings.keycloak_client_secret.get_secret_value(),
            grant_type="client_credentials",
            verify=settings.keycloak_verify,
            timeout=int(settings.keycloak_timeout),
        )
        return cls(conn, settings.realm, f"client {settings.keycloak_client_id} of realm {settings.realm}")

    @classmethod
    def for_admin(cls, settings: Settings) -> "KeycloakApi":
        """A master-realm administrator: only `realm apply` needs this much power."""
        if settings.keycloak_admin_password is None:
            raise KeycloakRefused(
                "no Keycloak admin password: set APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD or APSIS_SSO_KEYCLOAK_ADMIN_PASSWORD_FILE"
            )
        conn = KeycloakOpenIDConnection(
            server_url=settings.keycloak_url + "/",
            realm_name=settings.realm,
            user_realm_name="master",
            client_id="admin-cli",
            username=settings.keycloak_admin_username,
            password=settings.keycloak_admin_password.get_secret_value(),
            grant_type="password",
            verify=settings.keycloak_verify,
            timeout=int(settings.keycloak_timeout),
        )
        return cls(conn, settings.realm, f"admin {settings.keycloak_admin_username} of realm master")

    # -- transport -------------------------------------------------------------------

    @property
    def _server(self) -> str:
        return (self._conn.server_url or "").rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        """One request; returns parsed JSON (or None), raises one-line errors."""
        url = path if path.startswith("admin/") or path.startswith("realms/") else f"admin/realms/{self.realm}/{path}"
        data = json.dumps(body) if body is not None else None
        self.requests += 1
        try:
            if method == "GET":
                resp = self._conn.raw_get(url, **(params or {}))
            elif method == "POST":
                resp = self._conn.raw_post(url, data=data or "", **(params or {}))
            elif method == "PUT":
                resp = self._conn.raw_put(url, data=data or "", **(params or {}))
            elif method == "DELETE":
                resp = self._conn.raw_delete(url, data=data, **(params or {}))
            else:  # pragma: no cover - programming error
                raise ValueError(method)
        except KeycloakAuthenticationError:
            raise KeycloakRefused(
                f"Keycloak at {self._server} rejected the credentials of {self.who}"
            ) from None
        except KeycloakConnectionError as exc:
            raise KeycloakUnavailable(f"Keycloak at {self._server} {_transport_failure(exc)}") from None
        except PKError as exc:  # token endpoint errors other than 401
            if exc.response_code == 400 and b"invalid_grant" in _as_bytes(exc.error_message):
                raise KeycloakRefused(  # a wrong admin password is a 400 invalid_grant
                    f"Keycloak at {self._server} rejected the credentials of {self.who}"
                ) from None
            if _temporary_status(exc.response_code):
                raise KeycloakUnavailable(
                    f"Keycloak at {self._server} answered HTTP {exc.response_code} to the token "
                    f"request of {self.who}; try again later"
                ) from None
            raise KeycloakRefused(
                f"Keycloak at {self._server} refused a token for {self.who} (HTTP {exc.response_code})"
            ) from None
        status = resp.status_code
        if status in (200, 201, 204):
            if not resp.content:
                return _created_id(resp) if status == 201 else None
            try:
                return resp.json()
            except ValueError:
                return resp.text
        if status == 404 and missing_ok:
            return None
        detail = _error_detail(resp)
        where = f"{method} {unquote(url.removeprefix(f'admin/realms/{self.realm}/'))}"
        if status in (401, 403):
            raise KeycloakRefused(f"Keycloak refused {where} for {self.who} (HTTP {status}{detail})")
        if _temporary_status(status):
            raise KeycloakUnavailable(f"Keycloak answered HTTP {status} to {where}{detail}; try again later")
        if status == 404:
            raise NotFound(f"Keycloak has no {where.split(' ', 1)[1]}{detail}")
        if status == 409:
            raise Conflict(f"Keycloak reports a conflict on {where}{detail}")
        raise KeycloakError(f"Keycloak answered HTTP {status} to {where}{detail}")

    def paged(self, path: str, params: dict[str, Any] | None = None, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        first = 0
        while True:
            page = self.call("GET", path, params={**(params or {}), "first": first, "max": page_size})
            if not page:
                return
            yield from page
            if len(page) < page_size:
                return
            first += page_size

    # -- realm ------------------------------------------------------------------------

    def get_realm(self) -> dict[str, Any] | None:
        return self.call("GET", f"admin/realms/{self.realm}", missing_ok=True)

    def create_realm(self, rep: dict[str, Any]) -> None:
        self.call("POST", "admin/realms", body=rep)

    def update_realm(self, rep: dict[str, Any]) -> None:
        self.call("PUT", f"admin/realms/{self.realm}", body=rep)

    def get_user_profile(self) -> dict[str, Any]:
        return self.call("GET", "users/profile")

    def put_user_profile(self, config: dict[str, Any]) -> None:
        self.call("PUT", "users/profile", body=config)

    # -- authentication flows ---------------------------------------------------------

    def flows(self) -> list[dict[str, Any]]:
        return self.call("GET", "authentication/flows")

    def create_flow(self, rep: dict[str, Any]) -> None:
        self.call("POST", "authentication/flows", body=rep)

    def copy_flow(self, alias: str, new_alias: str) -> None:
        self.call("POST", f"authentication/flows/{quote(alias)}/copy", body={"newName": new_alias})

    def update_flow(self, flow_id: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"authentication/flows/{flow_id}", body=rep)

    def delete_flow(self, flow_id: str) -> None:
        self.call("DELETE", f"authentication/flows/{flow_id}")

    def executions(self, flow_alias: str) -> list[dict[str, Any]]:
        return self.call("GET", f"authentication/flows/{quote(flow_alias)}/executions")

    def add_execution(self, flow_alias: str, provider: str) -> None:
        self.call("POST", f"authentication/flows/{quote(flow_alias)}/executions/execution", body={"provider": provider})

    def update_execution(self, flow_alias: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"authentication/flows/{quote(flow_alias)}/executions", body=rep)

    def delete_execution(self, execution_id: str) -> None:
        self.call("DELETE", f"authentication/executions/{execution_id}")

    # -- clients ----------------------------------------------------------------------

    def client_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        found = self.call("GET", "clients", params={"clientId": client_id})
        return found[0] if found else None

    def create_client(self, rep: dict[str, Any]) -> str:
        return str(self.call("POST", "clients", body=rep))

    def update_client(self, uuid: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"clients/{uuid}", body=rep)

    def client_secret(self, uuid: str) -> str | None:
        found = self.call("GET", f"clients/{uuid}/client-secret", missing_ok=True)
        return found.get("value") if isinstance(found, dict) else None

    def service_account_user(self, uuid: str) -> dict[str, Any]:
        return self.call("GET", f"clients/{uuid}/service-account-user")

    def client_roles(self, uuid: str) -> list[dict[str, Any]]:
        return self.call("GET", f"clients/{uuid}/roles")

    def user_client_roles(self, user_id: str, client_uuid: str) -> list[dict[str, Any]]:
        return self.call("GET", f"users/{user_id}/role-mappings/clients/{client_uuid}")

    def add_user_client_roles(self, user_id: str, client_uuid: str, roles: list[dict[str, Any]]) -> None:
        self.call("POST", f"users/{user_id}/role-mappings/clients/{client_uuid}", body=roles)

    def remove_user_client_roles(self, user_id: str, client_uuid: str, roles: list[dict[str, Any]]) -> None:
        self.call("DELETE", f"users/{user_id}/role-mappings/clients/{client_uuid}", body=roles)

    # -- organizations ----------------------------------------------------------------

    def organizations(self, query: str | None = None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"briefRepresentation": "false"}
        if query:
            params["q"] = query
        return self.paged("organizations", params)

    def organization_by_alias(self, alias: str) -> dict[str, Any] | None:
        """Organizations are searched by name or domain only; alias is matched on a full listing
        filtered by our ownership attribute first, then on all organizations."""
        for org in self.organizations(query=f"{ACCOUNT_KEY}:{alias}"):
            if org.get("alias") == alias:
                return org
        for org in self.organizations():
            if org.get("alias") == alias:
                return org
        return None

    def organization(self, org_id: str) -> dict[str, Any] | None:
        return self.call("GET", f"organizations/{org_id}", missing_ok=True)

    def create_organization(self, rep: dict[str, Any]) -> str | None:
        created = self.call("POST", "organizations", body=rep)
        return str(created) if created else None

    def update_organization(self, org_id: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"organizations/{org_id}", body=rep)

    def delete_organization(self, org_id: str) -> None:
        self.call("DELETE", f"organizations/{org_id}")

    def organization_idps(self, org_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"organizations/{org_id}/identity-providers")

    def link_organization_idp(self, org_id: str, alias: str) -> None:
        self.call("POST", f"organizations/{org_id}/identity-providers", body=alias)

    def unlink_organization_idp(self, org_id: str, alias: str) -> None:
        self.call("DELETE", f"organizations/{org_id}/identity-providers/{quote(alias)}", missing_ok=True)

    def members(self, org_id: str) -> Iterator[dict[str, Any]]:
        return self.paged(f"organizations/{org_id}/members", {"briefRepresentation": "false"})

    def members_count(self, org_id: str) -> int:
        return int(self.call("GET", f"organizations/{org_id}/members/count"))

    def add_member(self, org_id: str, user_id: str) -> None:
        self.call("POST", f"organizations/{org_id}/members", body=user_id)

    def remove_member(self, org_id: str, user_id: str) -> None:
        self.call("DELETE", f"organizations/{org_id}/members/{user_id}", missing_ok=True)

    def user_organizations(self, user_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"organizations/members/{user_id}/organizations")

    # -- identity providers -----------------------------------------------------------

    def identity_providers(self) -> Iterator[dict[str, Any]]:
        return self.paged("identity-provider/instances", {"briefRepresentation": "false"})

    def identity_provider(self, alias: str) -> dict[str, Any] | None:
        return self.call("GET", f"identity-provider/instances/{quote(alias)}", missing_ok=True)

    def create_identity_provider(self, rep: dict[str, Any]) -> None:
        self.call("POST", "identity-provider/instances", body=rep)

    def update_identity_provider(self, alias: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"identity-provider/instances/{quote(alias)}", body=rep)

    def delete_identity_provider(self, alias: str) -> None:
        self.call("DELETE", f"identity-provider/instances/{quote(alias)}", missing_ok=True)

    def idp_mappers(self, alias: str) -> list[dict[str, Any]]:
        return self.call("GET", f"identity-provider/instances/{quote(alias)}/mappers")

    def create_idp_mapper(self, alias: str, rep: dict[str, Any]) -> None:
        self.call("POST", f"identity-provider/instances/{quote(alias)}/mappers", body=rep)

    def update_idp_mapper(self, alias: str, mapper_id: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"identity-provider/instances/{quote(alias)}/mappers/{mapper_id}", body=rep)

    def delete_idp_mapper(self, alias: str, mapper_id: str) -> None:
        self.call("DELETE", f"identity-provider/instances/{quote(alias)}/mappers/{mapper_id}", missing_ok=True)

    # -- users ------------------------------------------------------------------------

    def users_by_email(self, email: str) -> list[dict[str, Any]]:
        found = self.call("GET", "users", params={"email": email, "exact": "true", "briefRepresentation": "false"})
        return [u for u in found if (u.get("email") or "").lower() == email.lower()]

    def users(self, **params: Any) -> Iterator[dict[str, Any]]:
        return self.paged("users", {"briefRepresentation": "false", **params})

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self.call("GET", f"users/{user_id}", missing_ok=True)

    def user_by_idp_link(self, alias: str, idp_user_id: str) -> dict[str, Any] | None:
        found = self.call("GET", "users", params={"idpAlias": alias, "idpUserId": idp_user_id, "briefRepresentation": "false"})
        return found[0] if found else None

    def update_user(self, user_id: str, rep: dict[str, Any]) -> None:
        self.call("PUT", f"users/{user_id}", body=rep)

    def logout_user(self, user_id: str) -> None:
        self.call("POST", f"users/{user_id}/logout")

    def user_sessions(self, user_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"users/{user_id}/sessions")

    def federated_identities(self, user_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"users/{user_id}/federated-identity")

    def events(self, **params: Any) -> list[dict[str, Any]]:
        return self.call("GET", "events", params=params)


def _temporary_status(status: int | None) -> bool:
    """Overloaded or failing (429, 5xx): the same request later is expected to work."""
    return status is not None and (status == 429 or 500 <= status <= 599)


def _transport_failure(exc: KeycloakConnectionError) -> str:
    """python-keycloak wraps every transport error alike; the cause tells a timeout apart
    (after urllib3's retry, a read timeout arrives as the reason of a MaxRetryError)."""
    import requests
    from urllib3.exceptions import NewConnectionError, TimeoutError as Urllib3Timeout

    cause = exc.__cause__
    reason = getattr(cause.args[0], "reason", None) if cause is not None and cause.args else None
    refused = isinstance(reason, NewConnectionError)  # urllib3 files a refused connection under timeouts too
    if not refused and (isinstance(cause, requests.Timeout) or isinstance(reason, Urllib3Timeout)):
        return "did not answer in time (APSIS_SSO_KEYCLOAK_TIMEOUT)"
    return "is unreachable"


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _created_id(resp: Any) -> str | None:
    location = resp.headers.get("Location", "")
    return location.rstrip("/").rsplit("/", 1)[-1] or None


def _error_detail(resp: Any) -> str:
    try:
        body = resp.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        message = body.get("errorMessage") or body.get("error_description") or body.get("error")
        if message:
            return f": {str(message).splitlines()[0][:200]}"
    return ""
