"""What a cycle did (or, in a dry run, would do): per account and in all.

``AccountResult`` is filled by the per-account pipeline, ``CycleReport`` by the scheduler;
``to_dict`` is the JSON of ``apsis-sync run -o json`` (stable keys), ``print_text`` what
people read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import click

from apsis_core.contract import RunStatus
from apsis_core.errors import EX_FAILURE, EX_TEMPFAIL
from sync import expiry
from sync.deprovision import Action, Restored
from sync.notify import Notice

Mode = Literal["incremental", "full"]


@dataclass
class AccountResult:
    """What one account's sync did (or, in a dry run, would do)."""

    account: str
    status: RunStatus = "ok"
    mode: Mode | None = None
    resync_cause: str | None = None
    actions: list[Action] = field(default_factory=list)
    resumed: list[Action] = field(default_factory=list)  # finished for a run that was cut short
    applied: int = 0
    restored: list[Restored] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quarantine: str | None = None
    expiry: expiry.SecretExpiry | None = None
    graph_waits: list[tuple[str, float]] = field(default_factory=list)
    graph_requests: int = 0
    seconds: float = 0.0
    permanent_errors: int = 0  # errors that need a person (the others: retry later)
    domain_alerts: int = 0  # domains the tenant no longer owns (sync.domain_check)

    def fail(self, message: str, *, temporary: bool = False) -> None:
        self.errors.append(message)
        if not temporary:
            self.permanent_errors += 1

    @property
    def temporary_failure(self) -> bool:
        """Failed only for reasons that pass by themselves (unreachable, 5xx, 429, timeouts)."""
        return bool(self.errors) and self.permanent_errors == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.account,
            "status": self.status,
            "mode": self.mode,
            "resync_cause": self.resync_cause,
            "actions": [a.to_dict(self.account) for a in self.actions],
            "resumed": [a.to_dict(self.account) for a in self.resumed],
            "applied": self.applied,
            "restored": [r.describe() for r in self.restored],
            "notifications": [
                {"kind": n.kind, "to": list(n.to), "cc": list(n.cc), "subject": n.subject} for n in self.notices
            ],
            "errors": self.errors,
            "temporary_failure": self.status == "error" and self.temporary_failure,
            "notes": self.notes,
            "quarantine": self.quarantine,
            "secret_expires": self.expiry.expires.isoformat() if self.expiry else None,
            "secret_expiry_source": self.expiry.source if self.expiry else None,
            "days_until_secret_expires": self.expiry.days_left if self.expiry else None,
            "graph_waits": [{"reason": r, "seconds": s} for r, s in self.graph_waits],
            "graph_requests": self.graph_requests,
            "domain_alerts": self.domain_alerts,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class CycleReport:
    results: list[AccountResult]
    dry_run: bool
    started: str
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.status != "error" for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 all synced; 75 the failures were all temporary (retry later); 1 one needs a person."""
        failed = [r for r in self.results if r.status == "error"]
        if not failed:
            return 0
        return EX_TEMPFAIL if all(r.temporary_failure for r in failed) else EX_FAILURE

    def result(self, account: str) -> AccountResult:
        for r in self.results:
            if r.account == account:
                return r
        raise KeyError(account)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "started": self.started,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "exit_code": self.exit_code,
            "accounts": [r.to_dict() for r in self.results],
        }


def print_text(report: CycleReport) -> None:
    """The report as people read it (stdout); ``to_dict`` is the JSON for scripts."""
    verb = "would" if report.dry_run else "did"
    if not report.results:
        click.echo("no accounts to sync")
    for r in report.results:
        head = f"{r.account}: {r.status}"
        if r.mode:
            head += f" ({r.mode}{', ' + r.resync_cause if r.resync_cause else ''})"
        click.echo(head)
        for action in r.resumed:
            click.echo(
                f"  {'would finish' if report.dry_run else 'finished'} (interrupted earlier): {action.describe(r.account)}"
            )
        for action in r.actions:
            held = r.status == "quarantined"
            prefix = "held" if held else verb
            click.echo(f"  {prefix}: {action.describe(r.account)}")
        for restored in r.restored:
            click.echo(f"  report: {restored.describe()}")
        for notice in r.notices:
            click.echo(
                f"  {'would notify' if report.dry_run else 'notified'} {', '.join([*notice.to, *notice.cc]) or 'log'}: "
                f"{notice.subject}"
            )
        if r.expiry is not None:
            click.echo(
                f"  secret expires {r.expiry.expires.isoformat()} ({r.expiry.days_left} days, {r.expiry.source})"
            )
        for note in r.notes:
            click.echo(f"  note: {note}")
        for error in r.errors:
            click.echo(f"  error: {error}")
