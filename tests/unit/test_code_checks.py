"""Lint, format and types are part of the test run (so of ``make test``): ``ruff check``,
``ruff format --check`` and ``mypy`` (configured in pyproject.toml) must pass on the tree.

The three run as processes of their own, started when collection selected this test
(``tests/code_checks.py``), so the check costs the unit lane little beyond a cold mypy run
beside it (msgraph-sdk and kiota are not followed: see pyproject.toml)."""

from __future__ import annotations

import pytest

from tests import code_checks

pytestmark = pytest.mark.unit


def test_lint_format_and_types_pass(request: pytest.FixtureRequest):
    running = request.config.stash.get(code_checks.RUNNING, None) or code_checks.start()
    failed = code_checks.failures(running)
    assert failed == {}, "\n".join(f"== {name}\n" + "\n".join(lines) for name, lines in failed.items())
