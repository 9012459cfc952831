"""Tenant-specific Microsoft identity platform v2.0 endpoints: discovery, keys, authorize (with a
sign-in form), token, logout, and the OIDC userinfo endpoint Microsoft hosts on Graph.

Protocol references:
* https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc
* https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow
* https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow
* https://learn.microsoft.com/entra/identity-platform/userinfo
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlencode, urlsplit

import jwt

from . import client_assertion, errors, pages
from .context import CODE_LIFETIME, AuthCode, Services
from .errors import AadError
from .state import Application, Tenant, check_password, hash_secret, utcnow
from .tokens import GRAPH_RESOURCE, pairwise_sub, v2_issuer
from .web import Request, Response

_OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


def _aad_json(error: AadError, req: Request) -> Response:
    headers = dict(_NO_STORE)
    if error.status == 429:
        headers["Retry-After"] = "2"
    return Response.json(error.status, error.body(req.header("client-request-id") or None), headers)


def _error_page(error: AadError, req: Request) -> Response:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = pages.error_page(error, req.request_id, str(uuid.uuid4()), now)
    return Response.html(400, text)


# ----------------------------------------------------------------- discovery


def discovery(svc: Services, req: Request, tenant_name: str) -> Response:
    tenant = svc.state.resolve_tenant(tenant_name)
    if tenant is None:
        return _aad_json(errors.tenant_not_found(tenant_name, discovery=True), req)
    base, tid = svc.base_url, tenant.tenant_id
    doc = {
        "token_endpoint": f"{base}/{tid}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/{tid}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": v2_issuer(base, tid),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/{tid}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/{tid}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{base}/{tid}/kerberos",
        "tenant_region_scope": tenant.region_scope,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": urlsplit(base).netloc,
        "rbac_url": "https://pas.windows.net",
    }
    return Response.json(
        200,
        doc,
        {
            "Cache-Control": "max-age=86400, private",
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, OPTIONS",
        },
    )


def jwks(svc: Services, req: Request, tenant_name: str) -> Response:
    tenant = svc.state.resolve_tenant(tenant_name)
    if tenant is None:
        return _aad_json(errors.tenant_not_found(tenant_name, discovery=True), req)
    key = {**svc.signing.jwk(), "issuer": v2_issuer(svc.base_url, tenant.tenant_id)}
    return Response.json(
        200,
        {"keys": [key]},
        {
            "Cache-Control": "max-age=86400, private",
            "Access-Control-Allow-Origin": "*",
        },
    )


# ----------------------------------------------------------------- authorize


def _deliver(redirect_uri: str, mode: str, fields: dict[str, str]) -> Response:
    if mode == "form_post":
        return Response.html(200, pages.form_post(redirect_uri, fields), dict(_NO_STORE))
    if mode == "fragment":
        return Response.redirect(f"{redirect_uri}#{urlencode(fields)}")
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return Response.redirect(f"{redirect_uri}{separator}{urlencode(fields)}")


def _redirect_error(redirect_uri: str, mode: str, error: AadError, state: str | None) -> Response:
    body = error.body()
    fields = {"error": error.error, "error_description": str(body["error_description"])}
    if state is not None:
        fields["state"] = state
    return _deliver(redirect_uri, mode, fields)


@dataclass
class _FrontChannel:
    """A browser request to /authorize or /adminconsent that passed the checks Entra answers
    with an error page (it redirects nowhere before it trusts the client and redirect URI)."""

    submitted: dict[str, str]  # the posted form, empty on GET
    params: dict[str, str]  # the protocol parameters (query or form), without what the person typed
    tenant: Tenant
    app: Application
    redirect_uri: str


def _front_channel(svc: Services, req: Request, tenant_name: str, typed: tuple[str, ...]) -> _FrontChannel | Response:
    submitted = req.form() if req.method == "POST" else {}
    params = {k: v for k, v in (submitted or req.query).items() if k not in typed}
    tenant = svc.state.resolve_tenant(tenant_name)
    if tenant is None:
        return _error_page(errors.tenant_not_found(tenant_name), req)
    client_id = params.get("client_id", "")
    if not client_id:
        return _error_page(errors.missing_parameter("client_id"), req)
    try:
        app = svc.state.snapshot(lambda: svc.state.app(tenant.tenant_id, client_id))
    except LookupError:
        return _error_page(errors.app_not_found(client_id, tenant.display_name), req)
    redirect_uri = params.get("redirect_uri") or (app.redirect_uris[0] if app.redirect_uris else "")
    if not redirect_uri:
        return _error_page(AadError(900971, "invalid_request", 400, "No reply address provided."), req)
    if redirect_uri not in app.redirect_uris:
        return _error_page(errors.redirect_uri_mismatch(redirect_uri, app.app_id), req)
    return _FrontChannel(submitted, params, tenant, app, redirect_uri)


def authorize(svc: Services, req: Request, tenant_name: str) -> Response:
    checked = _front_channel(svc, req, tenant_name, ("login", "passwd"))
    if isinstance(checked, Response):
        return checked
    submitted, params, tenant, app, redirect_uri = (
        checked.submitted,
        checked.params,
        checked.tenant,
        checked.app,
        checked.redirect_uri,
    )

    state = params.get("state")
    response_type = params.get("response_type", "")
    mode = params.get("response_mode") or "query"
    if mode not in ("query", "fragment", "form_post"):
        return _redirect_error(
            redirect_uri,
            "query",
            AadError(
                70007,
                "invalid_request",
                400,
                "The provided value for the input parameter 'response_mode' is not valid.",
            ),
            state,
        )
    if not response_type:
        return _redirect_error(redirect_uri, mode, errors.missing_parameter("response_type"), state)
    if response_type != "code":
        return _redirect_error(redirect_uri, mode, errors.unsupported_response_type(response_type), state)
    if not params.get("scope"):
        return _redirect_error(redirect_uri, mode, errors.missing_parameter("scope"), state)
    if params.get("code_challenge") and params.get("code_challenge_method", "plain") not in ("S256", "plain"):
        return _redirect_error(redirect_uri, mode, errors.invalid_code_challenge_method(), state)
    if params.get("prompt") == "none":
        # The emulator keeps no browser session, so a silent request always needs a login.
        return _redirect_error(redirect_uri, mode, errors.login_required(), state)

    action = f"/{tenant_name}/oauth2/v2.0/authorize"
    if "login" not in submitted:
        return Response.html(
            200,
            pages.sign_in_form(
                action, params, tenant.display_name, app.display_name, login=params.get("login_hint", "")
            ),
        )
    return _sign_in(svc, req, tenant, app, params, submitted, action, redirect_uri, mode)


def _sign_in(
    svc: Services,
    req: Request,
    tenant: Tenant,
    app: Application,
    params: dict[str, str],
    submitted: dict[str, str],
    action: str,
    redirect_uri: str,
    mode: str,
) -> Response:
    login = submitted.get("login", "").strip()
    user = svc.state.snapshot(lambda: svc.state.user_by_upn(tenant.tenant_id, login)) if login else None
    if user is None or user.deleted:
        return Response.html(
            200,
            pages.sign_in_form(
                action,
                params,
                tenant.display_name,
                app.display_name,
                login=login,
                error=errors.user_not_found(login, tenant.display_name),
                error_text="This username may be incorrect. Make sure you typed it correctly. "
                "Otherwise, contact your admin.",
            ),
        )
    if not check_password(submitted.get("passwd", ""), user.password_hash):
        return Response.html(
            200,
            pages.sign_in_form(
                action,
                params,
                tenant.display_name,
                app.display_name,
                login=login,
                error=errors.bad_password(),
                error_text="Your account or password is incorrect. If you don't remember your password, reset it now.",
            ),
        )
    if not user.account_enabled:
        return _error_page(errors.user_disabled(), req)

    code = svc.codes.issue(
        AuthCode(
            tenant_id=tenant.tenant_id,
            app_id=app.app_id,
            oid=user.oid,
            redirect_uri=redirect_uri,
            scopes=params.get("scope", "").split(),
            nonce=params.get("nonce"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=(params.get("code_challenge_method") or "plain")
            if params.get("code_challenge")
            else None,
            expires=utcnow() + CODE_LIFETIME,
        )
    )
    fields = {"code": code}
    if "state" in params:
        fields["state"] = params["state"]
    fields["session_state"] = str(uuid.uuid4())
    return _deliver(redirect_uri, mode, fields)


# -------------------------------------------------------------- admin consent


ADMIN_CANCELED = ("permission_denied", "The admin canceled the request")


def admin_consent(svc: Services, req: Request, tenant_name: str) -> Response:
    """``/{tenant}/adminconsent`` (the tenant-wide admin consent of the client credentials flow).

    Request ``client_id``, ``redirect_uri`` (must be registered), optional ``state``. An
    administrator signs in and accepts or cancels. Answer, as Microsoft documents it: a redirect
    to ``redirect_uri`` with ``tenant``, ``state`` (when sent) and ``admin_consent=True``, or with
    ``error=permission_denied&error_description=The admin canceled the request`` (+ ``state``).
    Not modelled: which directory roles may consent (any enabled user of the tenant may).
    https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#request-the-permissions-from-a-directory-admin
    """
    checked = _front_channel(svc, req, tenant_name, ("login", "passwd", "consent"))
    if isinstance(checked, Response):
        return checked
    submitted, params, tenant, app, redirect_uri = (
        checked.submitted,
        checked.params,
        checked.tenant,
        checked.app,
        checked.redirect_uri,
    )
    state = params.get("state")
    action = f"/{tenant_name}/adminconsent"
    answer: dict[str, str]
    if submitted.get("consent") == "cancel":
        answer = {"error": ADMIN_CANCELED[0], "error_description": ADMIN_CANCELED[1]}
    elif submitted.get("consent") == "accept":
        login = submitted.get("login", "").strip()
        user = svc.state.snapshot(lambda: svc.state.user_by_upn(tenant.tenant_id, login)) if login else None
        if (
            user is None
            or user.deleted
            or not user.account_enabled
            or not check_password(submitted.get("passwd", ""), user.password_hash)
        ):
            return Response.html(
                200,
                pages.admin_consent(
                    action,
                    params,
                    tenant.display_name,
                    app.display_name,
                    app.permissions + app.requested,
                    errors.bad_password(),
                    login,
                ),
            )
        svc.state.consent_all(tenant.tenant_id, app.app_id)
        answer = {"tenant": tenant.tenant_id, "admin_consent": "True"}
    else:
        return Response.html(
            200,
            pages.admin_consent(action, params, tenant.display_name, app.display_name, app.permissions + app.requested),
        )
    if state is not None:
        answer["state"] = state
    return _deliver(redirect_uri, "query", answer)


# --------------------------------------------------------------------- token


def _client_credentials(req: Request, form: dict[str, str]) -> tuple[str, str | None]:
    auth = req.header("authorization")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            decoded = ":"
        user, _, password = decoded.partition(":")
        return unquote_plus(user), unquote_plus(password)
    return form.get("client_id", ""), form.get("client_secret")


def _authenticate(app: Application, secret: str | None) -> AadError | None:
    if not secret:
        return errors.missing_client_credential()
    digest = hash_secret(secret)
    for cred in app.password_credentials:
        if hmac.compare_digest(cred.secret_hash, digest):
            now = utcnow()
            if cred.expired(now):
                return errors.expired_secret(app.app_id)
            if cred.start > now:
                return errors.invalid_secret(app.app_id)
            return None
    return errors.invalid_secret(app.app_id)


def _token_endpoints(svc: Services, tenant: Tenant) -> list[str]:
    """The audiences an assertion may name: this tenant's v2.0 token endpoint, by id or domain."""
    names = [tenant.tenant_id, tenant.initial_domain, *tenant.domains]
    return [f"{svc.base_url}/{name}/oauth2/v2.0/token" for name in dict.fromkeys(names)]


