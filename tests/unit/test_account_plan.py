"""The account planners are pure functions of a snapshot: no server, every decision visible."""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from apsis_core import contract
from apsis_core.account import Account
from apsis_core.errors import Conflict, InvalidInput, NotFound
from apsis_core.settings import Settings
from provisioning.accounts import DAEMON_SECRET, plan_account, plan_accounts, plan_delete, writes_secret
from provisioning.render import render
from provisioning.snapshot import DaemonFile, Snapshot

pytestmark = pytest.mark.unit

SECRET = "Abc~secret-value-of-forty-characters-123"


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, keycloak_client_secret="tooling-secret", **overrides)  # type: ignore[call-arg]


def account(account_id: str = "acme", **changes: Any) -> Account:
    built = Account.build(
        id=account_id,
        name=f"Account {account_id}",
        tenant_id="11111111-1111-1111-1111-111111111111",
        client_id="22222222-2222-2222-2222-222222222222",
        domains=[f"{account_id}.example"],
        secret_expires=date.today() + timedelta(days=200),
        it_contact_name="Ivy",
        it_contact_email=f"it@{account_id}.example",
        pilot=[f"ann@{account_id}.example"],
        client_secret=SECRET,
    )
    return built.with_changes(**changes)


def held(desired: Account, cfg: Settings) -> Snapshot:
    """A snapshot of Keycloak holding exactly what a completed create of ``desired`` wrote."""
    rendered = render(desired, cfg)
    org = {**copy.deepcopy(rendered.organization), "id": f"org-{desired.id}"}
    idp = copy.deepcopy(rendered.identity_provider)
    idp["config"].pop("clientSecret", None)  # Keycloak masks it on read
    idp["organizationId"] = org["id"]
    mappers = [
        {**copy.deepcopy(m), "id": f"m{i}", "identityProviderAlias": desired.idp_alias}
        for i, m in enumerate(rendered.mappers)
    ]
    return Snapshot(orgs={desired.id: org}, idps={desired.idp_alias: idp}, mappers={desired.idp_alias: mappers})


def changes(plan: Any) -> list[tuple[str, str]]:
    return [(c.action, c.kind) for c in plan.changes]


def test_a_new_account_is_four_steps_in_order_and_proves_its_secret():
    plan = plan_account(settings(), account(), Snapshot())
    assert changes(plan) == [
        ("create", "organization"),
        ("create", "identity-provider"),
        ("create", "idp-mappers"),
        ("create", "organization-link"),
    ]
    assert writes_secret(plan) == {"acme"}
    assert SECRET not in plan.to_json()


def test_what_keycloak_already_holds_plans_nothing():
    cfg = settings()
    assert plan_account(cfg, account(), held(account(), cfg)).empty
    assert plan_account(cfg, account(client_secret=None), held(account(), cfg)).empty  # a file without a secret


def test_hand_edits_show_as_changes_and_a_new_secret_as_changed():
    cfg = settings()
    snapshot = held(account(), cfg)
    snapshot.idps["entra-acme"]["config"]["validateIssuer"] = "false"
    snapshot.orgs["acme"]["attributes"][contract.STAGE_KEY] = ["live"]
    del snapshot.mappers["entra-acme"][0]["config"]["tenantId"]
    plan = plan_account(cfg, account(client_secret=SecretStr("Xyz~another-secret-value-of-forty-chars")), snapshot)
    paths = {f.path for c in plan.changes for f in c.fields}
    assert {"config.validateIssuer", "attributes.apsis.stage", "config.clientSecret"} <= paths
    assert any(p.startswith("mapper[") for p in paths)
    assert writes_secret(plan) == {"acme"} and "Xyz~" not in plan.to_json()


