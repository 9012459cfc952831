"""The Okta emulator against real HTTPS clients (verified against its CA), asserting on what
Okta documents, and Keycloak's own OIDC broker signing a user in against it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from devenv.entra_emulator import EntraEmulator
from devenv.keycloak import KeycloakServer
from devenv.login_driver import Browser, forms
from devenv.okta_emulator import OktaEmulator

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Correct-Horse-9"
REDIRECT = "https://app.example/callback"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OKTA_ID = r"^[0-9A-Za-z]{20}$"


@pytest.fixture(scope="module")
def okta() -> Iterator[OktaEmulator]:
    with OktaEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http(okta: OktaEmulator) -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would win over the session's CA
    session.verify = str(okta.ca_bundle)
    with session:
        yield session


@dataclass
class World:
    org: str
    client_id: str
    secret: str
    user_id: str
    login: str
    service_id: str
    service_key: rsa.RSAPrivateKey
    kid: str


def public_jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    algo = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
    jwk: dict[str, Any] = json.loads(algo.to_jwk(key.public_key()))
    jwk["kid"] = kid
    return jwk


@pytest.fixture
def world(okta: OktaEmulator) -> World:
    org = "o" + secrets.token_hex(4)
    okta.add_org(org)
    app, secret = okta.add_web_app(org, "APSIS SSO", [REDIRECT])
    user = okta.add_user(org, f"ann@{org}.example", PASSWORD, first_name="Ann", last_name="Example")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    service = okta.add_service_app(org, "apsis-sync", [public_jwk(key, "k1")], ["okta.users.read", "okta.logs.read"])
    return World(org, app.client_id, secret, user.id, f"ann@{org}.example", service.client_id, key, "k1")


def assertion(okta: OktaEmulator, w: World, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": w.service_id,
        "sub": w.service_id,
        "aud": okta.endpoint(w.org, "token"),
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    key = overrides.pop("key", w.service_key)
    headers = {"kid": overrides.pop("kid", w.kid)}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    return jwt.encode(claims, key, algorithm=alg, headers={k: v for k, v in headers.items() if v is not None})


def service_token(
    http: requests.Session, okta: OktaEmulator, w: World, scope: str = "okta.users.read okta.logs.read", **claims: Any
) -> requests.Response:
    return http.post(
        okta.endpoint(w.org, "token"),
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(okta, w, **claims),
        },
    )


def api_headers(
    http: requests.Session, okta: OktaEmulator, w: World, scope: str = "okta.users.read okta.logs.read"
) -> dict[str, str]:
    resp = service_token(http, okta, w, scope)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}", "Accept": "application/json"}


def sign_in(
    http: requests.Session,
    okta: OktaEmulator,
    w: World,
    login: str,
    password: str = PASSWORD,
    server: str | None = None,
    **extra: str,
) -> requests.Response:
    """GET authorize, fill the form it shows, POST it; the response is Okta's answer."""
    params = {
        "client_id": w.client_id,
        "response_type": "code",
        "scope": "openid email profile",
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "nonce": "n-1",
        **extra,
    }
    page = http.get(okta.endpoint(w.org, "authorize", server), params=params, allow_redirects=False)
    assert page.status_code == 200, page.text
    (form,) = forms(page.text)
    data = {**form.fields, "username": login, "password": password}
    return http.post(form.action, data=data, allow_redirects=False)


def code_of(resp: requests.Response) -> str:
    assert resp.status_code == 302, resp.text
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def verify_id_token(
    http: requests.Session, okta: OktaEmulator, org: str, token: str, audience: str, server: str | None = None
) -> dict[str, Any]:
    config = http.get(okta.discovery_url(org, server)).json()
    jwks = jwt.PyJWKClient(config["jwks_uri"], ssl_context=_ssl(okta))
    key = jwks.get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=okta.issuer(org, server))


def _ssl(okta: OktaEmulator) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(okta.ca_bundle))


# ------------------------------------------------------------------ discovery and keys


def test_discovery_documents_name_each_orgs_exact_issuer_and_endpoints(
    okta: OktaEmulator, http: requests.Session, world: World
) -> None:
    org_url = okta.org_url(world.org)
    doc = http.get(f"{org_url}/.well-known/openid-configuration").json()
    assert doc["issuer"] == org_url
    assert doc["authorization_endpoint"] == f"{org_url}/oauth2/v1/authorize"
    assert doc["token_endpoint"] == f"{org_url}/oauth2/v1/token"
    assert doc["jwks_uri"] == f"{org_url}/oauth2/v1/keys"
    assert doc["userinfo_endpoint"] == f"{org_url}/oauth2/v1/userinfo"
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    assert {"okta.users.read", "okta.logs.read"} <= set(doc["scopes_supported"])
    assert doc["code_challenge_methods_supported"] == ["S256"]

    custom = http.get(f"{org_url}/oauth2/default/.well-known/openid-configuration").json()
    assert custom["issuer"] == f"{org_url}/oauth2/default"
    assert custom["token_endpoint"] == f"{org_url}/oauth2/default/v1/token"
    assert "okta.users.read" not in custom["scopes_supported"]
    server = okta.add_auth_server(world.org, "apsis")
    assert server.server_id and server.server_id.startswith("aus")
    assert (
        http.get(okta.discovery_url(world.org, server.server_id)).json()["issuer"]
        == f"{org_url}/oauth2/{server.server_id}"
    )
    missing = http.get(f"{org_url}/oauth2/ausNOPE/.well-known/openid-configuration")
    assert missing.status_code == 404 and missing.json()["errorCode"] == "E0000007"
    assert http.get(f"{okta.url}/nosuchorg/.well-known/openid-configuration").status_code == 404


