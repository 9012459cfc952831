"""The provider interface: Entra's answers are today's, Okta's are built to Okta's documentation."""

from __future__ import annotations

from typing import Any

import pytest

from apsis_core import contract
from apsis_core.account import Account, AccountRecord
from apsis_core.errors import InvalidInput
from apsis_core.providers import kind_of, okta, provider_for
from apsis_core.settings import Settings
from provisioning.render import render

pytestmark = pytest.mark.unit

TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def _settings() -> Settings:
    return Settings(_env_file=None, keycloak_client_secret="tooling-secret")  # type: ignore[call-arg]


def _account(**kw: Any) -> Account:
    base: dict[str, Any] = {
        "id": "acme",
        "name": "Acme",
        "domains": ["acme.example"],
        "it_contact_name": "Ivy",
        "it_contact_email": "ivy@acme.example",
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "secret_expires": "2999-01-01",
        "client_secret": "s3cret-value-long-enough",
    }
    return Account.build(**(base | kw))


def test_an_account_without_a_provider_is_entra_and_renders_as_before():
    entra = render(_account(), _settings())
    assert "apsis.provider" not in entra.organization["attributes"]
    assert entra.identity_provider["config"]["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert [m["identityProviderMapper"] for m in entra.mappers] == [contract.OID_MAPPER]
    org = {**entra.organization, "id": "o1"}
    assert AccountRecord.parse(org, entra.identity_provider).provider == "entra"


@pytest.mark.parametrize(
    ("issuer", "authorize"),
    [
        ("https://acme.okta.com", "https://acme.okta.com/oauth2/v1/authorize"),
        ("https://acme.okta.com/oauth2/default/", "https://acme.okta.com/oauth2/default/v1/authorize"),
        ("https://acme.okta.com/oauth2/aus1a2b3c", "https://acme.okta.com/oauth2/aus1a2b3c/v1/authorize"),
    ],
)
def test_an_okta_account_binds_its_issuer_exactly_and_uses_its_servers_endpoints(issuer: str, authorize: str):
    account = _account(provider="okta", tenant_id=issuer, client_id="0oa1b2c3d4e5f6g7h8i9")
    rendered = render(account, _settings())
    config = rendered.identity_provider["config"]
    assert config["issuer"] == issuer.rstrip("/") and config["validateIssuer"] == "true"
    assert config["authorizationUrl"] == authorize
    assert config["jwksUrl"] == authorize.replace("/authorize", "/keys")
    assert config[contract.PROVIDER_KEY] == "okta"
    assert [(m["identityProviderMapper"], m["config"]["issuer"]) for m in rendered.mappers] == [
        (contract.OKTA_ISSUER_MAPPER, issuer.rstrip("/"))
    ]
    record = AccountRecord.parse({**rendered.organization, "id": "o1"}, rendered.identity_provider)
    assert (record.provider, record.tenant_id) == ("okta", issuer.rstrip("/"))
    assert record.settings() == account


@pytest.mark.parametrize(
    "bad", ["http://acme.okta.com", "acme.okta.com", "https://acme.okta.com?x=1", "https://u@acme.okta.com"]
)
def test_an_okta_issuer_must_be_a_plain_https_url(bad: str):
    with pytest.raises(InvalidInput, match="invalid Okta issuer"):
        okta.issuer(bad)


def test_okta_client_ids_are_not_guids_and_entra_ones_are():
    assert provider_for("okta").client_id(" 0oa1b2c3 ") == "0oa1b2c3"
    with pytest.raises(InvalidInput, match="Okta app's Client ID"):
        provider_for("okta").client_id("0oa 1")
    with pytest.raises(InvalidInput, match="GUID"):
        provider_for("entra").client_id("0oa1b2c3")


def test_provider_kinds():
    assert (kind_of(None), kind_of(""), kind_of(" OKTA ")) == ("entra", "entra", "okta")
    with pytest.raises(InvalidInput, match="invalid provider 'google': expected one of entra, okta"):
        kind_of("google")
    assert AccountRecord.parse({"alias": "a", "id": "o", "attributes": {"apsis.provider": ["okta"]}}).provider == "okta"


def test_each_provider_says_where_its_setup_steps_put_the_redirect_uri():
    uri = "https://sso.example/realms/apsis/broker/entra-acme/endpoint"
    for kind in contract.PROVIDER_KINDS:
        assert any(
            uri in step.detail for step in provider_for(kind, "https://login.microsoftonline.com").setup_steps(uri)
        )
