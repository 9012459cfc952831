"""A plan's progress: reading Keycloak page by page, then comparing, as phases a display can
count; the organizations' count (for a total and a time left) only when something shows it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from apsis_core.account import Account
from apsis_core.domain_ownership import DomainProof
from apsis_core.keycloak.repository import PAGE_SIZE
from apsis_core.settings import Settings
from provisioning import declarative
from provisioning.accounts import plan_accounts
from provisioning.snapshot import Snapshot
from tests.keycloak_memory import MemoryKeycloak

pytestmark = pytest.mark.unit

CFG = Settings(_env_file=None, keycloak_client_secret="tooling-secret")  # type: ignore[call-arg]


class Recorder:
    """A Progress that keeps every call: (label, total, unit, [items per advance], [lines])."""

    def __init__(self) -> None:
        self.phases: list[tuple[str, int | None, str, list[int], list[str]]] = []
        self.open = False

    def begin(self, label: str, total: int | None, unit: str) -> None:
        assert not self.open, "a phase began inside another"
        self.open = True
        self.phases.append((label, total, unit, [], []))

    def advance(self, line: str | None = None, items: int = 1) -> None:
        assert self.open
        self.phases[-1][3].append(items)
        if line:
            self.phases[-1][4].append(line)

    def end(self, summary: str | None = None) -> None:
        assert self.open
        self.open = False


class CountingCounts(MemoryKeycloak):
    def __init__(self) -> None:
        super().__init__()
        self.counts = 0

    def organizations_count(self) -> int:
        self.counts += 1
        return super().organizations_count()


def accounts(n: int, secret: str | None = None) -> list[Account]:
    return [
        Account.build(
            id=f"acct{i:04d}",
            name=f"Account {i}",
            tenant_id="11111111-1111-1111-1111-111111111111",
            client_id="22222222-2222-2222-2222-222222222222",
            domains=[f"acct{i:04d}.example"],
            secret_expires=date.today() + timedelta(days=90),
            it_contact_name="Ivy",
            it_contact_email=f"it@acct{i:04d}.example",
            client_secret=secret,
        )
        for i in range(n)
    ]


def onboarded(kc: MemoryKeycloak, n: int) -> list[Account]:
    """``n`` accounts in ``kc`` with their domains proven (as a create records them), and the
    same as a file lists them (no secret: keep it). A plan of them asks Entra nothing."""
    now = datetime.now(UTC).replace(microsecond=0)
    made = [
        a.with_changes(domain_proofs=tuple(DomainProof(d, a.tenant_id, now) for d in a.domains))
        for a in accounts(n, "Abc~secret-value-of-forty-characters-123")
    ]
    plan_accounts(CFG, made, Snapshot.load(kc)).apply(kc)  # type: ignore[arg-type]
    return accounts(n)


def test_a_plan_reports_its_listings_a_page_at_a_time_and_each_account_compared():
    kc = CountingCounts()
    batch = onboarded(kc, PAGE_SIZE * 2 + 50)
    recorder = Recorder()
    plan = declarative.plan(
        kc,
        CFG,
        declarative.Desired(path=Path("a.yaml"), accounts=list(batch)),  # type: ignore[arg-type]
        progress=recorder,
    )
    assert plan.empty and not recorder.open
    assert [(label, total, unit) for label, total, unit, _, _ in recorder.phases] == [
        ("reading organizations", 450, "organizations"),
        ("reading identity providers", None, "identity providers"),  # Keycloak has no count of them
        ("comparing with the file", 450, "accounts"),
    ]
    assert recorder.phases[0][3] == [PAGE_SIZE, PAGE_SIZE, 50] == recorder.phases[1][3]
    assert recorder.phases[2][3] == [1] * 450
    assert kc.counts == 1


def test_a_silent_plan_asks_for_no_count():
    kc = CountingCounts()
    batch = onboarded(kc, 3)
    assert declarative.plan(kc, CFG, declarative.Desired(path=Path("a.yaml"), accounts=batch)).empty  # type: ignore[arg-type]
    assert kc.counts == 0


def test_a_failing_listing_still_ends_its_phase():
    class Down(MemoryKeycloak):
        def identity_providers(self):  # type: ignore[no-untyped-def]
            raise ConnectionError("down")

    recorder = Recorder()
    with pytest.raises(ConnectionError):
        Snapshot.load(Down(), progress=recorder)  # type: ignore[arg-type]
    assert not recorder.open and [p[0] for p in recorder.phases] == [
        "reading organizations",
        "reading identity providers",
    ]
