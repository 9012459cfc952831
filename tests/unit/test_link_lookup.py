"""Opening a portal link does the same work whether the account exists or not (issue 19 item 5):
one Keycloak request, one hash of the token, the same number of comparisons — counted, never
timed."""

from __future__ import annotations

import hashlib
import hmac
import types
from datetime import timedelta
from typing import Any

import pytest

from apsis_core import contract, invitations
from portal import link_lookup

pytestmark = pytest.mark.unit


class Organizations:
    """The one Keycloak call the lookup may make, counted."""

    def __init__(self, orgs: dict[str, dict[str, Any]]) -> None:
        self.orgs = orgs
        self.calls: list[str] = []

    def organization_by_alias(self, alias: str) -> dict[str, Any] | None:
        self.calls.append(alias)
        return self.orgs.get(alias)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the lookup asked Keycloak for {name}")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts = {"sha256": 0, "compare_digest": 0}

    def sha256(data: bytes = b"") -> Any:
        counts["sha256"] += 1
        return hashlib.sha256(data)

    def compare_digest(a: Any, b: Any) -> bool:
        counts["compare_digest"] += 1
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(invitations, "hashlib", types.SimpleNamespace(sha256=sha256))
    monkeypatch.setattr(link_lookup, "hmac", types.SimpleNamespace(compare_digest=compare_digest))
    return counts


def account(*values: str) -> dict[str, Any]:
    return {
        "id": "o1",
        "alias": "acme",
        "attributes": {contract.MANAGED_BY_KEY: [contract.MANAGED_BY], contract.INVITATIONS_KEY: list(values)},
    }


def test_an_existing_and_a_missing_account_cost_the_same(counted: dict[str, int]):
    token, invitation = invitations.mint("setup", timedelta(days=7))
    _, other = invitations.mint("renew", timedelta(days=7))
    api = Organizations({"acme": account(invitation.value(), other.value())})
    wrong = invitations.mint("setup", timedelta(days=7))[0]

    work = []
    for alias, presented in (("acme", wrong), ("nobody", wrong), ("acme", token)):
        before = dict(counted)
        calls = len(api.calls)
        found = link_lookup.lookup(api, alias, presented)  # type: ignore[arg-type]
        work.append(
            (
                len(api.calls) - calls,
                counted["sha256"] - before["sha256"],
                counted["compare_digest"] - before["compare_digest"],
            )
        )
        if presented == token:
            assert found.invitation == invitation and found.record is not None
        else:
            assert found.invitation is None
    assert work[0] == work[1] == work[2] == (1, 1, link_lookup.SLOTS)


def test_an_unmanaged_organization_is_no_account_and_costs_the_same(counted: dict[str, int]):
    token, invitation = invitations.mint("setup", timedelta(days=7))
    org = account(invitation.value())
    org["attributes"].pop(contract.MANAGED_BY_KEY)
    before = dict(counted)
    found = link_lookup.lookup(Organizations({"acme": org}), "acme", token)  # type: ignore[arg-type]
    assert found == link_lookup.Found(None, None)
    assert (counted["sha256"] - before["sha256"], counted["compare_digest"] - before["compare_digest"]) == (
        1,
        link_lookup.SLOTS,
    )
