"""The Microsoft Graph v1.0 endpoints the project calls.

* ``GET /v1.0/users/delta`` (also ``delta()``, ``microsoft.graph.delta``): https://learn.microsoft.com/graph/api/user-delta
* ``GET /v1.0/users`` (paged by ``$top``): https://learn.microsoft.com/graph/api/user-list
* ``GET /v1.0/users/{id | userPrincipalName}`` and ``/me``: https://learn.microsoft.com/graph/api/user-get
* ``GET /v1.0/applications/{id}`` and ``/applications(appId='{appId}')``:
  https://learn.microsoft.com/graph/api/application-get
Errors: https://learn.microsoft.com/graph/errors; throttling: https://learn.microsoft.com/graph/throttling
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import re
from typing import Any
from urllib.parse import quote

import jwt

from . import errors
from .context import Services
from .delta import (
    DEFAULT_USER_PROPERTIES,
    DeltaEngine,
    DeltaPage,
    InvalidSelect,
    TokenRejected,
    parse_select,
)
from .state import GRAPH_APP_ROLES, Application, KeyCredential, Tenant
from .web import Request, Response

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
GRAPH_RESOURCE_APP_ID = "00000003-0000-0000-c000-000000000000"
DELEGATED_SCOPE_IDS = {"User.Read": "e1fe6dd8-ba31-4d61-89e7-88639da4683d"}

# Permissions (application roles or delegated scopes) that allow each operation.
USERS_READ = {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
APPS_READ = {
    "Application.Read.All",
    "Application.ReadWrite.All",
    "Application.ReadWrite.OwnedBy",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
}

_USERS = re.compile(r"^/v1\.0/users/?$", re.I)
_DELTA = re.compile(r"^/v1\.0/users/(?:microsoft\.graph\.)?delta(?:\(\))?/?$", re.I)
_USER = re.compile(r"^/v1\.0/users/([^/]+)/?$", re.I)
_ME = re.compile(r"^/v1\.0/me/?$", re.I)
_APP_BY_APPID = re.compile(r"^/v1\.0/applications\(appId=['\"]?([^'\")]+)['\"]?\)/?$", re.I)
_APP_BY_ID = re.compile(r"^/v1\.0/applications/([^/]+)/?$", re.I)


class _Caller:
    def __init__(self, tenant: Tenant, claims: dict[str, Any]) -> None:
        self.tenant = tenant
        self.claims = claims
        roles = set(claims.get("roles", []))
        scopes = set(str(claims.get("scp", "")).split())
        self.permissions = roles | scopes
        self.is_app = claims.get("idtyp") == "app"


def _reply(req: Request, status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
    base = {"request-id": req.request_id, "client-request-id": req.client_request_id}
    return Response.json(status, doc, {**base, **(headers or {})}, content_type=ODATA_JSON)


def _error(req: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _reply(req, status, errors.graph_error(code, message, req.request_id, req.client_request_id), headers)


def _denied(req: Request) -> Response:
    return _error(req, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _not_found(req: Request, ident: str) -> Response:
    return _error(
        req,
        404,
        "Request_ResourceNotFound",
        f"Resource '{ident}' does not exist or one of its queried reference-property objects are not present.",
    )


def _authenticate(svc: Services, req: Request) -> _Caller | Response:
    auth = req.header("authorization")
    challenge = {
        "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
        'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
    }
    value = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    if not value:
        return _error(req, 401, "InvalidAuthenticationToken", "Access token is empty.", challenge)
    value = svc.issuer.reveal(value)
    if value.count(".") != 2:
        return _error(
            req,
            401,
            "InvalidAuthenticationToken",
            "IDX14100: JWT is not well formed, there are no dots (.).",
            challenge,
        )
    try:
        claims = svc.issuer.decode(value, svc.graph_audiences())
    except jwt.ExpiredSignatureError:
        return _error(
            req, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.", challenge
        )
    except jwt.InvalidAudienceError:
        return _error(
            req, 401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.", challenge
        )
    except jwt.InvalidTokenError:
        return _error(req, 401, "InvalidAuthenticationToken", "Access token validation failure.", challenge)
    tenant = svc.state.resolve_tenant(str(claims.get("tid", "")))
    if tenant is None:
        return _error(req, 401, "InvalidAuthenticationToken", "Access token validation failure.", challenge)
    return _Caller(tenant, claims)


def handle(svc: Services, delta: DeltaEngine, req: Request) -> Response:
    if req.method != "GET":
        return _error(
            req, 405, "Request_BadRequest", f"The HTTP method '{req.method}' is not supported by this emulator."
        )
    caller = _authenticate(svc, req)
    if isinstance(caller, Response):
        return caller
    fault = svc.faults.take("graph", req.path, caller.tenant.tenant_id)
    if fault is not None:
        return _fault_response(req, fault.kind, fault.status, fault.retry_after)
    path = req.path
    if _DELTA.match(path):
        return _users_delta(svc, delta, req, caller)
    if _USERS.match(path):
        return _users_list(svc, req, caller)
    if _ME.match(path):
        if caller.is_app:
            return _error(req, 400, "BadRequest", "/me request is only valid with delegated authentication flow.")
        return _user(svc, req, caller, str(caller.claims.get("oid")), me=True)
    match = _USER.match(path)
    if match:
        return _user(svc, req, caller, match.group(1))
    match = _APP_BY_APPID.match(path)
    if match:
        return _application(svc, req, caller, app_id=match.group(1))
    match = _APP_BY_ID.match(path)
    if match:
        return _application(svc, req, caller, object_id=match.group(1))
    segment = path.removeprefix("/v1.0/").split("/")[0]
    return _error(req, 400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def _fault_response(req: Request, kind: str, status: int, retry_after: int | None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if kind == "throttle":
        return _reply(req, 429, errors.graph_throttled(req.request_id, req.client_request_id), headers)
    if status == 503:
        return _error(
            req,
            503,
            "serviceNotAvailable",
            "The service is not available. Try the request again after a delay.",
            headers,
        )
    return _error(req, status, "generalException", "An unspecified error has occurred.", headers)


def _query(req: Request, name: str) -> str | None:
    """OData options are accepted with or without the ``$`` prefix, as Graph v1.0 does."""
    if f"${name}" in req.query:
        return req.query[f"${name}"]
    return req.query.get(name)


# ---------------------------------------------------------------- users/delta


def _users_delta(svc: Services, delta: DeltaEngine, req: Request, caller: _Caller) -> Response:
    if not caller.permissions & USERS_READ:
        return _denied(req)
    if _query(req, "filter") is not None:
        return _error(req, 400, "Request_UnsupportedQuery", "The emulator does not support $filter on users/delta.")
    try:
        select = parse_select(_query(req, "select"))
    except InvalidSelect as exc:
        return _error(
            req,
            400,
            "Request_BadRequest",
            f"Parsing OData Select and Expand failed: Could not find a property named "
            f"'{exc.prop}' on type 'microsoft.graph.user'.",
        )
    tenant = caller.tenant
    skip = _query(req, "skiptoken")
    delta_token = _query(req, "deltatoken")
    minimal = "return=minimal" in req.header("prefer").replace(" ", "").lower()
    try:
        if skip:
            page = delta.page(tenant, delta.check(skip, tenant, ("full", "changes")), None, minimal)
        elif delta_token and delta_token.lower() == "latest":
            page = delta.latest(tenant, select)
        elif delta_token:
            page = delta.page(tenant, delta.check(delta_token, tenant, ("delta",)), select, minimal)
        else:
            page = delta.page(tenant, None, select)
    except TokenRejected as exc:
        return _reset(svc, req, exc)

    first = not skip and not delta_token
    context = f"{svc.graph_base_url}/$metadata#users"
    if first and page.select:
        context += f"({','.join(page.select)})"
    doc: dict[str, Any] = {"@odata.context": context}
    if page.next_token:
        doc["@odata.nextLink"] = f"{svc.graph_base_url}/users/delta?$skiptoken={page.next_token}"
    if page.delta_token:
        doc["@odata.deltaLink"] = f"{svc.graph_base_url}/users/delta?$deltatoken={page.delta_token}"
    doc["value"] = page.items
    headers = {"Preference-Applied": "return=minimal"} if minimal and not first else {}
    return _reply(req, 200, doc, headers)


def _reset(svc: Services, req: Request, exc: TokenRejected) -> Response:
    """An expired or unknown state token.

    Default, per https://learn.microsoft.com/graph/delta-query-overview#token-duration and the
    ``syncStateNotFound`` code in https://learn.microsoft.com/graph/errors#code-property:
    400 Bad Request, code ``syncStateNotFound``. With ``expire_delta_tokens(...,
    response="resyncRequired")`` the answer is the documented synchronization reset
    (https://learn.microsoft.com/graph/delta-query-overview#synchronization-reset): 410 Gone with a
    ``Location`` header holding the initial query, code ``resyncRequired``.
    """
    if exc.reason == "expired" and exc.tenant is not None and exc.tenant.delta_reset == "resyncRequired":
        location = f"{svc.graph_base_url}/users/delta?$deltatoken="
        if exc.select:
            location += f"&$select={quote(','.join(exc.select), safe=',')}"
        return _error(
            req,
            410,
            "resyncRequired",
            "The delta token is no longer valid, and the app must reset the sync state.",
            {"Location": location},
        )
    return _error(
        req,
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
    )


# ------------------------------------------------------------ users, users/{id}


def _users_list(svc: Services, req: Request, caller: _Caller) -> Response:
    """``GET /users``: active users in pages of ``$top`` (default 100, at most 999)."""
    if not caller.permissions & USERS_READ:
        return _denied(req)
    if _query(req, "filter") is not None or _query(req, "search") is not None:
        return _error(
            req, 400, "Request_UnsupportedQuery", "The emulator does not support $filter or $search on users."
        )
    skip = _query(req, "skiptoken")
    try:
        state = json.loads(base64.urlsafe_b64decode(skip + "=" * (-len(skip) % 4))) if skip else {}
        select = state.get("select") if skip else parse_select(_query(req, "select"))
        top = int(state.get("top") or _query(req, "top") or 100)
        after = int(state.get("after", 0))
    except InvalidSelect as exc:
        return _error(
            req,
            400,
            "Request_BadRequest",
            f"Could not find a property named '{exc.prop}' on type 'microsoft.graph.user'.",
        )
    except (ValueError, TypeError):
        return _error(req, 400, "Request_BadRequest", "Invalid $skiptoken or $top.")
    if not 1 <= top <= 999:
        return _error(
            req,
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.",
        )
    props = select or [*DEFAULT_USER_PROPERTIES, "id"]
    with svc.state.lock:
        live = svc.state.users[caller.tenant.tenant_id]
        users = (
            u for u in svc.state.users_created_after(caller.tenant.tenant_id, after) if not u.deleted and u.oid in live
        )
        page = list(itertools.islice(users, top + 1))
        page, more = page[:top], len(page) > top
        values = [{**{p: u.graph_value(p) for p in props if p != "id"}, "id": u.oid} for u in page]
    context = f"{svc.graph_base_url}/$metadata#users"
    if select:
        context += f"({','.join(select)})"
    doc: dict[str, Any] = {"@odata.context": context}
    if more:
        token = json.dumps({"after": page[-1].created_seq, "top": top, "select": select}).encode()
        doc["@odata.nextLink"] = (
            f"{svc.graph_base_url}/users?$skiptoken={base64.urlsafe_b64encode(token).rstrip(b'=').decode()}"
        )
    doc["value"] = values
    return _reply(req, 200, doc)


def _user(svc: Services, req: Request, caller: _Caller, ident: str, me: bool = False) -> Response:
    if not me and not caller.permissions & USERS_READ:
        return _denied(req)
    try:
        select = parse_select(_query(req, "select"))
    except InvalidSelect as exc:
        return _error(
            req,
            400,
            "Request_BadRequest",
            f"Could not find a property named '{exc.prop}' on type 'microsoft.graph.user'.",
        )
    tid = caller.tenant.tenant_id
    with svc.state.lock:
        user = svc.state.users[tid].get(ident.lower()) or svc.state.user_by_upn(tid, ident)
        if user is None or user.deleted:
            return _not_found(req, ident)
        props = select or [*DEFAULT_USER_PROPERTIES, "id"]
        doc = {p: user.graph_value(p) for p in props if p != "id"}
        doc["id"] = user.oid
    context = f"{svc.graph_base_url}/$metadata#users"
    context += f"({','.join(select)})/$entity" if select else "/$entity"
    return _reply(req, 200, {"@odata.context": context, **doc})


# -------------------------------------------------------------- applications


def _graph_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def key_credential_resource(cred: KeyCredential, with_key: bool) -> dict[str, Any]:
    """https://learn.microsoft.com/graph/api/resources/keycredential: ``customKeyIdentifier`` is
    the certificate's SHA-1 thumbprint; ``key`` (the certificate) only on ``$select`` of one app."""
    return {
        "customKeyIdentifier": cred.sha1_thumbprint,
        "displayName": cred.display_name,
        "endDateTime": cred.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "key": cred.certificate_der_b64 if with_key else None,
        "keyId": cred.key_id,
        "startDateTime": cred.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


def application_resource(app: Application, tenant: Tenant, with_keys: bool = False) -> dict[str, Any]:
    """The application resource: https://learn.microsoft.com/graph/api/resources/application"""
    resource_access = [{"id": DELEGATED_SCOPE_IDS["User.Read"], "type": "Scope"}]
    resource_access += [{"id": GRAPH_APP_ROLES[p], "type": "Role"} for p in [*app.permissions, *app.requested]]
    return {
        "id": app.object_id,
        "deletedDateTime": None,
        "appId": app.app_id,
        "applicationTemplateId": None,
        "disabledByMicrosoftStatus": None,
        "createdDateTime": app.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "displayName": app.display_name,
        "description": None,
        "groupMembershipClaims": None,
        "identifierUris": [],
        "isDeviceOnlyAuthSupported": None,
        "isFallbackPublicClient": None,
        "nativeAuthenticationApisEnabled": None,
        "notes": None,
        "publisherDomain": tenant.initial_domain,
        "serviceManagementReference": None,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "samlMetadataUrl": None,
        "defaultRedirectUri": None,
        "certification": None,
        "optionalClaims": {
            "accessToken": [],
            "idToken": [
                {"additionalProperties": [], "essential": False, "name": name, "source": None}
                for name in app.optional_claims
            ],
            "saml2Token": [],
        },
        "requestSignatureVerification": None,
        "addIns": [],
        "api": {
            "acceptMappedClaims": None,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": None,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": [],
        "info": {
            "logoUrl": None,
            "marketingUrl": None,
            "privacyStatementUrl": None,
            "supportUrl": None,
            "termsOfServiceUrl": None,
        },
        "keyCredentials": [key_credential_resource(c, with_keys) for c in app.key_credentials],
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [
            {
                "customKeyIdentifier": None,
                "displayName": c.display_name,
                "endDateTime": _graph_time(c.end),
                "hint": c.hint,
                "keyId": c.key_id,
                "secretText": None,
                "startDateTime": _graph_time(c.start),
            }
            for c in app.password_credentials
        ],
        "publicClient": {"redirectUris": []},
        "requiredResourceAccess": [{"resourceAppId": GRAPH_RESOURCE_APP_ID, "resourceAccess": resource_access}],
        "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        "web": {
            "homePageUrl": None,
            "logoutUrl": None,
            "redirectUris": list(app.redirect_uris),
            "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False},
            "redirectUriSettings": [{"uri": u, "index": None} for u in app.redirect_uris],
        },
        "spa": {"redirectUris": []},
    }


def _application(
    svc: Services, req: Request, caller: _Caller, app_id: str | None = None, object_id: str | None = None
) -> Response:
    if not caller.permissions & APPS_READ:
        return _denied(req)
    tenant = caller.tenant
    with svc.state.lock:
        if app_id is not None:
            app = svc.state.apps[tenant.tenant_id].get(app_id.lower())
        else:
            app = svc.state.app_by_object_id(tenant.tenant_id, object_id or "")
        if app is None:
            return _not_found(req, app_id or object_id or "")
        raw_select = _query(req, "select")
        selects_keys = bool(raw_select) and "keycredentials" in [p.strip().lower() for p in raw_select.split(",")]
        resource = application_resource(app, tenant, with_keys=selects_keys)
    context = f"{svc.graph_base_url}/$metadata#applications/$entity"
    if raw_select:
        wanted = [p.strip() for p in raw_select.split(",") if p.strip()]
        by_lower = {k.lower(): k for k in resource}
        unknown = [p for p in wanted if p.lower() not in by_lower]
        if unknown:
            return _error(
                req,
                400,
                "Request_BadRequest",
                f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.application'.",
            )
        keys = [by_lower[p.lower()] for p in wanted]
        resource = {k: resource[k] for k in keys}
        context = f"{svc.graph_base_url}/$metadata#applications({','.join(keys)})/$entity"
    return _reply(req, 200, {"@odata.context": context, **resource})


__all__ = ["handle", "application_resource", "DeltaPage"]
