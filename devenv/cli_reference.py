"""docs/cli.md, made from the click commands themselves: every command of apsis-sso,
apsis-sync and apsis-portal with its ``--help`` as the command prints it, so the reference
cannot drift from the code (tests/unit/test_cli_reference.py compares the file with this).

    .venv/bin/python -m devenv.cli_reference          # rewrite docs/cli.md
    .venv/bin/python -m devenv.cli_reference --check  # exit 1 when docs/cli.md is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import click

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/cli.md differs, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DOC.is_file() or DOC.read_text() != text:
            print(f"{DOC} is stale: run python -m devenv.cli_reference", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