def test_the_stage_decides_the_login_page_fields():
    cfg = settings()
    plan = plan_account(cfg, account(stage="live"), held(account(), cfg))
    paths = {f.path for c in plan.changes for f in c.fields}
    assert {f"config.{contract.ORG_DOMAIN_KEY}", f"config.{contract.REDIRECT_WHEN_EMAIL_MATCHES_KEY}"} <= paths


def test_refusals_come_before_any_change():
    cfg = settings()
    other = held(account("other", domains=("acme.example",)), cfg)
    with pytest.raises(Conflict, match="domain acme.example belongs to account 'other'"):
        plan_account(cfg, account(), other)
    named = held(account("other", name="Account acme"), cfg)
    with pytest.raises(Conflict, match="the name 'Account acme' is taken"):
        plan_account(cfg, account(), named)
    foreign = held(account(), cfg)
    foreign.orgs["acme"]["attributes"].pop(contract.MANAGED_BY_KEY)
    with pytest.raises(Conflict, match="not managed by apsis-sso"):
        plan_account(cfg, account(), foreign)
    with pytest.raises(InvalidInput, match="a client secret is required"):
        plan_account(cfg, account(client_secret=None), Snapshot())


def test_the_daemons_copy_is_planned_when_missing_or_different(tmp_path: Path):
    cfg = settings(sync_secrets_dir=tmp_path)
    snapshot = held(account(), cfg)
    snapshot.daemon_files["acme"] = DaemonFile(tmp_path / "acme", exists=False)
    assert changes(plan_account(cfg, account(), snapshot)) == [("create", DAEMON_SECRET)]
    snapshot.daemon_files["acme"] = DaemonFile(tmp_path / "acme", True, SecretStr("an-older-secret-value"))
    assert changes(plan_account(cfg, account(), snapshot)) == [("update", DAEMON_SECRET)]
    snapshot.daemon_files["acme"] = DaemonFile(tmp_path / "acme", True, SecretStr(SECRET))
    assert plan_account(cfg, account(), snapshot).empty


def test_prune_deletes_first_and_frees_the_pruned_accounts_domains():
    cfg = settings()
    snapshot = held(account("old", domains=("acme.example",)), cfg)
    snapshot.orgs["unmanaged"] = {"id": "x", "alias": "unmanaged", "name": "Other", "attributes": {}, "domains": []}
    plan = plan_accounts(cfg, [account()], snapshot, prune=True)
    assert changes(plan)[:2] == [("delete", "identity-provider"), ("delete", "organization")]
    assert {c.account for c in plan.changes} == {"old", "acme"}  # never the organization the tool does not own
    with pytest.raises(Conflict, match="belongs to account 'old'"):
        plan_accounts(cfg, [account()], snapshot, prune=False)
    with pytest.raises(InvalidInput, match="listed twice"):
        plan_accounts(cfg, [account(), account()], Snapshot())


def test_delete_removes_idp_organization_and_the_daemons_copy(tmp_path: Path):
    cfg = settings()
    snapshot = held(account(), cfg)
    snapshot.daemon_files["acme"] = DaemonFile(tmp_path / "acme", exists=True)
    assert changes(plan_delete("acme", snapshot)) == [
        ("delete", "identity-provider"),
        ("delete", "organization"),
        ("delete", DAEMON_SECRET),
    ]
    with pytest.raises(NotFound):
        plan_delete("nobody", snapshot)


def test_a_provider_still_bound_to_the_old_post_broker_flow_is_unbound_and_an_unbound_one_is_left():
    desired = account()
    snapshot = held(desired, settings())
    assert (
        "postBrokerLoginFlowAlias" not in snapshot.idps[desired.idp_alias]
        or not snapshot.idps[desired.idp_alias]["postBrokerLoginFlowAlias"]
    )
    snapshot.idps[desired.idp_alias].pop("postBrokerLoginFlowAlias", None)  # as Keycloak shows an unbound one
    assert plan_account(settings(), desired, snapshot).empty

    snapshot.idps[desired.idp_alias]["postBrokerLoginFlowAlias"] = contract.POST_BROKER_LOGIN_FLOW
    plan = plan_account(settings(), desired, snapshot)
    assert changes(plan) == [("update", "identity-provider")]
    assert [(f.path, f.before, f.after) for f in plan.changes[0].fields] == [
        ("postBrokerLoginFlowAlias", contract.POST_BROKER_LOGIN_FLOW, None)
    ]


