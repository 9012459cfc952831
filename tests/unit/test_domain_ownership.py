"""The tenant–domain binding's pure parts: the proof rule, the records, what counts for the
account's current tenant, what a re-check changes, the requirement, and how Entra's
discovery answers are read (over a mock transport: no network)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from apsis_core import contract
from apsis_core.account import Account, AccountRecord
from apsis_core.domain_ownership import (
    Discovery,
    DomainAlert,
    DomainProof,
    DomainsNotProven,
    Ownership,
    OwnershipOverride,
    after_check,
    discover_async,
    judge,
    judge_all,
    override_reason,
    recheck_due,
    require,
)
from apsis_core.entra import EntraEndpoints
from apsis_core.errors import EntraUnavailable, InvalidInput
from provisioning import ownership

pytestmark = pytest.mark.unit

A = "aaaaaaaa-0000-4000-8000-000000000001"  # the account's tenant
X = "bbbbbbbb-0000-4000-8000-000000000002"  # another tenant
NOW = datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)


def proof(domain: str, tenant: str = A, at: datetime = NOW) -> str:
    return DomainProof(domain, tenant, at).value()


# -- the rule ------------------------------------------------------------------------------


def test_a_domain_is_proven_only_when_discovery_resolves_it_to_the_tenant():
    assert judge(Discovery("acme.example", "resolved", A), A, NOW).status == "proven"
    assert judge(Discovery("acme.example", "resolved", A.upper()), A.upper(), NOW).status == "proven"
    verdict = judge(Discovery("acme.example", "resolved", A), A, NOW)
    assert verdict.proof == DomainProof("acme.example", A, NOW, "discovery")


def test_another_tenant_or_none_is_a_refusal_and_no_answer_is_never_a_pass():
    moved = judge(Discovery("acme.example", "resolved", X), A, NOW)
    assert (moved.status, moved.owner, moved.refused, moved.proof) == ("other-tenant", X, True, None)
    nowhere = judge(Discovery("acme.example", "unknown", detail="AADSTS90002"), A, NOW)
    assert (nowhere.status, nowhere.refused, nowhere.proof) == ("unverified", True, None)
    silent = judge(Discovery("acme.example", "unavailable", detail="HTTP 503"), A, NOW)
    assert (silent.status, silent.refused, silent.proof) == ("unavailable", False, None)
    # A resolved answer that names no tenant proves nothing either.
    assert judge(Discovery("acme.example", "resolved", None), A, NOW).status == "unavailable"


# -- the records ---------------------------------------------------------------------------


def test_records_round_trip_and_malformed_values_prove_nothing():
    p = DomainProof("acme.example", A, NOW)
    assert p.value() == f"acme.example {A} 2030-05-01T12:00:00Z discovery"
    assert DomainProof.parse(p.value()) == p
    o = OwnershipOverride("acme.example", A, NOW, "verified by phone, ticket 4711")
    assert OwnershipOverride.parse(o.value()) == o
    a = DomainAlert("acme.example", A, NOW, "other-tenant", X)
    assert DomainAlert.parse(a.value()) == a
    for bad in (
        "",
        "acme.example",
        f"acme.example {A} yesterday discovery",
        "acme.example not-a-guid 2030-05-01T12:00:00Z discovery",
        f"acme.example {A} 2030-05-01T12:00:00Z guessed",
        f"acme.example {A} 2030-05-01T12:00:00Z discovery extra",
    ):
        assert DomainProof.parse(bad) is None, bad
    assert OwnershipOverride.parse(f"acme.example {A} 2030-05-01T12:00:00Z ") is None
    assert DomainAlert.parse(f"acme.example {A} 2030-05-01T12:00:00Z other-tenant nope") is None


def test_only_proofs_of_the_current_tenant_and_domains_count():
    attrs = {contract.DOMAIN_PROOFS_KEY: [proof("acme.example"), proof("acme.se", X), proof("gone.example"), "garbage"]}
    held = Ownership.of(attrs, A, ["acme.example", "acme.se"])
    assert held.proven == ("acme.example",)
    assert held.unproven == ("acme.se",)
    # A tenant change inherits nothing.
    assert Ownership.of(attrs, X, ["acme.example", "acme.se"]).proven == ("acme.se",)
    assert Ownership.of(attrs, "", ["acme.example"]).proven == ()


def test_the_account_record_reads_its_ownership():
    org = {
        "id": "o1",
        "alias": "acme",
        "domains": [{"name": "acme.example"}, {"name": "acme.se"}],
        "attributes": {
            contract.TENANT_ID_KEY: [A],
            contract.DOMAIN_PROOFS_KEY: [proof("acme.example")],
            contract.OWNERSHIP_OVERRIDE_KEY: [OwnershipOverride("acme.se", A, NOW, "ticket 1").value()],
        },
    }
    record = AccountRecord.parse(org)
    assert record.ownership.proven == ("acme.example",)
    assert record.ownership.overridden == ("acme.se",)
    assert record.ownership.uncovered == ()
    assert record.ownership.to_dict()["override"] == {"acme.se": {"at": "2030-05-01T12:00:00Z", "reason": "ticket 1"}}


def test_recheck_is_due_once_a_day_per_domain_and_the_fast_path_agrees():
    fresh, old = NOW - timedelta(hours=3), NOW - timedelta(hours=25)
    attrs = {
        contract.DOMAIN_PROOFS_KEY: [
            proof("a.example", at=fresh),
            proof("b.example", at=old),
            proof("c.example", X, at=fresh),
        ],
        contract.DOMAIN_ALERTS_KEY: [DomainAlert("d.example", A, fresh, "unverified").value()],
    }
    domains = ["a.example", "b.example", "c.example", "d.example", "e.example"]
    assert Ownership.of(attrs, A, domains).due(NOW) == ("b.example", "c.example", "e.example")
    assert recheck_due(attrs, A, domains, NOW) == ("b.example", "c.example", "e.example")
    assert recheck_due(attrs, A, domains, NOW - timedelta(days=2)) == ("c.example", "e.example")
    assert recheck_due({}, "", domains, NOW) == ()


# -- what a re-check changes ---------------------------------------------------------------


def test_a_moved_domain_loses_its_proof_and_is_flagged_once():
    attrs = {contract.DOMAIN_PROOFS_KEY: [proof("acme.example", at=NOW - timedelta(days=1)), proof("acme.se")]}
    moved = judge_all([Discovery("acme.example", "resolved", X)], A, NOW)
    first = after_check(attrs, A, ["acme.example", "acme.se"], moved, NOW)
    assert first.proofs == [proof("acme.se")]
    assert first.lost == ("acme.example",)
    assert [a.change for a in first.new_alerts] == [f"acme.example {A} other-tenant {X}"]
    # The next day the same answer is no news; the alert's time moves on.
    later = NOW + timedelta(days=1)
    again = after_check(
        {contract.DOMAIN_PROOFS_KEY: first.proofs, contract.DOMAIN_ALERTS_KEY: first.alerts},
        A,
        ["acme.example", "acme.se"],
        judge_all([Discovery("acme.example", "resolved", X)], A, later),
        later,
    )
    assert again.new_alerts == () and again.lost == ()
    assert again.alerts == [DomainAlert("acme.example", A, later, "other-tenant", X).value()]
    # Moved on to a third tenant, or removed from every tenant: news again.
    third = "cccccccc-0000-4000-8000-000000000003"
    moved_on = after_check(
        {contract.DOMAIN_ALERTS_KEY: again.alerts},
        A,
        ["acme.example"],
        judge_all([Discovery("acme.example", "resolved", third)], A, later),
        later,
    )
    assert [a.owner for a in moved_on.new_alerts] == [third]


def test_a_domain_back_in_the_tenant_is_proven_again_and_no_answer_changes_nothing():
    attrs = {
        contract.DOMAIN_ALERTS_KEY: [DomainAlert("acme.example", A, NOW, "unverified").value()],
        contract.DOMAIN_PROOFS_KEY: [proof("acme.se", at=NOW - timedelta(days=2))],
    }
    back = after_check(
        attrs,
        A,
        ["acme.example", "acme.se"],
        judge_all(
            [Discovery("acme.example", "resolved", A), Discovery("acme.se", "unavailable", detail="HTTP 503")], A, NOW
        ),
        NOW,
    )
    assert back.recovered == ("acme.example",)
    assert back.alerts == []
    # acme.se keeps its (older) proof: Entra not answering is no verdict.
    assert back.proofs == [proof("acme.example"), proof("acme.se", at=NOW - timedelta(days=2))]
    assert [v.domain for v in back.unavailable] == ["acme.se"]


# -- the requirement -----------------------------------------------------------------------


def test_the_requirement_refuses_names_each_domain_and_accepts_an_override():
    verdicts = judge_all(
        [
            Discovery("acme.example", "resolved", A),
            Discovery("acme.se", "resolved", X),
            Discovery("acme.dk", "unknown"),
        ],
        A,
        NOW,
    )
    with pytest.raises(DomainsNotProven) as refused:
        require("acme", verdicts)
    text = refused.value.format_message()
    assert f"acme.se is verified in another Entra tenant ({X}), not in {A}" in text
    assert "acme.dk is not a verified domain of any Entra tenant" in text
    assert "acme.example" not in text and refused.value.exit_code == 2
    assert [v.domain for v in refused.value.verdicts] == ["acme.se", "acme.dk"]
    assert [v.domain for v in require("acme", verdicts, override="ticket 4711")] == ["acme.se", "acme.dk"]
    with pytest.raises(EntraUnavailable):  # exit 75, also with an override: no answer is not a refusal to waive
        require("acme", judge_all([Discovery("acme.se", "unavailable")], A, NOW), override="ticket 4711")


@pytest.mark.parametrize("reason", ["", "   ", "x" * 151, "two\nlines"])
def test_an_override_needs_a_one_line_reason(reason):
    with pytest.raises(InvalidInput):
        override_reason(reason)


def _account(domains: list[str], tenant: str = A) -> Account:
    return Account.build(
        id="acme",
        name="Acme",
        domains=domains,
        it_contact_name="Ivy",
        it_contact_email="ivy@acme.example",
        tenant_id=tenant,
        client_id="cccccccc-0000-4000-8000-00000000000c",
        secret_expires="2099-01-01",
    )


def test_establish_asks_only_about_unproven_domains_and_records_the_new_proofs():
    asked: list[list[str]] = []

    def check(_endpoints, tenant, domains, now):
        asked.append(list(domains))
        return judge_all([Discovery(d, "resolved", tenant) for d in domains], tenant, now)

    endpoints = EntraEndpoints("https://login.example", "https://graph.example/v1.0")
    held = {contract.DOMAIN_PROOFS_KEY: [proof("acme.example")]}
    done = ownership.establish(endpoints, _account(["acme.example", "acme.se"]), held, now=NOW, check=check)
    assert asked == [["acme.se"]]
    assert [p.domain for p in done.account.domain_proofs or ()] == ["acme.example", "acme.se"]
    assert done.account.ownership_overrides is None
    # Everything proven: nothing asked, nothing to write.
    again = ownership.establish(endpoints, _account(["acme.example"]), held, now=NOW, check=check)
    assert asked == [["acme.se"]] and again.account.domain_proofs is None
    # Another tenant now: the old proof does not count.
    ownership.establish(endpoints, _account(["acme.example"], tenant=X), held, now=NOW, check=check)
    assert asked[-1] == ["acme.example"]


def test_establish_refuses_or_records_the_override():
    def check(_endpoints, tenant, domains, now):
        return judge_all([Discovery(d, "resolved", X) for d in domains], tenant, now)

    endpoints = EntraEndpoints("https://login.example", "https://graph.example/v1.0")
    with pytest.raises(DomainsNotProven):
        ownership.establish(endpoints, _account(["acme.example"]), {}, now=NOW, check=check)
    done = ownership.establish(endpoints, _account(["acme.example"]), {}, override="ticket 4711", now=NOW, check=check)
    assert done.account.ownership_overrides == (OwnershipOverride("acme.example", A, NOW, "ticket 4711"),)
    assert "linked under the override" in done.warnings()[0]
    # The override is recorded for that domain and tenant: the next command asks nothing.
    recorded = {contract.OWNERSHIP_OVERRIDE_KEY: [o.value() for o in done.account.ownership_overrides or ()]}
    assert (
        ownership.establish(
            endpoints, _account(["acme.example"]), recorded, now=NOW, check=lambda *a: pytest.fail("asked again")
        ).account.ownership_overrides
        is None
    )


# -- reading Entra's answers ---------------------------------------------------------------


def _discover(handler) -> list[Discovery]:
    endpoints = EntraEndpoints("https://login.example", "https://graph.example/v1.0")

    async def run() -> list[Discovery]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await discover_async(endpoints, ["acme.example"], client)

    return asyncio.run(run())


def test_discovery_answers_are_read_as_microsoft_documents_them():
    def resolved(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/acme.example/v2.0/.well-known/openid-configuration"
        return httpx.Response(200, json={"issuer": f"https://login.example/{A}/v2.0"})

    assert _discover(resolved) == [Discovery("acme.example", "resolved", A)]
    unknown = _discover(
        lambda r: httpx.Response(
            400,
            json={
                "error": "invalid_tenant",
                "error_codes": [90002],
                "error_description": "AADSTS90002: Tenant 'acme.example' not found.",
            },
        )
    )
    assert [(d.answer, d.detail) for d in unknown] == [("unknown", "AADSTS90002")]
    for answer in (
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "5"}),
        httpx.Response(200, json={"issuer": "https://login.example/common/v2.0"}),
        httpx.Response(403, text="forbidden by a proxy"),
    ):
        assert _discover(lambda r, answer=answer: answer)[0].answer == "unavailable"

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    assert _discover(down)[0].answer == "unavailable"
