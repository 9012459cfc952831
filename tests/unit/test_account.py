"""The account model: one parse of an organization (+ IdP), used by CLI, daemon and status."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from apsis_core import contract
from apsis_core.account import Account, AccountRecord, ItContact, parse_stage
from apsis_core.errors import InvalidInput

pytestmark = pytest.mark.unit


def org(**attributes: list[str]) -> dict[str, Any]:
    base = {
        contract.MANAGED_BY_KEY: [contract.MANAGED_BY],
        contract.STAGE_KEY: ["live"],
        contract.TENANT_ID_KEY: ["11111111-1111-1111-1111-111111111111"],
        contract.CLIENT_ID_KEY: ["22222222-2222-2222-2222-222222222222"],
        contract.SECRET_EXPIRES_KEY: ["2030-01-31"],
        contract.SECRET_HINT_KEY: ["abc"],
        contract.IT_CONTACT_NAME_KEY: ["Ivy"],
        contract.IT_CONTACT_EMAIL_KEY: ["ivy@acme.example"],
        contract.PILOT_KEY: ["ann@acme.example"],
    }
    base.update(attributes)
    return {
        "id": "org-1",
        "alias": "acme",
        "name": "Acme AB",
        "attributes": {k: v for k, v in base.items() if v},
        "domains": [{"name": "Acme.Example", "verified": True}],
    }


def idp(**changes: Any) -> dict[str, Any]:
    config = {
        contract.MAPPERS_HASH_KEY: "h",
        contract.ORG_DOMAIN_KEY: contract.ANY_DOMAIN,
        contract.REDIRECT_WHEN_EMAIL_MATCHES_KEY: "true",
        "clientId": "33333333-3333-3333-3333-333333333333",
    }
    return {"alias": "entra-acme", "enabled": True, "organizationId": "org-1", "config": config, **changes}


def test_only_ascii_letters_fold_when_an_address_is_matched_to_the_account():
    # str.lower() turns U+212A KELVIN SIGN into "k": a Graph mail spelled with it is not the account's
    kelvin = {**org(), "domains": [{"name": "Kelvin.example", "verified": True}]}
    record = AccountRecord.parse(kelvin, idp())
    assert record.domains == ("kelvin.example",)
    assert record.owns_email("bo@KELVIN.example") and not record.owns_email("bo@\u212aelvin.example")


def test_an_organization_and_its_idp_read_as_one_record():
    record = AccountRecord.parse(org(), idp())
    assert (record.id, record.org_id, record.name, record.stage) == ("acme", "org-1", "Acme AB", "live")
    assert record.domains == ("acme.example",)  # as the extension compares them: lower case
    assert record.secret_expires == date(2030, 1, 31) and record.secret_hint == "abc"
    assert record.it_contact == ItContact("Ivy", "ivy@acme.example")
    assert record.managed and record.sso_enabled and record.complete and record.redirects_by_domain
    assert record.idp_alias == "entra-acme" and record.quarantined is None
    assert record.owns_email("Bo@ACME.example") and not record.owns_email("bo@acme.example.evil")


def test_complete_means_linked_with_its_mappers_written():
    assert not AccountRecord.parse(org()).complete  # no IdP yet
    assert not AccountRecord.parse(org(), idp(organizationId=None)).complete  # not linked
    assert not AccountRecord.parse(org(), idp(config={})).complete  # mappers (hash written last) missing
    assert not AccountRecord.parse(org(), idp(enabled=False)).sso_enabled


@pytest.mark.parametrize(
    ("values", "stage"),
    [
        (None, "pilot"),
        ([], "pilot"),
        ([""], "pilot"),
        (["live"], "live"),
        ([" Disabled "], "disabled"),
        (["", "live"], "live"),
        (["liv"], "pilot"),  # a typo never opens SSO to every member
    ],
)
def test_the_stage_is_read_as_the_extension_reads_it(values, stage):
    assert parse_stage(values) == stage


def test_missing_or_broken_values_read_as_empty_not_as_errors():
    record = AccountRecord.parse(
        org(
            **{
                contract.SECRET_EXPIRES_KEY: ["soon"],
                contract.IT_CONTACT_EMAIL_KEY: [],
                contract.CLIENT_ID_KEY: [],
                contract.STAGE_KEY: [],
            }
        ),
        idp(),
    )
    assert record.secret_expires is None and record.it_contact.email == "" and record.stage == "pilot"
    assert record.client_id == "33333333-3333-3333-3333-333333333333"  # the IdP's, when the attribute is gone
    assert record.settings().secret_expires == date(1970, 1, 1)


def test_the_quarantine_and_ownership_come_from_the_organization():
    record = AccountRecord.parse(org(**{contract.QUARANTINE_KEY: ["2030-01-01T00:00:00Z 30 deactivations"]}))
    assert record.quarantined == "2030-01-01T00:00:00Z 30 deactivations"
    assert not AccountRecord.parse(org(**{contract.MANAGED_BY_KEY: []})).managed


def test_settings_are_what_a_create_would_ask_for():
    record = AccountRecord.parse(org(), idp())
    asked = Account.build(
        id="acme",
        name="Acme AB",
        tenant_id="11111111-1111-1111-1111-111111111111",
        client_id="22222222-2222-2222-2222-222222222222",
        domains=["acme.example"],
        secret_expires="2030-01-31",
        it_contact_name="Ivy",
        it_contact_email="ivy@acme.example",
        stage="live",
        pilot=["ann@acme.example"],
        today=date(2029, 1, 1),
    )
    assert record.settings() == asked


def test_build_validates_and_normalises():
    account = Account.build(
        id="acme",
        name=" Acme ",
        tenant_id="11111111-1111-1111-1111-111111111111",
        client_id="22222222-2222-2222-2222-222222222222",
        domains=["ACME.example", "acme.example"],
        secret_expires="2030-01-31",
        it_contact_name="Ivy",
        it_contact_email="Ivy@Acme.Example",
        pilot=["Ann@acme.example"],
        client_secret="s3cret-value-1",
        today=date(2029, 1, 1),
    )
    assert account.name == "Acme" and account.domains == ("acme.example",) and account.pilot == ("ann@acme.example",)
    assert account.it_contact.email == "ivy@acme.example" and "s3cret" not in repr(account)
    with pytest.raises(InvalidInput, match="not in the future"):
        Account.build(
            id="acme",
            name="A",
            tenant_id="acme.example",
            client_id="22222222-2222-2222-2222-222222222222",
            domains=["acme.example"],
            secret_expires="2020-01-01",
            it_contact_name="I",
            it_contact_email="i@acme.example",
            today=date(2029, 1, 1),
        )
    with pytest.raises(InvalidInput, match="invalid stage"):
        Account.build(
            id="acme",
            name="A",
            tenant_id="acme.example",
            client_id="22222222-2222-2222-2222-222222222222",
            domains=["acme.example"],
            secret_expires="2030-01-01",
            it_contact_name="I",
            it_contact_email="i@acme.example",
            stage="beta",
            today=date(2029, 1, 1),
        )


def test_without_entra_details_an_account_awaits_setup():
    waiting = Account.build(
        id="acme",
        name="Acme",
        domains=["acme.com"],
        it_contact_name="Ivy",
        it_contact_email="ivy@acme.com",
        pilot=["ann@acme.com"],
    )
    assert (waiting.stage, waiting.tenant_id, waiting.client_id, waiting.secret_expires) == (
        "awaiting-setup",
        "",
        "",
        None,
    )
    assert waiting.awaiting_setup and waiting.pilot == ("ann@acme.com",)


@pytest.mark.parametrize(
    "given",
    [
        {"tenant_id": "acme.com"},
        {"client_id": "22222222-2222-2222-2222-222222222222"},
        {"tenant_id": "acme.com", "secret_expires": "2031-01-01"},
    ],
)
def test_some_entra_details_but_not_all_are_refused_naming_what_is_missing(given):
    with pytest.raises(InvalidInput, match="missing: give --tenant-id, --client-id and --secret-expires together"):
        Account.build(
            id="acme",
            name="Acme",
            domains=["acme.com"],
            it_contact_name="Ivy",
            it_contact_email="ivy@acme.com",
            **given,
        )


def test_awaiting_setup_and_entra_details_or_a_secret_exclude_each_other():
    base = {
        "id": "acme",
        "name": "Acme",
        "domains": ["acme.com"],
        "it_contact_name": "Ivy",
        "it_contact_email": "ivy@acme.com",
    }
    with pytest.raises(InvalidInput, match="needs --tenant-id"):
        Account.build(**base, stage="live")
    with pytest.raises(InvalidInput, match="a client secret needs"):
        Account.build(**base, client_secret="Abc~secret-value-of-forty-characters-123")
    with pytest.raises(InvalidInput, match="no Entra details yet"):
        Account.build(
            **base,
            stage="awaiting-setup",
            tenant_id="acme.com",
            client_id="22222222-2222-2222-2222-222222222222",
            secret_expires="2031-01-01",
        )


def test_an_account_awaiting_setup_is_complete_with_its_organization_alone():
    org = {"id": "o1", "alias": "acme", "name": "Acme", "attributes": {"apsis.stage": ["awaiting-setup"]}}
    record = AccountRecord.parse(org)
    assert record.awaiting_setup and record.complete and not record.sso_enabled
    assert record.settings().secret_expires is None
    assert not AccountRecord.parse(org, {"alias": "entra-acme", "organizationId": "o1", "config": {}}).complete