def test_each_org_and_server_signs_with_its_own_keys(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    other = "o" + secrets.token_hex(4)
    okta.add_org(other)
    kids = {
        name: {k["kid"] for k in http.get(url).json()["keys"]}
        for name, url in {
            "a": okta.endpoint(world.org, "keys"),
            "a-default": okta.endpoint(world.org, "keys", "default"),
            "b": okta.endpoint(other, "keys"),
        }.items()
    }
    assert all(len(v) == 1 for v in kids.values())
    assert len(set.union(*kids.values())) == 3
    key = http.get(okta.endpoint(world.org, "keys")).json()["keys"][0]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig" and "d" not in key
    new_kid = okta.rotate_keys(world.org)
    assert {k["kid"] for k in http.get(okta.endpoint(world.org, "keys")).json()["keys"]} == kids["a"] | {new_kid}
    assert okta.issuer(world.org) != okta.issuer(other)


# ------------------------------------------------------------------ authorization code flow


def test_code_flow_through_the_form_with_pkce_and_client_secret_basic(
    okta: OktaEmulator, http: requests.Session, world: World
) -> None:
    verifier, challenge = pkce()
    before = int(time.time())
    code = code_of(sign_in(http, okta, world, world.login, code_challenge=challenge, code_challenge_method="S256"))
    resp = http.post(
        okta.endpoint(world.org, "token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        auth=(world.client_id, world.secret),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "openid email profile"
    claims = verify_id_token(http, okta, world.org, body["id_token"], world.client_id)
    assert claims["sub"] == world.user_id and claims["iss"] == okta.org_url(world.org)
    assert claims["aud"] == world.client_id and claims["nonce"] == "n-1"
    assert claims["email"] == world.login and claims["email_verified"] is True
    assert claims["preferred_username"] == world.login and claims["name"] == "Ann Example"
    assert claims["amr"] == ["pwd"] and claims["idp"] == okta.directory.org(world.org).org_id
    assert claims["auth_time"] >= before
    # The same code twice: single use.
    again = http.post(
        okta.endpoint(world.org, "token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        auth=(world.client_id, world.secret),
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    info = http.get(okta.endpoint(world.org, "userinfo"), headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200
    assert (
        info.json()["sub"] == world.user_id
        and info.json()["given_name"] == "Ann"
        and info.json()["email_verified"] is True
    )
    assert http.get(okta.endpoint(world.org, "userinfo"), headers={"Authorization": "Bearer nope"}).status_code == 401


def test_custom_authorization_server_login_and_client_secret_post(
    okta: OktaEmulator, http: requests.Session, world: World
) -> None:
    code = code_of(sign_in(http, okta, world, world.login, server="default"))
    resp = http.post(
        okta.endpoint(world.org, "token", "default"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": world.client_id,
            "client_secret": world.secret,
        },
    )
    assert resp.status_code == 200, resp.text
    claims = verify_id_token(http, okta, world.org, resp.json()["id_token"], world.client_id, "default")
    assert claims["iss"] == okta.org_url(world.org) + "/oauth2/default"
    # The org server's keys do not verify a custom server's token.
    with pytest.raises(jwt.PyJWKClientError):
        jwt.PyJWKClient(okta.endpoint(world.org, "keys"), ssl_context=_ssl(okta)).get_signing_key_from_jwt(
            resp.json()["id_token"]
        )


def test_authorize_and_token_refusals(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    base = {"client_id": world.client_id, "response_type": "code", "scope": "openid", "state": "st-1"}
    wrong_redirect = http.get(
        okta.endpoint(world.org, "authorize"), params={**base, "redirect_uri": REDIRECT + "/x"}, allow_redirects=False
    )
    assert wrong_redirect.status_code == 400 and "redirect_uri" in wrong_redirect.text
    no_openid = http.get(
        okta.endpoint(world.org, "authorize"),
        params={**base, "redirect_uri": REDIRECT, "scope": "email"},
        allow_redirects=False,
    )
    assert parse_qs(urlsplit(no_openid.headers["Location"]).query)["error"] == ["invalid_scope"]
    plain = http.get(
        okta.endpoint(world.org, "authorize"),
        params={**base, "redirect_uri": REDIRECT, "code_challenge": "x" * 43, "code_challenge_method": "plain"},
        allow_redirects=False,
    )
    assert parse_qs(urlsplit(plain.headers["Location"]).query)["error"] == ["invalid_request"]
    bad_password = sign_in(http, okta, world, world.login, "wrong")
    assert bad_password.status_code == 200 and "Unable to sign in" in bad_password.text
    okta.suspend(world.org, world.user_id)
    assert "Unable to sign in" in sign_in(http, okta, world, world.login).text
    okta.unsuspend(world.org, world.user_id)
    verifier, challenge = pkce()
    code = code_of(sign_in(http, okta, world, world.login, code_challenge=challenge))
    token_url = okta.endpoint(world.org, "token")
    wrong_secret = http.post(
        token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(world.client_id, "nope"),
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    wrong_verifier = http.post(
        token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": pkce()[0]},
        auth=(world.client_id, world.secret),
    )
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"


# ------------------------------------------------------------------ service app, private_key_jwt


def test_service_app_gets_an_okta_scoped_token_with_private_key_jwt(
    okta: OktaEmulator, http: requests.Session, world: World
) -> None:
    resp = service_token(http, okta, world, "okta.users.read")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "okta.users.read" and "id_token" not in body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["iss"] == okta.org_url(world.org) and claims["aud"] == okta.org_url(world.org)
    assert claims["cid"] == world.service_id and claims["scp"] == ["okta.users.read"]
    users = http.get(
        okta.org_url(world.org) + "/api/v1/users", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert users.status_code == 200 and [u["id"] for u in users.json()] == [world.user_id]
    logs = http.get(
        okta.org_url(world.org) + "/api/v1/logs", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert logs.status_code == 403 and logs.json()["errorCode"] == "E0000006"
    assert 'error="insufficient_scope"' in logs.headers["WWW-Authenticate"]


def test_an_ec_key_works_too(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    app = okta.add_service_app(world.org, "ec", [public_jwk(key, "ec1")], ["okta.users.read"])
    w = World(world.org, "", "", "", "", app.client_id, key, "ec1")  # type: ignore[arg-type]
    assert service_token(http, okta, w, "okta.users.read").status_code == 200


@pytest.mark.parametrize(
    ("case", "error", "status"),
    [
        ("aud is the issuer, not the token endpoint", "invalid_client", 401),
        ("iss differs from sub", "invalid_client", 401),
        ("unknown kid", "invalid_client", 401),
        ("signed by another key", "invalid_client", 401),
        ("expired", "invalid_client", 401),
        ("exp more than an hour ahead", "invalid_client", 401),
        ("no exp", "invalid_client", 401),
        ("jti replayed", "invalid_client", 401),
        ("unknown client", "invalid_client", 401),
        ("wrong assertion type", "invalid_client", 401),
        ("HS256 signature", "invalid_client", 401),
        ("scope not granted", "invalid_scope", 400),
        ("unknown scope", "invalid_scope", 400),
        ("no scope", "invalid_scope", 400),
        ("custom authorization server", "invalid_scope", 400),
    ],
)
def test_each_private_key_jwt_refusal(
    okta: OktaEmulator, http: requests.Session, world: World, case: str, error: str, status: int
) -> None:
    token_url = okta.endpoint(world.org, "token")
    now = int(time.time())
    data = {"grant_type": "client_credentials", "scope": "okta.users.read", "client_assertion_type": ASSERTION_TYPE}
    if case.startswith("aud"):
        data["client_assertion"] = assertion(okta, world, aud=okta.issuer(world.org))
    elif case.startswith("iss"):
        data["client_assertion"] = assertion(okta, world, iss="0oaSomebodyElse12345")
    elif case == "unknown kid":
        data["client_assertion"] = assertion(okta, world, kid="k2")
    elif case == "signed by another key":
        data["client_assertion"] = assertion(
            okta, world, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
    elif case == "expired":
        data["client_assertion"] = assertion(okta, world, iat=now - 600, exp=now - 5)
    elif case.startswith("exp more"):
        data["client_assertion"] = assertion(okta, world, exp=now + 3600 + 120)
    elif case == "no exp":
        data["client_assertion"] = assertion(okta, world, exp=None)
    elif case == "jti replayed":
        data["client_assertion"] = assertion(okta, world, jti="once")
        assert http.post(token_url, data=data).status_code == 200
    elif case == "unknown client":
        data["client_assertion"] = assertion(okta, world, iss="0oaNobody00000000000", sub="0oaNobody00000000000")
    elif case == "wrong assertion type":
        data["client_assertion"] = assertion(okta, world)
        data["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    elif case == "HS256 signature":
        data["client_assertion"] = jwt.encode(
            {"iss": world.service_id, "sub": world.service_id, "aud": token_url, "exp": now + 60},
            "shared-secret-that-is-long-enough-for-hs256",
            algorithm="HS256",
            headers={"kid": world.kid},
        )
    elif case == "scope not granted":
        okta.grant_scope(world.org, world.service_id, "okta.logs.read", granted=False)
        data["scope"] = "okta.users.read okta.logs.read"
        data["client_assertion"] = assertion(okta, world)
    elif case == "unknown scope":
        data["scope"] = "okta.users.manage"
        data["client_assertion"] = assertion(okta, world)
    elif case == "no scope":
        del data["scope"]
        data["client_assertion"] = assertion(okta, world)
    elif case.startswith("custom"):
        token_url = okta.endpoint(world.org, "token", "default")
        data["client_assertion"] = assertion(okta, world, aud=token_url)
    resp = http.post(token_url, data=data)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error and resp.json()["error_description"]


def test_grant_type_and_client_kind_mismatches(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    token_url = okta.endpoint(world.org, "token")
    web = http.post(
        token_url,
        data={"grant_type": "client_credentials", "scope": "okta.users.read"},
        auth=(world.client_id, world.secret),
    )
    assert web.status_code == 400 and web.json()["error"] == "unauthorized_client"
    secret_for_service = http.post(
        token_url,
        data={"grant_type": "client_credentials", "scope": "okta.users.read"},
        auth=(world.service_id, "anything"),
    )
    assert secret_for_service.status_code == 401 and secret_for_service.json()["error"] == "invalid_client"
    code_grant = http.post(
        token_url,
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(okta, world),
        },
    )
    assert code_grant.status_code == 400 and code_grant.json()["error"] == "unauthorized_client"


# ------------------------------------------------------------------ Users API


def test_users_list_search_filter_and_pagination(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    headers = api_headers(http, okta, world)
    users_url = okta.org_url(world.org) + "/api/v1/users"
    ids = [world.user_id] + [okta.add_user(world.org, f"u{i}@{world.org}.example", PASSWORD).id for i in range(4)]
    pages: list[str] = []
    url: str | None = users_url + "?limit=2"
    while url:
        resp = http.get(url, headers=headers)
        assert resp.status_code == 200
        pages.extend(u["id"] for u in resp.json())
        assert len(resp.json()) <= 2
        assert resp.links["self"]["url"]
        url = resp.links.get("next", {}).get("url")
    assert sorted(pages) == sorted(ids) and len(pages) == 5
    user = http.get(f"{users_url}/{world.user_id}", headers=headers).json()
    assert set(user) >= {"id", "status", "created", "activated", "statusChanged", "lastUpdated", "profile"}
    assert set(user["profile"]) >= {"login", "email", "firstName", "lastName"}
    assert user["status"] == "ACTIVE" and user["lastUpdated"].endswith("Z")
    assert http.get(f"{users_url}/{world.login}", headers=headers).json()["id"] == world.user_id

    mark = okta.user(world.org, ids[-1])["lastUpdated"]
    okta.update_profile(world.org, ids[1], lastName="Changed")
    okta.deactivate(world.org, ids[2])
    found = http.get(users_url, params={"search": f'lastUpdated gt "{mark}"'}, headers=headers).json()
    assert sorted(u["id"] for u in found) == sorted([ids[1], ids[2]])
    assert {u["id"]: u["status"] for u in found}[ids[2]] == "DEPROVISIONED"
    # Without search or filter, DEPROVISIONED users are left out of the listing.
    assert ids[2] not in [u["id"] for u in http.get(users_url, headers=headers).json()]
    filtered = http.get(users_url, params={"filter": 'status eq "DEPROVISIONED"'}, headers=headers).json()
    assert [u["id"] for u in filtered] == [ids[2]]
    sorted_search = http.get(
        users_url,
        params={"search": 'status eq "ACTIVE"', "sortBy": "lastUpdated", "sortOrder": "desc", "limit": "1"},
        headers=headers,
    )
    assert sorted_search.json()[0]["id"] == ids[1] and "next" in sorted_search.links
    bad = http.get(users_url, params={"search": "lastUpdated gt"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["errorCode"] == "E0000031"
    bad_filter = http.get(users_url, params={"filter": 'profile.mobilePhone eq "1"'}, headers=headers)
    assert bad_filter.status_code == 400
    assert http.get(users_url).status_code == 401
    assert http.get(users_url, headers={"Authorization": "Bearer x.y.z"}).json()["errorCode"] == "E0000011"


def test_lifecycle_statuses_and_last_updated(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    org, uid = world.org, world.user_id
    first = okta.user(org, uid)
    okta.update_profile(org, uid, firstName="Anne")
    profile_changed = okta.user(org, uid)
    assert profile_changed["lastUpdated"] > first["lastUpdated"]
    assert profile_changed["statusChanged"] == first["statusChanged"]
    suspended = okta.suspend(org, uid)
    assert (
        suspended.status == "SUSPENDED" and okta.user(org, uid)["statusChanged"] == okta.user(org, uid)["lastUpdated"]
    )
    with pytest.raises(ValueError, match="not active"):
        okta.suspend(org, uid)
    assert okta.unsuspend(org, uid).status == "ACTIVE"
    staged = okta.add_user(org, f"st@{org}.example", status="STAGED")
    assert okta.user(org, staged.id)["activated"] is None
    assert okta.activate(org, staged.id).status == "PROVISIONED"
    assert okta.lock_out(org, uid).status == "LOCKED_OUT"
    assert okta.unlock(org, uid).status == "ACTIVE"
    assert okta.expire_password(org, uid).status == "PASSWORD_EXPIRED"
    assert okta.reset_password(org, uid).status == "RECOVERY"
    # Delete: the first DELETE of a user not yet deactivated deactivates it; the second deletes it.
    still = okta.delete_user(org, uid)
    assert still is not None and still.status == "DEPROVISIONED"
    assert okta.delete_user(org, uid) is None
    headers = api_headers(http, okta, world)
    gone = http.get(f"{okta.org_url(org)}/api/v1/users/{uid}", headers=headers)
    assert gone.status_code == 404 and gone.json()["errorCode"] == "E0000007"
    everyone = http.get(f"{okta.org_url(org)}/api/v1/users", params={"search": "status pr"}, headers=headers).json()
    assert uid not in [u["id"] for u in everyone]


# ------------------------------------------------------------------ System Log


def test_system_log_events_paging_and_polling(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    headers = api_headers(http, okta, world)
    logs_url = okta.org_url(world.org) + "/api/v1/logs"
    start = okta.directory.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    users = [okta.add_user(world.org, f"l{i}@{world.org}.example", PASSWORD).id for i in range(3)]
    okta.deactivate(world.org, users[0])
    okta.suspend(world.org, users[1])
    okta.delete_user(world.org, users[0])
    lifecycle = 'eventType sw "user.lifecycle.d" or eventType eq "user.lifecycle.suspend"'
    first = http.get(logs_url, params={"since": start, "filter": lifecycle, "limit": "2"}, headers=headers)
    assert first.status_code == 200
    events = first.json()
    assert [e["eventType"] for e in events] == ["user.lifecycle.deactivate", "user.lifecycle.suspend"]
    assert events[0]["target"][0]["id"] == users[0] and events[0]["target"][0]["type"] == "User"
    assert {"uuid", "published", "actor", "outcome", "displayMessage", "severity"} <= set(events[0])
    second = http.get(first.links["next"]["url"], headers=headers)
    assert [e["eventType"] for e in second.json()] == [
        "user.lifecycle.delete.initiated",
        "user.lifecycle.delete.completed",
    ]
    # Polling (no until): an empty page still links to where the next poll continues.
    third = http.get(second.links["next"]["url"], headers=headers)
    assert third.json() == [] and "next" in third.links
    okta.unsuspend(world.org, users[1])
    okta.suspend(world.org, users[1])
    fourth = http.get(third.links["next"]["url"], headers=headers)
    assert [e["eventType"] for e in fourth.json()] == ["user.lifecycle.suspend"]
    # Bounded (until given): no next link once the range is read.
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    bounded = http.get(
        logs_url, params={"since": start, "until": until, "filter": 'target.id eq "' + users[0] + '"'}, headers=headers
    )
    assert [e["eventType"] for e in bounded.json()] == [
        "user.lifecycle.create",
        "user.lifecycle.activate",
        "user.lifecycle.deactivate",
        "user.lifecycle.delete.initiated",
        "user.lifecycle.delete.completed",
    ]
    assert "next" not in bounded.links
    assert http.get(logs_url, params={"since": "yesterday"}, headers=headers).status_code == 400


def test_advancing_time_moves_timestamps(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    before = okta.user(world.org, world.user_id)["lastUpdated"]
    okta.advance_time(3 * 86400)
    after = okta.suspend(world.org, world.user_id)
    assert (after.last_updated - dt.datetime.fromisoformat(before.replace("Z", "+00:00"))) >= dt.timedelta(days=3)
    assert service_token(http, okta, world).status_code == 200  # assertions keep real time


# ------------------------------------------------------------------ rate limits and faults


def test_rate_limit_headers_on_every_answer_and_429(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    headers = api_headers(http, okta, world)
    users_url = okta.org_url(world.org) + "/api/v1/users"
    for resp in (
        http.get(users_url, headers=headers),
        http.get(okta.discovery_url(world.org)),
        http.get(users_url + "/nobody", headers=headers),
    ):
        assert {"X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Reset"} <= set(resp.headers)
        assert int(resp.headers["X-Rate-Limit-Reset"]) > time.time() - 1
    okta.set_rate_limit("logs", 2)
    try:
        logs_url = okta.org_url(world.org) + "/api/v1/logs"
        answers = [http.get(logs_url, headers=headers) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert [a.headers["X-Rate-Limit-Remaining"] for a in answers] == ["1", "0", "0"]
        assert answers[2].json()["errorCode"] == "E0000047"
        assert answers[2].json()["errorSummary"] == "API call exceeded rate limit due to too many requests."
        assert http.get(users_url, headers=headers).status_code == 200  # another bucket
    finally:
        okta.set_rate_limit("logs", 120)


def test_injected_faults(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    headers = api_headers(http, okta, world)
    users_url = okta.org_url(world.org) + "/api/v1/users"
    okta.inject_fault("rate_limit", reset_in=45, path_contains="/api/v1/users", org=world.org)
    limited = http.get(users_url, headers=headers)
    assert limited.status_code == 429 and limited.json()["errorCode"] == "E0000047"
    assert limited.headers["X-Rate-Limit-Remaining"] == "0"
    assert int(limited.headers["X-Rate-Limit-Reset"]) >= int(time.time()) + 40
    assert http.get(users_url, headers=headers).status_code == 200
    okta.inject_fault("server_error", count=2, status=503, path_contains="/v1/token")
    assert [service_token(http, okta, world).status_code for _ in range(3)] == [503, 503, 200]
    okta.inject_fault("slow", delay_ms=300, path_contains="/api/v1/users")
    started = time.monotonic()
    assert http.get(users_url, headers=headers).status_code == 200
    assert time.monotonic() - started >= 0.3
    with pytest.raises(ValueError):
        okta.inject_fault("server_error", status=404)


# ------------------------------------------------------------------ controls and process


def test_http_control_api(okta: OktaEmulator, http: requests.Session) -> None:
    ctl = okta.url + "/_emulator"
    org = "c" + secrets.token_hex(4)
    assert http.post(f"{ctl}/orgs", json={"name": org}).json()["issuer"] == okta.issuer(org)
    app = http.post(f"{ctl}/orgs/{org}/web-apps", json={"label": "x", "redirect_uris": [REDIRECT]}).json()
    assert app["client_id"].startswith("0oa") and app["client_secret"]
    user = http.post(f"{ctl}/orgs/{org}/users", json={"login": f"a@{org}.example", "password": PASSWORD}).json()
    assert user["status"] == "ACTIVE"
    assert http.post(f"{ctl}/orgs/{org}/users/{user['id']}/deactivate").json()["status"] == "DEPROVISIONED"
    assert http.delete(f"{ctl}/orgs/{org}/users/{user['id']}").json() == {"deleted": True, "status": None}
    refused = http.post(f"{ctl}/orgs/{org}/users/{user['id']}/suspend")
    assert refused.status_code == 404
    assert http.post(f"{ctl}/orgs", json={"name": "Bad/Name"}).status_code == 400
    assert http.post(f"{ctl}/orgs/nope/users", json={"login": "x"}).status_code == 404
    assert http.post(f"{ctl}/faults", json={"kind": "explode"}).status_code == 400
    state = http.get(f"{ctl}/state").json()
    assert org in [o["name"] for o in state["orgs"]]
    assert "client_secret" not in json.dumps(state)


def test_runs_as_a_process_with_a_seed(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    seed = {
        "orgs": [
            {
                "name": "seeded",
                "web_apps": [
                    {
                        "label": "Demo",
                        "redirect_uris": [REDIRECT],
                        "client_id": "0oaSeededWebApp00001",
                        "client_secret": "s" * 40,
                    }
                ],
                "service_apps": [
                    {
                        "label": "sync",
                        "jwks": [public_jwk(key, "k1")],
                        "scopes": ["okta.users.read"],
                        "client_id": "0oaSeededService0001",
                    }
                ],
                "users": [{"login": "sam@seeded.example", "password": PASSWORD}],
            }
        ]
    }
    seed_file = tmp_path / "seed.json"
    seed_file.write_text(json.dumps(seed))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devenv.okta_emulator",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "st"),
            "--seed",
            str(seed_file),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        (org,) = info["orgs"]
        assert org["issuer"] == info["url"] + "/seeded" and list(org["users"]) == ["sam@seeded.example"]
        token_url = info["url"] + "/seeded/oauth2/v1/token"
        now = int(time.time())
        signed = jwt.encode(
            {
                "iss": "0oaSeededService0001",
                "sub": "0oaSeededService0001",
                "aud": token_url,
                "exp": now + 60,
                "jti": "1",
            },
            key,
            algorithm="RS256",
            headers={"kid": "k1"},
        )
        with requests.Session() as s:
            s.trust_env = False
            s.verify = info["ca_bundle"]
            resp = s.post(
                token_url,
                data={
                    "grant_type": "client_credentials",
                    "scope": "okta.users.read",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": signed,
                },
            )
            assert resp.status_code == 200, resp.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    bad = subprocess.run(
        [sys.executable, "-m", "devenv.okta_emulator", "--port", "0", "--seed", str(tmp_path / "missing.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot apply seed") and bad.stderr.count("\n") == 1


# ------------------------------------------------------------------ Keycloak's OIDC broker


def _admin(keycloak: KeycloakServer) -> requests.Session:
    token = requests.post(
        f"{keycloak.url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": keycloak.admin_username,
            "password": keycloak.admin_password,
        },
        timeout=30,
    )
    token.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return session


def test_keycloaks_oidc_broker_signs_a_user_in_against_it(
    keycloak: KeycloakServer, emulator: EntraEmulator, tmp_path: Path
) -> None:
    """Plain Keycloak config, a throwaway realm: an OIDC identity provider pointing at an Okta
    org authorization server, issuer checked exactly, signature checked against its JWKS."""
    realm = "okta-" + secrets.token_hex(4)
    # The session Keycloak trusts the Entra emulator's CA; this emulator shares it.
    with OktaEmulator(state_dir=tmp_path / "okta", ca_from=emulator.state_dir) as okta:
        org = "acme"
        okta.add_org(org)
        redirect = f"{keycloak.url}/realms/{realm}/broker/okta/endpoint"
        app, secret = okta.add_web_app(org, "Keycloak", [redirect])
        user = okta.add_user(org, "ann@acme.example", PASSWORD, first_name="Ann", last_name="Example")
        admin = _admin(keycloak)
        base = f"{keycloak.url}/admin/realms"
        assert admin.post(base, json={"realm": realm, "enabled": True}).status_code == 201
        try:
            created = admin.post(
                f"{base}/{realm}/clients",
                json={
                    "clientId": "apsis-one",
                    "publicClient": True,
                    "standardFlowEnabled": True,
                    "redirectUris": ["http://127.0.0.1:9/callback"],
                    "attributes": {"pkce.code.challenge.method": "S256"},
                },
            )
            assert created.status_code == 201, created.text
            config = http_get_json(okta, okta.discovery_url(org))
            idp_config = {
                "issuer": config["issuer"],
                "authorizationUrl": config["authorization_endpoint"],
                "tokenUrl": config["token_endpoint"],
                "userInfoUrl": config["userinfo_endpoint"],
                "jwksUrl": config["jwks_uri"],
                "useJwksUrl": "true",
                "validateSignature": "true",
                "clientId": app.client_id,
                "clientSecret": secret,
                "clientAuthMethod": "client_secret_post",
                "defaultScope": "openid email profile",
                "pkceEnabled": "true",
                "pkceMethod": "S256",
                "syncMode": "IMPORT",
            }
            idp = admin.post(
                f"{base}/{realm}/identity-provider/instances",
                json={"alias": "okta", "providerId": "oidc", "enabled": True, "config": idp_config},
            )
            assert idp.status_code == 201, idp.text
            browser = Browser(keycloak.url, realm, ca_bundle=str(okta.ca_bundle))
            result = browser.login_page("ann@acme.example", PASSWORD, kc_idp_hint="okta")
            assert result.ok, (result.status, result.text[:500])
            assert result.id_claims["email"] == "ann@acme.example"
            (kc_user,) = admin.get(f"{base}/{realm}/users", params={"email": "ann@acme.example"}).json()
            links = admin.get(f"{base}/{realm}/users/{kc_user['id']}/federated-identity").json()
            assert [(link["identityProvider"], link["userId"]) for link in links] == [("okta", user.id)]
            assert kc_user["firstName"] == "Ann" and kc_user["lastName"] == "Example"
            # What Keycloak asked for: the org server's token endpoint once, with Okta's answers.
            token_calls = [r for r in okta.requests_log if r["path"].endswith("/oauth2/v1/token")]
            assert [r["status"] for r in token_calls] == [200]

            # The same endpoints but the custom server's issuer configured: the org server's ID
            # token names another issuer, and Keycloak refuses it.
            okta.add_web_app(
                org,
                "Keycloak 2",
                [redirect.replace("/okta/", "/okta-wrong/")],
                client_id="0oaWrongIssuer000001",
                client_secret="w" * 40,
            )
            wrong = admin.post(
                f"{base}/{realm}/identity-provider/instances",
                json={
                    "alias": "okta-wrong",
                    "providerId": "oidc",
                    "enabled": True,
                    "config": {
                        **idp_config,
                        "issuer": okta.issuer(org, "default"),
                        "clientId": "0oaWrongIssuer000001",
                        "clientSecret": "w" * 40,
                    },
                },
            )
            assert wrong.status_code == 201, wrong.text
            refused = Browser(keycloak.url, realm, ca_bundle=str(okta.ca_bundle)).login_page(
                "ann@acme.example", PASSWORD, kc_idp_hint="okta-wrong"
            )
            assert not refused.ok and refused.code is None
            # Okta answered the code exchange: the refusal is Keycloak's issuer check.
            token_calls = [r for r in okta.requests_log if r["path"].endswith("/oauth2/v1/token")]
            assert [r["status"] for r in token_calls] == [200, 200]
            assert (
                admin.get(f"{base}/{realm}/users", params={"email": "ann@acme.example"}).json()[0]["id"]
                == kc_user["id"]
            )
            assert len(admin.get(f"{base}/{realm}/users/{kc_user['id']}/federated-identity").json()) == 1
        finally:
            admin.delete(f"{base}/{realm}")


def http_get_json(okta: OktaEmulator, url: str) -> dict[str, Any]:
    with requests.Session() as s:
        s.trust_env = False
        resp = s.get(url, verify=str(okta.ca_bundle), timeout=30)
        resp.raise_for_status()
        doc: dict[str, Any] = resp.json()
        return doc


def test_authorize_query_encoding_roundtrip(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    """Hidden form fields carry every authorize parameter back, however it is encoded."""
    state = "a b&c=d/é"
    params = {
        "client_id": world.client_id,
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": REDIRECT,
        "state": state,
    }
    page = http.get(okta.endpoint(world.org, "authorize") + "?" + urlencode(params))
    (form,) = forms(page.text)
    resp = http.post(
        okta.endpoint(world.org, "authorize"),
        data={**form.fields, "username": world.login, "password": PASSWORD},
        allow_redirects=False,
    )
    assert parse_qs(urlsplit(resp.headers["Location"]).query)["state"] == [state]


def test_logout_checks_the_id_token_hint_and_the_registered_redirect(
    okta: OktaEmulator, http: requests.Session, world: World
) -> None:
    app, secret = okta.add_web_app(world.org, "with logout", [REDIRECT], post_logout_redirect_uris=[REDIRECT + "/out"])
    w = World(world.org, app.client_id, secret, world.user_id, world.login, "", world.service_key, "")
    code = code_of(sign_in(http, okta, w, w.login))
    tokens = http.post(
        okta.endpoint(w.org, "token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(app.client_id, secret),
    ).json()
    logout_url = okta.endpoint(w.org, "logout")
    hint = tokens["id_token"]
    out = http.get(
        logout_url,
        params={"id_token_hint": hint, "post_logout_redirect_uri": REDIRECT + "/out", "state": "s1"},
        allow_redirects=False,
    )
    assert out.status_code == 302 and out.headers["Location"] == REDIRECT + "/out?state=s1"
    unregistered = http.get(logout_url, params={"id_token_hint": hint, "post_logout_redirect_uri": REDIRECT})
    assert unregistered.status_code == 400 and "Logout redirect URI" in unregistered.text
    other_server = http.get(okta.endpoint(w.org, "logout", "default"), params={"id_token_hint": hint})
    assert other_server.status_code == 400
    assert http.get(logout_url, params={"id_token_hint": "x.y.z"}).status_code == 400
    assert http.get(logout_url, params={"id_token_hint": hint}).status_code == 200


def test_email_verified_and_app_assignment_controls(okta: OktaEmulator, http: requests.Session, world: World) -> None:
    okta.set_email_verified(world.org, world.user_id, False)
    code = code_of(sign_in(http, okta, world, world.login))
    tokens = http.post(
        okta.endpoint(world.org, "token"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=(world.client_id, world.secret),
    ).json()
    assert jwt.decode(tokens["id_token"], options={"verify_signature": False})["email_verified"] is False
    # A custom server's access token is no key to the management APIs.
    custom = http.post(
        okta.endpoint(world.org, "token", "default"),
        data={
            "grant_type": "authorization_code",
            "code": code_of(sign_in(http, okta, world, world.login, server="default")),
            "redirect_uri": REDIRECT,
        },
        auth=(world.client_id, world.secret),
    ).json()
    users_url = okta.org_url(world.org) + "/api/v1/users"
    assert http.get(users_url, headers={"Authorization": f"Bearer {custom['access_token']}"}).status_code == 401
    other = okta.add_user(world.org, f"bo@{world.org}.example", PASSWORD)
    ctl = f"{okta.url}/_emulator/orgs/{world.org}/web-apps/{world.client_id}/assignments"
    assert http.post(ctl, json={"user_ids": [other.id]}).json() == {"everyone": False, "user_ids": [other.id]}
    denied = sign_in(http, okta, world, world.login)
    query = parse_qs(urlsplit(denied.headers["Location"]).query)
    assert query["error"] == ["access_denied"] and query["state"] == ["st-1"]
    assert "code" in parse_qs(urlsplit(sign_in(http, okta, world, other.profile["login"]).headers["Location"]).query)
    okta.assign(world.org, world.client_id, None)
    code_of(sign_in(http, okta, world, world.login))
