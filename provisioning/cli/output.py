"""Plans and customer links as the apsis-sso CLI prints them (stdout, so they can be piped);
the generic tables and JSON are ``apsis_core.output``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from apsis_core.output import console, esc, status

if TYPE_CHECKING:
    from rich.console import Console

    from provisioning.plan import Change, Plan

SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


def plan(plan: Plan, *, title: str | None = None) -> None:
    """A plan as a person reviews it: per account, one line per change, its field diffs
    below (secrets masked by ``FieldChange``)."""
    out = console()
    if title:
        out.print(f"[bold]{esc(title)}[/bold]")
    if plan.empty:
        out.print("No changes.")
        return
    current: str | None = "\0"
    for change in plan.changes:
        if change.account != current:
            current = change.account
            out.print(f"[bold]account {esc(current)}[/bold]" if current else "[bold]realm[/bold]")
        _change(out, change)
    counts = plan.counts()
    out.print(f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete.")


def _change(out: Console, change: Change) -> None:
    symbol, colour = SYMBOLS[change.action]
    note = f"  ({esc(change.note)})" if change.note else ""
    out.print(f"  [{colour}]{symbol} {change.action} {esc(change.kind)} {esc(change.name)}[/{colour}]{note}")
    for field in change.fields:
        out.print(f"      {esc(field.describe())}")


def links(items: dict[str, str], *, heading: str) -> None:
    """URLs printed whole, one per line, so they copy cleanly from any terminal."""
    labels = {
        "redirect_uri": "Redirect URI (app registration, platform Web)",
        "admin_consent_url": "Admin-consent link (for their Entra admin)",
        "test_login_url": "Test-login link (for the test users)",
    }
    click.echo(heading)
    for key, url in items.items():
        click.echo(f"  {labels.get(key, key)}:")
        click.echo(f"    {url}")


def progress(change: Change) -> None:
    """One stderr line per change as an apply runs."""
    status(f"  {change.action} {change.kind} {change.name}")
