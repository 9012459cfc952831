"""Okta's OpenID Connect & OAuth 2.0 endpoints for the org authorization server and custom ones.

Follows https://developer.okta.com/docs/api/openapi/okta-oauth/guides/overview/ (endpoints,
discovery, error bodies ``{"error", "error_description"}``), "Implement OAuth for Okta with a
service app" (client credentials with ``private_key_jwt`` for ``okta.*`` scopes, org server
only) and "Build a JWT for client authentication" (assertion claims).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from devenv.entra_emulator.web import Request, Response

from . import pages
from .model import (
    MANAGEMENT_SCOPES,
    AuthServer,
    Directory,
    NotFound,
    Org,
    Refused,
    ServiceApp,
    User,
    WebApp,
    check_password,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CODE_LIFETIME = 300  # seconds; not confirmed in Okta's docs (see README)
TOKEN_LIFETIME = 3600  # Okta's default access and ID token lifetime: one hour
ASSERTION_MAX_LIFETIME = 3600  # "exp … must be a maximum of only an hour in the future"
_ASSERTION_ALGS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")


@dataclass
class AuthCode:
    org: str
    server_id: str | None
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: list[str]
    nonce: str | None
    code_challenge: str | None
    auth_time: int
    expires: float


@dataclass
class Context:
    directory: Directory
    base_url: str = ""
    codes: dict[str, AuthCode] = field(default_factory=dict)
    used_jtis: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def org_url(self, org: str) -> str:
        return f"{self.base_url}/{org}"

    def issuer(self, org: str, server_id: str | None) -> str:
        return self.org_url(org) + (f"/oauth2/{server_id}" if server_id else "")

    def endpoint(self, org: str, server_id: str | None, name: str) -> str:
        return self.org_url(org) + (f"/oauth2/{server_id}/v1/{name}" if server_id else f"/oauth2/v1/{name}")


def oauth_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json(status, {"error": error, "error_description": description}, headers)


def _server(ctx: Context, org: Org, server_id: str | None) -> AuthServer | None:
    try:
        return ctx.directory.auth_server(org, server_id)
    except NotFound:
        return None


# ------------------------------------------------------------------ discovery and keys


def discovery(ctx: Context, req: Request, org: Org, server_id: str | None, oauth: bool = False) -> Response:
    server = _server(ctx, org, server_id)
    if server is None:
        return _not_found_server(server_id)

    def ep(name: str) -> str:
        return ctx.endpoint(org.name, server_id, name)

    scopes = ["openid", "profile", "email", "address", "phone", "offline_access"]
    if server_id is None:
        scopes += list(MANAGEMENT_SCOPES)
    doc: dict[str, Any] = {
        "issuer": ctx.issuer(org.name, server_id),
        "authorization_endpoint": ep("authorize"),
        "token_endpoint": ep("token"),
        "userinfo_endpoint": ep("userinfo"),
        "registration_endpoint": f"{ctx.org_url(org.name)}/oauth2/v1/clients",
        "jwks_uri": ep("keys"),
        "response_types_supported": [
            "code",
            "id_token",
            "code id_token",
            "code token",
            "id_token token",
            "code id_token token",
        ],
        "response_modes_supported": ["query", "fragment", "form_post", "okta_post_message"],
        "grant_types_supported": [
            "authorization_code",
            "implicit",
            "refresh_token",
            "password",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": scopes,
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "client_secret_jwt",
            "private_key_jwt",
            "none",
        ],
        "claims_supported": [
            "iss",
            "ver",
            "sub",
            "aud",
            "iat",
            "exp",
            "jti",
            "auth_time",
            "amr",
            "idp",
            "nonce",
            "name",
            "nickname",
            "preferred_username",
            "given_name",
            "middle_name",
            "family_name",
            "email",
            "email_verified",
            "profile",
            "zoneinfo",
            "locale",
            "address",
            "phone_number",
            "picture",
            "website",
            "gender",
            "birthdate",
            "updated_at",
            "at_hash",
            "c_hash",
        ],
        "code_challenge_methods_supported": ["S256"],
        "introspection_endpoint": ep("introspect"),
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "revocation_endpoint": ep("revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "end_session_endpoint": ep("logout"),
        "request_parameter_supported": True,
        "request_object_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"],
    }
    if oauth:  # /.well-known/oauth-authorization-server: the same without the OIDC-only members
        for name in (
            "userinfo_endpoint",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
            "claims_supported",
        ):
            doc.pop(name, None)
    return Response.json(200, doc)


def keys(ctx: Context, req: Request, org: Org, server_id: str | None) -> Response:
    server = _server(ctx, org, server_id)
    if server is None:
        return _not_found_server(server_id)
    return Response.json(
        200,
        {"keys": [k.jwk() for k in server.keys]},
        {"Cache-Control": "max-age=3600, must-revalidate"},
    )


def _not_found_server(server_id: str | None) -> Response:
    return Response.json(
        404,
        {
            "errorCode": "E0000007",
            "errorSummary": f"Not found: Resource not found: {server_id} (AuthorizationServer)",
            "errorLink": "E0000007",
            "errorId": "oae" + secrets.token_urlsafe(16),
            "errorCauses": [],
        },
    )


# ------------------------------------------------------------------ authorize


def authorize(ctx: Context, req: Request, org: Org, server_id: str | None) -> Response:
    params = {**req.query, **(req.form() if req.method == "POST" else {})}
    server = _server(ctx, org, server_id)
    if server is None:
        return _not_found_server(server_id)
    client_id = params.get("client_id", "")
    app = org.web_apps.get(client_id)
    if app is None:
        return Response.html(
            400, pages.error_page("invalid_client", "The client_id is not valid or the client is not a web app.")
        )
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris:
        return Response.html(
            400,
            pages.error_page(
                "invalid_request",
                "The 'redirect_uri' parameter must be a Login redirect URI in the client app settings.",
            ),
        )
    state = params.get("state")
    mode = params.get("response_mode", "query")

    def back(fields: dict[str, str]) -> Response:
        if state is not None:
            fields = {**fields, "state": state}
        if mode == "form_post":
            return Response.html(200, pages.form_post(redirect_uri, fields))
        sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        return Response.redirect(redirect_uri + sep + urlencode(fields))

    def fail(error: str, description: str) -> Response:
        return back({"error": error, "error_description": description})

    if mode not in ("query", "fragment", "form_post"):
        return fail("invalid_request", "The response_mode is not supported.")
    if params.get("response_type") != "code":
        return fail("unsupported_response_type", "The response type is not supported by the authorization server.")
    if not state:
        return fail("invalid_request", "The authentication request has an invalid 'state' parameter.")
    scopes = params.get("scope", "").split()
    if "openid" not in scopes:
        return fail(
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        )
    unknown = [s for s in scopes if s not in ("openid", "profile", "email", "address", "phone", "offline_access")]
    if unknown:
        return fail(
            "invalid_scope", f"One or more scopes are not configured for the authorization server resource: {unknown}"
        )
    challenge = params.get("code_challenge")
    if challenge is not None and params.get("code_challenge_method", "S256") != "S256":
        return fail("invalid_request", "The code_challenge_method is invalid. Only 'S256' is supported.")
    if params.get("prompt") == "none":
        return fail("login_required", "The client specified not to prompt, but the user is not logged in.")

    hidden = {k: v for k, v in params.items() if k not in ("username", "password")}
    action = ctx.endpoint(org.name, server_id, "authorize")
    if req.method != "POST" or "username" not in params:
        return Response.html(200, pages.sign_in(action, hidden, org.name, app.label))
    user, message = _sign_in(ctx, org, params.get("username", ""), params.get("password", ""))
    if user is None:
        return Response.html(
            200, pages.sign_in(action, hidden, org.name, app.label, params.get("username", ""), message)
        )
    if not app.assigned_everyone and user.id not in app.assigned:
        return fail("access_denied", "User is not assigned to the client application.")
    ctx.directory.record_login(org, user, app.client_id)
    code = secrets.token_urlsafe(32)
    with ctx.lock:
        now = time.time()
        for stale in [k for k, c in ctx.codes.items() if c.expires < now]:
            del ctx.codes[stale]
        ctx.codes[code] = AuthCode(
            org.name,
            server_id,
            app.client_id,
            user.id,
            redirect_uri,
            scopes,
            params.get("nonce"),
            challenge,
            int(now),
            now + CODE_LIFETIME,
        )
    return back({"code": code})


def _sign_in(ctx: Context, org: Org, login: str, password: str) -> tuple[User | None, str]:
    with ctx.directory.lock:
        user = next((u for u in org.users.values() if u.profile["login"].lower() == login.strip().lower()), None)
        if user is None or user.password_hash is None or not check_password(user.password_hash, password):
            return None, "Unable to sign in"
        if user.status != "ACTIVE":
            return None, {
                "LOCKED_OUT": "Your account is locked. Please contact your administrator.",
                "PASSWORD_EXPIRED": "Your password has expired.",
            }.get(user.status, "Unable to sign in")
        return user, ""


# ------------------------------------------------------------------ token


def token(ctx: Context, req: Request, org: Org, server_id: str | None) -> Response:
    server = _server(ctx, org, server_id)
    if server is None:
        return _not_found_server(server_id)
    form = req.form()
    if req.method != "POST" or not form:
        return oauth_error(400, "invalid_request", "The request must be a POST with application/x-www-form-urlencoded.")
    grant = form.get("grant_type", "")
    client, refusal = _authenticate(ctx, req, form, org, server_id)
    if refusal is not None:
        return refusal
    if grant == "authorization_code":
        if not isinstance(client, WebApp):
            return oauth_error(
                400,
                "unauthorized_client",
                "The client is not authorized to use the provided grant type. Configured grant types: [client_credentials].",
            )
        return _code_grant(ctx, form, org, server, server_id, client)
    if grant == "client_credentials":
        if not isinstance(client, ServiceApp):
            return oauth_error(
                400,
                "unauthorized_client",
                "The client is not authorized to use the provided grant type. Configured grant types: [authorization_code].",
            )
        return _client_credentials(ctx, form, org, server, server_id, client)
    if not grant:
        return oauth_error(400, "invalid_request", "The 'grant_type' parameter is required.")
    return oauth_error(
        400,
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server. Configured grant types: [authorization_code, client_credentials].",
    )


def _invalid_client(description: str) -> Response:
    return oauth_error(401, "invalid_client", description, {"WWW-Authenticate": 'Basic realm="Okta"'})


def _authenticate(
    ctx: Context, req: Request, form: dict[str, str], org: Org, server_id: str | None
) -> tuple[WebApp | ServiceApp | None, Response | None]:
    auth = req.header("authorization")
    if "client_assertion" in form or "client_assertion_type" in form:
        return _assertion_client(ctx, form, org, server_id)
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            return None, _invalid_client(
                "Client authentication failed. Either the client or the client credentials are invalid."
            )
        client_id, _, secret = decoded.partition(":")
        if form.get("client_id") and form["client_id"] != client_id:
            return None, oauth_error(
                400,
                "invalid_request",
                "Cannot supply multiple client credentials. Use one of the following: credentials in the Authorization header, credentials in the post body, or a client_assertion in the post body.",
            )
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id:
        return None, _invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid."
        )
    if client_id in org.service_apps:
        return None, _invalid_client(
            "The client is configured for private_key_jwt: send a client_assertion, not a client secret."
        )
    app = org.web_apps.get(client_id)
    if app is None or not secret or not any(check_password(h, secret) for h in app.secret_hashes):
        return None, _invalid_client(
            "Client authentication failed. Either the client or the client credentials are invalid."
        )
    return app, None


def _assertion_client(
    ctx: Context, form: dict[str, str], org: Org, server_id: str | None
) -> tuple[ServiceApp | None, Response | None]:
    """``private_key_jwt`` as Okta documents it: iss = sub = client_id, aud = this token
    endpoint's full URL, exp at most an hour ahead, jti used once, signed with a registered key."""
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        return None, _invalid_client(f"The client_assertion_type is invalid. It must be '{ASSERTION_TYPE}'.")
    assertion = form.get("client_assertion", "")
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None, _invalid_client("The client_assertion token is malformed.")
    iss, sub = claims.get("iss"), claims.get("sub")
    client_id = form.get("client_id") or sub
    app = org.service_apps.get(str(client_id))
    if app is None:
        if client_id in org.web_apps:
            return None, _invalid_client("The client is not configured for private_key_jwt client authentication.")
        return None, _invalid_client("The client_assertion token has an invalid 'sub' claim: no such client.")
    if sub != app.client_id:
        return None, _invalid_client("The 'sub' claim in the client_assertion token must be the client_id.")
    if iss != app.client_id:
        return None, _invalid_client("The 'iss' claim in the client_assertion token must be the client_id.")
    if claims.get("aud") != ctx.endpoint(org.name, server_id, "token"):
        return None, _invalid_client(
            "The audience [aud] claim in the client_assertion token is invalid: it must be the token endpoint's URL."
        )
    alg = header.get("alg")
    if alg not in _ASSERTION_ALGS:
        return None, _invalid_client(f"The client_assertion token is signed with an unsupported algorithm {alg!r}.")
    kid = header.get("kid")
    candidates = [j for j in app.jwks if kid is None or j.get("kid") == kid]
    if not candidates:
        return None, _invalid_client(
            "The client_assertion token has a 'kid' that does not match any key registered for the client."
        )
    verified = False
    for jwk in candidates:
        try:
            algo = RSAAlgorithm if jwk.get("kty") == "RSA" else ECAlgorithm
            key: Any = algo.from_jwk(json.dumps(jwk))
            jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
            verified = True
            break
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
    if not verified:
        return None, _invalid_client("The client_assertion signature is invalid.")
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)):
        return None, _invalid_client("The client_assertion token must have an 'exp' claim.")
    if exp <= now:
        return None, _invalid_client("The client_assertion token is expired.")
    if exp > now + ASSERTION_MAX_LIFETIME:
        return None, _invalid_client("The client_assertion token has an expiration too far into the future.")
    jti = claims.get("jti")
    if jti is not None:
        with ctx.lock:
            for old in [k for k, until in ctx.used_jtis.items() if until < now]:
                del ctx.used_jtis[old]
            key_name = f"{org.name}:{app.client_id}:{jti}"
            if key_name in ctx.used_jtis:
                return None, _invalid_client(
                    "The client_assertion token has already been used (its 'jti' was seen before)."
                )
            ctx.used_jtis[key_name] = float(exp)
    return app, None


