"""Two daemons (or a daemon and ``run --once``) on one state file that planned the same
deactivations: each user is deactivated, recorded, counted and logged once, by whichever
process turned it from enabled to disabled (or took it out of the account); the other finds
it done. A deactivation cut short is still finished by the next run."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from sync import deprovision
from sync.graph_client import EntraUser
from sync.state import StateStore
from tests.deprovision_world import World, delta, record
from tests.keycloak_memory import MemoryKeycloak

pytestmark = pytest.mark.unit


@pytest.fixture
def two(tmp_path: Path):  # noqa: ANN201 - (world of process A, state of process B)
    kc = MemoryKeycloak()
    a, b = StateStore(tmp_path / "state.sqlite3"), StateStore(tmp_path / "state.sqlite3")
    yield World(kc, a, record(kc, "acme", "acme.example"), record(kc, "other", "other.example")), b
    a.close()
    b.close()


def test_the_same_plan_carried_out_by_two_processes_counts_each_user_once(two, caplog: pytest.LogCaptureFixture):
    world, other_state = two
    users = [world.person(f"u{i}", link=f"oid-{i}", sessions=1) for i in range(3)]
    shared = world.person("both", link="oid-both")
    world.kc.add_member(world.other.org_id, shared)  # only leaves acme
    changes = delta(
        *(EntraUser(f"oid-{i}", removed="deleted") for i in range(3)), EntraUser("oid-both", removed="deleted")
    )
    plans = [deprovision.plan_incremental(world.kc, world.acme, changes, s) for s in (world.state, other_state)]
    assert [len(p.actions) for p in plans] == [4, 4]  # both planned before either applied

    caplog.set_level(logging.INFO, logger="apsis_sync.deprovision")
    first = deprovision.apply(world.kc, world.acme, plans[0].actions, world.state)
    second = deprovision.apply(world.kc, world.acme, plans[1].actions, other_state)
    assert world.state.account("acme").deactivated_total == 4 == other_state.account("acme").deactivated_total
    assert [r.message for r in caplog.records].count("deactivated user") == 4
    assert len(first) == 4 and second == []
    assert other_state.pending_deactivations("acme") == []
    assert all(world.kc.users_by_id[u]["enabled"] is False for u in users)


def test_two_processes_at_the_same_moment_deactivate_each_user_once(two):
    world, other_state = two
    users = [world.person(f"u{i}", link=f"oid-{i}") for i in range(20)]
    changes = delta(*(EntraUser(f"oid-{i}", removed="deleted") for i in range(20)))
    plans = [deprovision.plan_incremental(world.kc, world.acme, changes, s) for s in (world.state, other_state)]
    start = threading.Barrier(2)
    done: list[list[deprovision.Action]] = [[], []]

    def run(i: int, state: StateStore) -> None:
        start.wait()
        done[i] = deprovision.apply(world.kc, world.acme, plans[i].actions, state, concurrency=4)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((world.state, other_state))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert world.state.account("acme").deactivated_total == 20
    assert sorted(a.user_id for a in done[0] + done[1]) == sorted(users)


def test_a_user_re_enabled_by_hand_and_deleted_again_is_a_new_deactivation(world: World):
    lin = world.person("lin", link="oid-lin")
    changes = delta(EntraUser("oid-lin", removed="deleted"))
    plan = deprovision.plan_incremental(world.kc, world.acme, changes, world.state)
    assert len(deprovision.apply(world.kc, world.acme, plan.actions, world.state)) == 1
    world.kc.users_by_id[lin]["enabled"] = True  # an admin gave access back
    plan = deprovision.plan_incremental(world.kc, world.acme, changes, world.state)
    assert len(deprovision.apply(world.kc, world.acme, plan.actions, world.state)) == 1
    assert world.state.account("acme").deactivated_total == 2
