"""The realm planner is a pure function of the rendered template and what the realm holds."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apsis_core import contract
from apsis_core.errors import InvalidInput
from apsis_core.settings import Settings
from provisioning.realm import RealmState, realm_plan, render_realm

pytestmark = pytest.mark.unit
PROVIDERS = {contract.SAFE_LINK_AUTHENTICATOR, contract.SSO_GUARD_AUTHENTICATOR, contract.IDENTITY_FIRST_AUTHENTICATOR}


def desired() -> dict[str, Any]:
    return render_realm(Settings(_env_file=None, keycloak_client_secret="tooling-secret"))  # type: ignore[call-arg]


def as_held(template: dict[str, Any]) -> RealmState:
    """A realm that holds exactly what the template says."""
    realm = {
        k: copy.deepcopy(v)
        for k, v in template.items()
        if k not in {"clients", "serviceAccountRoles", "userProfile", "flowCopies"}
    }
    flows = {f["alias"]: {"id": f["alias"], "alias": f["alias"]} for f in template["authenticationFlows"]}
    executions = {
        f["alias"]: [
            {"providerId": e["authenticator"], "requirement": e["requirement"], "level": 0}
            for e in f["authenticationExecutions"]
        ]
        for f in template["authenticationFlows"]
    }
    for flow_copy in template["flowCopies"]:
        flows[flow_copy["alias"]] = {"id": flow_copy["alias"], "alias": flow_copy["alias"]}
        executions[flow_copy["alias"]] = [{"providerId": new, "level": 1} for new in flow_copy["replace"].values()]
    clients = {c["clientId"]: {**copy.deepcopy(c), "id": c["clientId"]} for c in template["clients"]}
    return RealmState(
        realm=realm,
        providers=PROVIDERS,
        user_profile=copy.deepcopy(template["userProfile"]),
        flows=flows,
        executions=executions,
        clients=clients,
        client_secrets={c["clientId"]: c.get("secret") for c in template["clients"]},
        service_account_roles={
            (client, role_client): sorted(roles)
            for client, by in template["serviceAccountRoles"].items()
            for role_client, roles in by.items()
        },
    )


def test_a_missing_realm_is_created_whole_in_order():
    plan = realm_plan(desired(), RealmState(realm=None, providers=PROVIDERS), "apsis")
    kinds = [(c.action, c.kind) for c in plan.changes]
    assert kinds[0] == ("create", "realm")
    assert kinds.index(("create", "flow")) < kinds.index(("update", "realm"))  # bound once the flow exists
    assert ("create", "client") in kinds and kinds[-1] == ("create", "service-account-roles")
    assert "tooling-secret" not in plan.to_json()


def test_a_realm_that_holds_the_template_plans_nothing_and_drift_is_one_change():
    template = desired()
    assert realm_plan(template, as_held(template), "apsis").empty
    drifted = as_held(template)
    drifted.executions[contract.FIRST_BROKER_LOGIN_FLOW][0]["requirement"] = "DISABLED"
    drifted.realm["registrationAllowed"] = True  # type: ignore[index]
    drifted.client_secrets[contract.TOOLING_CLIENT] = "something else"
    plan = realm_plan(template, drifted, "apsis")
    assert sorted((c.kind, c.name) for c in plan.changes) == [
        ("client", contract.TOOLING_CLIENT),
        ("flow", contract.FIRST_BROKER_LOGIN_FLOW),
        ("realm", "apsis"),
    ]
    assert "something else" not in plan.to_json()


def test_a_server_without_the_extension_is_refused_before_any_change():
    with pytest.raises(InvalidInput, match="install the apsis-sso extension jar"):
        realm_plan(desired(), RealmState(realm=None, providers=set()), "apsis")
