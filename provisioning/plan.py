"""Plans: what would change in Keycloak, computed before anything is changed.

A plan is a list of ``Change`` objects, each with the field-level diff a person reviews and
the step that performs it. Planners build plans from data alone (a snapshot read up
front); a step is a callable that receives the Keycloak repository when the plan is
applied, so planning never writes and never needs a server. ``--dry-run`` prints the plan;
apply runs the steps in order. Secret fields are compared but only ever shown as
``(set)``/``(changed)``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, cast

from apsis_core.errors import Interrupted, InterruptedByOutage, is_temporary

Rep = TypeVar("Rep", bound=Mapping[str, object])

Api = TypeVar("Api")
"""What a plan's changes are applied with: ``KeycloakPort`` for an account's plan, the
repository itself for the realm's (``realm apply`` alone administers the realm)."""

Action = Literal["create", "update", "delete"]

SECRET_KEYS = frozenset({"clientSecret", "secret", "client_secret", "password"})
MASK = "**********"


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any
    secret: bool = False

    def to_dict(self) -> dict[str, Any]:
        if self.secret:
            before = _mask(self.before)
            return {"path": self.path, "before": before, "after": _mask(self.after, changed=before is not None)}
        return {"path": self.path, "before": self.before, "after": self.after}

    def describe(self) -> str:
        shown = self.to_dict()
        return f"{self.path}: {_short(shown['before'])} -> {_short(shown['after'])}"

    def __repr__(self) -> str:
        # Tracebacks and debuggers print reprs: a secret field shows its mask, never its value.
        shown = self.to_dict()
        return f"FieldChange({self.path!r}, {shown['before']!r}, {shown['after']!r}, secret={self.secret})"


@dataclass
class Change(Generic[Api]):
    action: Action
    kind: str
    name: str
    account: str | None = None
    fields: list[FieldChange] = field(default_factory=list)
    apply: Callable[[Api], object] | None = field(default=None, repr=False, compare=False)
    """What the change does when applied, given the Keycloak to do it with."""
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "kind": self.kind, "name": self.name}
        if self.account:
            out["account"] = self.account
        if self.fields:
            out["fields"] = [f.to_dict() for f in self.fields]
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Plan(Generic[Api]):
    changes: list[Change[Api]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def add(self, change: Change[Api]) -> None:
        self.changes.append(change)

    def extend(self, other: Plan[Api]) -> None:
        self.changes.extend(other.changes)
        self.warnings.extend(other.warnings)

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for change in self.changes:
            counts[change.action] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "summary": self.counts(),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def apply(self, api: Api, progress: Callable[[Change[Api]], None] | None = None) -> int:
        """Run every change in order with ``api``; stops at the first failure.

        A failure after the first change is re-raised as ``Interrupted`` naming the step, so
        the operator learns that something was changed and that a rerun completes it (every
        planner re-reads Keycloak). A failure of the first change changed nothing and keeps
        its own error (and exit code).
        """
        done = 0
        for change in self.changes:
            if progress:
                progress(change)
            try:
                if change.apply is not None:
                    change.apply(api)
            except Exception as exc:
                if done == 0:
                    raise
                raise interrupted(done, len(self.changes), change, exc) from exc
            done += 1
        return done


def interrupted(done: int, total: int, change: Change, exc: BaseException, *, detail: str = "") -> Interrupted:
    """A plan stopped by ``exc`` at ``change`` after ``done`` changes: what the operator reads.
    Temporary when ``exc`` was (exit code 75)."""
    stopped = InterruptedByOutage if is_temporary(exc) else Interrupted
    return stopped(
        f"stopped after {done} of {total} changes{detail}, at {change.action} {change.kind} {change.name}: "
        f"{first_line(exc)}; run the same command again to complete it"
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _mask(value: Any, changed: bool = False) -> str | None:
    if value in (None, ""):
        return None
    return "(changed)" if changed else "(set)"


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def normalise(value: Any) -> Any:
    """Order-insensitive form of set-like lists so a reordering is not a change."""
    if isinstance(value, list):
        items = [normalise(v) for v in value]
        if all(isinstance(i, str) for i in items):
            return sorted(items)
        if all(isinstance(i, dict) and "name" in i for i in items):
            return sorted(items, key=lambda i: str(i["name"]))
        return items
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


def diff(current: Mapping[str, Any] | None, desired: Mapping[str, Any], prefix: str = "") -> list[FieldChange]:
    """Field changes needed to make ``current`` carry every key of ``desired``.

    Only keys present in ``desired`` are compared: the template says what we own, and
    everything else on the Keycloak side is left alone.
    """
    current = current or {}
    changes: list[FieldChange] = []
    for key, want in desired.items():
        have = current.get(key)
        if have == want:  # the common case of a no-change plan, decided without normalising
            continue
        path = f"{prefix}{key}"
        secret = key in SECRET_KEYS
        if isinstance(want, dict) and isinstance(have, dict) and not secret:
            changes.extend(diff(have, want, prefix=f"{path}."))
            continue
        if isinstance(want, dict) and have is None and not secret:
            changes.extend(diff({}, want, prefix=f"{path}."))
            continue
        if normalise(have) != normalise(want) and not (have is None and want in ("", [], {})):
            changes.append(FieldChange(path, have, want, secret=secret))
    return changes


def merge(base: Rep, overlay: Mapping[str, object]) -> Rep:
    """Deep-merge ``overlay`` into a copy of ``base`` (dicts merge, everything else replaces):
    a representation as it is in Keycloak with ours laid over it, so of ``base``'s shape."""
    out: dict[str, Any] = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return cast(Rep, out)
