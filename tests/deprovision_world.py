"""A small world for the deprovisioning unit tests: two accounts in the in-memory
repository and a state database (the ``world`` fixture is in ``tests/unit/conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from apsis_core import contract
from apsis_core.account import AccountRecord
from sync.graph_client import DeltaRound, EntraUser
from sync.state import StateStore
from tests.keycloak_memory import MemoryKeycloak


@dataclass
class World:
    kc: MemoryKeycloak
    state: StateStore
    acme: AccountRecord
    other: AccountRecord

    def person(
        self,
        local: str,
        *,
        account: AccountRecord | None = None,
        link: str | None = None,
        sessions: int = 1,
        **kw: object,
    ) -> str:
        account = account or self.acme
        user_id = self.kc.add_user(f"{local}@{account.domains[0]}", sessions=sessions, **kw)  # type: ignore[arg-type]
        self.kc.add_member(account.org_id, user_id)
        if link:
            self.kc.add_link(user_id, account.idp_alias, link)
        return user_id


def record(kc: MemoryKeycloak, alias: str, domain: str) -> AccountRecord:
    org_id = kc.create_organization(
        {
            "alias": alias,
            "name": alias.title(),
            "domains": [{"name": domain, "verified": True}],
            "attributes": {contract.MANAGED_BY_KEY: [contract.MANAGED_BY], contract.STAGE_KEY: ["live"]},
        }
    )
    assert org_id is not None
    org = kc.organization(org_id)
    assert org is not None
    return AccountRecord.parse(org)


def delta(*users: EntraUser, full: bool = False) -> DeltaRound:
    return DeltaRound(list(users), "https://graph.example/v1.0/users/delta?$deltatoken=next", full, 1)
