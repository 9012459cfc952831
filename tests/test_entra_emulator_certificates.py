"""Certificate credentials in the Entra emulator, as Microsoft documents them
(https://learn.microsoft.com/entra/identity-platform/certificate-credentials): an uploaded public
certificate authenticates client assertions naming it by thumbprint, Graph lists it in
``keyCredentials``, and every documented fault gets Entra's AADSTS code."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from apsis_core import certificates
from devenv.entra_emulator import EntraEmulator
from tests.test_entra_emulator import GRAPH_SCOPE, REDIRECT, assert_aad_error, graph_get, trusting_session

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def em() -> Iterator[EntraEmulator]:
    with EntraEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def http(em: EntraEmulator) -> Iterator[requests.Session]:
    with trusting_session(em.ca_bundle) as session:
        yield session


@pytest.fixture(scope="module")
def pair() -> certificates.KeyPair:
    return certificates.generate("apsis-sso client assertions")


@pytest.fixture(scope="module")
def stranger() -> certificates.KeyPair:
    return certificates.generate("someone else")


@dataclass
class App:
    tid: str
    app_id: str


@pytest.fixture
def app(em: EntraEmulator, pair: certificates.KeyPair) -> App:
    tenant = em.add_tenant([f"c{secrets.token_hex(4)}.example"])
    registration = em.add_application(tenant.tenant_id, "APSIS SSO", [REDIRECT])
    em.upload_certificate(tenant.tenant_id, registration.app_id, pair.certificate.pem)
    return App(tenant.tenant_id, registration.app_id)


def assertion(
    em: EntraEmulator,
    a: App,
    pair: certificates.KeyPair,
    *,
    alg: str = "RS256",
    header: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {
        "aud": em.token_endpoint(a.tid),
        "iss": a.app_id,
        "sub": a.app_id,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    key = serialization.load_pem_private_key(pair.pem, password=None)
    headers = {"typ": "JWT", "x5t": pair.certificate.x5t} if header is None else header
    return jwt.encode(body, key, algorithm=alg, headers=headers)  # type: ignore[arg-type]


def client_credentials(http: requests.Session, em: EntraEmulator, a: App, signed: str) -> requests.Response:
    return http.post(
        em.token_endpoint(a.tid),
        data={
            "grant_type": "client_credentials",
            "client_id": a.app_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
            "scope": GRAPH_SCOPE,
        },
    )


def test_an_uploaded_certificate_authenticates_rs256_with_x5t_and_ps256_with_x5t_s256(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    resp = client_credentials(http, em, app, assertion(em, app, pair))
    assert resp.status_code == 200, resp.text
    claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
    assert claims["appid"] == app.app_id and claims["tid"] == app.tid

    s256 = {"typ": "JWT", "x5t#S256": pair.certificate.x5t_s256}
    resp = client_credentials(http, em, app, assertion(em, app, pair, alg="PS256", header=s256))
    assert resp.status_code == 200, resp.text

    # MSAL (azure-identity's CertificateCredential) pads its x5t#S256; Entra takes it.
    padded = {"typ": "JWT", "x5t#S256": pair.certificate.x5t_s256 + "=" * (-len(pair.certificate.x5t_s256) % 4)}
    resp = client_credentials(http, em, app, assertion(em, app, pair, alg="PS256", header=padded))
    assert resp.status_code == 200, resp.text

    (received, *_) = em.received_client_assertions(app.app_id)
    assert received.header == {"alg": "RS256", "typ": "JWT", "x5t": pair.certificate.x5t}
    assert received.claims["iss"] == app.app_id and "signature" not in received.claims


def test_microsoft_documents_no_replay_check_and_no_cap_on_exp(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    signed = assertion(em, app, pair, exp=int(time.time()) + 30 * 86400)
    assert client_credentials(http, em, app, signed).status_code == 200
    assert client_credentials(http, em, app, signed).status_code == 200


def test_an_unknown_thumbprint_is_aadsts700027_not_registered(
    em: EntraEmulator, http: requests.Session, app: App, stranger: certificates.KeyPair
) -> None:
    body = assert_aad_error(
        client_credentials(http, em, app, assertion(em, app, stranger)), 401, "invalid_client", 700027
    )
    assert "not registered on application" in body["error_description"]
    assert stranger.certificate.sha1_thumbprint in body["error_description"]


def test_an_expired_certificate_is_aadsts700027_expired(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    em.expire_certificate(app.tid, app.app_id, pair.certificate.sha1_thumbprint)
    body = assert_aad_error(client_credentials(http, em, app, assertion(em, app, pair)), 401, "invalid_client", 700027)
    assert "is expired on application" in body["error_description"]


def test_a_removed_certificate_no_longer_authenticates(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    em.remove_certificate(app.tid, app.app_id, pair.certificate.sha1_thumbprint)
    assert_aad_error(client_credentials(http, em, app, assertion(em, app, pair)), 401, "invalid_client", 700027)


def test_a_signature_by_another_key_is_aadsts700027(
    em: EntraEmulator,
    http: requests.Session,
    app: App,
    pair: certificates.KeyPair,
    stranger: certificates.KeyPair,
) -> None:
    # The header names the uploaded certificate, the signature is another key's.
    forged = assertion(em, app, stranger, header={"typ": "JWT", "x5t": pair.certificate.x5t})
    body = assert_aad_error(client_credentials(http, em, app, forged), 401, "invalid_client", 700027)
    assert "failed signature validation" in body["error_description"]


def test_a_wrong_audience_is_aadsts700023(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    for aud in (
        f"{em.url}/{uuid.uuid4()}/oauth2/v2.0/token",
        f"{em.url}/{app.tid}/oauth2/token",
        "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    ):
        signed = assertion(em, app, pair, aud=aud)
        assert_aad_error(client_credentials(http, em, app, signed), 401, "invalid_client", 700023)


def test_iss_or_sub_other_than_the_client_id_is_aadsts700021(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    other = str(uuid.uuid4())
    for claims in ({"iss": other}, {"sub": other}, {"iss": other, "sub": other}):
        signed = assertion(em, app, pair, **claims)
        assert_aad_error(client_credentials(http, em, app, signed), 401, "invalid_client", 700021)


def test_outside_its_time_window_is_aadsts700024(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    now = int(time.time())
    expired = assertion(em, app, pair, iat=now - 3600, nbf=now - 3600, exp=now - 1800)
    body = assert_aad_error(client_credentials(http, em, app, expired), 401, "invalid_client", 700024)
    assert "not within its valid time range" in body["error_description"]
    early = assertion(em, app, pair, nbf=now + 3600, exp=now + 7200)
    assert_aad_error(client_credentials(http, em, app, early), 401, "invalid_client", 700024)


def test_graph_lists_key_credentials_with_the_thumbprint_and_the_key_only_on_select(
    em: EntraEmulator, http: requests.Session, app: App, pair: certificates.KeyPair
) -> None:
    em.grant_application_permission(app.tid, app.app_id, "Application.Read.All")
    resp = client_credentials(http, em, app, assertion(em, app, pair))
    token = resp.json()["access_token"]
    url = f"{em.graph_base_url}/applications(appId='{app.app_id}')"
    (cred,) = graph_get(http, url, token).json()["keyCredentials"]
    assert cred["customKeyIdentifier"] == pair.certificate.sha1_thumbprint
    assert cred["type"] == "AsymmetricX509Cert" and cred["usage"] == "Verify"
    assert cred["key"] is None
    assert cred["displayName"] == "CN=apsis-sso client assertions"
    assert dt.datetime.fromisoformat(cred["endDateTime"]) == pair.certificate.not_after.replace(microsecond=0)
    (selected,) = graph_get(http, url, token, params={"$select": "keyCredentials"}).json()["keyCredentials"]
    assert certificates.parse_public(base64.b64decode(selected["key"])) == pair.certificate


def test_uploading_a_private_key_or_garbage_is_refused(em: EntraEmulator, app: App, pair: certificates.KeyPair) -> None:
    with pytest.raises(ValueError, match="public certificate only"):
        em.upload_certificate(app.tid, app.app_id, pair.pem)
    with pytest.raises(ValueError, match="not an X.509 certificate"):
        em.upload_certificate(app.tid, app.app_id, b"hello")


def test_certificates_through_the_http_controls(
    em: EntraEmulator, http: requests.Session, stranger: certificates.KeyPair
) -> None:
    api = f"{em.url}/_emulator"
    tid = http.post(f"{api}/tenants", json={"domains": [f"h{secrets.token_hex(3)}.example"]}).json()["tenant_id"]
    app_id = http.post(f"{api}/tenants/{tid}/applications", json={"display_name": "Via HTTP"}).json()["app_id"]
    base = f"{api}/tenants/{tid}/applications/{app_id}/certificates"
    made = http.post(base, json={"certificate": stranger.certificate.pem})
    assert made.status_code == 201, made.text
    assert made.json()["thumbprint"] == stranger.certificate.sha1_thumbprint
    assert made.json()["thumbprint_sha256"] == stranger.certificate.sha256_thumbprint
    expired = http.post(f"{base}/{made.json()['key_id']}/expire").json()
    assert expired["key_credentials"][0]["expired"] is True
    removed = http.delete(f"{base}/{stranger.certificate.sha1_thumbprint}").json()
    assert removed["key_credentials"] == []