def _sign(server: AuthServer, claims: dict[str, Any]) -> str:
    key = server.keys[0]
    return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid})


def _code_grant(
    ctx: Context, form: dict[str, str], org: Org, server: AuthServer, server_id: str | None, app: WebApp
) -> Response:
    with ctx.lock:
        code = ctx.codes.pop(form.get("code", ""), None)
    if code is None or code.expires < time.time() or code.org != org.name or code.server_id != server_id:
        return oauth_error(400, "invalid_grant", "The authorization code is invalid or has expired.")
    if code.client_id != app.client_id:
        return oauth_error(400, "invalid_grant", "The authorization code is invalid or has expired.")
    if form.get("redirect_uri") != code.redirect_uri:
        return oauth_error(
            400,
            "invalid_grant",
            "The 'redirect_uri' does not match the redirection URI used in the authorization request.",
        )
    if code.code_challenge is not None:
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or digest != code.code_challenge:
            return oauth_error(400, "invalid_grant", "PKCE verification failed.")
    elif "code_verifier" in form:
        return oauth_error(
            400, "invalid_request", "'code_verifier' was sent but no code_challenge was in the authorization request."
        )
    try:
        user = ctx.directory.user(org.name, code.user_id)
    except Refused:
        return oauth_error(400, "invalid_grant", "The authorization code is invalid or has expired.")
    if user.status != "ACTIVE":
        return oauth_error(400, "invalid_grant", "The authorization code is invalid or has expired.")
    now = int(time.time())
    issuer = ctx.issuer(org.name, server_id)
    access_claims = {
        "ver": 1,
        "jti": "AT." + secrets.token_urlsafe(32),
        "iss": issuer,
        "aud": server.audience or ctx.org_url(org.name),
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "cid": app.client_id,
        "uid": user.id,
        "scp": code.scopes,
        "auth_time": code.auth_time,
        "sub": user.profile["login"],
    }
    access_token = _sign(server, access_claims)
    at_hash = base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()[:16]).rstrip(b"=").decode()
    id_claims: dict[str, Any] = {
        "sub": user.id,
        "ver": 1,
        "iss": issuer,
        "aud": app.client_id,
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "jti": "ID." + secrets.token_urlsafe(32),
        "amr": ["pwd"],
        "idp": org.org_id,
        "auth_time": code.auth_time,
        "at_hash": at_hash,
    }
    if code.nonce is not None:
        id_claims["nonce"] = code.nonce
    if "profile" in code.scopes:
        id_claims["name"] = f"{user.profile['firstName']} {user.profile['lastName']}"
        id_claims["preferred_username"] = user.profile["login"]
    if "email" in code.scopes:
        id_claims["email"] = user.profile["email"]
        id_claims["email_verified"] = user.email_verified
    return Response.json(
        200,
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "access_token": access_token,
            "scope": " ".join(code.scopes),
            "id_token": _sign(server, id_claims),
        },
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _client_credentials(
    ctx: Context, form: dict[str, str], org: Org, server: AuthServer, server_id: str | None, app: ServiceApp
) -> Response:
    scopes = form.get("scope", "").split()
    if not scopes:
        return oauth_error(
            400,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        )
    if server_id is not None:
        return oauth_error(
            400,
            "invalid_scope",
            "Okta scopes (okta.*) are only granted by the org authorization server; this custom authorization server has none of the requested scopes.",
        )
    unknown = [s for s in scopes if s not in MANAGEMENT_SCOPES]
    if unknown:
        return oauth_error(
            400, "invalid_scope", f"The requested scope is invalid, unknown, or malformed: {' '.join(unknown)}"
        )
    missing = [s for s in scopes if s not in app.granted_scopes]
    if missing:
        return oauth_error(
            400, "invalid_scope", f"The following scopes are not granted to the client application: {' '.join(missing)}"
        )
    now = int(time.time())
    claims = {
        "ver": 1,
        "jti": "AT." + secrets.token_urlsafe(32),
        "iss": ctx.org_url(org.name),
        "aud": ctx.org_url(org.name),
        "iat": now,
        "exp": now + TOKEN_LIFETIME,
        "cid": app.client_id,
        "scp": scopes,
        "sub": app.client_id,
    }
    return Response.json(
        200,
        {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "access_token": _sign(server, claims),
            "scope": " ".join(scopes),
        },
        {"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def verify_access_token(
    ctx: Context, org: Org, server: AuthServer, token_text: str, issuer: str
) -> dict[str, Any] | None:
    """The claims of an access token this server issued and that is still valid; else None."""
    try:
        kid = jwt.get_unverified_header(token_text).get("kid")
    except jwt.PyJWTError:
        return None
    for key in server.keys:
        if key.kid != kid:
            continue
        try:
            return jwt.decode(
                token_text,
                key.private_key.public_key(),
                algorithms=["RS256"],
                issuer=issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
            )
        except jwt.PyJWTError:
            return None
    return None


# ------------------------------------------------------------------ userinfo


def userinfo(ctx: Context, req: Request, org: Org, server_id: str | None) -> Response:
    server = _server(ctx, org, server_id)
    if server is None:
        return _not_found_server(server_id)
    auth = req.header("authorization")
    challenge = 'Bearer authorization_uri="{}", realm="{}", scope="openid", error="invalid_token", error_description="The access token is invalid."'
    realm_hdr = {
        "WWW-Authenticate": challenge.format(
            ctx.endpoint(org.name, server_id, "authorize"), ctx.issuer(org.name, server_id)
        )
    }
    if not auth.lower().startswith("bearer "):
        return Response(401, b"", realm_hdr)
    claims = verify_access_token(ctx, org, server, auth[7:].strip(), ctx.issuer(org.name, server_id))
    if claims is None or "uid" not in claims or "openid" not in claims.get("scp", []):
        return Response(401, b"", realm_hdr)
    try:
        user = ctx.directory.user(org.name, claims["uid"])
    except Refused:
        return Response(401, b"", realm_hdr)
    scopes = claims["scp"]
    doc: dict[str, Any] = {"sub": user.id}
    if "profile" in scopes:
        doc.update(
            {
                "name": f"{user.profile['firstName']} {user.profile['lastName']}",
                "locale": "en_US",
                "preferred_username": user.profile["login"],
                "given_name": user.profile["firstName"],
                "family_name": user.profile["lastName"],
                "zoneinfo": "America/Los_Angeles",
                "updated_at": int(user.last_updated.timestamp()),
            }
        )
    if "email" in scopes:
        doc.update({"email": user.profile["email"], "email_verified": user.email_verified})
    return Response.json(200, doc)


# ------------------------------------------------------------------ logout


def logout(ctx: Context, req: Request, org: Org, server_id: str | None) -> Response:
    """``/v1/logout``: ``id_token_hint`` (an ID token this server issued, expired or not) and,
    when sent, a ``post_logout_redirect_uri`` registered for the token's client; ``state`` is
    passed back. Without a redirect URI the signed-out page is shown."""
    server = _server(ctx, org, server_id)
    if server is None:
        return _not_found_server(server_id)
    params = {**req.query, **(req.form() if req.method == "POST" else {})}
    hint = params.get("id_token_hint", "")
    claims = None
    try:
        kid = jwt.get_unverified_header(hint).get("kid") if hint else None
    except jwt.PyJWTError:
        kid = None
    for key in server.keys:
        if key.kid == kid:
            try:
                claims = jwt.decode(
                    hint,
                    key.private_key.public_key(),
                    algorithms=["RS256"],
                    issuer=ctx.issuer(org.name, server_id),
                    options={"verify_exp": False, "verify_aud": False},
                )
            except jwt.PyJWTError:
                claims = None
    if claims is None:
        return Response.html(400, pages.error_page("invalid_request", "The 'id_token_hint' parameter is not valid."))
    app = org.web_apps.get(str(claims.get("aud")))
    target = params.get("post_logout_redirect_uri")
    if target is None:
        return Response.html(200, pages.signed_out())
    if app is None or target not in app.post_logout_redirect_uris:
        return Response.html(
            400,
            pages.error_page(
                "invalid_request",
                "The 'post_logout_redirect_uri' parameter must be a Logout redirect URI in the client app settings.",
            ),
        )
    state = params.get("state")
    sep = "&" if "?" in target else "?"
    return Response.redirect(target + (sep + urlencode({"state": state}) if state is not None else ""))