def waiting(account_id: str = "acme") -> Account:
    return Account.build(
        id=account_id,
        name=f"Account {account_id}",
        domains=[f"{account_id}.example"],
        it_contact_name="Ivy",
        it_contact_email=f"it@{account_id}.example",
    )


def test_an_account_awaiting_setup_is_its_organization_alone():
    plan = plan_account(settings(), waiting(), Snapshot())
    assert [(c.action, c.kind) for c in plan.changes] == [("create", "organization")]
    rendered = render(waiting(), settings()).organization["attributes"]
    assert rendered[contract.STAGE_KEY] == ["awaiting-setup"]
    assert not {
        contract.TENANT_ID_KEY,
        contract.CLIENT_ID_KEY,
        contract.SECRET_EXPIRES_KEY,
        contract.SECRET_HINT_KEY,
    } & set(rendered)


def test_its_setup_converges_the_organization_and_creates_the_idp():
    cfg = settings()
    before = waiting()
    snapshot = held_organization(before, cfg)
    plan = plan_account(cfg, account(), snapshot)
    assert [c.kind for c in plan.changes] == [
        "organization",
        "identity-provider",
        "idp-mappers",
        "organization-link",
    ]  # the link last (issue 11)
    assert plan.changes[0].action == "update"
    assert writes_secret(plan) == {"acme"}


def test_an_account_with_sso_never_goes_back_to_awaiting_setup():
    cfg = settings()
    with pytest.raises(Conflict, match="cannot go back to awaiting setup"):
        plan_account(cfg, waiting(), held(account(), cfg))


def held_organization(desired: Account, cfg: Settings) -> Snapshot:
    org = {**copy.deepcopy(render(desired, cfg).organization), "id": f"org-{desired.id}"}
    return Snapshot(orgs={desired.id: org})


def test_a_rerun_of_create_without_entra_details_plans_nothing():
    cfg = settings()
    assert plan_account(cfg, waiting(), held_organization(waiting(), cfg)).empty


def test_a_file_mixing_awaiting_and_onboarded_accounts_proves_only_the_onboarded_secret(tmp_path: Path):
    cfg = settings(sync_secrets_dir=tmp_path)
    snapshot = Snapshot()
    snapshot.daemon_files["acme"] = DaemonFile(tmp_path / "acme", exists=False)
    plan = plan_accounts(cfg, [account(), waiting("beta")], snapshot)
    by_account = {a: [(c.action, c.kind) for c in plan.changes if c.account == a] for a in ("acme", "beta")}
    assert by_account["beta"] == [("create", "organization")]  # no IdP, no secret file for the daemon
    assert ("create", DAEMON_SECRET) in by_account["acme"]
    assert writes_secret(plan) == {"acme"}


def test_prune_deletes_an_account_awaiting_setup_as_its_organization_alone():
    cfg = settings()
    plan = plan_accounts(cfg, [], held_organization(waiting("beta"), cfg), prune=True)
    assert changes(plan) == [("delete", "organization")]


def test_the_daemon_skips_accounts_awaiting_setup():
    from apsis_core.account import AccountRecord
    from sync.accounts import select

    cfg = settings()
    records = [
        AccountRecord.parse(held_organization(waiting("beta"), cfg).orgs["beta"]),
        AccountRecord.parse(held(account(), cfg).orgs["acme"]),
    ]
    assert [r.id for r in select(records)] == ["acme"]
    assert select(records, only=["beta"]) == []  # named, it exists, but it has nothing to sync
