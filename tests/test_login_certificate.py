"""SSO through an identity provider that authenticates to Entra with a certificate
(``private_key_jwt``, X.509 headers): the real Keycloak signs the client assertion with the
realm's assertion key and the emulator checks it as Entra does."""

from __future__ import annotations

import json
import time

from devenv.accounts import PASSWORD, AccountFactory, user_count
from tests.certificate_fixtures import AssertionKey
from tests.login_checks import linked_idp_user_ids


def test_first_and_returning_login_through_a_certificate_authenticated_idp(
    cert_accounts: AccountFactory, api, browser, emulator, assertion_key: AssertionKey
):
    acct = cert_accounts.create(certificate=True)
    idp = api.identity_provider(acct.alias)
    assert idp is not None
    assert idp["config"]["clientAuthMethod"] == "private_key_jwt"
    assert idp["config"]["clientAssertionSigningAlg"] == "PS256"
    assert idp["config"]["jwtX509HeadersEnabled"] == "true"
    assert "clientSecret" not in idp["config"]
    email, user_id = acct.person("carol")
    before = user_count(api)

    first = browser().sso_login(email, PASSWORD, acct.alias)
    assert first.ok, first.text[:500]
    assert first.id_claims["sub"] == user_id
    assert linked_idp_user_ids(api, user_id, acct.alias) == [emulator.find_user(acct.tenant_id, email).oid]
    again = browser().sso_login(email, PASSWORD, acct.alias)
    assert again.ok and again.id_claims["sub"] == user_id
    assert user_count(api) == before

    # What Keycloak 26.7.3 really sends (keycloak#20366): the x5t (SHA-1) of the assertion
    # key's certificate, the PS256 key chosen by clientAssertionSigningAlg; iss = sub = client id,
    # aud = the token endpoint, a fresh jti each time, exp = iat + the realm's access code lifespan.
    proof, *sent = emulator.received_client_assertions(acct.app_id)  # the first: create's proof
    assert "x5t#S256" in proof.header  # azure-identity (MSAL): PS256 with x5t#S256
    assert len(sent) == 2
    header, claims = sent[-1].header, sent[-1].claims
    assert header["alg"] == "PS256" and header["typ"] == "JWT"
    assert header["x5t"] == assertion_key.pair.certificate.x5t
    assert "x5t#S256" not in header and "x5c" not in header
    assert claims["iss"] == claims["sub"] == acct.app_id
    assert claims["aud"] == emulator.token_endpoint(acct.tenant_id)
    assert sent[0].claims["jti"] != claims["jti"]
    assert claims["iat"] <= time.time() < claims["exp"]
    print("captured client assertion:", json.dumps({"header": header, "claims": claims}, sort_keys=True))


def test_a_certificate_removed_from_the_app_stops_the_login_and_creates_nothing(
    cert_accounts: AccountFactory, api, browser, emulator, assertion_key: AssertionKey
):
    acct = cert_accounts.create(certificate=True)
    email, user_id = acct.person("dave")
    emulator.remove_certificate(acct.tenant_id, acct.app_id, assertion_key.pair.certificate.sha1_thumbprint)
    before = user_count(api)
    refused = browser().sso_login(email, PASSWORD, acct.alias)
    assert not refused.ok
    assert linked_idp_user_ids(api, user_id, acct.alias) == []
    assert user_count(api) == before
