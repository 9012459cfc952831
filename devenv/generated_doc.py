"""The command line of a generated docs page: write it, or with ``--check`` exit 1 when the
file differs from what the code says (devenv.cli_reference, devenv.settings_reference)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def main(doc: Path, render: Callable[[], str], module: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=f"Write {doc.name} from the code.")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when {doc.name} differs, write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not doc.is_file() or doc.read_text() != text:
            print(f"{doc} is stale: run python -m {module}", file=sys.stderr)
            return 1
        return 0
    doc.write_text(text)
    print(f"wrote {doc} ({len(text.splitlines())} lines)")
    return 0
