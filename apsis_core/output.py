"""How the CLIs talk: JSON for scripts, rich tables for people.

Results (tables, JSON documents) go to stdout so they can be piped; progress, warnings and
errors go to stderr. rich is imported on first use, so ``--help`` does not pay for it.
JSON keys are part of the interface: add keys, never rename them. Moments are written one
way everywhere (``apsis_core.timestamps``: RFC 3339, UTC, ``Z``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from apsis_core.timestamps import json_value

if TYPE_CHECKING:
    from rich.console import Console

PIPE_WIDTH = 200


def console(stderr: bool = False) -> Console:
    """A console on the *current* stdout/stderr (tests swap them), never hard-wrapping text."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output has no terminal width: allow wide tables rather than wrapping at 80.
    width = None if stream.isatty() else PIPE_WIDTH
    return Console(file=stream, soft_wrap=True, highlight=False, width=width)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=json_value))


def status(message: str) -> None:
    click.echo(message, err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def warnings(messages: Iterable[str]) -> None:
    for message in messages:
        warn(message)


def esc(text: object) -> str:
    """Text shown as is by rich (no markup)."""
    from rich.markup import escape

    return escape(str(text))


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    whole: Collection[str] = (),
) -> None:
    """The one table style of both CLIs: borderless, a bold header. Columns named in ``whole``
    (moments, ids) are never wrapped; the others fold when the terminal is narrow."""
    from rich.table import Table

    grid = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    for name in columns:
        if name in whole:
            grid.add_column(name, no_wrap=True, overflow="ignore")
        else:
            grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*("-" if cell is None else esc(cell) for cell in row))
    console().print(grid)


def key_values(pairs: Iterable[tuple[str, object]]) -> None:
    from rich.table import Table

    grid = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(esc(key), "-" if value in (None, "", []) else esc(value))
    console().print(grid)
