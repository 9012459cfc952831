"""Replicas on one PostgreSQL state share the accounts out by leases: in one interval each
account is synced by one replica, and the accounts of a replica that died are taken by
another once its leases expire (against the emulator and the real Keycloak)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from devenv.accounts import AccountFactory
from devenv.entra_emulator import EntraEmulator
from sync.report import CycleReport
from sync.scheduler import Leases, run_once
from tests.sync_fixtures import SyncHarness


def cycle(harness: SyncHarness, only: list[str], leases: Leases) -> CycleReport:
    return run_once(harness.rt, only, leases=leases)


def test_two_replicas_sync_each_account_once_and_take_over_a_dead_ones(
    accounts: AccountFactory, sync: Callable[..., SyncHarness]
) -> None:
    made = [accounts.create() for _ in range(6)]
    broken = accounts.create()  # its secret never reaches the daemons: it fails in whichever replica
    only = [a.id for a in made] + [broken.id]
    one = sync(backend="postgresql")
    url = one.sync_settings.state_url
    two = sync(state_url=url)
    for harness in (one, two):
        harness.add(*made)

    reports: dict[str, CycleReport] = {}

    def run(name: str, harness: SyncHarness) -> None:
        reports[name] = cycle(harness, only, Leases(name, 60, 60))

    threads = [threading.Thread(target=run, args=(n, h)) for n, h in (("one", one), ("two", two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    synced = {name: {r.account for r in report.results} for name, report in reports.items()}
    assert synced["one"] | synced["two"] == set(only)
    assert synced["one"] & synced["two"] == set()  # none twice
    assert {r.account for report in reports.values() for r in report.results if r.status != "ok"} == {broken.id}
    assert {lease[0] for lease in one.state.leases().values()} == {None}  # all given back

    # Within the interval nothing is due again: another cycle of either syncs nothing...
    for name, harness in (("one", one), ("two", two)):
        assert cycle(harness, only, Leases(name, 60, 60)).results == []
        # ...and its /metrics still count the fleet from the shared state, not its own share
        assert harness.rt.metrics.registry.get_sample_value("apsis_sync_failing_accounts") == 1

    # A replica dies holding leases (claimed, never given back) on accounts that are due.
    with one.state.transaction() as db:
        db.execute("UPDATE leases SET next_due=0")
    held = one.state.claim("dead", only[:3], 1, 60)
    assert held == sorted(only[:3])
    assert {r.account for r in cycle(two, only, Leases("two", 60, 60)).results} == set(only[3:])
    assert two.rt.metrics.registry.get_sample_value("apsis_sync_failing_accounts") == 1
    expires = max(e for h, e, _ in one.state.leases().values() if h == "dead" and e is not None)
    while one.state.clock() <= expires:  # the database's clock, not ours
        time.sleep(0.2)
    with one.state.transaction() as db:
        db.execute("UPDATE leases SET next_due=0")
    taken = cycle(two, only, Leases("two", 60, 60))
    assert {r.account for r in taken.results} == set(only)  # the dead replica's ones too


def test_a_sync_that_outlasts_its_lease_keeps_it_and_no_other_replica_takes_the_account(
    accounts: AccountFactory, sync: Callable[..., SyncHarness], emulator: EntraEmulator
) -> None:
    made = accounts.create()
    one = sync(backend="postgresql")
    two = sync(state_url=one.sync_settings.state_url)
    one.add(made)
    report: list[CycleReport] = []
    emulator.configure(graph_latency_ms=3000)  # each Graph answer takes longer than the lease
    try:
        running = threading.Thread(target=lambda: report.append(cycle(one, [made.id], Leases("one", 1, 60))))
        running.start()
        while (one.state.leases().get(made.id) or (None,))[0] != "one":
            time.sleep(0.05)
        claimed = one.state.clock()
        with one.state.transaction() as db:  # due again now: only the lease keeps it "one"'s
            db.execute("UPDATE leases SET next_due=0")
        while one.state.clock() <= claimed + 1.5:  # the first lease has run out on the database's clock
            time.sleep(0.1)
        assert running.is_alive()  # still syncing
        assert two.state.claim("two", [made.id], 60, 0) == []  # renewed: not another replica's
        running.join(timeout=120)
    finally:
        emulator.configure(graph_latency_ms=0)
    assert [r.account for r in report[0].results] == [made.id] and report[0].results[0].status == "ok"
    assert one.state.leases()[made.id][0] is None  # given back at the end
