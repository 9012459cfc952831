"""Plans: what counts as a change, how secrets show, how an apply stops."""

from __future__ import annotations

import pytest

from apsis_core.errors import EX_FAILURE, EX_TEMPFAIL, Interrupted, KeycloakUnavailable, NotFound
from provisioning.plan import Change, FieldChange, Plan, diff, merge

pytestmark = pytest.mark.unit


def test_only_what_the_template_names_is_compared_and_order_does_not_matter():
    current = {
        "name": "Acme",
        "extra": "set by hand",
        "domains": [{"name": "b"}, {"name": "a"}],
        "config": {"x": "1", "kept": "yes"},
        "pilot": ["b@x.example", "a@x.example"],
    }
    desired = {
        "name": "Acme",
        "domains": [{"name": "a"}, {"name": "b"}],
        "config": {"x": "1"},
        "pilot": ["a@x.example", "b@x.example"],
    }
    assert diff(current, desired) == []
    assert [(c.path, c.before, c.after) for c in diff(current, {"config": {"x": "2"}})] == [("config.x", "1", "2")]
    assert diff({}, {"empty": "", "none": []}) == []  # Keycloak drops empty values: not a change


def test_secrets_show_only_as_set_or_changed_also_in_reprs():
    change = diff({"clientSecret": "old-value-1234"}, {"clientSecret": "new-value-5678"})[0]
    assert change.to_dict() == {"path": "clientSecret", "before": "(set)", "after": "(changed)"}
    assert "value" not in repr(change) and "value" not in change.describe()
    assert FieldChange("secret", None, "new-value-5678", secret=True).to_dict()["after"] == "(set)"


def test_merge_is_deep_for_objects_and_replaces_everything_else():
    base = {"config": {"a": "1", "b": "2"}, "list": [1], "keep": True}
    assert merge(base, {"config": {"b": "3"}, "list": [2]}) == {
        "config": {"a": "1", "b": "3"},
        "list": [2],
        "keep": True,
    }
    assert base["config"] == {"a": "1", "b": "2"}  # the base is not changed


def step(log: list[str], name: str, error: Exception | None = None):
    def run(_api: object) -> None:
        if error is not None:
            raise error
        log.append(name)

    return run


def test_an_apply_runs_in_order_and_a_failure_after_the_first_change_says_how_to_finish():
    log: list[str] = []
    plan = Plan(
        [
            Change("create", "organization", "acme", apply=step(log, "org")),
            Change("create", "identity-provider", "entra-acme", apply=step(log, "idp")),
        ]
    )
    assert plan.apply(api=None) == 2 and log == ["org", "idp"]  # type: ignore[arg-type]
    first = Plan([Change("create", "organization", "acme", apply=step(log, "x", NotFound("gone")))])
    with pytest.raises(NotFound):  # nothing was changed: the failure keeps its own error
        first.apply(api=None)  # type: ignore[arg-type]
    midway = Plan(
        [
            Change("create", "organization", "acme", apply=step(log, "org")),
            Change(
                "create",
                "organization-link",
                "acme <- entra-acme",
                apply=step(log, "x", KeycloakUnavailable("Keycloak at http://kc is unreachable")),
            ),
        ]
    )
    with pytest.raises(Interrupted) as stopped:
        midway.apply(api=None)  # type: ignore[arg-type]
    assert "stopped after 1 of 2 changes, at create organization-link" in str(stopped.value)
    assert stopped.value.exit_code == EX_TEMPFAIL
    assert Interrupted("x").exit_code == EX_FAILURE
    assert plan.counts() == {"create": 2, "update": 0, "delete": 0}
