"""Errors a person can act on: one line, no secrets, mapped to exit codes by the CLI."""

from __future__ import annotations


class ApsisSsoError(Exception):
    """Base class: the message is a complete, one-line explanation for an operator."""

    exit_code = 1


class InvalidInput(ApsisSsoError):
    """The operator asked for something malformed or impossible (exit code 2)."""

    exit_code = 2


class NotFound(InvalidInput):
    """An account, user or resource named by the operator does not exist."""


class Conflict(InvalidInput):
    """The request clashes with existing state (duplicate account, domain of another account)."""


class KeycloakUnavailable(ApsisSsoError):
    """Keycloak cannot be reached or refused our credentials (exit code 2: nothing was changed)."""

    exit_code = 2


class KeycloakError(ApsisSsoError):
    """Keycloak answered with an unexpected error."""

    exit_code = 1


class EntraError(ApsisSsoError):
    """Entra refused or could not be reached (secret check, tenant discovery)."""

    exit_code = 2


class Interrupted(ApsisSsoError):
    """Some changes of a plan were applied, then one failed (exit code 1).

    Every planner re-reads Keycloak, so running the same command again completes the work;
    the message says so, and which step failed.
    """

    exit_code = 1
