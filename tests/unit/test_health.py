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
