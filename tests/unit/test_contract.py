"""Files that cannot import ``apsis_core.contract`` (templates, Java, Maven, Docker) hold its
names as literals: each must be the contract's, or the parts stop meeting in Keycloak."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import pytest
import yaml

from apsis_core import contract, domain_ownership
from apsis_core.settings import TEMPLATES_DIR

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
JAVA = ROOT / "keycloak-extension/src/main/java/com/apsis/sso/keycloak"


def _json(name: str) -> typing.Any:
    return json.loads((TEMPLATES_DIR / name).read_text())


def test_one_keycloak_version_everywhere():
    assert f"ARG KEYCLOAK_VERSION={contract.KEYCLOAK_VERSION}\n" in (ROOT / "docker/keycloak.Dockerfile").read_text()
    assert (
        f"<keycloak.version>{contract.KEYCLOAK_VERSION}</keycloak.version>"
        in (ROOT / "keycloak-extension/pom.xml").read_text()
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["keycloak"]["image"] == f"apsis-sso-keycloak:{contract.KEYCLOAK_VERSION}"


def test_the_realm_template_names_the_contracts_flows_and_clients():
    realm = _json("realm.json")
    flows = {
        f["alias"]: [e["authenticator"] for e in f["authenticationExecutions"]] for f in realm["authenticationFlows"]
    }
    assert flows == {contract.FIRST_BROKER_LOGIN_FLOW: [contract.SAFE_LINK_AUTHENTICATOR]}
    assert realm["browserFlow"] == contract.BROWSER_FLOW
    assert [c["alias"] for c in realm["flowCopies"]] == [contract.BROWSER_FLOW]
    assert list(realm["flowCopies"][0]["replace"].values()) == [contract.IDENTITY_FIRST_AUTHENTICATOR]
    example = next(c for c in realm["clients"] if c["clientId"] == contract.EXAMPLE_CLIENT)
    note = example["protocolMappers"][0]["config"]
    assert (note["user.session.note"], note["claim.name"]) == (contract.ACCOUNT_SESSION_NOTE, contract.ACCOUNT_CLAIM)


def test_the_account_templates_use_the_contracts_keys():
    idp = _json("entra-idp.json")
    assert idp["alias"].startswith(contract.IDP_ALIAS_PREFIX) and idp["providerId"] == contract.IDP_TYPE
    # The guard runs in the identity provider itself: no post-broker-login flow, and an
    # empty alias in the template unbinds the flow earlier versions bound.
    assert (idp["firstBrokerLoginFlowAlias"], idp["postBrokerLoginFlowAlias"]) == (contract.FIRST_BROKER_LOGIN_FLOW, "")
    assert idp["config"][contract.MANAGED_BY_KEY] == contract.MANAGED_BY
    org = _json("organization.json")
    assert set(org["attributes"]) == {
        contract.MANAGED_BY_KEY,
        contract.ACCOUNT_KEY,
        contract.STAGE_KEY,
        contract.PILOT_KEY,
        contract.TENANT_ID_KEY,
        contract.CLIENT_ID_KEY,
        contract.SECRET_EXPIRES_KEY,
        contract.SECRET_HINT_KEY,
        contract.IT_CONTACT_NAME_KEY,
        contract.IT_CONTACT_EMAIL_KEY,
    }
    assert org["attributes"][contract.MANAGED_BY_KEY] == [contract.MANAGED_BY]
    assert [m["identityProviderMapper"] for m in _json("entra-idp-mappers.json")] == [contract.OID_MAPPER]


def _java_contract() -> dict[str, str]:
    """The constants of Contract.java, the extension's one place for the contract's names."""
    found = dict(re.findall(r'public static final String ([A-Z_]+) = "([^"]*)";', (JAVA / "Contract.java").read_text()))
    assert found, "Contract.java has no constants"
    return found


def test_the_extensions_contract_class_holds_the_contracts_names():
    python = {**vars(contract), "METHOD_DISCOVERY": domain_ownership.METHOD_DISCOVERY}
    java = _java_contract()
    assert {name: python.get(name) for name in java} == java, "each Contract.java constant is contract.py's"
    assert set(java) >= {
        "SAFE_LINK_AUTHENTICATOR",
        "SSO_GUARD_AUTHENTICATOR",
        "IDENTITY_FIRST_AUTHENTICATOR",
        "OID_MAPPER",
        "LINKS_RESOURCE",
        "IDP_MAPPERS_PATH",
        "ADMIN_CONSENT_STATE",
        "STAGE_KEY",
        "PILOT_KEY",
        "TENANT_ID_KEY",
        "DOMAIN_PROOFS_KEY",
        "MANAGED_BY_KEY",
        "MANAGED_BY",
        "ACCOUNT_SESSION_NOTE",
        "REFUSAL_EVENT_ERROR",
    }


def test_no_other_class_of_the_extension_spells_out_a_contract_name():
    names = {value: name for name, value in _java_contract().items()}
    spelled = [
        f"{path.name}: {literal!r} (Contract.{names[literal]})"
        for path in sorted(JAVA.glob("*.java"))
        if path.name != "Contract.java"
        for literal in re.findall(r'"([^"\\]*)"', re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(), flags=re.S))
        if literal in names and literal != "apsis-sso"  # also the authenticators' display category
    ]
    assert spelled == []


def test_the_extensions_classes_read_their_names_from_contract():
    uses = {
        "SafeLinkAuthenticatorFactory": "PROVIDER_ID = Contract.SAFE_LINK_AUTHENTICATOR",
        "SsoGuardAuthenticatorFactory": "PROVIDER_ID = Contract.SSO_GUARD_AUTHENTICATOR",
        "IdentityFirstAuthenticatorFactory": "PROVIDER_ID = Contract.IDENTITY_FIRST_AUTHENTICATOR",
        "EntraObjectIdMapper": "PROVIDER_ID = Contract.OID_MAPPER",
        "ApsisSsoResourceProviderFactory": "PROVIDER_ID = Contract.LINKS_RESOURCE",
        "Stage": "ATTRIBUTE = Contract.STAGE_KEY",
        "Guard": "ACCOUNT_NOTE = Contract.ACCOUNT_SESSION_NOTE",
        "Reason": "EVENT_ERROR = Contract.REFUSAL_EVENT_ERROR",
    }
    for cls, line in uses.items():
        assert line in (JAVA / f"{cls}.java").read_text(), cls


def test_the_extensions_enums_are_the_contracts():
    java_reasons = re.findall(r'^\s+[A-Z_]+\("([a-z_]+)"\)', (JAVA / "Reason.java").read_text(), flags=re.M)
    assert java_reasons == list(typing.get_args(contract.RefusalReason))
    constants = re.search(r"enum Stage \{\s*([A-Z_,\s]+);", (JAVA / "Stage.java").read_text())
    assert constants and [c.strip().lower().replace("_", "-") for c in constants.group(1).split(",")] == list(
        contract.STAGES
    )
    assert "case Contract.AWAITING_SETUP:" in (JAVA / "Stage.java").read_text()


def test_docs_contracts_lists_every_refusal_reason_and_attribute():
    doc = (ROOT / "docs/contracts.md").read_text()
    for reason in typing.get_args(contract.RefusalReason):
        assert f"| `{reason}` |" in doc, reason
    for stage in contract.STAGES:
        assert f"| `{stage}` |" in doc, stage
    for kind in typing.get_args(contract.NoticeKind):
        assert f"`{kind}`" in doc, kind
    for key in (
        contract.MANAGED_BY_KEY,
        contract.ACCOUNT_KEY,
        contract.STAGE_KEY,
        contract.PILOT_KEY,
        contract.TENANT_ID_KEY,
        contract.QUARANTINE_KEY,
        contract.DISABLED_BY_KEY,
        contract.INVITATIONS_KEY,
        contract.DOMAIN_PROOFS_KEY,
        contract.OWNERSHIP_OVERRIDE_KEY,
        contract.DOMAIN_ALERTS_KEY,
        contract.SETUP_CLAIM_KEY,
        contract.CREDENTIAL_KEY,
    ):
        assert f"`{key}`" in doc, key
