"""Lint, format and types are part of the test run (so of ``make test``): ``ruff check``,
``ruff format --check`` and ``mypy`` (configured in pyproject.toml) must pass on the tree.

The three run side by side, as processes of their own, so the check costs the unit lane
about one cold mypy run (msgraph-sdk and kiota are skipped: see pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
    "ruff format --check": [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
    "mypy": [sys.executable, "-m", "mypy"],
}


def test_lint_format_and_types_pass():
    running = {
        name: subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, command in CHECKS.items()
    }
    failed = {}
    for name, process in running.items():
        out, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            failed[name] = out.strip().splitlines()[-40:]
    assert failed == {}, "\n".join(f"== {name}\n" + "\n".join(lines) for name, lines in failed.items())
