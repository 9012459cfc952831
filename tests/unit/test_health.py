"""The daemon's health verdict (``/health``), as pure logic on a fake clock."""

from __future__ import annotations

import pytest

from sync.health import Health

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_unhealthy_until_a_cycle_finishes_then_healthy() -> None:
    clock = Clock()
    health = Health(300, clock=clock)
    assert health.verdict().healthy is False and health.verdict().body["status"] == "starting"
    health.cycle_finished(accounts=3, failing=0, seconds=12)
    verdict = health.verdict()
    assert verdict.healthy is True and verdict.body["status"] == "ok" and verdict.body["last_cycle_finished"]


def test_some_failing_accounts_are_healthy_every_account_failing_is_not() -> None:
    health = Health(300, clock=Clock())
    health.cycle_finished(accounts=3, failing=2, seconds=1)
    assert health.verdict().healthy is True  # a customer's wrong secret does not restart the daemon
    health.cycle_finished(accounts=3, failing=3, seconds=1)
    assert health.verdict().healthy is False and health.verdict().body["status"] == "failing"
    health.cycle_finished(accounts=0, failing=0, seconds=1)
    assert health.verdict().healthy is True  # nothing to sync is not a failure


def test_a_cycle_that_could_not_list_the_accounts_is_failing() -> None:
    health = Health(300, clock=Clock())
    health.cycle_failed("Keycloak at http://kc is unreachable", seconds=1)
    verdict = health.verdict()
    assert verdict.healthy is False and verdict.body["reason"] == "Keycloak at http://kc is unreachable"


def test_a_loop_that_stopped_finishing_cycles_is_stalled() -> None:
    clock = Clock()
    health = Health(60, clock=clock)
    health.cycle_finished(accounts=1, failing=0, seconds=30)
    clock.now += 3 * 60 + 30  # three intervals and the cycle's own length: still fine
    assert health.verdict().healthy is True
    clock.now += 1
    assert health.verdict().healthy is False and health.verdict().body["status"] == "stalled"


def test_a_failing_keycloak_makes_the_daemon_unready_but_never_dead() -> None:
    clock = Clock()
    health = Health(60, clock=clock)
    health.cycle_finished(accounts=2, failing=0, seconds=5)
    for _ in range(100):  # a long outage: every cycle fails fast, one interval apart
        clock.now += 60
        health.cycle_failed("Keycloak at http://kc is unreachable", seconds=1)
        assert health.liveness().healthy is True
        assert health.verdict().healthy is False and health.verdict().body["status"] == "failing"
    clock.now += 60
    health.cycle_finished(accounts=2, failing=0, seconds=5)
    assert health.verdict().healthy is True and health.liveness().healthy is True


def test_only_a_loop_that_ends_no_cycle_for_far_too_long_is_dead() -> None:
    clock = Clock()
    health = Health(60, clock=clock)
    health.cycle_finished(accounts=1, failing=0, seconds=100)
    health.cycle_finished(accounts=1, failing=0, seconds=10)
    clock.now += 6 * 60 + 100  # six intervals plus the longest cycle seen: still alive
    assert health.liveness().healthy is True
    assert health.verdict().healthy is False  # but long stale: not ready
    clock.now += 1
    verdict = health.liveness()
    assert verdict.healthy is False and verdict.body["status"] == "stuck"


def test_the_first_cycle_gets_its_grace_before_the_loop_counts_as_stuck() -> None:
    clock = Clock()
    health = Health(60, clock=clock, first_cycle_grace=600)
    assert health.liveness().healthy is True and health.verdict().body["status"] == "starting"
    clock.now += 600
    assert health.liveness().healthy is True
    clock.now += 1
    assert health.liveness().healthy is False and "first cycle" in health.liveness().body["reason"]
