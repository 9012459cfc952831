"""``ruff check``, ``ruff format --check`` and ``mypy`` (configured in pyproject.toml) over the
tree, each a process of its own. ``tests/conftest.py`` starts them as soon as collection
selected ``tests/unit/test_code_checks.py``, so a cold mypy runs beside the rest of the
tests on the other core instead of after them; the test waits for the answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/unit/test_code_checks.py::test_lint_format_and_types_pass"
CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
    "ruff format --check": [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
    "mypy": [sys.executable, "-m", "mypy"],
}
RUNNING = pytest.StashKey[dict[str, "subprocess.Popen[str]"]]()


def start() -> dict[str, subprocess.Popen[str]]:
    return {
        name: subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for name, command in CHECKS.items()
    }


def failures(running: dict[str, subprocess.Popen[str]]) -> dict[str, list[str]]:
    """The last lines of each check that failed (none: all passed)."""
    failed = {}
    for name, process in running.items():
        out, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            failed[name] = out.strip().splitlines()[-40:]
    return failed