def _authenticate_assertion(
    svc: Services, tenant: Tenant, app: Application, client_id: str, form: dict[str, str]
) -> AadError | None:
    if form.get("client_assertion_type") != client_assertion.ASSERTION_TYPE:
        return errors.missing_parameter("client_assertion_type")
    assertion = form["client_assertion"]
    decoded = client_assertion.decode_unverified(assertion)
    if decoded is not None:
        svc.assertions.append(client_assertion.ReceivedAssertion(app.app_id, decoded[0], decoded[1]))
    return client_assertion.verify(assertion, app, client_id, _token_endpoints(svc, tenant), utcnow())


def token(svc: Services, req: Request, tenant_name: str) -> Response:
    if req.method != "POST":
        return _aad_json(errors.method_not_allowed(req.method), req)
    tenant = svc.state.resolve_tenant(tenant_name)
    if tenant is None:
        return _aad_json(errors.tenant_not_found(tenant_name), req)
    fault = svc.faults.take("token", req.path, tenant.tenant_id)
    if fault is not None:
        error = errors.throttled() if fault.kind == "throttle" else errors.temporarily_unavailable()
        headers = dict(_NO_STORE)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        return Response.json(fault.status, error.body(), headers)

    form = req.form()
    client_id, secret = _client_credentials(req, form)
    assertion = form.get("client_assertion")
    if not client_id and assertion:
        # Entra takes the client from the assertion's ``iss`` when ``client_id`` is absent.
        decoded = client_assertion.decode_unverified(assertion)
        client_id = str(decoded[1].get("iss", "")) if decoded else ""
    if not client_id:
        return _aad_json(errors.missing_parameter("client_id"), req)
    try:
        app = svc.state.snapshot(lambda: svc.state.app(tenant.tenant_id, client_id))
    except LookupError:
        return _aad_json(errors.app_not_found(client_id, tenant.display_name), req)
    grant_type = form.get("grant_type", "")
    if not grant_type:
        return _aad_json(errors.missing_parameter("grant_type"), req)
    auth_error = _authenticate_assertion(svc, tenant, app, client_id, form) if assertion else _authenticate(app, secret)
    if auth_error is not None:
        return _aad_json(auth_error, req)
    if grant_type == "client_credentials":
        return _client_credentials_grant(svc, req, tenant, app, form)
    if grant_type == "authorization_code":
        return _authorization_code_grant(svc, req, tenant, app, form)
    return _aad_json(errors.unsupported_grant_type(grant_type), req)


