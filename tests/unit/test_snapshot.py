"""Reading what a plan compares: the mappers of many providers in one listing, of a few per
provider, and per provider from a server whose extension has no listing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from apsis_core.account import Account
from apsis_core.settings import Settings
from provisioning.accounts import plan_accounts
from provisioning.snapshot import Snapshot
from tests.keycloak_memory import MemoryKeycloak

pytestmark = pytest.mark.unit


class Counting(MemoryKeycloak):
    def __init__(self, *, listing: bool = True) -> None:
        super().__init__()
        self.listing = listing
        self.calls: list[str] = []

    def all_idp_mappers(self) -> dict[str, list[dict[str, Any]]] | None:
        self.calls.append("all")
        return super().all_idp_mappers() if self.listing else None

    def idp_mappers(self, alias: str) -> list[dict[str, Any]]:
        self.calls.append(alias)
        return super().idp_mappers(alias)


def onboarded(kc: MemoryKeycloak, n: int) -> list[Account]:
    cfg = Settings(_env_file=None, keycloak_client_secret="tooling-secret")  # type: ignore[call-arg]
    accounts = [
        Account.build(
            id=f"acct{i:03d}",
            name=f"Account {i}",
            tenant_id="11111111-1111-1111-1111-111111111111",
            client_id="22222222-2222-2222-2222-222222222222",
            domains=[f"acct{i:03d}.example"],
            secret_expires=date.today() + timedelta(days=90),
            it_contact_name="Ivy",
            it_contact_email=f"it@acct{i:03d}.example",
            client_secret="Abc~secret-value-of-forty-characters-123",
        )
        for i in range(n)
    ]
    plan_accounts(cfg, accounts, Snapshot.load(kc)).apply(kc)  # type: ignore[arg-type]
    return accounts


def test_many_providers_are_read_in_one_listing_and_a_hand_edit_still_shows():
    kc = Counting()
    accounts = onboarded(kc, 60)
    kc.mappers["entra-acct007"].clear()  # deleted by hand
    snapshot = Snapshot.load(kc, mappers_for=[a.id for a in accounts])  # type: ignore[arg-type]
    assert kc.calls == ["all"]
    assert snapshot.mappers_of("entra-acct007") == []
    assert [m["name"] for m in snapshot.mappers_of("entra-acct008")] == ["entra object id as user id"]


def test_a_few_providers_among_many_are_read_one_by_one():
    kc = Counting()
    accounts = onboarded(kc, 60)
    Snapshot.load(kc, mappers_for=[accounts[0].id, accounts[1].id])  # type: ignore[arg-type]
    assert kc.calls == ["entra-acct000", "entra-acct001"]


def test_a_server_without_the_listing_is_read_per_provider():
    kc = Counting(listing=False)
    accounts = onboarded(kc, 60)
    snapshot = Snapshot.load(kc, mappers_for=[a.id for a in accounts])  # type: ignore[arg-type]
    assert kc.calls[0] == "all" and len(kc.calls) == 61
    assert all(snapshot.mappers_of(a.idp_alias) for a in accounts)
