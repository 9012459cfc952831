"""The CLI base both CLIs use: every failure is one scrubbed ``error:`` line with the exit
code its class carries; usage errors point to --help; --debug adds the traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from apsis_core import redaction
from apsis_core.cli import ApsisCli
from apsis_core.errors import (
    EX_TEMPFAIL,
    EX_USAGE,
    ApsisError,
    Declined,
    Interrupted,
    InterruptedByOutage,
    InvalidInput,
    KeycloakUnavailable,
    is_temporary,
)

pytestmark = pytest.mark.unit
SECRET = "Sup3r~Secret~Value~42"


@click.group(cls=ApsisCli)
@click.option("--debug", is_flag=True)
def app(debug: bool) -> None:
    """A test program."""


@app.command()
@click.argument("what")
def fail(what: str) -> int:
    """Fail in the named way."""
    if what == "input":
        raise InvalidInput(f"bad value near {SECRET}")
    if what == "keycloak":
        raise KeycloakUnavailable("Keycloak at http://kc is unreachable")
    if what == "declined":
        raise Declined("aborted: nothing was changed")
    if what == "bug":
        raise RuntimeError(f"boom with {SECRET}\nsecond line")
    return 3


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize(
    ("what", "code"), [("input", EX_USAGE), ("keycloak", EX_TEMPFAIL), ("declined", 1), ("bug", 1), ("ok", 3)]
)
def test_each_failure_is_one_line_with_the_code_its_class_carries(what, code):
    redaction.remember(SECRET)
    result = run("fail", what)
    assert result.exit_code == code
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == (0 if what == "ok" else 1) and SECRET not in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_adds_the_scrubbed_traceback_and_usage_errors_point_to_help():
    redaction.remember(SECRET)
    result = run("--debug", "fail", "bug")
    assert "Traceback" in result.stderr and SECRET not in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: unexpected failure: RuntimeError: boom with")
    usage = run("fail")
    assert usage.exit_code == EX_USAGE and usage.stderr.strip().endswith("(see 'app fail --help')")
    assert run().exit_code == 0  # a group without a command shows its help


def test_errors_are_click_exceptions_and_an_interrupted_apply_keeps_a_temporary_cause():
    assert issubclass(ApsisError, click.ClickException)
    assert is_temporary(InterruptedByOutage("stopped")) and not is_temporary(Interrupted("stopped"))