def _client_credentials_grant(
    svc: Services, req: Request, tenant: Tenant, app: Application, form: dict[str, str]
) -> Response:
    scope = form.get("scope", "").strip()
    if not scope:
        return _aad_json(errors.missing_parameter("scope"), req)
    scopes = scope.split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return _aad_json(errors.scope_needs_default(scope), req)
    resource = scopes[0][: -len("/.default")]
    if resource in svc.graph_audiences():
        audience = resource.rstrip("/")
    elif resource.lower() in (app.app_id, f"api://{app.app_id}"):
        audience = app.app_id
    else:
        return _aad_json(errors.resource_not_found(resource, tenant.tenant_id), req)
    lifetime = svc.state.token_lifetime
    access_token = _shape(svc, svc.issuer.app_token(tenant, app, audience, lifetime))
    return Response.json(
        200,
        {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        },
        dict(_NO_STORE),
    )


def _shape(svc: Services, access_token: str) -> str:
    """The access token as issued: a JWT, or opaque when the setting says so."""
    return svc.issuer.opaque(access_token) if svc.state.opaque_access_tokens else access_token


def _pkce_ok(code: AuthCode, verifier: str | None) -> bool:
    if not code.code_challenge:
        return True
    if not verifier:
        return False
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        expected = verifier
    return hmac.compare_digest(expected, code.code_challenge)


