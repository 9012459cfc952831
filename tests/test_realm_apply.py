"""The realm template applied to a real Keycloak: idempotent, complete, least privilege."""

from __future__ import annotations

import json

import pytest

from apsis_core.errors import InvalidInput
from apsis_core.keycloak import KeycloakRepository
from apsis_core.settings import Settings
from provisioning import templates
from provisioning.realm import plan_realm


def test_second_apply_plans_nothing(realm: str, settings: Settings) -> None:
    plan = plan_realm(KeycloakRepository.for_admin(settings), settings)
    assert plan.empty, plan.to_json()


def test_realm_settings_match_the_template(realm: str, settings: Settings) -> None:
    rep = KeycloakRepository.for_admin(settings).get_realm()
    assert rep is not None
    assert rep["organizationsEnabled"] is True
    assert rep["registrationAllowed"] is False
    assert rep["duplicateEmailsAllowed"] is False
    assert rep["loginWithEmailAllowed"] is True
    assert rep["bruteForceProtected"] is True
    assert rep["eventsEnabled"] is True and rep["adminEventsEnabled"] is True
    assert rep["adminEventsDetailsEnabled"] is True


def test_flows_hold_only_our_authenticators(realm: str, settings: Settings) -> None:
    admin = KeycloakRepository.for_admin(settings)
    first = [(e["providerId"], e["requirement"]) for e in admin.executions("apsis first broker login")]
    assert first == [("apsis-safe-link", "REQUIRED")]


def test_tooling_client_holds_only_the_roles_it_needs(realm: str, settings: Settings, api: KeycloakRepository) -> None:
    admin = KeycloakRepository.for_admin(settings)
    client = admin.client_by_client_id(settings.keycloak_client_id)
    assert client is not None
    assert client["serviceAccountsEnabled"] is True
    assert client["standardFlowEnabled"] is False and client["directAccessGrantsEnabled"] is False
    user = admin.service_account_user(client["id"])
    management = admin.client_by_client_id("realm-management")
    assert management is not None
    roles = sorted(r["name"] for r in admin.user_client_roles(user["id"], management["id"]))
    assert "realm-admin" not in roles and "manage-realm" not in roles and "manage-clients" not in roles
    assert "manage-identity-providers" in roles and "manage-organizations" in roles
    # ...and the service account really cannot change the realm or its clients.
    with pytest.raises(Exception, match="HTTP 403"):
        api.client_by_client_id("apsis-one")


def test_drift_is_planned_and_repaired(realm: str, settings: Settings) -> None:
    admin = KeycloakRepository.for_admin(settings)
    admin.update_realm({"realm": settings.realm, "registrationAllowed": True})
    flow = "apsis first broker login"
    execution = admin.executions(flow)[0]
    admin.update_execution(flow, {**execution, "requirement": "DISABLED"})

    plan = plan_realm(admin, settings)
    paths = {(c.kind, f.path) for c in plan.changes for f in c.fields}
    assert ("realm", "registrationAllowed") in paths
    assert ("flow", "executions") in paths
    plan.apply(admin)
    assert plan_realm(admin, settings).empty
    assert admin.get_realm()["registrationAllowed"] is False


def test_plan_output_masks_the_tooling_secret(settings: Settings) -> None:
    secret = settings.keycloak_client_secret.get_secret_value()
    rendered = templates.render_file(
        settings.templates_dir,
        "realm.json",
        {
            "realm": "x",
            "admin_client_id": "c",
            "admin_client_secret": secret,
            "apsis_one_redirect_uris": [],
        },
    )
    assert rendered["clients"][1]["secret"] == secret
    from provisioning.plan import Change, FieldChange, Plan

    plan = Plan([Change("update", "client", "c", fields=[FieldChange("secret", "old", secret, secret=True)])])
    assert secret not in plan.to_json()
    assert "(changed)" in plan.to_json()


@pytest.mark.unit
def test_missing_placeholder_is_a_one_line_error(tmp_path) -> None:
    (tmp_path / "realm.json").write_text(json.dumps({"realm": "{{ realm }}", "x": "{{ nope }}"}))
    with pytest.raises(InvalidInput, match=r"realm.json uses placeholder \{\{ nope \}\} which has no value"):
        templates.render_file(tmp_path, "realm.json", {"realm": "r"})


@pytest.mark.unit
def test_values_are_never_parsed_as_json(tmp_path) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"name": "Account {{ name }}", "list": "{{ items }}"}))
    out = templates.render_file(tmp_path, "t.json", {"name": '", "enabled": false, "x": "', "items": ["a"]})
    assert out == {"name": 'Account ", "enabled": false, "x": "', "list": ["a"]}
