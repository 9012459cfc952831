"""The error tree of ``apsis_core.errors`` is what its docstring draws: each class under its
parent, with the exit code written beside it, and one rule for what is worth a retry."""

from __future__ import annotations

import re

import pytest

from apsis_core import entra, errors
from apsis_core.entra import EntraEndpoints

pytestmark = pytest.mark.unit

ROW = re.compile(r"^    (?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w+)\s+(?P<code>\d+)\s")


def drawn() -> list[tuple[str, str | None, int]]:
    """(class, parent, exit code) for each row of the docstring's tree."""
    rows: list[tuple[str, str | None, int]] = []
    parents: list[str] = []
    for line in (errors.__doc__ or "").splitlines():
        match = ROW.match(line)
        if not match:
            continue
        depth = len(match["indent"]) // 4
        parents[depth:] = [match["name"]]
        rows.append((match["name"], parents[depth - 1] if depth else None, int(match["code"])))
    return rows


def test_the_docstring_draws_the_tree_the_classes_form():
    rows = drawn()
    assert len(rows) >= 15 and rows[0] == ("ApsisError", None, errors.EX_FAILURE)
    for name, parent, code in rows:
        cls = getattr(errors, name)
        assert cls.exit_code == code, name
        if parent is not None:
            assert issubclass(cls, getattr(errors, parent)), (name, parent)
    drawn_names = {name for name, _, _ in rows}
    classes = {n for n, v in vars(errors).items() if isinstance(v, type) and issubclass(v, errors.ApsisError)}
    assert classes == drawn_names, "every error class is in the drawing"


@pytest.mark.parametrize("cls", [errors.InterruptedByOutage, errors.KeycloakUnavailable, errors.EntraUnavailable])
def test_every_75_is_a_temporary_failure(cls: type[errors.ApsisError]):
    assert issubclass(cls, errors.TemporaryFailure) and errors.is_temporary(cls("x"))


def test_an_entra_refusal_is_invalid_input_and_in_the_entra_branch():
    refused = entra.refused(7000222, "expired")
    assert isinstance(refused, errors.InvalidInput) and isinstance(refused, errors.EntraError)
    assert (refused.reason, refused.aadsts, refused.kind, refused.exit_code) == ("AADSTS7000222", 7000222, "expired", 2)


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (429, True),
        (500, True),
        (503, True),
        (599, True),
        (None, False),
        (400, False),
        (404, False),
        (409, False),
        (600, False),
    ],
)
def test_429_and_5xx_are_worth_a_retry_and_nothing_else(status: int | None, retry: bool):
    assert errors.retryable_status(status) is retry


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.response = None


def test_the_daemon_reads_a_token_refusal_from_the_same_table_as_the_cli():
    endpoints = EntraEndpoints("https://login.example", "https://graph.example/v1.0")
    expired = entra.token_refused_in_cycle(_Refused("AADSTS7000222: expired"), endpoints, "app", "tenant")
    assert isinstance(expired, errors.EntraRefused) and (expired.kind, expired.aadsts) == ("expired", 7000222)
    assert (
        str(expired)
        == "Entra refused a token for app app in tenant tenant: the client secret has expired (AADSTS7000222)"
    )
    operator = entra.token_refused(_Refused("AADSTS7000222: expired"), "app", "tenant")
    assert isinstance(operator, errors.EntraRefused) and operator.kind == "expired"
    assert str(operator) == entra.AADSTS[7000222].advice
    silent = entra.token_refused_in_cycle(_Refused("no code at all"), endpoints, "app", "tenant")
    assert isinstance(silent, errors.EntraUnavailable) and "no AADSTS code" in str(silent)