def _authorization_code_grant(
    svc: Services, req: Request, tenant: Tenant, app: Application, form: dict[str, str]
) -> Response:
    value = form.get("code", "")
    if not value:
        return _aad_json(errors.missing_parameter("code"), req)
    code = svc.codes.get(value)
    if code is None:
        return _aad_json(errors.code_invalid(), req)
    if code.tenant_id != tenant.tenant_id:
        return _aad_json(
            AadError(
                700005,
                "invalid_grant",
                400,
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
            ),
            req,
        )
    if code.app_id != app.app_id:
        return _aad_json(errors.code_wrong_client(), req)
    if code.redeemed:
        return _aad_json(errors.code_redeemed(), req)
    if code.expires < utcnow():
        return _aad_json(errors.code_expired(), req)
    redirect_uri = form.get("redirect_uri", "")
    if redirect_uri != code.redirect_uri:
        return _aad_json(errors.reply_address_mismatch(redirect_uri, code.redirect_uri), req)
    if not _pkce_ok(code, form.get("code_verifier")):
        return _aad_json(errors.pkce_mismatch(), req)
    if not svc.codes.redeem(value):
        return _aad_json(errors.code_redeemed(), req)
    try:
        user = svc.state.snapshot(lambda: svc.state.user(tenant.tenant_id, code.oid))
    except LookupError:
        return _aad_json(errors.user_not_found(code.oid, tenant.display_name), req)
    if user.deleted:
        return _aad_json(errors.user_not_found(user.user_principal_name, tenant.display_name), req)
    if not user.account_enabled:
        return _aad_json(errors.user_disabled(), req)

    lifetime = svc.state.token_lifetime
    oidc = [s for s in ("openid", "profile", "email") if s in code.scopes]
    graph_scopes = ["User.Read"]
    for scope in code.scopes:
        if scope in _OIDC_SCOPES:
            continue
        name = scope.removeprefix(GRAPH_RESOURCE + "/")
        if name not in graph_scopes and "/" not in name:
            graph_scopes.append(name)
    body: dict[str, object] = {
        "token_type": "Bearer",
        "scope": " ".join(oidc + [f"{GRAPH_RESOURCE}/{s}" for s in graph_scopes]),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": _shape(svc, svc.issuer.user_token(tenant, app, user, oidc + graph_scopes, lifetime)),
    }
    if "openid" in code.scopes:
        body["id_token"] = svc.issuer.id_token(
            svc.base_url,
            tenant,
            app,
            user,
            code.scopes,
            code.nonce,
            lifetime,
            email_domain_verified=svc.state.email_domain_verified(tenant.tenant_id, user),
        )
    return Response.json(200, body, dict(_NO_STORE))


