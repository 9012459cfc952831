"""How the CLI talks: JSON for scripts, rich tables and plans for people.

Results (tables, plans, JSON documents, links) go to stdout so they can be piped;
progress, warnings and errors go to stderr. rich is imported on first use, so
``apsis-sso --help`` does not pay for it. JSON keys are part of the interface: add keys,
never rename them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from provisioning.plan import Change, Plan

PIPE_WIDTH = 200
SYMBOLS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}


def console(stderr: bool = False) -> Console:
    """A console on the *current* stdout/stderr (tests swap them), never hard-wrapping text."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output has no terminal width: allow wide tables rather than wrapping at 80.
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(file=stream, soft_wrap=True, highlight=False, width=width)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def status(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def warnings(messages: Iterable[str]) -> None:
    for message in messages:
        warn(message)


def _esc(text: object) -> str:
    from rich.markup import escape

    return escape(str(text))


def plan(plan: Plan, *, title: str | None = None) -> None:
    """A plan as a person reviews it: per account, one line per change, its field diffs
    below (secrets masked by ``FieldChange``)."""
    out = console()
    if title:
        out.print(f"[bold]{_esc(title)}[/bold]")
    if plan.empty:
        out.print("No changes.")
        return
    current: str | None = "\0"
    for change in plan.changes:
        if change.account != current:
            current = change.account
            out.print(f"[bold]account {_esc(current)}[/bold]" if current else "[bold]realm[/bold]")
        _change(out, change)
    counts = plan.counts()
    out.print(f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete.")


def _change(out: Console, change: Change) -> None:
    symbol, colour = SYMBOLS[change.action]
    note = f"  ({_esc(change.note)})" if change.note else ""
    out.print(f"  [{colour}]{symbol} {change.action} {_esc(change.kind)} {_esc(change.name)}[/{colour}]{note}")
    for field in change.fields:
        out.print(f"      {_esc(field.describe())}")


def table(columns: Sequence[str], rows: Iterable[Sequence[object]], *, title: str | None = None) -> None:
    from rich.table import Table

    grid = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*("-" if cell is None else _esc(cell) for cell in row))
    console().print(grid)


def key_values(pairs: Iterable[tuple[str, object]]) -> None:
    from rich.table import Table

    grid = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(_esc(key), "-" if value in (None, "", []) else _esc(value))
    console().print(grid)


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
