"""Errors a person can act on: one line, no secrets, each class carrying its exit code.

The exit code lives on the class (as click's and httpx's exceptions carry theirs), so both
CLIs map failures the same way and a scheduler can branch on it:

* ``2`` (``EX_USAGE``) — bad input or configuration, a refusal: running it again as it is
  will fail again; a person must change something.
* ``75`` (``EX_TEMPFAIL``, as sysexits.h) — Keycloak, Entra or Graph unreachable, a
  timeout, a 5xx or a 429: nothing is wrong with the request; retry later.
* ``1`` — anything else (an unexpected answer, a bug, an apply stopped midway).
"""

from __future__ import annotations

EX_FAILURE = 1
EX_USAGE = 2
EX_CHANGES = 3  # --detailed-exitcode: there were changes (pending, or applied)
EX_TEMPFAIL = 75


class ApsisSsoError(Exception):
    """Base class: the message is a complete, one-line explanation for an operator."""

    exit_code = EX_FAILURE


class InvalidInput(ApsisSsoError):
    """The operator asked for something malformed or impossible (exit code 2)."""

    exit_code = EX_USAGE


class NotFound(InvalidInput):
    """An account, user or resource named by the operator does not exist."""


class Conflict(InvalidInput):
    """The request clashes with existing state (duplicate account, domain of another account)."""


class TemporaryFailure(ApsisSsoError):
    """A service could not be reached, timed out or was overloaded (5xx, 429): exit code 75.

    Nothing was wrong with the request; the same command later is expected to work, and
    every command of both CLIs is safe to repeat."""

    exit_code = EX_TEMPFAIL


class KeycloakUnavailable(TemporaryFailure):
    """Keycloak cannot be reached, did not answer in time, or answered 5xx/429."""


class KeycloakRefused(ApsisSsoError):
    """Keycloak refused our credentials or permissions, or none are configured (exit code 2:
    a person must fix the configuration; nothing was changed)."""

    exit_code = EX_USAGE


class KeycloakError(ApsisSsoError):
    """Keycloak answered with an unexpected error."""

    exit_code = EX_FAILURE


class EntraError(ApsisSsoError):
    """Entra refused the tenant, the application or the secret (exit code 2)."""

    exit_code = EX_USAGE


class EntraUnavailable(TemporaryFailure, EntraError):
    """Entra could not be reached, timed out or answered 5xx/429 (exit code 75)."""


class Interrupted(ApsisSsoError):
    """Some changes of a plan were applied, then one failed (exit code 1).

    Every planner re-reads Keycloak, so running the same command again completes the work;
    the message says so, and which step failed. Stopped by a temporary failure (Keycloak
    went away), it exits 75 like that failure: a retry later completes it.
    """

    exit_code = EX_FAILURE

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        if temporary:
            self.exit_code = EX_TEMPFAIL


def exit_code_of(exc: BaseException) -> int:
    """The one map from a failure to an exit code: the code its class carries, else 1."""
    code = getattr(exc, "exit_code", None)
    return code if isinstance(code, int) else EX_FAILURE


def is_temporary(exc: BaseException) -> bool:
    return exit_code_of(exc) == EX_TEMPFAIL
