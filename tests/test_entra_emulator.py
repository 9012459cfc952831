"""The Entra emulator against real HTTPS clients: every test drives the running server over TLS
(verified against the emulator's CA) and asserts on what Microsoft documents."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from devenv.entra_emulator import EntraEmulator
from devenv.entra_emulator.state import check_password

REPO = Path(__file__).resolve().parents[1]
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PASSWORD = "Correct-Horse-9"
REDIRECT = "https://app.example/callback"
FUTURE = dt.datetime.now(dt.UTC) + dt.timedelta(days=180)
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def em() -> Iterator[EntraEmulator]:
    with EntraEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http(em: EntraEmulator) -> Iterator[requests.Session]:
    with trusting_session(em.ca_bundle) as session:
        yield session


def trusting_session(ca_bundle: Path | str) -> requests.Session:
    """A session that trusts the emulator's CA. ``trust_env`` is off because requests lets a
    ``REQUESTS_CA_BUNDLE`` environment variable override ``Session.verify``."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_bundle)
    return session


@dataclass
class World:
    """One isolated tenant with an app registration (and its secret) and a user."""

    tid: str
    domain: str
    app_id: str
    secret: str
    user_oid: str
    upn: str


@pytest.fixture
def world(em: EntraEmulator) -> World:
    name = "t" + secrets.token_hex(4)
    domain = f"{name}.example"
    tenant = em.add_tenant([domain], display_name=name.capitalize())
    app = em.add_application(tenant.tenant_id, "APSIS SSO", [REDIRECT])
    secret = em.add_secret(tenant.tenant_id, app.app_id, FUTURE)
    user = em.add_user(
        tenant.tenant_id,
        f"ann@{domain}",
        PASSWORD,
        mail=f"ann@{domain}",
        display_name="Ann Example",
        given_name="Ann",
        surname="Example",
    )
    return World(tenant.tenant_id, domain, app.app_id, secret, user.oid, user.user_principal_name)


@pytest.fixture
def page_size(em: EntraEmulator) -> Iterator[None]:
    em.set_delta_page_size(2)
    yield
    em.set_delta_page_size(100)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.aadsts: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")
        if "data-aadsts" in a:
            self.aadsts = a["data-aadsts"]


def parse_page(text: str) -> _Forms:
    parser = _Forms()
    parser.feed(text)
    return parser


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(app_id: str, challenge: str | None = None, **extra: str) -> dict[str, str]:
    params = {
        "client_id": app_id,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "scope": "openid profile email",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "response_mode": "query",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(extra)
    return params


def submit_login(
    http: requests.Session, em: EntraEmulator, tenant: str, params: dict[str, str], login: str, password: str
) -> requests.Response:
    page = http.get(em.authorize_endpoint(tenant), params=params, allow_redirects=False)
    assert page.status_code == 200, page.text
    form = parse_page(page.text)
    assert {"login", "passwd"} <= set(form.fields)
    data = {**form.fields, "login": login, "passwd": password}
    return http.post(em.url + form.action, data=data, allow_redirects=False)


def sign_in(
    http: requests.Session,
    em: EntraEmulator,
    w: World,
    app_id: str | None = None,
    login: str | None = None,
    challenge: str | None = None,
    **extra: str,
) -> tuple[str, dict[str, str]]:
    """Sign in through the form; returns (code, authorize params)."""
    params = authorize_params(app_id or w.app_id, challenge, **extra)
    resp = submit_login(http, em, w.tid, params, login or w.upn, PASSWORD)
    assert resp.status_code == 302, resp.text
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["state"] == params["state"]
    return query["code"], params


def redeem(
    http: requests.Session,
    em: EntraEmulator,
    w: World,
    code: str,
    verifier: str | None = None,
    app_id: str | None = None,
    secret: str | None = None,
) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": app_id or w.app_id,
        "client_secret": secret or w.secret,
    }
    if verifier:
        data["code_verifier"] = verifier
    return http.post(em.token_endpoint(w.tid), data=data)


def login_tokens(http: requests.Session, em: EntraEmulator, w: World, **kwargs: Any) -> dict[str, Any]:
    code, params = sign_in(http, em, w, **kwargs)
    resp = redeem(http, em, w, code, app_id=kwargs.get("app_id"))
    assert resp.status_code == 200, resp.text
    return {**resp.json(), "params": params}


def verify_id_token(http: requests.Session, em: EntraEmulator, tid: str, token: str, aud: str) -> dict[str, Any]:
    config = http.get(em.discovery_url(tid)).json()
    keys = jwt.PyJWKSet.from_dict(http.get(config["jwks_uri"]).json())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return jwt.decode(
        token,
        key.key,
        algorithms=config["id_token_signing_alg_values_supported"],
        audience=aud,
        issuer=config["issuer"],
    )


