"""Account plans applied to the in-memory repository: converging, idempotent, resumable."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from apsis_core import contract
from apsis_core.account import Account, AccountRecord
from apsis_core.errors import EX_TEMPFAIL, Interrupted
from apsis_core.settings import Settings
from provisioning import members
from provisioning.accounts import plan_account, plan_delete
from provisioning.snapshot import Snapshot
from tests.keycloak_memory import MemoryKeycloak

pytestmark = pytest.mark.unit
SECRET = "Abc~secret-value-of-forty-characters-123"


def settings() -> Settings:
    return Settings(_env_file=None, keycloak_client_secret="tooling-secret")  # type: ignore[call-arg]


def acme(**changes: Any) -> Account:
    return Account.build(
        id="acme",
        name="Acme AB",
        tenant_id="11111111-1111-1111-1111-111111111111",
        client_id="22222222-2222-2222-2222-222222222222",
        domains=["acme.example"],
        secret_expires=date.today() + timedelta(days=200),
        it_contact_name="Ivy",
        it_contact_email="it@acme.example",
        pilot=["ann@acme.example"],
        client_secret=SECRET,
    ).with_changes(**changes)


def converge(kc: MemoryKeycloak, account: Account) -> Any:
    plan = plan_account(settings(), account, Snapshot.for_account(kc, account.id, account.domains, account.name))
    plan.apply(kc)  # type: ignore[arg-type]
    return plan


def test_a_create_makes_a_complete_account_and_a_second_run_changes_nothing():
    kc = MemoryKeycloak()
    assert len(converge(kc, acme()).changes) == 4
    # Four writes and no read: organization, provider, its mapper, the link (the snapshot's
    # reads are the plan's, counted separately).
    assert [what for what, _ in kc.writes] == [
        "create_organization",
        "create_identity_provider",
        "create_idp_mapper",
        "link_organization_idp",
    ]
    org = kc.organization_by_alias("acme")
    assert org is not None
    record = AccountRecord.parse(org, kc.identity_provider("entra-acme"))
    assert record.complete and record.stage == "pilot" and record.settings() == acme().with_changes(client_secret=None)
    writes = len(kc.writes)
    assert converge(kc, acme()).empty and len(kc.writes) == writes
    assert kc.secrets["entra-acme"] == SECRET and SECRET not in str(kc.identity_provider("entra-acme"))


def test_a_create_cut_short_is_completed_by_running_it_again():
    kc = MemoryKeycloak()
    kc.fail_after(2)  # organization and IdP are written, then Keycloak goes away
    with pytest.raises(Interrupted) as stopped:
        converge(kc, acme())
    assert stopped.value.exit_code == EX_TEMPFAIL and "run the same command again" in str(stopped.value)
    half = AccountRecord.parse(kc.organization_by_alias("acme") or {}, kc.identity_provider("entra-acme"))
    assert not half.complete  # an unlinked provider: no login reaches this account yet
    kc.fail_after(None)
    again = converge(kc, acme())
    assert [(c.action, c.kind) for c in again.changes] == [("update", "idp-mappers"), ("create", "organization-link")]
    assert converge(kc, acme()).empty


@pytest.mark.parametrize("writes", [1, 2, 3])
def test_a_create_cut_short_after_any_write_is_completed_by_a_rerun(writes: int):
    kc = MemoryKeycloak()
    kc.fail_after(writes)
    with pytest.raises(Interrupted):
        converge(kc, acme())
    kc.fail_after(None)
    converge(kc, acme())
    record = AccountRecord.parse(kc.organization_by_alias("acme") or {}, kc.identity_provider("entra-acme"))
    assert record.complete and [m["name"] for m in kc.mappers["entra-acme"]] == ["entra object id as user id"]
    assert converge(kc, acme()).empty


def test_a_provider_created_meanwhile_by_another_run_is_converged_not_refused():
    kc = MemoryKeycloak()
    plan = plan_account(settings(), acme(), Snapshot.for_account(kc, "acme", ("acme.example",), "Acme AB"))
    rival = plan_account(settings(), acme(), Snapshot.for_account(kc, "acme", ("acme.example",), "Acme AB"))
    rival.changes[0].apply(kc)  # type: ignore[misc, arg-type]
    rival.changes[1].apply(kc)  # type: ignore[misc, arg-type]
    kc.mappers["entra-acme"] = [{"id": "x", "name": "grant admin", "identityProviderMapper": "hardcoded"}]
    plan.apply(kc)  # type: ignore[arg-type]
    assert [m["name"] for m in kc.mappers["entra-acme"]] == ["entra object id as user id"]
    assert converge(kc, acme()).empty


def test_stage_changes_and_hand_edits_converge():
    kc = MemoryKeycloak()
    converge(kc, acme())
    converge(kc, acme(stage="live"))
    idp = kc.identity_provider("entra-acme")
    assert idp is not None and idp["config"][contract.REDIRECT_WHEN_EMAIL_MATCHES_KEY] == "true"
    kc.mappers["entra-acme"].append({"id": "x", "name": "grant admin", "identityProviderMapper": "hardcoded"})
    assert [c.kind for c in converge(kc, acme(stage="live")).changes] == ["idp-mappers"]
    assert [m["name"] for m in kc.mappers["entra-acme"]] == ["entra object id as user id"]


def test_delete_keeps_every_user_and_members_come_and_go():
    kc = MemoryKeycloak()
    converge(kc, acme())
    ann = kc.add_user("ann@acme.example")
    kc.add_user("contractor@agency.example")
    added = members.members_add(kc, "acme", ["contractor@agency.example"], from_domains=True)  # type: ignore[arg-type]
    assert sorted(c.email for c in added) == ["ann@acme.example", "contractor@agency.example"]
    kc.add_link(ann, "entra-acme", "oid-ann")
    removed = members.members_remove(kc, "acme", ["ann@acme.example", "nobody@acme.example"])  # type: ignore[arg-type]
    assert [c.outcome for c in removed] == ["removed", "not-member"] and kc.links[ann] == {}
    plan = plan_delete("acme", Snapshot.for_account(kc, "acme", with_mappers=False))
    plan.apply(kc)  # type: ignore[arg-type]
    assert kc.orgs == {} and kc.idps == {} and len(kc.users_by_id) == 2