# ---------------------------------------------------------- logout, userinfo


def logout(svc: Services, req: Request, tenant_name: str) -> Response:
    params = req.form() if req.method == "POST" else req.query
    if svc.state.resolve_tenant(tenant_name) is None:
        return _error_page(errors.tenant_not_found(tenant_name), req)
    target = params.get("post_logout_redirect_uri")
    if target:
        if "state" in params:
            separator = "&" if urlsplit(target).query else "?"
            target = f"{target}{separator}{urlencode({'state': params['state']})}"
        return Response.redirect(target)
    return Response.html(200, pages.signed_out())


def userinfo(svc: Services, req: Request) -> Response:
    """Microsoft serves UserInfo on Graph (https://graph.microsoft.com/oidc/userinfo) and needs the
    delegated Graph access token from the sign-in."""
    auth = req.header("authorization")
    token_value = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    unauthorized = {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'}
    if not token_value:
        return Response.json(
            401,
            errors.graph_error(
                "InvalidAuthenticationToken", "Access token is empty.", req.request_id, req.client_request_id
            ),
            unauthorized,
        )
    try:
        claims = svc.issuer.decode(token_value, svc.graph_audiences())
    except jwt.InvalidTokenError:
        return Response.json(
            401,
            errors.graph_error(
                "InvalidAuthenticationToken", "Access token validation failure.", req.request_id, req.client_request_id
            ),
            unauthorized,
        )
    scopes = str(claims.get("scp", "")).split()
    if claims.get("idtyp") != "user" or "openid" not in scopes:
        return Response.json(
            403,
            errors.graph_error(
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                req.request_id,
                req.client_request_id,
            ),
        )
    try:
        tenant = svc.state.tenant(str(claims["tid"]))
        user = svc.state.snapshot(lambda: svc.state.user(tenant.tenant_id, str(claims["oid"])))
    except LookupError:
        return Response.json(
            401,
            errors.graph_error(
                "InvalidAuthenticationToken", "Access token validation failure.", req.request_id, req.client_request_id
            ),
            unauthorized,
        )
    doc: dict[str, object] = {"sub": pairwise_sub(tenant, str(claims["appid"]), user.oid)}
    if "profile" in scopes:
        doc.update(
            {
                "name": user.display_name,
                "family_name": user.surname,
                "given_name": user.given_name,
                "picture": f"{svc.graph_base_url}/me/photo/$value",
            }
        )
    if "email" in scopes and user.mail:
        doc["email"] = user.mail
    return Response.json(200, {k: v for k, v in doc.items() if v is not None})


__all__ = ["admin_consent", "authorize", "discovery", "jwks", "logout", "token", "userinfo"]