def app_token(http: requests.Session, em: EntraEmulator, w: World, scope: str = GRAPH_SCOPE) -> str:
    resp = http.post(
        em.token_endpoint(w.tid),
        data={"grant_type": "client_credentials", "client_id": w.app_id, "client_secret": w.secret, "scope": scope},
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def graph_get(
    http: requests.Session, url: str, token: str | None, headers: dict[str, str] | None = None, **kwargs: Any
) -> requests.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return http.get(url, headers={**auth, **(headers or {})}, **kwargs)


def assert_aad_error(resp: requests.Response, status: int, error: str, code: int) -> dict[str, Any]:
    """Microsoft's token error body: every documented field, the description's trailer lines."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert re.fullmatch(
        rf"AADSTS{code}: .+\r\nTrace ID: {GUID}\r\nCorrelation ID: {GUID}\r\n"
        r"Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ",
        body["error_description"],
        re.S,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", body["timestamp"])
    assert re.fullmatch(GUID, body["trace_id"]) and re.fullmatch(GUID, body["correlation_id"])
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"
    return body


def assert_graph_error(resp: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == ["error"]
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    inner = body["error"]["innerError"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    assert re.fullmatch(GUID, inner["request-id"])
    assert inner["client-request-id"]
    return body


# ------------------------------------------------------------------ discovery


def test_discovery_document_is_shaped_like_microsofts(em: EntraEmulator, http: requests.Session, world: World) -> None:
    by_domain = http.get(em.discovery_url(world.domain))
    by_guid = http.get(em.discovery_url(world.tid))
    assert by_domain.status_code == by_guid.status_code == 200
    doc = by_domain.json()
    assert doc == by_guid.json()  # a domain and the GUID name the same tenant
    assert list(doc) == [
        "token_endpoint",
        "token_endpoint_auth_methods_supported",
        "jwks_uri",
        "response_modes_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "response_types_supported",
        "scopes_supported",
        "issuer",
        "request_uri_parameter_supported",
        "userinfo_endpoint",
        "authorization_endpoint",
        "device_authorization_endpoint",
        "http_logout_supported",
        "frontchannel_logout_supported",
        "end_session_endpoint",
        "claims_supported",
        "kerberos_endpoint",
        "tenant_region_scope",
        "cloud_instance_name",
        "cloud_graph_host_name",
        "msgraph_host",
        "rbac_url",
    ]
    base = f"{em.url}/{world.tid}"
    assert doc["issuer"] == f"{base}/v2.0" == em.issuer(world.domain)
    assert doc["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert doc["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{base}/discovery/v2.0/keys"
    assert doc["end_session_endpoint"] == f"{base}/oauth2/v2.0/logout"
    assert doc["userinfo_endpoint"] == f"{em.url}/oidc/userinfo"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["subject_types_supported"] == ["pairwise"]
    assert {"client_secret_post", "client_secret_basic"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert {"openid", "profile", "email", "offline_access"} == set(doc["scopes_supported"])
    assert {"sub", "tid", "email", "preferred_username", "nonce"} <= set(doc["claims_supported"])
    assert doc["tenant_region_scope"] == "EU"
    assert by_guid.headers["Cache-Control"] == "max-age=86400, private"

    keys = http.get(doc["jwks_uri"]).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["e"] == "AQAB"
    assert key["kid"] == key["x5t"] and len(key["x5c"]) == 1
    assert key["issuer"] == doc["issuer"]


def test_unknown_tenant_answers_aadsts90002(em: EntraEmulator, http: requests.Session, world: World) -> None:
    missing = str(uuid.uuid4())
    body = assert_aad_error(http.get(em.discovery_url(missing)), 400, "invalid_tenant", 90002)
    assert f"Tenant '{missing}' not found" in body["error_description"]
    assert_aad_error(
        http.post(
            em.token_endpoint("nobody.example"),
            data={
                "grant_type": "client_credentials",
                "client_id": world.app_id,
                "client_secret": world.secret,
                "scope": GRAPH_SCOPE,
            },
        ),
        400,
        "invalid_request",
        90002,
    )
    page = http.get(em.authorize_endpoint(missing), params=authorize_params(world.app_id))
    assert parse_page(page.text).aadsts == "90002"


# ------------------------------------------------------- authorization code flow


def test_code_flow_with_pkce_and_client_secret_post(em: EntraEmulator, http: requests.Session, world: World) -> None:
    verifier, challenge = pkce()
    code, params = sign_in(http, em, world, challenge=challenge)

    assert_aad_error(redeem(http, em, world, code, verifier="not-the-verifier"), 400, "invalid_grant", 501481)
    resp = redeem(http, em, world, code, verifier=verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Cache-Control"] == "no-store, no-cache"
    body = resp.json()
    assert set(body) == {"token_type", "scope", "expires_in", "ext_expires_in", "access_token", "id_token"}
    assert body["token_type"] == "Bearer"
    assert body["scope"].split() == ["openid", "profile", "email", "https://graph.microsoft.com/User.Read"]

    claims = verify_id_token(http, em, world.tid, body["id_token"], aud=world.app_id)
    assert claims["iss"] == em.issuer(world.tid)
    assert claims["ver"] == "2.0"
    assert claims["nonce"] == params["nonce"]
    assert claims["oid"] == world.user_oid and claims["tid"] == world.tid
    assert claims["email"] == world.upn
    assert claims["preferred_username"] == world.upn
    assert claims["name"] == "Ann Example"
    assert claims["xms_edov"] is True
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", claims["sub"])
    assert claims["nbf"] <= claims["iat"] < claims["exp"]
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"

    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert access["scp"] == "openid profile email User.Read"
    assert access["oid"] == world.user_oid and access["appid"] == world.app_id

    # Codes are single use.
    assert_aad_error(redeem(http, em, world, code, verifier=verifier), 400, "invalid_grant", 54005)


def test_code_flow_with_client_secret_basic_and_plain_pkce(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    code, _ = sign_in(http, em, world, code_challenge="plain-verifier-" + "x" * 40, code_challenge_method="plain")
    basic = base64.b64encode(f"{world.app_id}:{world.secret}".encode()).decode()
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "https://app.example/other",
        "code_verifier": "plain-verifier-" + "x" * 40,
    }
    wrong_redirect = http.post(em.token_endpoint(world.tid), data=data, headers={"Authorization": f"Basic {basic}"})
    assert_aad_error(wrong_redirect, 400, "invalid_grant", 500112)
    data["redirect_uri"] = REDIRECT
    resp = http.post(em.token_endpoint(world.tid), data=data, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.text
    assert verify_id_token(http, em, world.tid, resp.json()["id_token"], world.app_id)["oid"] == world.user_oid


def test_sub_is_pairwise_per_application_and_oid_is_stable(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    other = em.add_application(world.tid, "Other app", [REDIRECT])
    other_secret = em.add_secret(world.tid, other.app_id, FUTURE)
    first = login_tokens(http, em, world)
    again = login_tokens(http, em, world)
    code, _ = sign_in(http, em, world, app_id=other.app_id)
    resp = redeem(http, em, world, code, app_id=other.app_id, secret=other_secret)
    assert resp.status_code == 200, resp.text

    a1 = verify_id_token(http, em, world.tid, first["id_token"], world.app_id)
    a2 = verify_id_token(http, em, world.tid, again["id_token"], world.app_id)
    b = verify_id_token(http, em, world.tid, resp.json()["id_token"], other.app_id)
    assert a1["sub"] == a2["sub"]
    assert a1["sub"] != b["sub"]
    assert a1["oid"] == b["oid"] == world.user_oid


def test_email_and_xms_edov_claims(em: EntraEmulator, http: requests.Session, world: World) -> None:
    unverified = em.add_user(
        world.tid, f"bob@{world.domain}", PASSWORD, mail="bob@elsewhere.example", email_domain_verified=False
    )
    no_mail = em.add_user(world.tid, f"cid@{world.domain}", PASSWORD)

    claims = verify_id_token(
        http,
        em,
        world.tid,
        login_tokens(http, em, world, login=unverified.user_principal_name)["id_token"],
        world.app_id,
    )
    assert claims["email"] == "bob@elsewhere.example" and claims["xms_edov"] is False

    claims = verify_id_token(
        http, em, world.tid, login_tokens(http, em, world, login=no_mail.user_principal_name)["id_token"], world.app_id
    )
    assert "email" not in claims and "xms_edov" not in claims

    em.set_email_domain_verified(world.tid, unverified.oid, True)
    claims = verify_id_token(
        http,
        em,
        world.tid,
        login_tokens(http, em, world, login=unverified.user_principal_name)["id_token"],
        world.app_id,
    )
    assert claims["xms_edov"] is True

    em.set_optional_claims(world.tid, world.app_id, [])  # app without the optional claim configured
    claims = verify_id_token(http, em, world.tid, login_tokens(http, em, world)["id_token"], world.app_id)
    assert claims["email"] == world.upn and "xms_edov" not in claims

    claims = verify_id_token(
        http, em, world.tid, login_tokens(http, em, world, scope="openid")["id_token"], world.app_id
    )
    assert "email" not in claims and "preferred_username" not in claims


def test_xms_edov_says_whether_the_mails_domain_is_verified_in_the_tenant(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    """Microsoft's optional claims reference: xms_edov is whether the domain owner of the user's
    email was verified. A tenant's admin may set any mail; in a domain of another tenant it is
    not verified here (issue 19: the attacker's token says false, or leaves the claim out)."""
    victim = em.add_tenant([f"victim-{world.domain}"])
    mallory = em.add_user(world.tid, f"mallory@{world.domain}", PASSWORD, mail=f"ceo@victim-{world.domain}")
    token = login_tokens(http, em, world, login=mallory.user_principal_name)["id_token"]
    claims = verify_id_token(http, em, world.tid, token, world.app_id)
    assert claims["email"] == f"ceo@victim-{world.domain}" and claims["xms_edov"] is False
    # The same mail once the domain is verified in the user's own tenant: true.
    em.move_domain(f"victim-{world.domain}", world.tid)
    assert victim.tenant_id != world.tid
    token = login_tokens(http, em, world, login=mallory.user_principal_name)["id_token"]
    assert verify_id_token(http, em, world.tid, token, world.app_id)["xms_edov"] is True


def test_domains_can_be_added_removed_and_moved_and_discovery_follows(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    other = em.add_tenant([f"other-{world.domain}"])
    extra = f"extra-{world.domain}"
    assert_aad_error(http.get(em.discovery_url(extra)), 400, "invalid_tenant", 90002)
    em.add_domain(world.tid, extra)
    assert http.get(em.discovery_url(extra)).json()["issuer"] == em.issuer(world.tid)
    with pytest.raises(ValueError, match="already verified in tenant"):
        em.add_domain(other.tenant_id, extra)  # one tenant only
    # Over the control API: moved to the other tenant.
    moved = http.post(f"{em.url}/_emulator/domains/{extra}/move", json={"to_tenant": other.tenant_id})
    assert moved.status_code == 200, moved.text
    assert extra in moved.json()["domains"]
    assert http.get(em.discovery_url(extra)).json()["issuer"] == em.issuer(other.tenant_id)
    gone = http.delete(f"{em.url}/_emulator/tenants/{other.tenant_id}/domains/{extra}")
    assert gone.status_code == 200 and extra not in gone.json()["domains"]
    assert_aad_error(http.get(em.discovery_url(extra)), 400, "invalid_tenant", 90002)
    initial = em.get_tenant(world.tid).initial_domain
    with pytest.raises(ValueError, match="initial domain"):
        em.remove_domain(world.tid, initial)


def test_a_domain_in_use_is_deleted_only_by_force_which_renames_its_users(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    refused = http.delete(f"{em.url}/_emulator/tenants/{world.tid}/domains/{world.domain}")
    assert refused.status_code == 400 and "user principal name" in refused.json()["error"]
    token = app_token(http, em, world)
    link = walk(http, f"{em.graph_base_url}/users/delta?$select={SELECT}", token)[2]
    forced = http.delete(f"{em.url}/_emulator/tenants/{world.tid}/domains/{world.domain}?force=true")
    assert forced.status_code == 200, forced.text
    initial = em.get_tenant(world.tid).initial_domain
    assert em.get_user(world.tid, world.user_oid).user_principal_name == f"ann@{initial}"
    changed = walk(http, link, token)[0]
    assert [(u["id"], u.get("userPrincipalName")) for u in changed] == [(world.user_oid, f"ann@{initial}")]
    assert_aad_error(http.get(em.discovery_url(world.domain)), 400, "invalid_tenant", 90002)


def test_id_token_claim_overrides_for_attack_tests(em: EntraEmulator, http: requests.Session, world: World) -> None:
    """Not Entra behaviour: a control that makes tokens say what a hostile or broken issuer might."""
    for sent in (None, "true", 1, [True]):
        em.override_id_token_claims(world.tid, world.user_oid, {"xms_edov": sent})
        token = login_tokens(http, em, world)["id_token"]
        claims = verify_id_token(http, em, world.tid, token, world.app_id)
        assert "xms_edov" in claims and claims["xms_edov"] == sent
    em.override_id_token_claims(world.tid, world.user_oid, {})
    claims = verify_id_token(http, em, world.tid, login_tokens(http, em, world)["id_token"], world.app_id)
    assert claims["xms_edov"] is True


def test_admin_consent_endpoint(em: EntraEmulator, http: requests.Session, world: World) -> None:
    """/{tenant}/adminconsent: an admin signs in and accepts or cancels; the answer is a redirect
    with tenant + admin_consent=True, or error=permission_denied, and the request's state."""
    endpoint = f"{em.url}/{world.tid}/adminconsent"
    params = {"client_id": world.app_id, "redirect_uri": REDIRECT, "state": "12345"}
    prompt = http.get(endpoint, params=params)
    assert prompt.status_code == 200 and "Permissions requested" in prompt.text
    form = parse_page(prompt.text)
    assert {"login", "passwd"} <= set(form.fields)

    wrong = http.post(
        em.url + form.action,
        data={**form.fields, "login": world.upn, "passwd": "nope", "consent": "accept"},
        allow_redirects=False,
    )
    assert wrong.status_code == 200 and parse_page(wrong.text).aadsts == "50126"
    assert not em.get_application(world.tid, world.app_id).admin_consent_granted

    cancel = http.post(em.url + form.action, data={**form.fields, "consent": "cancel"}, allow_redirects=False)
    assert cancel.status_code == 302
    answer = urlsplit(cancel.headers["Location"])
    assert f"{answer.scheme}://{answer.netloc}{answer.path}" == REDIRECT
    assert parse_qs(answer.query) == {
        "error": ["permission_denied"],
        "error_description": ["The admin canceled the request"],
        "state": ["12345"],
    }

    accept = http.post(
        em.url + form.action,
        data={**form.fields, "login": world.upn, "passwd": PASSWORD, "consent": "accept"},
        allow_redirects=False,
    )
    assert accept.status_code == 302
    assert parse_qs(urlsplit(accept.headers["Location"]).query) == {
        "tenant": [world.tid],
        "admin_consent": ["True"],
        "state": ["12345"],
    }
    assert em.get_application(world.tid, world.app_id).admin_consent_granted

    no_state = http.get(endpoint, params={"client_id": world.app_id, "redirect_uri": REDIRECT})
    form = parse_page(no_state.text)
    answer = http.post(em.url + form.action, data={**form.fields, "consent": "cancel"}, allow_redirects=False)
    assert "state" not in parse_qs(urlsplit(answer.headers["Location"]).query)

    unregistered = http.get(endpoint, params={**params, "redirect_uri": "https://evil.example/x"})
    assert unregistered.status_code == 400 and parse_page(unregistered.text).aadsts == "50011"


def test_sign_in_page_errors(em: EntraEmulator, http: requests.Session, world: World) -> None:
    page = http.get(em.authorize_endpoint(world.domain), params=authorize_params(world.app_id, login_hint=world.upn))
    form = parse_page(page.text)
    assert form.fields["login"] == world.upn and form.fields["client_id"] == world.app_id
    assert 'id="idSIButton9"' in page.text

    wrong = submit_login(http, em, world.tid, authorize_params(world.app_id), world.upn, "wrong")
    assert wrong.status_code == 200 and parse_page(wrong.text).aadsts == "50126"
    assert parse_page(wrong.text).fields["login"] == world.upn  # the form again, login kept

    unknown = submit_login(http, em, world.tid, authorize_params(world.app_id), f"zed@{world.domain}", PASSWORD)
    assert parse_page(unknown.text).aadsts == "50034"

    em.disable_user(world.tid, world.user_oid)
    disabled = submit_login(http, em, world.tid, authorize_params(world.app_id), world.upn, PASSWORD)
    assert "AADSTS50057" in disabled.text and parse_page(disabled.text).aadsts == "50057"
    assert "Location" not in disabled.headers
    em.enable_user(world.tid, world.user_oid)

    em.delete_user(world.tid, world.user_oid)
    deleted = submit_login(http, em, world.tid, authorize_params(world.app_id), world.upn, PASSWORD)
    assert parse_page(deleted.text).aadsts == "50034"
    em.restore_user(world.tid, world.user_oid)
    assert sign_in(http, em, world)[0]

    bad_client = http.get(em.authorize_endpoint(world.tid), params=authorize_params(str(uuid.uuid4())))
    assert "AADSTS700016" in bad_client.text and parse_page(bad_client.text).aadsts == "700016"
    bad_redirect = http.get(
        em.authorize_endpoint(world.tid),
        params=authorize_params(world.app_id, redirect_uri="https://evil.example/cb"),
        allow_redirects=False,
    )
    assert parse_page(bad_redirect.text).aadsts == "50011" and "Location" not in bad_redirect.headers

    silent = http.get(
        em.authorize_endpoint(world.tid), params=authorize_params(world.app_id, prompt="none"), allow_redirects=False
    )
    query = parse_qs(urlsplit(silent.headers["Location"]).query)
    assert query["error"] == ["login_required"] and query["error_description"][0].startswith("AADSTS50058:")


def test_form_post_response_mode(em: EntraEmulator, http: requests.Session, world: World) -> None:
    params = authorize_params(world.app_id, response_mode="form_post")
    resp = submit_login(http, em, world.tid, params, world.upn, PASSWORD)
    assert resp.status_code == 200
    page = parse_page(resp.text)
    assert page.action == REDIRECT
    assert page.fields["state"] == params["state"]
    assert redeem(http, em, world, page.fields["code"]).status_code == 200


def test_logout_and_userinfo(em: EntraEmulator, http: requests.Session, world: World) -> None:
    tokens = login_tokens(http, em, world)
    info = http.get(f"{em.url}/oidc/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.text
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert info.json() == {
        "sub": id_claims["sub"],
        "name": "Ann Example",
        "family_name": "Example",
        "given_name": "Ann",
        "picture": f"{em.graph_base_url}/me/photo/$value",
        "email": world.upn,
    }
    assert http.get(f"{em.url}/oidc/userinfo").status_code == 401

    out = http.get(
        f"{em.url}/{world.tid}/oauth2/v2.0/logout",
        params={"post_logout_redirect_uri": "https://app.example/bye", "state": "s1"},
        allow_redirects=False,
    )
    assert out.status_code == 302 and out.headers["Location"] == "https://app.example/bye?state=s1"
    assert "signed out" in http.get(f"{em.url}/{world.tid}/v2.0/logout").text


# --------------------------------------------------------------- token errors


def test_token_endpoint_client_authentication_errors(em: EntraEmulator, http: requests.Session, world: World) -> None:
    def cc(client_id: str, secret: str, scope: str = GRAPH_SCOPE) -> requests.Response:
        return http.post(
            em.token_endpoint(world.tid),
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": scope},
        )

    unknown = str(uuid.uuid4())
    body = assert_aad_error(cc(unknown, world.secret), 400, "unauthorized_client", 700016)
    assert f"Application with identifier '{unknown}' was not found" in body["error_description"]

    body = assert_aad_error(cc(world.app_id, world.secret[:-1] + "!"), 401, "invalid_client", 7000215)
    assert world.app_id in body["error_description"]

    em.expire_secret(world.tid, world.app_id, world.secret[:3])
    body = assert_aad_error(cc(world.app_id, world.secret), 401, "invalid_client", 7000222)
    assert f"client secret keys for app '{world.app_id}' are expired" in body["error_description"]

    fresh = em.add_secret(world.tid, world.app_id, FUTURE, "rotated")
    assert cc(world.app_id, fresh).status_code == 200
    em.remove_secret(world.tid, world.app_id, fresh[:3])
    assert_aad_error(cc(world.app_id, fresh), 401, "invalid_client", 7000215)

    other = em.add_secret(world.tid, world.app_id, FUTURE)
    assert_aad_error(cc(world.app_id, other, scope="openid profile"), 400, "invalid_scope", 1002012)
    assert_aad_error(cc(world.app_id, other, scope="https://unknown.example/.default"), 400, "invalid_resource", 500011)
    assert_aad_error(http.get(em.token_endpoint(world.tid)), 400, "invalid_request", 900561)


def test_client_credentials_token_claims(em: EntraEmulator, http: requests.Session, world: World) -> None:
    resp = http.post(
        em.token_endpoint(world.tid),
        data={
            "grant_type": "client_credentials",
            "client_id": world.app_id,
            "client_secret": world.secret,
            "scope": GRAPH_SCOPE,
        },
    )
    body = resp.json()
    assert set(body) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    app = em.get_application(world.tid, world.app_id)
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["tid"] == world.tid and claims["appid"] == world.app_id
    assert claims["oid"] == app.sp_object_id and claims["idtyp"] == "app"
    assert claims["roles"] == ["User.Read.All"]
    em.grant_application_permission(world.tid, world.app_id, "Application.Read.All")
    claims = jwt.decode(app_token(http, em, world), options={"verify_signature": False})
    assert claims["roles"] == ["Application.Read.All", "User.Read.All"]


def test_token_fault_injection(em: EntraEmulator, http: requests.Session, world: World) -> None:
    em.inject_token_fault("server_error", tenant_id=world.tid)
    resp = http.post(
        em.token_endpoint(world.tid),
        data={
            "grant_type": "client_credentials",
            "client_id": world.app_id,
            "client_secret": world.secret,
            "scope": GRAPH_SCOPE,
        },
    )
    assert_aad_error(resp, 503, "temporarily_unavailable", 90033)
    assert app_token(http, em, world)


# ----------------------------------------------------------------- Graph delta


def walk(http: requests.Session, url: str, token: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Follow nextLinks to the deltaLink: (items, pages, deltaLink)."""
    items: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    while True:
        resp = graph_get(http, url, token)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        pages.append(page)
        items += page["value"]
        assert ("@odata.nextLink" in page) != ("@odata.deltaLink" in page)
        if "@odata.deltaLink" in page:
            return items, pages, page["@odata.deltaLink"]
        url = page["@odata.nextLink"]


SELECT = "id,accountEnabled,mail,userPrincipalName"


def test_delta_full_walk_then_changes(em: EntraEmulator, http: requests.Session, world: World, page_size: None) -> None:
    users = [em.add_user(world.tid, f"u{i}@{world.domain}", PASSWORD, mail=f"u{i}@{world.domain}") for i in range(5)]
    token = app_token(http, em, world)
    items, pages, delta_link = walk(http, f"{em.graph_base_url}/users/delta?$select={SELECT}", token)

    assert len(pages) == 3
    assert (
        pages[0]["@odata.context"] == f"{em.graph_base_url}/$metadata#users(id,accountEnabled,mail,userPrincipalName)"
    )
    assert all("$skiptoken=" in p["@odata.nextLink"] for p in pages[:-1])
    assert "$deltatoken=" in delta_link and "$select" not in delta_link
    assert {i["id"] for i in items} == {world.user_oid, *(u.oid for u in users)}
    assert all(set(i) == {"id", "accountEnabled", "mail", "userPrincipalName"} for i in items)
    assert next(i for i in items if i["id"] == users[0].oid) == {
        "accountEnabled": True,
        "mail": users[0].mail,
        "userPrincipalName": users[0].user_principal_name,
        "id": users[0].oid,
    }

    # Nothing changed: an empty page with a new deltaLink.
    empty, _, delta_link = walk(http, delta_link, token)
    assert empty == []

    em.disable_user(world.tid, users[0].oid)
    em.delete_user(world.tid, users[1].oid)  # soft delete
    em.purge_user(world.tid, users[2].oid)  # hard delete
    em.set_user_mail(world.tid, users[3].oid, "new@elsewhere.example")
    em.update_user(world.tid, users[4].oid, given_name="Not selected")  # not a selected property
    em.set_email_domain_verified(world.tid, world.user_oid, False)  # not a Graph property
    changes, pages, delta_link = walk(http, delta_link, token)
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {users[0].oid, users[1].oid, users[2].oid, users[3].oid}
    assert by_id[users[0].oid]["accountEnabled"] is False
    assert by_id[users[1].oid] == {"id": users[1].oid, "@removed": {"reason": "changed"}}
    assert by_id[users[2].oid] == {"id": users[2].oid, "@removed": {"reason": "deleted"}}
    assert by_id[users[3].oid]["mail"] == "new@elsewhere.example"
    assert set(by_id[users[3].oid]) == {"id", "accountEnabled", "mail", "userPrincipalName"}  # $select kept
    assert len(pages) == 2 and pages[0]["@odata.context"] == f"{em.graph_base_url}/$metadata#users"

    em.restore_user(world.tid, users[1].oid)
    em.purge_user(world.tid, users[3].oid)
    changes, _, delta_link = walk(http, delta_link, token)
    by_id = {c["id"]: c for c in changes}
    assert by_id[users[1].oid] == {
        "accountEnabled": True,
        "mail": users[1].mail,
        "userPrincipalName": users[1].user_principal_name,
        "id": users[1].oid,
    }
    assert by_id[users[3].oid] == {"id": users[3].oid, "@removed": {"reason": "deleted"}}

    # Prefer: return=minimal returns only what changed.
    em.set_user_mail(world.tid, users[4].oid, "minimal@elsewhere.example")
    resp = graph_get(http, delta_link, token, headers={"Prefer": "return=minimal"})
    assert resp.json()["value"] == [{"mail": "minimal@elsewhere.example", "id": users[4].oid}]
    assert resp.headers["Preference-Applied"] == "return=minimal"


def test_delta_sdk_style_paths_default_properties_and_latest(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    token = app_token(http, em, world)
    for path in ("users/delta()", "users/microsoft.graph.delta()", "users/microsoft.graph.delta"):
        resp = graph_get(http, f"{em.graph_base_url}/{path}", token)
        assert resp.status_code == 200, path
        assert resp.json()["@odata.context"] == f"{em.graph_base_url}/$metadata#users"
        (user,) = resp.json()["value"]
        assert set(user) == {
            "businessPhones",
            "displayName",
            "givenName",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName",
            "id",
        }
    latest = graph_get(http, f"{em.graph_base_url}/users/delta?$deltatoken=latest", token).json()
    assert latest["value"] == [] and "@odata.deltaLink" in latest
    em.set_user_mail(world.tid, world.user_oid, "late@elsewhere.example")
    assert graph_get(http, latest["@odata.deltaLink"], token).json()["value"][0]["mail"] == "late@elsewhere.example"
    bad = graph_get(http, f"{em.graph_base_url}/users/delta?$select=id,shoeSize", token)
    assert_graph_error(bad, 400, "Request_BadRequest")


def test_expired_delta_token_answers_sync_state_not_found(
    em: EntraEmulator, http: requests.Session, world: World, page_size: None
) -> None:
    for i in range(3):
        em.add_user(world.tid, f"e{i}@{world.domain}", PASSWORD)
    token = app_token(http, em, world)
    first = graph_get(http, f"{em.graph_base_url}/users/delta?$select={SELECT}", token).json()
    _, _, delta_link = walk(http, first["@odata.nextLink"], token)

    em.expire_delta_tokens(world.tid)
    for link in (delta_link, first["@odata.nextLink"]):
        body = assert_graph_error(graph_get(http, link, token), 400, "syncStateNotFound")
        assert body["error"]["message"] == (
            "The sync state generation is not found. The delta token is expired and data must be synchronized again."
        )
    # A token that was never issued is unknown sync state too.
    assert_graph_error(
        graph_get(http, f"{em.graph_base_url}/users/delta?$deltatoken=bm9wZQ", token), 400, "syncStateNotFound"
    )
    # A full resync works and yields a usable deltaLink again.
    items, _, delta_link = walk(http, f"{em.graph_base_url}/users/delta?$select={SELECT}", token)
    assert len(items) == 4
    assert graph_get(http, delta_link, token).status_code == 200

    em.expire_delta_tokens(world.tid, response="resyncRequired")
    gone = graph_get(http, delta_link, token, allow_redirects=False)
    assert_graph_error(gone, 410, "resyncRequired")
    assert (
        gone.headers["Location"]
        == f"{em.graph_base_url}/users/delta?$deltatoken=&$select=id,accountEnabled,mail,userPrincipalName"
    )
    items, _, _ = walk(http, gone.headers["Location"], token)
    assert len(items) == 4


def test_delta_needs_user_read_all(em: EntraEmulator, http: requests.Session, world: World) -> None:
    em.revoke_application_permission(world.tid, world.app_id, "User.Read.All")
    token = app_token(http, em, world)
    body = assert_graph_error(
        graph_get(http, f"{em.graph_base_url}/users/delta", token), 403, "Authorization_RequestDenied"
    )
    assert body["error"]["message"] == "Insufficient privileges to complete the operation."


def test_configured_permissions_need_admin_consent_before_tokens_carry_them(
    em: EntraEmulator, http: requests.Session, world: World
) -> None:
    """An app registration whose API permissions were added but not admin-consented: Entra still
    issues the app-only token, without ``roles``, and Graph refuses it with 403
    Authorization_RequestDenied; tenant-wide admin consent grants every configured permission."""
    app = em.add_application(
        world.tid,
        "Not consented yet",
        [REDIRECT],
        permissions=["User.Read.All", "Application.Read.All"],
        consented=False,
    )
    fresh = World(
        world.tid, world.domain, app.app_id, em.add_secret(world.tid, app.app_id, FUTURE), world.user_oid, world.upn
    )
    token = app_token(http, em, fresh)
    assert "roles" not in jwt.decode(token, options={"verify_signature": False})
    denied = graph_get(http, f"{em.graph_base_url}/users", token, params={"$top": "1", "$select": "id"})
    assert (
        assert_graph_error(denied, 403, "Authorization_RequestDenied")["error"]["message"]
        == "Insufficient privileges to complete the operation."
    )
    configured = graph_get(http, f"{em.graph_base_url}/applications(appId='{app.app_id}')", token)
    assert configured.status_code == 403  # reading the app needs Application.Read.All granted too

    endpoint = f"{em.url}/{world.tid}/adminconsent"
    prompt = http.get(endpoint, params={"client_id": app.app_id, "redirect_uri": REDIRECT})
    assert "User.Read.All" in prompt.text and "Application.Read.All" in prompt.text
    form = parse_page(prompt.text)
    accept = http.post(
        em.url + form.action,
        data={**form.fields, "login": world.upn, "passwd": PASSWORD, "consent": "accept"},
        allow_redirects=False,
    )
    assert accept.status_code == 302
    granted = app_token(http, em, fresh)
    assert sorted(jwt.decode(granted, options={"verify_signature": False})["roles"]) == [
        "Application.Read.All",
        "User.Read.All",
    ]
    assert graph_get(http, f"{em.graph_base_url}/users", granted, params={"$top": "1"}).status_code == 200
    resource = graph_get(http, f"{em.graph_base_url}/applications(appId='{app.app_id}')", granted).json()
    roles = [a for a in resource["requiredResourceAccess"][0]["resourceAccess"] if a["type"] == "Role"]
    assert len(roles) == 2  # configured before consent, and after


# ------------------------------------------------------------ Graph faults, auth


def test_throttle_then_success(em: EntraEmulator, http: requests.Session, world: World) -> None:
    token = app_token(http, em, world)
    url = f"{em.graph_base_url}/users/delta?$select={SELECT}"
    em.inject_graph_fault("throttle", count=1, retry_after=3, path_contains="/users/delta")
    resp = graph_get(http, url, token)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "3"
    error = resp.json()["error"]
    assert error["code"] == "TooManyRequests" and error["message"] == "Please retry again later."
    assert error["innerError"]["code"] == "429" and error["innerError"]["status"] == "429"
    assert graph_get(http, url, token).status_code == 200
    statuses = [e["status"] for e in em.requests_log if e["path"] == "/v1.0/users/delta"][-2:]
    assert statuses == [429, 200]


def test_server_errors(em: EntraEmulator, http: requests.Session, world: World) -> None:
    token = app_token(http, em, world)
    url = f"{em.graph_base_url}/users/delta"
    em.inject_graph_fault("server_error", count=2)
    assert_graph_error(graph_get(http, url, token), 503, "serviceNotAvailable")
    assert_graph_error(graph_get(http, url, token), 503, "serviceNotAvailable")
    em.inject_graph_fault("server_error", status=500, retry_after=None)
    resp = graph_get(http, url, token)
    assert_graph_error(resp, 500, "generalException")
    assert "Retry-After" not in resp.headers
    assert graph_get(http, url, token).status_code == 200
    # Faults only hit matching paths.
    em.inject_graph_fault("server_error", path_contains="/applications")
    assert graph_get(http, url, token).status_code == 200
    em.clear_faults()


def test_applications_by_app_id(em: EntraEmulator, http: requests.Session, world: World) -> None:
    url = f"{em.graph_base_url}/applications(appId='{world.app_id}')"
    denied = assert_graph_error(graph_get(http, url, app_token(http, em, world)), 403, "Authorization_RequestDenied")
    assert denied["error"]["message"] == "Insufficient privileges to complete the operation."
    assert set(denied["error"]["innerError"]) == {"date", "request-id", "client-request-id"}

    em.grant_application_permission(world.tid, world.app_id, "Application.Read.All")
    token = app_token(http, em, world)
    resp = graph_get(http, url, token)
    assert resp.status_code == 200, resp.text
    app = resp.json()
    registration = em.get_application(world.tid, world.app_id)
    assert app["@odata.context"] == f"{em.graph_base_url}/$metadata#applications/$entity"
    assert app["appId"] == world.app_id and app["id"] == registration.object_id
    assert app["displayName"] == "APSIS SSO" and app["web"]["redirectUris"] == [REDIRECT]
    (cred,) = app["passwordCredentials"]
    assert set(cred) == {
        "customKeyIdentifier",
        "displayName",
        "endDateTime",
        "hint",
        "keyId",
        "secretText",
        "startDateTime",
    }
    assert cred["hint"] == world.secret[:3] and len(world.secret) == 40
    assert cred["secretText"] is None and cred["customKeyIdentifier"] is None
    assert cred["keyId"] == registration.password_credentials[0].key_id
    assert cred["endDateTime"].startswith(FUTURE.strftime("%Y-%m-%dT%H:%M:%S"))

    encoded = graph_get(http, f"{em.graph_base_url}/applications(appId=%27{world.app_id}%27)", token)
    assert encoded.json()["appId"] == world.app_id  # what SDKs send
    by_object_id = graph_get(http, f"{em.graph_base_url}/applications/{registration.object_id}", token)
    assert by_object_id.json()["appId"] == world.app_id
    selected = graph_get(http, url, token, params={"$select": "appId,passwordCredentials"}).json()
    assert set(selected) == {"@odata.context", "appId", "passwordCredentials"}

    missing = graph_get(http, f"{em.graph_base_url}/applications(appId='{uuid.uuid4()}')", token)
    assert_graph_error(missing, 404, "Request_ResourceNotFound")


def test_graph_rejects_missing_and_bad_tokens(em: EntraEmulator, http: requests.Session, world: World) -> None:
    url = f"{em.graph_base_url}/users/delta"
    body = assert_graph_error(graph_get(http, url, None), 401, "InvalidAuthenticationToken")
    assert body["error"]["message"] == "Access token is empty."
    assert graph_get(http, url, None).headers["WWW-Authenticate"].startswith("Bearer")
    assert_graph_error(graph_get(http, url, "garbage"), 401, "InvalidAuthenticationToken")

    real = jwt.decode(app_token(http, em, world), options={"verify_signature": False})
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(real, forged_key, algorithm="RS256")
    assert_graph_error(graph_get(http, url, forged), 401, "InvalidAuthenticationToken")

    own_api = app_token(http, em, world, scope=f"api://{world.app_id}/.default")  # a token, but not for Graph
    body = assert_graph_error(graph_get(http, url, own_api), 401, "InvalidAuthenticationToken")
    assert "audience" in body["error"]["message"]

    em.configure(token_lifetime=1)
    try:
        short = app_token(http, em, world)
    finally:
        em.configure(token_lifetime=3599)
    claims = jwt.decode(short, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 1


def test_opaque_access_tokens_carry_nothing_a_client_can_read_and_graph_accepts_them(
    em: EntraEmulator,
    http: requests.Session,
    world: World,
) -> None:
    """Microsoft: access tokens are opaque to clients; their format may change without notice."""
    em.configure(opaque_access_tokens=1)
    try:
        token = app_token(http, em, world)
        assert em.settings()["opaque_access_tokens"] == 1
    finally:
        em.configure(opaque_access_tokens=0)
    assert "." not in token and world.app_id not in token
    with pytest.raises(jwt.DecodeError):
        jwt.decode(token, options={"verify_signature": False})
    resp = graph_get(http, f"{em.graph_base_url}/users/delta", token)
    assert resp.status_code == 200, resp.text  # still valid after the setting is turned off
    assert_graph_error(
        graph_get(http, f"{em.graph_base_url}/users/delta", token[:-4] + "AAAA"), 401, "InvalidAuthenticationToken"
    )
    assert app_token(http, em, world).count(".") == 2
    with pytest.raises(ValueError, match="0 or 1"):
        em.configure(opaque_access_tokens=2)


def test_users_by_id_and_upn(em: EntraEmulator, http: requests.Session, world: World) -> None:
    token = app_token(http, em, world)
    by_id = graph_get(http, f"{em.graph_base_url}/users/{world.user_oid}", token).json()
    assert by_id["userPrincipalName"] == world.upn and by_id["id"] == world.user_oid
    by_upn = graph_get(
        http, f"{em.graph_base_url}/users/{world.upn}", token, params={"$select": "id,accountEnabled"}
    ).json()
    assert {k: v for k, v in by_upn.items() if k != "@odata.context"} == {"accountEnabled": True, "id": world.user_oid}
    extra = em.add_user(world.tid, f"zoe@{world.domain}", PASSWORD)
    first = graph_get(http, f"{em.graph_base_url}/users", token, params={"$top": "1", "$select": "id,mail"}).json()
    assert first["value"] == [{"mail": world.upn, "id": world.user_oid}]
    second = graph_get(http, first["@odata.nextLink"], token).json()
    assert second["value"] == [{"mail": None, "id": extra.oid}] and "@odata.nextLink" not in second
    em.delete_user(world.tid, world.user_oid)
    assert_graph_error(
        graph_get(http, f"{em.graph_base_url}/users/{world.user_oid}", token), 404, "Request_ResourceNotFound"
    )
    assert [u["id"] for u in graph_get(http, f"{em.graph_base_url}/users", token).json()["value"]] == [extra.oid]


# ---------------------------------------------------------------- control API


def test_http_control_api(em: EntraEmulator, http: requests.Session) -> None:
    api = f"{em.url}/_emulator"
    domain = f"h{secrets.token_hex(3)}.example"
    tenant = http.post(f"{api}/tenants", json={"domains": [domain]}).json()
    assert re.fullmatch(GUID, tenant["tenant_id"]) and tenant["domains"][-1].endswith(".onmicrosoft.com")
    tid = tenant["tenant_id"]
    app = http.post(
        f"{api}/tenants/{tid}/applications", json={"display_name": "Via HTTP", "redirect_uris": [REDIRECT]}
    ).json()
    assert app["permissions"] == ["User.Read.All"]
    secret = http.post(
        f"{api}/tenants/{tid}/applications/{app['app_id']}/secrets", json={"expires": "2031-01-01"}
    ).json()
    assert len(secret["secret_text"]) == 40 and secret["hint"] == secret["secret_text"][:3]
    user = http.post(
        f"{api}/tenants/{tid}/users",
        json={"user_principal_name": f"hx@{domain}", "password": PASSWORD, "mail": f"hx@{domain}"},
    ).json()
    patched = http.patch(f"{api}/tenants/{tid}/users/{user['oid']}", json={"account_enabled": False}).json()
    assert patched["account_enabled"] is False
    assert http.delete(f"{api}/tenants/{tid}/users/{user['oid']}").json()["deleted"] is True
    assert http.post(f"{api}/tenants/{tid}/users/{user['oid']}/restore").json()["deleted"] is False
    assert http.delete(f"{api}/tenants/{tid}/users/{user['oid']}", params={"permanent": "true"}).json() == {
        "status": "purged"
    }
    assert http.get(f"{api}/tenants/{tid}/users/{user['oid']}").status_code == 404
    assert (
        http.post(
            f"{api}/tenants/{tid}/users", json={"user_principal_name": "x@other.example", "password": "p"}
        ).status_code
        == 400
    )
    assert (
        http.post(f"{api}/tenants/{tid}/applications/{app['app_id']}/secrets/{secret['hint']}/expire").json()[
            "password_credentials"
        ][0]["expired"]
        is True
    )
    faults = http.post(f"{api}/faults", json={"target": "graph", "kind": "throttle", "retry_after": 5}).json()
    assert faults[-1]["kind"] == "throttle" and faults[-1]["retry_after"] == 5
    assert http.delete(f"{api}/faults").json() == []
    assert http.post(f"{api}/tenants/{tid}/delta/expire", json={"response": "resyncRequired"}).status_code == 200
    assert http.get(f"{api}/state").json()["tenants"]

    http.get(
        f"{em.url}/{tid}/oauth2/v2.0/authorize", params={"code": "super-secret", "client_secret": "x", "state": "ok"}
    )
    logged = [e for e in em.requests_log if e["path"] == f"/{tid}/oauth2/v2.0/authorize"][-1]
    assert "super-secret" not in logged["query"] and "state=ok" in logged["query"]


def test_state_survives_restart(tmp_path: Path) -> None:
    with EntraEmulator(state_dir=tmp_path) as first:
        tenant = first.add_tenant(["persist.example"])
        app = first.add_application(tenant.tenant_id, "Persisted", [REDIRECT])
        secret = first.add_secret(tenant.tenant_id, app.app_id, FUTURE)
        user = first.add_user(tenant.tenant_id, "pat@persist.example", PASSWORD)
        ca = first.ca_bundle.read_bytes()
        with trusting_session(first.ca_bundle) as s:
            w = World(tenant.tenant_id, "persist.example", app.app_id, secret, user.oid, user.user_principal_name)
            token = app_token(s, first, w)
            _, _, delta_link = walk(s, f"{first.graph_base_url}/users/delta?$select={SELECT}", token)
            kid = s.get(f"{first.url}/{tenant.tenant_id}/discovery/v2.0/keys").json()["keys"][0]["kid"]
    delta_path = delta_link.split("/v1.0", 1)[1]

    with EntraEmulator(state_dir=tmp_path) as second:
        assert second.ca_bundle.read_bytes() == ca
        second.disable_user(tenant.tenant_id, user.oid)
        with trusting_session(second.ca_bundle) as s:
            token = app_token(s, second, w)  # the secret still works (stored as a hash)
            changes = graph_get(s, f"{second.graph_base_url}{delta_path}", token).json()["value"]
            assert changes == [
                {"accountEnabled": False, "mail": None, "userPrincipalName": user.user_principal_name, "id": user.oid}
            ]
            assert s.get(f"{second.url}/{tenant.tenant_id}/discovery/v2.0/keys").json()["keys"][0]["kid"] == kid
    assert "secret" not in (tmp_path / "state.json").read_text().replace("secret_hash", "")


def test_runs_as_a_process_with_a_seed(tmp_path: Path) -> None:
    tid = str(uuid.uuid4())
    seed = {
        "tenants": [
            {
                "tenant_id": tid,
                "domains": ["seeded.example"],
                "display_name": "Seeded",
                "applications": [
                    {
                        "display_name": "Demo",
                        "redirect_uris": [REDIRECT],
                        "permissions": ["User.Read.All", "Application.Read.All"],
                        "secrets": [{"secret_text": "abc8Q~" + "s" * 34, "expires": "2031-01-01"}],
                    }
                ],
                "users": [
                    {"user_principal_name": "sam@seeded.example", "password": PASSWORD, "mail": "sam@seeded.example"}
                ],
            }
        ]
    }
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    cmd = [
        sys.executable,
        "-m",
        "devenv.entra_emulator",
        "--port",
        "0",
        "--state-dir",
        str(tmp_path / "st"),
        "--seed",
        str(seed_file),
    ]
    seen: list[tuple[str, str]] = []
    for _ in range(2):  # the second start reuses the state dir: same objects, nothing duplicated
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            assert info["graph_base_url"] == info["url"] + "/v1.0"
            assert info["tenants"][0]["tenant_id"] == tid and len(info["tenants"][0]["users"]) == 1
            app_id = info["tenants"][0]["applications"][0]["app_id"]
            seen.append((app_id, info["tenants"][0]["users"][0]["oid"]))
            with trusting_session(info["ca_bundle"]) as s:
                resp = s.post(
                    f"{info['url']}/seeded.example/oauth2/v2.0/token",
                    data={
                        "grant_type": "client_credentials",
                        "client_id": app_id,
                        "client_secret": "abc8Q~" + "s" * 34,
                        "scope": GRAPH_SCOPE,
                    },
                )
                assert resp.status_code == 200, resp.text
                apps = s.get(
                    f"{info['graph_base_url']}/applications(appId='{app_id}')",
                    headers={"Authorization": f"Bearer {resp.json()['access_token']}"},
                ).json()
                assert [c["hint"] for c in apps["passwordCredentials"]] == ["abc"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    assert seen[0] == seen[1]


# ------------------------------------------------- the project's client stack


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised by the SDK's own modules on import
def test_azure_identity_and_msgraph_sdk_work_against_it(em: EntraEmulator, world: World, page_size: None) -> None:
    """The recipe the sync daemon needs: instance discovery off, the emulator's CA, Graph base URL
    and allowed host set before the client is built."""
    import azure.identity.aio as azure_identity
    import httpx
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
    from msgraph_core import GraphClientFactory

    for i in range(3):
        em.add_user(world.tid, f"sdk{i}@{world.domain}", PASSWORD, mail=f"sdk{i}@{world.domain}")

    async def run() -> tuple[list[Any], Any]:
        credential = azure_identity.ClientSecretCredential(
            world.tid,
            world.app_id,
            world.secret,
            authority=em.authority,
            disable_instance_discovery=True,
            connection_verify=str(em.ca_bundle),
        )
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[GRAPH_SCOPE], allowed_hosts=[urlsplit(em.url).hostname or "localhost"]
        )
        http_client = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(em.ca_bundle)))
        )
        adapter = GraphRequestAdapter(auth, client=http_client)
        adapter.base_url = em.graph_base_url
        client = GraphServiceClient(request_adapter=adapter)
        config = RequestConfiguration(
            query_parameters=DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=["id", "accountEnabled", "mail", "userPrincipalName"]
            )
        )
        users: list[Any] = []
        page = await client.users.delta.get(request_configuration=config)
        while page is not None and page.odata_next_link:
            users += page.value or []
            page = await client.users.delta.with_url(page.odata_next_link).get()
        assert page is not None and page.odata_delta_link
        users += page.value or []
        em.delete_user(world.tid, users[0].id)
        changes = await client.users.delta.with_url(page.odata_delta_link).get()
        await credential.close()
        return users, changes

    users, changes = asyncio.run(run())
    assert len(users) == 4 and all(u.user_principal_name for u in users)
    (removed,) = changes.value
    assert removed.id == users[0].id
    assert removed.additional_data["@removed"] == {"reason": "changed"}


def test_injected_latency_delays_graph_and_token_answers_only(
    em: EntraEmulator,
    http: requests.Session,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Benchmarks set a latency per Graph and per token answer (as a far-away Microsoft adds);
    the delay is observed through the emulator's sleep, not the clock."""
    import devenv.entra_emulator.server as server

    slept: list[tuple[str, float]] = []
    monkeypatch.setattr(server.time, "sleep", lambda s: slept.append((threading.current_thread().name, s)))
    with pytest.raises(ValueError, match="zero or more"):
        em.configure(graph_latency_ms=-1)
    assert http.post(f"{em.url}/_emulator/settings", json={"graph_latency_ms": 40, "token_latency_ms": 25}).ok
    try:
        assert em.settings()["graph_latency_ms"] == 40 and em.settings()["token_latency_ms"] == 25
        token = app_token(http, em, world)
        assert [s for _, s in slept] == [0.025]
        graph_get(http, f"{em.graph_base_url}/users/{world.user_oid}", token)
        assert [s for _, s in slept] == [0.025, 0.040]
        http.get(em.discovery_url(world.tid))  # neither Graph nor the token endpoint
        assert len(slept) == 2
    finally:
        em.configure(graph_latency_ms=0, token_latency_ms=0)
    app_token(http, em, world)
    assert len(slept) == 2  # back to no latency


def test_bulk_users_are_added_at_once_sign_in_and_page_like_any_other(
    em: EntraEmulator, http: requests.Session, world: World, page_size: None
) -> None:
    api = f"{em.url}/_emulator/tenants/{world.tid}/users/bulk"
    items = [{"user_principal_name": f"b{i}@{world.domain}", "mail": f"b{i}@{world.domain}"} for i in range(4)]
    items.append({"user_principal_name": f"own@{world.domain}", "password": "their-own", "account_enabled": False})
    resp = http.post(api, json={"users": items, "password": PASSWORD})
    assert resp.status_code == 201, resp.text
    oids = resp.json()["oids"]
    assert len(oids) == 5 and em.get_user(world.tid, oids[4]).account_enabled is False
    # One hash per distinct password, and every user still signs in with theirs.
    hashes = {em.get_user(world.tid, oid).password_hash for oid in oids}
    assert len(hashes) == 2
    b3 = em.find_user(world.tid, f"b3@{world.domain}")
    assert b3 is not None
    assert login_tokens(
        http, em, World(world.tid, world.domain, world.app_id, world.secret, b3.oid, b3.user_principal_name)
    )["id_token"]
    own = em.get_user(world.tid, oids[4])
    assert check_password("their-own", own.password_hash) and not check_password(PASSWORD, own.password_hash)
    token = app_token(http, em, world)
    listed, pages, _ = walk(http, f"{em.graph_base_url}/users/delta?$select={SELECT}", token)
    assert {i["id"] for i in listed} == {world.user_oid, *oids} and len(pages) == 3

    # All or nothing: a duplicate (in the batch or in the tenant) or a foreign domain adds nobody.
    for bad in (
        [{"user_principal_name": f"dup@{world.domain}"}, {"user_principal_name": f"DUP@{world.domain}"}],
        [{"user_principal_name": f"b0@{world.domain}"}],
        [{"user_principal_name": f"x@{world.domain}"}, {"user_principal_name": "y@elsewhere.example"}],
    ):
        assert http.post(api, json={"users": bad}).status_code == 400
    assert len(em.list_users(world.tid)) == 6


def test_request_counts_count_every_request_by_kind(em: EntraEmulator, http: requests.Session, world: World) -> None:
    em.clear_requests_log()
    token = app_token(http, em, world)
    walk(http, f"{em.graph_base_url}/users/delta?$select={SELECT}", token)
    graph_get(http, f"{em.graph_base_url}/applications(appId='{world.app_id}')", token)
    graph_get(http, f"{em.graph_base_url}/users/{world.user_oid}", token)
    counts = http.get(f"{em.url}/_emulator/requests/counts").json()
    assert counts == {"token": 1, "graph users/delta": 1, "graph applications": 1, "graph other": 1}
    em.clear_requests_log()
    assert em.request_counts() == {}


def test_indexes_survive_a_restart(tmp_path: Path) -> None:
    with EntraEmulator(state_dir=tmp_path) as first:
        tenant = first.add_tenant(["idx.example"])
        oids = first.add_users(tenant.tenant_id, [{"user_principal_name": f"u{i}@idx.example"} for i in range(3)])
        first.purge_user(tenant.tenant_id, oids[0])
    with EntraEmulator(state_dir=tmp_path) as second:
        assert second.find_tenant("idx.example") is not None
        assert second.find_user(tenant.tenant_id, "u1@idx.example").oid == oids[1]  # type: ignore[union-attr]
        assert second.find_user(tenant.tenant_id, "u0@idx.example") is None
        with pytest.raises(ValueError, match="already exists"):
            second.add_user(tenant.tenant_id, "U2@idx.example", PASSWORD)
        assert second.add_user(tenant.tenant_id, "u0@idx.example", PASSWORD).oid != oids[0]
