"""Errors a person can act on: one line, no secrets, each class carrying its exit code.

The root, ``ApsisError``, is a ``click.ClickException``: click already knows how to end a
command with an exception's message and its ``exit_code``, so both CLIs leave that to it,
and the daemon's failures (Graph, state, secrets) share the same root, so one account's
failure is recorded with the same one-line message a command would print.

* ``2`` (``EX_USAGE``) — bad input or configuration, a refusal: running it again as it is
  will fail again; a person must change something.
* ``75`` (``EX_TEMPFAIL``, as sysexits.h) — Keycloak, Entra or Graph unreachable, a
  timeout, a 5xx or a 429: nothing is wrong with the request; retry later.
* ``1`` — anything else (an unexpected answer, a bug, an apply stopped midway).
* ``3`` — not an error: ``--detailed-exitcode`` saying there were changes.
"""

from __future__ import annotations

from typing import IO, Any, Self

import click

from apsis_core.redaction import scrub

EX_FAILURE = 1
EX_USAGE = 2
EX_CHANGES = 3  # --detailed-exitcode: there were changes (pending, or applied)
EX_TEMPFAIL = 75


class ApsisError(click.ClickException):
    """Base class: the message is a complete, one-line explanation for an operator."""

    exit_code = EX_FAILURE

    def show(self, file: IO[Any] | None = None) -> None:
        """``error: <message>`` on stderr, with every secret the process knows blanked out."""
        click.echo(f"error: {scrub(self.format_message())}", file=file, err=file is None)

    def with_message(self, message: str) -> Self:
        """The same error (class, exit code and what else it carries, e.g. ``EntraRefused.reason``)
        saying ``message`` instead: for a caller that adds what it knows (the account, the others)."""
        # Not copy.copy: it would call __init__ with the message alone.
        changed = type(self).__new__(type(self))
        changed.__dict__.update(self.__dict__)
        click.ClickException.__init__(changed, message)
        return changed


class InvalidInput(ApsisError):
    """The operator asked for something malformed or impossible (exit code 2)."""

    exit_code = EX_USAGE


class NotFound(InvalidInput):
    """An account, user or resource named by the operator does not exist."""


class Conflict(InvalidInput):
    """The request clashes with existing state (duplicate account, domain of another account)."""


class Declined(ApsisError):
    """The operator answered no (or nobody could answer): nothing was changed (exit code 1)."""


class TemporaryFailure(ApsisError):
    """A service could not be reached, timed out or was overloaded (5xx, 429): exit code 75.

    Nothing was wrong with the request; the same command later is expected to work, and
    every command of both CLIs is safe to repeat."""

    exit_code = EX_TEMPFAIL


class KeycloakUnavailable(TemporaryFailure):
    """Keycloak cannot be reached, did not answer in time, or answered 5xx/429."""


class KeycloakRefused(ApsisError):
    """Keycloak refused our credentials or permissions, or none are configured (exit code 2:
    a person must fix the configuration; nothing was changed)."""

    exit_code = EX_USAGE


class KeycloakError(ApsisError):
    """Keycloak answered with an unexpected error."""


class EntraError(ApsisError):
    """Entra refused the tenant, the application or the secret (exit code 2)."""

    exit_code = EX_USAGE


class EntraRefused(InvalidInput):
    """Entra refused what a person typed: the tenant, the application, the secret, or (with a
    token) Graph access because the permission has no admin consent yet (exit code 2).

    ``reason`` names which, for pages that explain it in their own words: the AADSTS code
    (``"AADSTS7000215"``) or ``"consent"``. The message is the operator's one line."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EntraUnavailable(TemporaryFailure, EntraError):
    """Entra could not be reached, timed out or answered 5xx/429 (exit code 75)."""


class Interrupted(ApsisError):
    """Some changes of a plan were applied, then one failed (exit code 1).

    Every planner re-reads Keycloak, so running the same command again completes the work;
    the message says so, and which step failed. Stopped by a temporary failure (Keycloak
    went away), it exits 75 like that failure: a retry later completes it.
    """


class InterruptedByOutage(Interrupted, TemporaryFailure):
    """``Interrupted`` by a temporary failure (Keycloak went away): exit code 75."""


def is_temporary(exc: BaseException) -> bool:
    """Retrying later is expected to work (exit code 75)."""
    return getattr(exc, "exit_code", None) == EX_TEMPFAIL
