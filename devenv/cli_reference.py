"""docs/cli.md, made from the click commands themselves: every command of apsis-sso,
apsis-sync and apsis-portal with its ``--help`` as the command prints it, so the reference
cannot drift from the code (tests/unit/test_cli_reference.py compares the file with this).

    .venv/bin/python -m devenv.cli_reference          # rewrite docs/cli.md
    .venv/bin/python -m devenv.cli_reference --check  # exit 1 when docs/cli.md is stale
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from devenv import generated_doc
from portal.cli import main as apsis_portal
from provisioning.cli import main as apsis_sso
from sync.cli import main as apsis_sync

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
PROGRAMS: tuple[tuple[str, click.Command], ...] = (
    ("apsis-sso", apsis_sso),
    ("apsis-sync", apsis_sync),
    ("apsis-portal", apsis_portal),
)
WIDTH = 100
INTRO = """\
# Command-line reference

Generated from the commands themselves by `python -m devenv.cli_reference` (a unit test fails
when this file differs from what the commands say). Each section is the command's `--help`.
Options of a program (such as `--env-file`, `--debug`, `--log-level`) may also be given after
the subcommand. Exit codes are listed in each program's help.
"""


def commands(name: str, command: click.Command, parent: click.Context | None = None) -> Iterator[tuple[str, str]]:
    """(command path, help text) for the command and every subcommand below it, in order."""
    # make_context applies the command's context_settings (-h beside --help), as a real run does
    ctx = command.make_context(
        name, [], parent=parent, resilient_parsing=True, terminal_width=WIDTH, max_content_width=WIDTH
    )
    yield ctx.command_path, command.get_help(ctx)
    if isinstance(command, click.Group):
        for sub in command.list_commands(ctx):
            child = command.get_command(ctx, sub)
            if child is not None and not child.hidden:
                yield from commands(sub, child, ctx)


def anchor(path: str) -> str:
    return path.replace(" ", "-")


def render() -> str:
    sections = [(path, text) for name, cli in PROGRAMS for path, text in commands(name, cli)]
    toc = "\n".join(f"{'  ' * (path.count(' '))}- [`{path}`](#{anchor(path)})" for path, _ in sections)
    body = "\n\n".join(f"## {path}\n\n```text\n{text.rstrip()}\n```" for path, text in sections)
    return f"{INTRO}\n{toc}\n\n{body}\n"


def main(argv: list[str] | None = None) -> int:
    return generated_doc.main(DOC, render, "devenv.cli_reference", argv)


if __name__ == "__main__":
    raise SystemExit(main())
